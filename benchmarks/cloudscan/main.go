// Command cloudscan measures the full-scan rate of samsa-cloud's query engine (cloud.Archive.Query,
// what "samsa-cloud query" runs) next to a raw GetObject download of the same objects, in the
// same run, from the same MinIO.
//
// It starts a real MinIO server and an in-process samsa agent that tiers a topic to it,
// produces records (lz4 by default) until about -size bytes of segments are archived, waits
// for the uploads and stops the agent. Then it measures, -runs times in rotating order:
//
//	raw GET, sequential        GetObject of each .log object, one at a time, body read into a buffer
//	raw GET, parallel          ranged GETs of -chunk bytes, -parallel in flight: the query's pattern
//	query, counting sink       Archive.Query over the whole topic; the sink counts records
//	query, jsonl → discard     the same, encoding JSON lines (cloud.NewWriter) into io.Discard
//
// and prints a Markdown table of medians (MB/s of .log bytes, records/s, CPU) and every run,
// and writes everything as JSON with -json. The target of issue 6: the scan at no less than 70%
// of the raw download (judged on the counting sink against raw GET, parallel).
//
//	go run ./benchmarks/cloudscan                     # 512 MiB, 4 partitions, lz4
//	go run ./benchmarks/cloudscan -size 64MiB -runs 1 # quick
//	go run ./benchmarks/cloudscan -cpuprofile cpu.out # profile of the query runs
//
// MinIO is found like the tests find it: $SAMSA_MINIO_BIN, then $(go env GOBIN) or
// $(go env GOPATH)/bin, then PATH (bash .ci/test.sh installs it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/cloud"
)

type options struct {
	size         int64
	partitions   int
	segmentBytes int64
	codec        string
	valueBytes   int
	runs         int
	parallel     int
	chunk        int64
	jsonPath     string
	dir          string
	cpuProfile   string
	minioBin     string
	minioCPUs    string
	quiet        bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "cloudscan:", err)
		os.Exit(1)
	}
}

// byteSize is a flag holding a size such as 512MiB, 64MB or 1048576.
type byteSize struct{ n *int64 }

func (b byteSize) String() string {
	if b.n == nil {
		return ""
	}
	return cloud.FormatBytes(*b.n)
}

func (b byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("want a size like 512MiB")
	}
	*b.n = int64(v * float64(mult))
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{size: 512 << 20, segmentBytes: 16 << 20, chunk: cloud.DefaultChunkSize}
	fs := flag.NewFlagSet("cloudscan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(byteSize{&o.size}, "size", "archived segment bytes to generate (about; whole segments)")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the topic")
	fs.Var(byteSize{&o.segmentBytes}, "segment-bytes", "segment.bytes of the topic")
	fs.StringVar(&o.codec, "codec", "lz4", "producer compression: none, gzip, snappy, lz4, zstd")
	fs.IntVar(&o.valueBytes, "value-bytes", 200, "approximate size of each record value (JSON readings)")
	fs.IntVar(&o.runs, "runs", 3, "measurements of each mode")
	fs.IntVar(&o.parallel, "parallel", cloud.DefaultParallel, "ranged GETs in flight (query and raw parallel)")
	fs.Var(byteSize{&o.chunk}, "chunk", "ranged GET size (query and raw parallel)")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.dir, "dir", "", "directory for the MinIO and agent data (default: a temporary directory, removed)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the query runs to this file")
	fs.StringVar(&o.minioBin, "minio-bin", "", "MinIO binary (default: $SAMSA_MINIO_BIN, GOBIN, GOPATH/bin, PATH)")
	fs.StringVar(&o.minioCPUs, "minio-cpus", "", "run MinIO on these CPUs (taskset -c LIST), e.g. 0; pin the benchmark with taskset -c too")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.partitions < 1 || o.runs < 1 || o.parallel < 1 || o.valueBytes < 16:
		return o, fmt.Errorf("-partitions, -runs, -parallel must be at least 1 and -value-bytes at least 16")
	case o.segmentBytes < 64<<10:
		return o, fmt.Errorf("-segment-bytes %d: want at least 64KiB", o.segmentBytes)
	}
	if _, ok := codecs[o.codec]; !ok {
		return o, fmt.Errorf("-codec %q: want none, gzip, snappy, lz4 or zstd", o.codec)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, "cloudscan: "+format+"\n", a...)
		}
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cloudscan-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	rep := &report{Meta: collectMeta(args, dir), Options: o.summary()}
	srv, err := startMinIO(ctx, o.minioBin, o.minioCPUs, dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	logf("MinIO %s at %s", srv.version, srv.endpoint)
	if rep.Archive, err = generate(ctx, o, srv, dir, logf); err != nil {
		return err
	}
	b, err := newBench(ctx, o, srv, &rep.Archive)
	if err != nil {
		return err
	}
	if err := b.check(ctx); err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		b.profile = f
	}
	if rep.Runs, err = b.measure(ctx, logf); err != nil {
		return err
	}
	rep.Meta.LoadAvgEnd = loadAvg()
	rep.Meta.MinIO = srv.version
	rep.summarize()
	rep.writeMarkdown(stdout)
	if o.jsonPath != "" {
		if err := rep.writeJSON(o.jsonPath); err != nil {
			return err
		}
	}
	return nil
}

func (o options) summary() map[string]any {
	return map[string]any{"size": o.size, "partitions": o.partitions, "segment_bytes": o.segmentBytes, "codec": o.codec,
		"value_bytes": o.valueBytes, "runs": o.runs, "parallel": o.parallel, "chunk": o.chunk, "minio_cpus": o.minioCPUs}
}

// since is a short timer for progress lines.
func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }
