package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/samsa-io/samsa/cloud"
)

const querySynopsis = `query --bucket B [--endpoint URL] [--prefix P] --topic T [--partition N[,N...]]
         [--from-offset N] [--to-offset N] [--since TIME] [--until TIME] [--max-lateness D]
         [--key K | --key-base64 B] [--limit N] [--format jsonl|csv|raw] [--skip-corrupt]
         [--stats-json FILE] [--quiet]

Offsets and times are half-open ranges: [--from-offset, --to-offset) and [--since, --until).
TIME is RFC 3339 (2026-03-01T12:00:00Z), a date (2026-03-01, midnight UTC), "now", or a
duration before now (2h, 90m, 7d, 1w). Partitions are printed one after another, each in
offset order.

Timestamps need not grow with offsets, so --until alone cannot stop reading early: each
partition is read to its end (or --to-offset) so that no record is missed. --max-lateness D
asserts that no record is older by more than D than the newest one before it in its partition,
which lets the query stop once timestamps pass --until plus D. --since needs no assumption.

Formats: jsonl, one object per record: {"topic","partition","offset","timestamp" (RFC 3339),
"key","value","headers":{...}}, where a key, value or header value that is not UTF-8 appears
base64-encoded as key_base64, value_base64 or in headers_base64 instead; csv, a header row
and the same fields; raw, each value's bytes as stored followed by a newline.

Progress goes to stderr (a bar on a terminal), then a summary line with the bytes fetched.
A corrupt object or batch stops the query with its object key and offset; --skip-corrupt
reports it on stderr and carries on.`

// queryFlags are the flags of "samsa-cloud query" beyond cloud.QueryParams.
type queryFlags struct {
	store              *storeFlags
	format             string
	skipCorrupt, quiet bool
	statsJSON          string
	parallel           int
}

// queryParamUsage describes the flags that cloud.ParseQueryParams reads.
var queryParamUsage = map[string]string{
	"topic":        "topic to read (required)",
	"partition":    "partitions to read, comma-separated (default: all)",
	"from-offset":  "first offset to print (inclusive)",
	"to-offset":    "offset to stop before (exclusive)",
	"since":        "earliest timestamp to print (inclusive): RFC 3339, a date, or a duration before now (2h, 7d)",
	"until":        "timestamp to stop before (exclusive), like --since",
	"max-lateness": "assume no record is older by more than this than the newest before it (e.g. 5m), so --until can stop early",
	"key":          "print only records with this key (UTF-8)",
	"key-base64":   "print only records with this key (base64, for binary keys)",
	"limit":        "stop after this many records (0: no limit)",
}

func newQueryFlags(stdout io.Writer) (*queryFlags, *cmdFlags) {
	fs := newFlagSet("query", querySynopsis, stdout)
	f := &queryFlags{store: addStoreFlags(fs)}
	for _, name := range cloud.QueryParams {
		fs.String(name, "", queryParamUsage[name])
	}
	fs.StringVar(&f.format, "format", cloud.FormatJSONL, "output format: jsonl, csv or raw")
	fs.BoolVar(&f.skipCorrupt, "skip-corrupt", false, "report corrupt objects and batches on stderr and carry on")
	fs.StringVar(&f.statsJSON, "stats-json", "", "write the query's statistics (bytes fetched, records, segments) as JSON to this file")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress and no summary line on stderr")
	fs.IntVar(&f.parallel, "parallel", cloud.DefaultParallel, "ranged GETs in flight (1 to 64)")
	return f, fs
}

// options turns the flags into query options with cloud.ParseQueryParams, which the HTTP
// service shares; errors are usage errors.
func (f *queryFlags) options(now time.Time, fs *flag.FlagSet) (cloud.QueryOptions, error) {
	params := url.Values{}
	fs.Visit(func(fl *flag.Flag) {
		if slices.Contains(cloud.QueryParams, fl.Name) {
			params.Set(fl.Name, fl.Value.String())
		}
	})
	o, err := cloud.ParseQueryParams(params, now)
	if err != nil {
		return o, usagef("query", "%v", err)
	}
	if f.parallel < 1 || f.parallel > 64 {
		return o, usagef("query", "--parallel %d: want 1 to 64", f.parallel)
	}
	o.Parallel, o.SkipCorrupt = f.parallel, f.skipCorrupt
	return o, nil
}

// runQuery is "samsa-cloud query".
func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, fs := newQueryFlags(stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opts, err := f.options(time.Now(), fs.FlagSet)
	if err != nil {
		return err
	}
	w, err := cloud.NewWriter(stdout, f.format)
	if err != nil {
		return usagef("query", "--format %q: want jsonl, csv or raw", f.format)
	}
	a, err := f.store.open(ctx, "query")
	if err != nil {
		return err
	}
	opts.OnCorrupt = func(ce *cloud.CorruptError) {
		fmt.Fprintf(stderr, "samsa-cloud: skipped %s\n", oneLine(ce.Error()))
	}
	q, err := a.NewQuery(opts)
	if err != nil {
		return err
	}
	var sink cloud.Sink = w
	if out, ok := stdout.(*os.File); ok && cloud.IsTerminal(out) {
		sink = cloud.SinkFunc(func(r *cloud.Record) error { // show records as they come
			if err := w.WriteRecord(r); err != nil {
				return err
			}
			return w.Flush()
		})
	}
	var progress *cloud.Progress
	if !f.quiet {
		tty := false
		if errFile, ok := stderr.(*os.File); ok {
			tty = cloud.IsTerminal(errFile)
		}
		progress = cloud.StartProgress(stderr, tty, q.Stats)
	}
	start := time.Now()
	err = q.Run(ctx, sink)
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}
	if progress != nil {
		progress.Stop(err == nil)
	}
	if f.statsJSON != "" {
		if serr := writeStats(f.statsJSON, q.Stats(), time.Since(start), err); err == nil && serr != nil {
			err = serr
		}
	}
	if errors.Is(err, cloud.ErrBadConfig) {
		return usagef("query", "%v", err)
	}
	return err
}

// statsFile is what --stats-json writes.
type statsFile struct {
	cloud.Stats
	ElapsedMs int64  `json:"elapsed_ms"`
	Error     string `json:"error,omitempty"`
}

// writeStats writes the query statistics to path.
func writeStats(path string, st cloud.Stats, elapsed time.Duration, qerr error) error {
	sf := statsFile{Stats: st, ElapsedMs: elapsed.Milliseconds()}
	if qerr != nil {
		sf.Error = oneLine(qerr.Error())
	}
	data, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode statistics: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write --stats-json: %w", err)
	}
	return nil
}
