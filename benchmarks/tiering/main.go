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
)

// options are the command-line flags.
type options struct {
	bytes        int64
	recordSize   int64
	segmentBytes int64
	fetchMax     int64
	cacheBytes   int64
	rounds       int
	jsonPath     string
	keep         bool
	dir          string
	minioBin     string
	samsaBin     string
	seed         uint64
	timeout      time.Duration
	perfDir      string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "tiering:", err)
		os.Exit(1)
	}
}

// byteSize is a flag of bytes that also takes KiB, MiB and GiB suffixes.
type byteSize struct{ n *int64 }

func (b byteSize) String() string {
	if b.n == nil {
		return ""
	}
	return fmtBytes(*b.n)
}

func (b byteSize) Set(s string) error {
	mult := int64(1)
	num := s
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want bytes, optionally with a KiB, MiB or GiB suffix", s)
	}
	*b.n = v * mult
	return nil
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// parseFlags reads args into options.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{bytes: 512 << 20, recordSize: 1 << 10, segmentBytes: 16 << 20, fetchMax: 8 << 20, cacheBytes: 256 << 20}
	fs := flag.NewFlagSet("tiering", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(byteSize{&o.bytes}, "bytes", "bytes of record values to produce (KiB, MiB, GiB suffixes)")
	fs.Var(byteSize{&o.recordSize}, "record-size", "bytes of each record's value (at most 4KiB)")
	fs.Var(byteSize{&o.segmentBytes}, "segment-bytes", "the topic's segment.bytes")
	fs.Var(byteSize{&o.fetchMax}, "fetch-max-bytes", "the consumer's FetchMaxBytes and FetchMaxPartitionBytes")
	fs.Var(byteSize{&o.cacheBytes}, "cache-bytes", "the agent's tiering.cache_bytes (chunk cache on disk)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each measurement (samsa and its ceiling side by side in each); the table shows medians")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this `file`")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (agent data, MinIO data, configs)")
	fs.StringVar(&o.dir, "dir", "", "parent `dir` of the work directory (default: system temp); it needs room for about (3×rounds+2)×-bytes")
	fs.StringVar(&o.minioBin, "minio", "", "MinIO `binary` (default: $SAMSA_MINIO_BIN, $(go env GOPATH)/bin/minio, PATH)")
	fs.StringVar(&o.samsaBin, "samsa-bin", "", "samsa `binary` to run (default: go build ./cmd/samsa into the work directory)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the record values")
	fs.StringVar(&o.perfDir, "perf", "", "record the agent with perf record -g during each samsa measurement into this `dir` (needs perf; slows the agent a little)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.recordSize < 1 || o.recordSize > 4<<10:
		return o, errors.New("-record-size: from 1B to 4KiB")
	case o.bytes < o.recordSize:
		return o, errors.New("-bytes: at least one record")
	case o.segmentBytes < 64<<10 || o.segmentBytes > 1<<30:
		return o, errors.New("-segment-bytes: from 64KiB to 1GiB")
	case o.fetchMax < 64<<10 || o.fetchMax > 256<<20:
		return o, errors.New("-fetch-max-bytes: from 64KiB to 256MiB")
	case o.cacheBytes < 16<<20:
		return o, errors.New("-cache-bytes: at least 16MiB (4 chunks of 4MiB)")
	case o.rounds < 1 || o.rounds > 20:
		return o, errors.New("-rounds: from 1 to 20")
	}
	return o, nil
}

func (o options) summary() map[string]any {
	return map[string]any{
		"bytes": fmtBytes(o.bytes), "record_size": fmtBytes(o.recordSize), "segment_bytes": fmtBytes(o.segmentBytes),
		"fetch_max_bytes": fmtBytes(o.fetchMax), "cache_bytes": fmtBytes(o.cacheBytes), "rounds": o.rounds, "seed": o.seed,
	}
}

// run is the whole program; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	minioBin, err := findMinio(o.minioBin)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(o.dir, "samsa-tiering-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	if o.keep {
		logf("work directory %s (kept: -keep)", work)
	}
	b := &bench{o: o, work: work, logf: logf, gen: newValueGen(int(o.recordSize), o.seed)}
	b.rep.Meta = collectMeta(args, work)
	b.rep.Options = o.summary()
	if b.samsaBin = o.samsaBin; b.samsaBin == "" {
		logf("building samsa (go build ./cmd/samsa)")
		if b.samsaBin, err = buildSamsa(ctx, work); err != nil {
			return err
		}
	}
	b.rep.Meta.SamsaVersion, b.rep.Meta.SamsaBinary = commandLine(b.samsaBin, "version"), o.samsaBin
	if b.minio, err = startMinio(minioBin, work); err != nil {
		return err
	}
	defer b.minio.stop()
	b.rep.Meta.MinIOVersion = b.minio.version()
	logf("minio pid %d on %s", b.minio.pid(), b.minio.endpoint)
	if err := b.minio.createBucket(ctx, bucket, region); err != nil {
		return err
	}
	if b.s3, err = b.minio.client(region); err != nil {
		return err
	}
	if err := b.runAll(ctx); err != nil {
		return err
	}
	b.rep.Meta.LoadAvgEnd = loadAvg()
	b.rep.summarize()
	b.rep.writeMarkdown(stdout)
	if o.jsonPath != "" {
		if err := b.rep.writeJSON(o.jsonPath); err != nil {
			return err
		}
		logf("wrote %s", o.jsonPath)
	}
	return nil
}
