package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/samsa-io/samsa/cloud"
)

func init() {
	commands["serve"] = command{run: runServe, summary: "serve the queries over HTTP, with a page charting records per minute"}
}

const serveSynopsis = `serve --bucket B [--endpoint URL] [--prefix P] [--listen ADDR] [--max-queries N]
         [--queue-wait D] [--parallel N] [--decoders N] [--max-rate-bytes N] [--quiet]

Serves the archive over HTTP until interrupted (SIGINT or SIGTERM: running requests get
--shutdown-wait to finish):

  GET /             a page listing the topics, with a chart of records per time bucket
  GET /topics       the catalog as JSON (as "ls --format json"); ?topic=T for one topic
  GET /query        records as "query" prints them, streamed: topic, partition, from-offset,
                    to-offset, since, until, max-lateness, key, key-base64, limit, format
                    (jsonl, csv, raw), skip-corrupt=true. e.g. /query?topic=t&since=2h
  GET /stats/rate   {"counts":[...]} records per bucket: topic, since, until, bucket (1m),
                    partition, key, key-base64, max-lateness

Errors come back as {"error","kind"} with 400 (bad or unknown parameter), 404 (unknown topic),
416 (empty range, or nothing archived in it), 502 (object store failure or corrupt data),
503 (--max-queries busy for --queue-wait). An error after a /query began streaming ends a
jsonl answer with a line {"error":...} and the Samsa-Error trailer, and aborts a csv or raw
one. One log line per query goes to stderr.

The service has no authentication: it listens on 127.0.0.1 unless told otherwise; put it
behind a proxy that authenticates before listening elsewhere.`

// runServe is "samsa-cloud serve".
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveSynopsis, stdout)
	store := addStoreFlags(fs)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	var cfg cloud.ServerConfig
	fs.IntVar(&cfg.MaxQueries, "max-queries", cloud.DefaultMaxQueries, "queries (/query, /stats/rate) that run at once")
	fs.DurationVar(&cfg.QueueWait, "queue-wait", cloud.DefaultQueueWait, "how long a query waits for a slot before 503")
	fs.IntVar(&cfg.Parallel, "parallel", cloud.DefaultParallel, "ranged GETs in flight per query (1 to 64)")
	fs.IntVar(&cfg.Decoders, "decoders", runtime.GOMAXPROCS(0), "batches decoded at once per query (1: in the query's goroutine only)")
	fs.Int64Var(&cfg.MaxRateBytes, "max-rate-bytes", cloud.DefaultMaxRateBytes, "most segment bytes one /stats/rate request may scan")
	shutdownWait := fs.Duration("shutdown-wait", 10*time.Second, "on SIGINT or SIGTERM, how long running requests may take to finish")
	quiet := fs.Bool("quiet", false, "no log lines (only errors that stop the server)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case cfg.MaxQueries < 1:
		return usagef("serve", "--max-queries %d: want at least 1", cfg.MaxQueries)
	case cfg.Parallel < 1 || cfg.Parallel > 64:
		return usagef("serve", "--parallel %d: want 1 to 64", cfg.Parallel)
	case cfg.Decoders < 1:
		return usagef("serve", "--decoders %d: want at least 1", cfg.Decoders)
	case cfg.MaxRateBytes < 1:
		return usagef("serve", "--max-rate-bytes %d: want at least 1", cfg.MaxRateBytes)
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = -1 // no wait
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	if *quiet {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a, err := store.open(ctx, "serve")
	if err != nil {
		return err
	}
	handler, err := cloud.NewServer(a, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	fmt.Fprintf(stderr, "samsa-cloud: serving %s on http://%s/\n", a.Location(), ln.Addr())
	return serve(ctx, ln, handler, cfg.Logger, *shutdownWait)
}

// serve runs an HTTP server on ln until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, shutdownWait time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second, // no WriteTimeout: answers stream for as long as they take
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		srv.Close() // ends the requests still running: their contexts end, so do their queries
		err = nil
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
