package cloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// rateParams are the parameters of /stats/rate.
var rateParams = []string{"topic", "partition", "since", "until", "bucket", "key", "key-base64", "max-lateness"}

// RateAnswer is the JSON answer of GET /stats/rate (see the Server documentation).
type RateAnswer struct {
	Topic        string    `json:"topic"`
	Partitions   []int32   `json:"partitions"`
	Since        time.Time `json:"since"`
	Until        time.Time `json:"until"`
	Bucket       string    `json:"bucket"`
	BucketMs     int64     `json:"bucket_ms"`
	Counts       []int64   `json:"counts"`
	Records      int64     `json:"records"`
	BytesFetched int64     `json:"bytes_fetched"`
	Segments     int64     `json:"segments"`
	ElapsedMs    int64     `json:"elapsed_ms"`
}

// rateQuery is a checked /stats/rate request.
type rateQuery struct {
	opts     QueryOptions
	start    int64 // first bucket's start, ms
	bucketMs int64
	n        int64 // buckets
}

// rateOptions reads and checks the parameters of /stats/rate.
func (s *Server) rateOptions(r *http.Request) (*rateQuery, error) {
	v := r.URL.Query()
	if err := checkParams(v, rateParams); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if _, ok := param(v, "since"); !ok {
		return nil, badRequest("since is required (e.g. since=1h or since=2026-03-01T12:00:00Z)")
	}
	opts, err := ParseQueryParams(v, now)
	if err != nil {
		return nil, err
	}
	if opts.Until.IsZero() {
		opts.Until = now
	}
	bucket, bucketArg := time.Minute, "1m"
	if b, ok := param(v, "bucket"); ok {
		bucketArg = b
		if bucket, err = ParseDuration(b); err != nil || bucket < time.Second || bucket%time.Millisecond != 0 {
			return nil, badRequest("bucket %q: want a duration of whole milliseconds, at least 1s (e.g. 1m, 5m, 1h)", b)
		}
	}
	if !opts.Since.Before(opts.Until) {
		return nil, badRequest("since %s is not before until %s", opts.Since.UTC().Format(time.RFC3339Nano),
			opts.Until.UTC().Format(time.RFC3339Nano))
	}
	rq := &rateQuery{bucketMs: bucket.Milliseconds()}
	rq.start = floorDiv(opts.Since.UnixMilli(), rq.bucketMs) * rq.bucketMs
	end := floorDiv(ceilMillis(opts.Until)+rq.bucketMs-1, rq.bucketMs) * rq.bucketMs
	rq.n = (end - rq.start) / rq.bucketMs
	if rq.n > int64(s.cfg.MaxRateBuckets) {
		return nil, &apiError{http.StatusBadRequest, "too_large", fmt.Errorf(
			"bucket %q: since and until span %d buckets, at most %d are allowed: choose a larger bucket or a shorter range",
			bucketArg, rq.n, s.cfg.MaxRateBuckets)}
	}
	opts.Since, opts.Until = time.UnixMilli(rq.start).UTC(), time.UnixMilli(end).UTC()
	opts.Parallel, opts.ChunkSize, opts.Decoders = s.cfg.Parallel, s.cfg.ChunkSize, s.cfg.Decoders
	rq.opts = opts
	return rq, nil
}

// floorDiv divides rounding toward minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// handleRate is GET /stats/rate.
func (s *Server) handleRate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rq, err := s.rateOptions(r)
	if err != nil {
		writeError(w, classifyError(err))
		return
	}
	log := s.cfg.Logger.With("path", r.URL.Path, "query", r.URL.RawQuery, "remote", r.RemoteAddr)
	q, err := s.a.NewQuery(rq.opts)
	if err != nil {
		writeError(w, classifyError(err))
		return
	}
	if err := s.acquire(r.Context()); err != nil {
		s.answerFailure(w, log, err, nil, start)
		return
	}
	defer func() { <-s.slots }()
	counts := make([]int64, rq.n)
	sink := SinkFunc(func(rec *Record) error {
		if i := (rec.Timestamp - rq.start) / rq.bucketMs; i >= 0 && i < rq.n { // always: the query filters
			counts[i]++
		}
		return nil
	})
	bound := func() error {
		if est := q.Stats().EstimatedBytes; est > s.cfg.MaxRateBytes {
			return &apiError{http.StatusBadRequest, "too_large", fmt.Errorf(
				"since %s: counting needs a scan of up to %s of archived segments, more than the %s this server scans for a chart: "+
					"choose a later since, a partition, or max-lateness (without it each partition is read from since to its end)",
				rq.opts.Since.Format(time.RFC3339), FormatBytes(est), FormatBytes(s.cfg.MaxRateBytes))}
		}
		return nil
	}
	err = q.run(r.Context(), sink, bound)
	stats := q.Stats()
	if err != nil && !errors.Is(err, ErrEmptyRange) {
		s.answerFailure(w, log, err, &stats, start)
		return
	}
	logQuery(log, http.StatusOK, stats, start, nil)
	ans := RateAnswer{Topic: rq.opts.Topic, Partitions: rq.opts.Partitions, Since: rq.opts.Since, Until: rq.opts.Until,
		Bucket: time.Duration(rq.bucketMs * int64(time.Millisecond)).String(), BucketMs: rq.bucketMs, Counts: counts,
		Records: stats.Records, BytesFetched: stats.BytesFetched, Segments: stats.Segments,
		ElapsedMs: time.Since(start).Milliseconds()}
	slices.Sort(ans.Partitions)
	body, err := json.Marshal(ans)
	if err != nil {
		writeError(w, classifyError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(body, '\n'))
}
