package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
	"github.com/samsa-io/samsa/internal/testminio"
	"github.com/samsa-io/samsa/tiering"
)

// The limits of tiering.read_ahead_bytes besides 0 (agent/config_tiering.go): one chunk to
// 1 GiB.
const (
	minReadAhead = chunkBytes
	maxReadAhead = 1 << 30
)

// options are the command-line flags.
type options struct {
	bytes        int64
	recordSize   int64
	segmentBytes int64
	fetchMax     int64
	cacheBytes   int64
	readAhead    int64
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

func main() { benchkit.Main("tiering", run) }

// parseFlags reads args into options.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{bytes: 512 << 20, recordSize: 1 << 10, segmentBytes: 16 << 20, fetchMax: 8 << 20, cacheBytes: 256 << 20,
		readAhead: tiering.DefaultReadAheadBytes}
	fs := flag.NewFlagSet("tiering", flag.ContinueOnError)
	fs.SetOutput(stderr)
	benchkit.BytesVar(fs, &o.bytes, "bytes", "bytes of record values to produce (KiB, MiB, GiB suffixes)")
	benchkit.BytesVar(fs, &o.recordSize, "record-size", "bytes of each record's value (at most 4KiB)")
	benchkit.BytesVar(fs, &o.segmentBytes, "segment-bytes", "the topic's segment.bytes")
	benchkit.BytesVar(fs, &o.fetchMax, "fetch-max-bytes", "the consumer's FetchMaxBytes and FetchMaxPartitionBytes")
	benchkit.BytesVar(fs, &o.cacheBytes, "cache-bytes", "the agent's tiering.cache_bytes (chunk cache on disk: chunks that leave memory read in part, every chunk with -read-ahead-bytes 0)")
	benchkit.BytesVar(fs, &o.readAhead, "read-ahead-bytes", "the agent's tiering.read_ahead_bytes (chunks in memory; 0: none, every chunk goes through the disk cache)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each measurement (samsa and its ceiling side by side in each); the table shows medians")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this `file`")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (agent data, MinIO data, configs)")
	fs.StringVar(&o.dir, "dir", "", "parent `dir` of the work directory (default: system temp); it needs room for about (3×rounds+2)×-bytes")
	fs.StringVar(&o.minioBin, "minio", "", "MinIO `binary` (default: $SAMSA_MINIO_BIN, $(go env GOPATH)/bin/minio, PATH)")
	fs.StringVar(&o.samsaBin, "samsa-bin", "", "samsa `binary` to run (default: go build ./cmd/samsa into the work directory)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the record values")
	fs.StringVar(&o.perfDir, "perf", "", "record the agent with perf record -g during each samsa measurement into this `dir` (needs perf; slows the agent a little)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Minute, "give up after this long")
	if err := benchkit.ParseFlags(fs, args); err != nil {
		return o, err
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
	case o.readAhead != 0 && (o.readAhead < minReadAhead || o.readAhead > maxReadAhead):
		return o, errors.New("-read-ahead-bytes: 0, or from 4MiB (one chunk) to 1GiB, as the agent takes it")
	case o.rounds < 1 || o.rounds > 20:
		return o, errors.New("-rounds: from 1 to 20")
	}
	return o, nil
}

func (o options) summary() map[string]any {
	return map[string]any{
		"bytes": benchkit.FormatBytes(o.bytes), "record_size": benchkit.FormatBytes(o.recordSize), "segment_bytes": benchkit.FormatBytes(o.segmentBytes),
		"fetch_max_bytes": benchkit.FormatBytes(o.fetchMax), "cache_bytes": benchkit.FormatBytes(o.cacheBytes),
		"read_ahead_bytes": benchkit.FormatBytes(o.readAhead), "rounds": o.rounds, "seed": o.seed,
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
	minioBin, err := testminio.FindBinary(o.minioBin)
	if err != nil {
		return err
	}
	work, removeWork, err := benchkit.WorkDir(o.dir, "samsa-tiering-", o.keep)
	if err != nil {
		return err
	}
	defer removeWork()
	logf := benchkit.Logf(stderr)
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
	if b.minio, err = testminio.Launch(minioBin, filepath.Join(work, "minio"), testminio.LaunchOptions{}); err != nil {
		return err
	}
	defer b.minio.Stop()
	b.rep.Meta.MinIOVersion = b.minio.Version()
	logf("minio pid %d on %s", b.minio.PID(), b.minio.Endpoint)
	if err := createBucket(ctx, b.minio, bucket, region); err != nil {
		return err
	}
	if b.s3, err = minioClient(b.minio, region); err != nil {
		return err
	}
	if err := b.runAll(ctx); err != nil {
		return err
	}
	b.rep.Meta.End()
	b.rep.summarize()
	b.rep.writeMarkdown(stdout)
	if o.jsonPath != "" {
		if err := benchkit.WriteJSON(o.jsonPath, &b.rep); err != nil {
			return err
		}
		logf("wrote %s", o.jsonPath)
	}
	return nil
}
