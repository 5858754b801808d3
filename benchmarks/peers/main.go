// Command peers runs samsa and Debian's nats-server (JetStream, file storage) side by side on
// this machine and prints one Markdown table: produce and consume throughput, produce latency
// at a fixed rate, and the memory of each server process. See benchmarks/README.md for what
// every number means.
//
//	go run ./benchmarks/peers                      # defaults: about 2 minutes on 2 cores
//	go run ./benchmarks/peers -json results.json   # also write the numbers as JSON
//
// Every server gets one topic/stream with one partition per test and one client connection;
// clients and servers share the machine's CPUs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// options are the command-line flags.
type options struct {
	records         int
	latencyRate     int
	latencyDuration time.Duration
	latencyWarmup   time.Duration
	idleWait        time.Duration
	servers         []string
	jsonPath        string
	samsaBin        string
	natsServer      string
	workDir         string
	keep            bool
	inProcess       bool
	cpuProfile      string
	memProfile      string
	jsMaxPending    int
	jsPullBatch     int
	timeout         time.Duration
	latencyDump     string
	fetchMaxBytes   int
}

// Server names accepted by -servers.
const (
	srvSamsa       = "samsa"
	srvSamsaAlways = "samsa-always"
	srvSamsaNever  = "samsa-never" // not run by default: a diagnostic
	srvJetStream   = "jetstream"
)

var allServers = []string{srvSamsa, srvSamsaAlways, srvJetStream}

func main() { benchkit.Main("peers", run) }

// parseFlags reads args into options.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.records, "records", 300_000, "records produced (and then consumed) per size and server")
	fs.IntVar(&o.latencyRate, "latency-rate", 10_000, "fixed produce rate (msgs/s) of the latency test")
	fs.DurationVar(&o.latencyDuration, "latency-duration", 10*time.Second, "measured length of the latency test")
	fs.DurationVar(&o.latencyWarmup, "latency-warmup", time.Second, "paced warm-up before the latency test (not measured)")
	fs.DurationVar(&o.idleWait, "idle-wait", time.Second, "settle time before reading the idle RSS")
	servers := fs.String("servers", strings.Join(allServers, ","), "comma-separated servers to run: "+strings.Join(allServers, ", ")+" (and "+srvSamsaNever+")")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this `file`")
	fs.StringVar(&o.samsaBin, "samsa-bin", "", "use this samsa binary instead of building ./cmd/samsa")
	fs.StringVar(&o.natsServer, "nats-server", "", "nats-server binary (default: PATH, then /usr/sbin/nats-server)")
	fs.StringVar(&o.workDir, "work-dir", "", "parent `dir` of the temporary data directories (default: system temp)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary data directories")
	fs.BoolVar(&o.inProcess, "samsa-inprocess", false, "run the samsa agent inside this process (for -cpuprofile; no RSS numbers)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process to `file`")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of this process to `file` at the end")
	fs.IntVar(&o.jsMaxPending, "js-max-pending", 16000, "JetStream async publish window (nats.go default: 4000; 16000 was faster here)")
	fs.IntVar(&o.fetchMaxBytes, "fetch-max-bytes", 64<<20, "samsa consumer FetchMaxBytes and FetchMaxPartitionBytes")
	fs.IntVar(&o.jsPullBatch, "js-pull-batch", 10_000, "JetStream consumer pull batch (messages)")
	fs.StringVar(&o.latencyDump, "latency-dump", "", "write every latency sample to `prefix`-SERVER.tsv (planned send ms, latency ms)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	if err := benchkit.ParseFlags(fs, args); err != nil {
		return o, err
	}
	if o.records < 1 || o.latencyRate < 1 || o.latencyDuration <= 0 || o.jsMaxPending < 1 || o.jsPullBatch < 1 || o.fetchMaxBytes < 1 {
		return o, errors.New("-records, -latency-rate, -latency-duration, -js-max-pending, -js-pull-batch and -fetch-max-bytes must be positive")
	}
	for _, s := range strings.Split(*servers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allServers, s) && s != srvSamsaNever {
			return o, fmt.Errorf("-servers: unknown server %q (allowed: %s, %s)", s, strings.Join(allServers, ", "), srvSamsaNever)
		}
		o.servers = append(o.servers, s)
	}
	if len(o.servers) == 0 {
		return o, errors.New("-servers: nothing to run")
	}
	return o, nil
}

// run is the whole program; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		defer writeMemProfile(o.memProfile, stderr)
	}
	work, removeWork, err := benchkit.WorkDir(o.workDir, "samsa-peers-", o.keep)
	if err != nil {
		return err
	}
	defer removeWork()
	logf := benchkit.Logf(stderr)
	rep := &report{Meta: collectMeta(args), Options: o.summary()}
	logf("pacer baseline: %v at %d msgs/s with no server", o.latencyDuration, o.latencyRate)
	if rep.Meta.PacerBaseline, err = pacerBaseline(ctx, o); err != nil {
		return err
	}
	for _, name := range o.servers {
		res, err := runServer(ctx, name, o, work, logf)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if name == srvJetStream {
			rep.Meta.NATSServerVersion = res.Version
		} else {
			rep.Meta.SamsaVersion = res.Version
		}
		rep.Results = append(rep.Results, res)
	}
	rep.Meta.End()
	rep.evaluate()
	rep.writeMarkdown(stdout)
	if o.jsonPath != "" {
		if err := benchkit.WriteJSON(o.jsonPath, rep); err != nil {
			return err
		}
		logf("wrote %s", o.jsonPath)
	}
	return nil
}

// writeMemProfile writes the allocation profile (go tool pprof -sample_index=alloc_space).
func writeMemProfile(path string, stderr io.Writer) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "peers: memprofile:", err)
	}
}
