package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// options are the command-line flags.
type options struct {
	profile    string
	rate       int64 // bytes of record values per second
	duration   time.Duration
	recordSize int
	idleWait   time.Duration
	samsaBin   string
	sizes      string
	dir        string
	jsonPath   string
	keep       bool
}

func main() { benchkit.Main("edge", run) }

// run parses args, runs the benchmark and prints the report to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(o.profile) {
		o.profile = filepath.Join(root, o.profile)
	}
	if !filepath.IsAbs(o.sizes) {
		o.sizes = filepath.Join(root, o.sizes)
	}
	work, removeWork, err := benchkit.WorkDir(o.dir, "samsa-edge-", o.keep)
	if err != nil {
		return err
	}
	defer removeWork()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "edge: "+format+"\n", a...) }
	bin := o.samsaBin
	if bin == "" {
		logf("building ./cmd/samsa (-trimpath -ldflags '-s -w', CGO_ENABLED=0)")
		if bin, err = buildSamsa(ctx, work); err != nil {
			return err
		}
	}
	res, err := measure(ctx, o, bin, work, logf)
	if err != nil {
		return err
	}
	res.Sizes, res.SizesNote = readSizes(o.sizes)
	writeReport(stdout, o, res)
	if o.jsonPath != "" {
		if err := benchkit.WriteJSON(o.jsonPath, res); err != nil {
			return err
		}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.profile, "profile", "firmware-configs/industrial-gateway-256mb.yaml", "device profile `FILE` (relative to the repository root)")
	rate := fs.String("rate", "5MB", "produce `RATE` in bytes of record values per second (suffixes kB, MB = 10^3, 10^6)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long the load runs")
	fs.IntVar(&o.recordSize, "record-size", 1000, "record value `BYTES`")
	fs.DurationVar(&o.idleWait, "idle-wait", 5*time.Second, "wait before measuring idle RSS (and again after the load)")
	fs.StringVar(&o.samsaBin, "samsa-bin", "", "measure this samsa `BINARY` instead of building ./cmd/samsa")
	fs.StringVar(&o.sizes, "sizes", "dist/sizes.tsv", "binary size table `FILE` written by ./cross-build.sh")
	fs.StringVar(&o.dir, "dir", "", "parent `DIR` of the temporary data directory (default $TMPDIR)")
	fs.StringVar(&o.jsonPath, "json", "", "also write every number as JSON to `FILE`")
	fs.BoolVar(&o.keep, "keep", false, "keep the data directory")
	if err := benchkit.ParseFlags(fs, args); err != nil {
		return o, err
	}
	var err error
	if o.rate, err = parseRate(*rate); err != nil {
		return o, fmt.Errorf("-rate: %w", err)
	}
	if o.recordSize < 1 || o.duration <= 0 || o.idleWait < 0 {
		return o, errors.New("-record-size and -duration must be positive, -idle-wait not negative")
	}
	return o, nil
}

// parseRate parses "5MB", "500kB" or a plain number of bytes.
func parseRate(s string) (int64, error) {
	mult := 1.0
	num := s
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"MB", 1e6}, {"kB", 1e3}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = v, u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("invalid rate %q (want e.g. 5MB, 500kB)", s)
	}
	return int64(f * mult), nil
}
