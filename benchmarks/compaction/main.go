package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// options are the command-line flags.
type options struct {
	size         int64
	keys         int
	valueMin     int
	valueMax     int
	batchRecords int
	codec        string
	segmentBytes int64
	buffer       int64
	dir          string
	jsonPath     string
	keep         bool
	dropCaches   bool
	seed         uint64
	cpuProfile   string
	memProfile   string
	timeout      time.Duration
}

func main() {
	if os.Getenv(childEnv) == "1" {
		if err := childMain(os.Args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "compaction child:", err)
			os.Exit(1)
		}
		return
	}
	benchkit.Main("compaction", run)
}

var codecs = map[string]batch.Codec{"none": batch.CodecNone, "gzip": batch.CodecGzip, "snappy": batch.CodecSnappy, "lz4": batch.CodecLZ4, "zstd": batch.CodecZstd}

// parseFlags reads args into options.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{size: 1 << 30, segmentBytes: 32 << 20, buffer: 16 << 20}
	fs := flag.NewFlagSet("compaction", flag.ContinueOnError)
	fs.SetOutput(stderr)
	benchkit.BytesVar(fs, &o.size, "size", "bytes of record batches to write before compacting (KiB, MiB, GiB suffixes)")
	fs.IntVar(&o.keys, "keys", 100_000, "distinct record keys; each record updates one picked uniformly at random")
	fs.IntVar(&o.valueMin, "value-min", 100, "smallest value length in bytes (each key has a fixed length in [min, max])")
	fs.IntVar(&o.valueMax, "value-max", 1000, "largest value length in bytes")
	fs.IntVar(&o.batchRecords, "batch-records", 64, "records per batch")
	fs.StringVar(&o.codec, "codec", "lz4", "batch compression: none, gzip, snappy, lz4, zstd")
	benchkit.BytesVar(fs, &o.segmentBytes, "segment-bytes", "the topic's segment.bytes (the agent's default: 32MiB)")
	benchkit.BytesVar(fs, &o.buffer, "buffer", "the cleaner's key map budget, CleanerBufferBytes (the agent's default: 16MiB)")
	fs.StringVar(&o.dir, "dir", "", "parent `dir` of the temporary data directory (default: system temp); it needs room for -size plus a little")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this `file`")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary data directory")
	fs.BoolVar(&o.dropCaches, "drop-caches", true, "drop the page cache (needs root) before the cold read and before the cleaner")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated keys and values")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the cleaner child's RunCleaner to `file`")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile of the cleaner child after RunCleaner to `file` (go tool pprof -sample_index=alloc_space)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long")
	if err := benchkit.ParseFlags(fs, args); err != nil {
		return o, err
	}
	if _, ok := codecs[o.codec]; !ok {
		return o, fmt.Errorf("-codec %q: allowed: none, gzip, snappy, lz4, zstd", o.codec)
	}
	if o.size < 1 || o.keys < 1 || o.batchRecords < 1 || o.valueMin < 0 || o.valueMax < o.valueMin || o.segmentBytes < 1024 {
		return o, errors.New("-size, -keys and -batch-records must be positive, -value-max at least -value-min, -segment-bytes at least 1KiB")
	}
	if o.valueMax > 1<<20 {
		return o, errors.New("-value-max: at most 1MiB")
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
	work, removeWork, err := benchkit.WorkDir(o.dir, "samsa-compaction-", o.keep)
	if err != nil {
		return err
	}
	defer removeWork()
	logf := benchkit.Logf(stderr)
	rep := &report{Meta: collectMeta(args, work), Options: o.summary()}
	rep.Shape = shape{Keys: o.keys, ValueMin: o.valueMin, ValueMax: o.valueMax, BatchRecords: o.batchRecords,
		Codec: o.codec, SegmentBytes: o.segmentBytes, Seed: o.seed}
	logf("generate: %s of %s batches over %d keys in %s", benchkit.FormatBytes(o.size), o.codec, o.keys, work)
	activeBase, err := writeLog(work, o, &rep.Shape, stderr, logf)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	pdir := partitionDir(work)
	if rep.Before, err = scanLog(pdir, activeBase, false); err != nil {
		return fmt.Errorf("scan before: %w", err)
	}
	logf("generate: %d records, %d batches, %.1f MiB in %d segments, %.1f s", rep.Shape.Records, rep.Shape.Batches,
		float64(rep.Before.Bytes)/(1<<20), rep.Before.Segments, rep.Shape.Seconds)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := measureReads(o, pdir, activeBase, rep, logf); err != nil {
		return err
	}
	if rep.ReadCold != nil {
		if _, err := dropCaches(); err != nil {
			return fmt.Errorf("drop caches: %w", err)
		}
		rep.CleanerCold = true
	}
	logf("clean: RunCleaner in a child process (key map %s, page cache %s)", benchkit.FormatBytes(o.buffer), map[bool]string{true: "dropped", false: "warm"}[rep.CleanerCold])
	if m, err := benchkit.ReadProcMemory(os.Getpid()); err == nil {
		rep.ParentPeakRSS = benchkit.MiB(m.HWM)
	}
	if rep.Cleaner, err = runChild(ctx, o, work, stderr); err != nil {
		return err
	}
	rep.Cleaner.MBPerSec = float64(rep.Before.SealedBytes) / rep.Cleaner.Seconds / 1e6
	logf("clean: %.2f s, peak RSS %.1f MiB", rep.Cleaner.Seconds, rep.Cleaner.PeakRSS)
	if rep.After, err = scanLog(pdir, activeBase, true); err != nil {
		return fmt.Errorf("scan after: %w", err)
	}
	rep.RemovedRecords = rep.Before.SealedRecords - rep.After.SealedRecords
	rep.SealedEnd = activeBase
	if rep.FirstDirty, err = readFirstDirty(pdir); err != nil {
		return err
	}
	rep.Meta.End()
	rep.writeMarkdown(stdout)
	if o.jsonPath != "" {
		if err := benchkit.WriteJSON(o.jsonPath, rep); err != nil {
			return err
		}
		logf("wrote %s", o.jsonPath)
	}
	return nil
}

// writeLog creates the compacted topic in a store in dir and fills it; it returns the base
// offset of the active segment.
func writeLog(dir string, o options, sh *shape, stderr io.Writer, logf func(string, ...any)) (int64, error) {
	st, err := commitlog.Open(commitlog.Options{
		Dir: dir, Fsync: commitlog.FsyncNever,
		Logger:         slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		CleanerBackoff: 24 * time.Hour, RetentionCheckInterval: 24 * time.Hour,
	})
	if err != nil {
		return 0, err
	}
	_, err = st.CreateTopic(topicName, 1, map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  strconv.FormatInt(o.segmentBytes, 10),
	}, false)
	if err != nil {
		st.Close()
		return 0, err
	}
	activeBase, err := generate(st, sh, codecs[o.codec], o.size, logf)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return activeBase, err
}

// measureReads times cat-like reads of the sealed segment files: cold (after dropping the
// page cache, when allowed) and warm.
func measureReads(o options, pdir string, activeBase int64, rep *report, logf func(string, ...any)) error {
	segs, err := listSegments(pdir)
	if err != nil {
		return err
	}
	segs = sealed(segs, activeBase)
	if o.dropCaches {
		if _, err := dropCaches(); err != nil {
			logf("cannot drop the page cache (%v): every read below is warm", err)
			rep.CacheNote = "the page cache could not be dropped (" + err.Error() + "): all reads warm"
		} else {
			r, err := rawRead(segs, true)
			if err != nil {
				return err
			}
			rep.ReadCold = &r
			logf("read: cold %.0f MB/s", r.MBPerSec)
		}
	} else {
		rep.CacheNote = "-drop-caches=false: all reads warm"
	}
	r, err := rawRead(segs, false)
	if err != nil {
		return err
	}
	rep.ReadWarm = r
	logf("read: warm %.0f MB/s", r.MBPerSec)
	return nil
}

func (o options) summary() map[string]any {
	return map[string]any{
		"size": benchkit.FormatBytes(o.size), "keys": o.keys, "value_min": o.valueMin, "value_max": o.valueMax,
		"batch_records": o.batchRecords, "codec": o.codec, "segment_bytes": benchkit.FormatBytes(o.segmentBytes),
		"buffer": benchkit.FormatBytes(o.buffer), "drop_caches": o.dropCaches, "seed": o.seed,
	}
}
