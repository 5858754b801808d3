package cloud

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The HTTP service of "samsa-cloud serve": the queries of the command line over HTTP, and a
// small page. Every endpoint answers GET only.
//
//	GET /             the page (web/index.html, app.js, style.css, embedded; no external resources)
//	GET /topics       the catalog as JSON, exactly what "samsa-cloud ls --format json" prints;
//	                  ?topic=T for one topic
//	GET /query        records, streamed: the parameters of ParseQueryParams (topic, partition,
//	                  from-offset, to-offset, since, until, max-lateness, key, key-base64, limit)
//	                  plus format=jsonl|csv|raw (default jsonl) and skip-corrupt=true
//	GET /stats/rate   records per time bucket: topic, since (required), until (default now),
//	                  bucket (default 1m), partition, key, key-base64, max-lateness
//
// # Status codes
//
// A request is checked completely, and the query planned (manifests read and pruned), before
// the status line goes out, so these come with a JSON body {"error": "<one line>",
// "kind": "<kind>"}:
//
//	400 bad_request    a parameter is malformed or unknown; the message names it and its value
//	400 too_large      /stats/rate: too many buckets, or more than MaxRateBytes to scan
//	404 unknown_topic  no such topic (or partition) in the archive
//	405                another method than GET
//	416 empty_range    /query: the range is empty in itself (since >= until, to-offset <=
//	                   from-offset) or nothing is archived in it. 416 rather than 400 so that a
//	                   client can tell "no data there" from a malformed request, and rather than
//	                   200 with no records, as the command line fails on it too.
//	502 store          the object store failed or refused (network, credentials, bucket)
//	502 corrupt        corrupt archive data found before the first record went out
//	503 busy           MaxQueries queries are running and no slot came free within QueueWait
//
// /stats/rate answers a range with nothing archived with 200 and zero counts: zero is the
// exact answer for a chart.
//
// # Streaming /query
//
// Records go out as they are decoded (chunked transfer encoding): buffered, and flushed every
// FlushInterval and at the end, so a slow, sparse query still shows its records soon. Each
// response declares the trailers Samsa-Records, Samsa-Bytes-Fetched, Samsa-Corrupt-Skipped
// (set on success) and Samsa-Error (set on failure). An error after the status line (corrupt
// data without skip-corrupt, a store failure in mid-scan) is signalled
//
//   - in jsonl: by a last line {"error": "<one line>", "kind": "corrupt"|"store"} (a record
//     line always has "topic", an error line never does) and the Samsa-Error trailer; the
//     response ends normally;
//   - in csv and raw, which have no room for it: by aborting the response, so that every
//     client sees an incomplete chunked body (curl: "transfer closed with outstanding read
//     data remaining", exit 18; Go: unexpected EOF) and never a silently cut file. The error
//     is logged.
//
// With skip-corrupt=true corruptions are stepped over as with --skip-corrupt; the trailer
// Samsa-Corrupt-Skipped counts them and the log names each.
//
// When the client goes away the request's context ends and so does the query, including its
// ranged GETs in flight. At most MaxQueries queries (/query and /stats/rate together) run at
// once; others wait up to QueueWait for a slot.
//
// # /stats/rate
//
// The answer is exact: it runs the query [since, until) with a sink that counts records per
// bucket, so it reads what /query would (by default each selected partition from since to its
// end, see QueryOptions.MaxLateness). The work is bounded: at most MaxRateBuckets buckets,
// and at most MaxRateBytes of segments to read as the manifests estimate it (checked before
// the first ranged GET). Buckets are aligned to multiples of the bucket since the epoch
// (since rounded down, until rounded up):
//
//	{"topic":"t","partitions":[0,1],"since":"2026-03-01T12:00:00Z","until":"2026-03-01T13:00:00Z",
//	 "bucket":"1m0s","bucket_ms":60000,"counts":[12,0,7,...],"records":19,
//	 "bytes_fetched":123456,"segments":3,"elapsed_ms":41}
//
// counts[i] is the number of records with a timestamp in [since+i*bucket, since+(i+1)*bucket);
// "partitions" is null for all partitions.

// Defaults of ServerConfig.
const (
	DefaultMaxQueries     = 4
	DefaultQueueWait      = 10 * time.Second
	DefaultFlushInterval  = 250 * time.Millisecond
	DefaultMaxRateBuckets = 10080 // a week of minutes
	DefaultMaxRateBytes   = 1 << 30
)

// ServerConfig configures NewServer; zero values take the defaults.
type ServerConfig struct {
	// MaxQueries bounds the /query and /stats/rate requests that run at once.
	// Default DefaultMaxQueries.
	MaxQueries int
	// QueueWait is how long a query waits for a slot before 503. Default DefaultQueueWait;
	// negative: no wait.
	QueueWait time.Duration
	// FlushInterval is how often a streaming /query sends what it has buffered.
	// Default DefaultFlushInterval.
	FlushInterval time.Duration
	// Parallel and ChunkSize are those of every query (QueryOptions). Defaults
	// DefaultParallel and DefaultChunkSize.
	Parallel  int
	ChunkSize int64
	// Decoders is QueryOptions.Decoders of every query. Default runtime.GOMAXPROCS(0).
	Decoders int
	// MaxRateBuckets bounds the buckets of one /stats/rate answer. Default DefaultMaxRateBuckets.
	MaxRateBuckets int
	// MaxRateBytes bounds the segment bytes one /stats/rate request may read, as the
	// manifests estimate it. Default DefaultMaxRateBytes.
	MaxRateBytes int64
	// Logger gets a line per query (and per skipped corruption). Default: none.
	Logger *slog.Logger
	// Now is the clock of relative times ("2h") and of a missing until. Default time.Now.
	Now func() time.Time
}

func (c *ServerConfig) validate() error {
	if c.MaxQueries < 0 || c.FlushInterval < 0 || c.Parallel < 0 || c.ChunkSize < 0 || c.Decoders < 0 ||
		c.MaxRateBuckets < 0 || c.MaxRateBytes < 0 {
		return fmt.Errorf("%w: server config %+v has a negative value", ErrBadConfig, *c)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxQueries, DefaultMaxQueries)
	def(&c.MaxRateBuckets, DefaultMaxRateBuckets)
	if c.QueueWait == 0 {
		c.QueueWait = DefaultQueueWait
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.MaxRateBytes == 0 {
		c.MaxRateBytes = DefaultMaxRateBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

//go:embed web
var webFiles embed.FS

// Server is the HTTP service over an archive; it is an http.Handler.
type Server struct {
	a     *Archive
	cfg   ServerConfig
	slots chan struct{}
	mux   *http.ServeMux
}

// NewServer returns the HTTP service over a, documented above.
func NewServer(a *Archive, cfg ServerConfig) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{a: a, cfg: cfg, slots: make(chan struct{}, cfg.MaxQueries), mux: http.NewServeMux()}
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(web)
	s.mux.Handle("GET /", pageHeaders(files))
	s.mux.HandleFunc("GET /topics", s.handleTopics)
	s.mux.HandleFunc("GET /query", getOnly(s.handleQuery))
	s.mux.HandleFunc("GET /stats/rate", getOnly(s.handleRate))
	return s, nil
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// pageHeaders adds the headers of the page's files: nothing outside this server may load.
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy",
			"default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// getOnly refuses HEAD, which a "GET" pattern also matches: it would run a whole query.
func getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

// apiError is an error answer: a status, a kind and a message.
type apiError struct {
	status int
	kind   string
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, kind: "bad_request", err: fmt.Errorf(format, args...)}
}

// classifyError maps an error of this package to its answer.
func classifyError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	switch {
	case errors.Is(err, ErrBadConfig), errors.Is(err, ErrBadTime):
		return &apiError{http.StatusBadRequest, "bad_request", err}
	case errors.Is(err, ErrUnknownTopic):
		return &apiError{http.StatusNotFound, "unknown_topic", err}
	case errors.Is(err, ErrEmptyRange):
		return &apiError{http.StatusRequestedRangeNotSatisfiable, "empty_range", err}
	case errors.Is(err, ErrCorrupt):
		return &apiError{http.StatusBadGateway, "corrupt", err}
	}
	return &apiError{http.StatusBadGateway, "store", err}
}

// writeError answers with an error status and {"error", "kind"}.
func writeError(w http.ResponseWriter, ae *apiError) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
		Kind  string `json:"kind"`
	}{oneLine(ae.err.Error()), ae.kind})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if ae.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(ae.status)
	w.Write(append(body, '\n'))
}

// checkParams refuses parameters not in known (an underscore may stand for a dash), so that
// a misspelt filter is an error rather than a query without it.
func checkParams(v url.Values, known ...[]string) error {
	for name := range v {
		canon := strings.ReplaceAll(name, "_", "-")
		if !slices.ContainsFunc(known, func(k []string) bool { return slices.Contains(k, canon) }) {
			var all []string
			for _, k := range known {
				all = append(all, k...)
			}
			return badRequest("unknown parameter %q (known: %s)", name, strings.Join(all, ", "))
		}
	}
	return nil
}

// param returns the last value of a parameter by its dashed or underscored name.
func param(v url.Values, name string) (string, bool) {
	for _, n := range []string{name, strings.ReplaceAll(name, "-", "_")} {
		if vs, ok := v[n]; ok && len(vs) > 0 {
			return vs[len(vs)-1], true
		}
	}
	return "", false
}

// acquire takes a query slot, waiting up to QueueWait; release with <-s.slots.
func (s *Server) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	busy := &apiError{http.StatusServiceUnavailable, "busy",
		fmt.Errorf("%d queries are running, the most this server runs at once; retry later", s.cfg.MaxQueries)}
	if s.cfg.QueueWait < 0 {
		return busy
	}
	t := time.NewTimer(s.cfg.QueueWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-t.C:
		return busy
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handleTopics is GET /topics.
func (s *Server) handleTopics(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := checkParams(v, []string{"topic"}); err != nil {
		writeError(w, classifyError(err))
		return
	}
	topic, _ := param(v, "topic")
	topics, err := s.a.Catalog(r.Context(), topic)
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, classifyError(err))
		}
		return
	}
	var buf bytes.Buffer
	if err := WriteCatalogJSON(&buf, topics); err != nil {
		writeError(w, classifyError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// queryParams are the parameters of /query.
var queryParams = append(slices.Clone(QueryParams), "format", "skip-corrupt")

// queryOptions reads the parameters of /query.
func (s *Server) queryOptions(v url.Values) (QueryOptions, string, error) {
	if err := checkParams(v, queryParams); err != nil {
		return QueryOptions{}, "", err
	}
	opts, err := ParseQueryParams(v, s.cfg.Now())
	if err != nil {
		return opts, "", err
	}
	format, ok := param(v, "format")
	if !ok || format == "" {
		format = FormatJSONL
	}
	if !slices.Contains(Formats, format) {
		return opts, "", badRequest("format %q: want %s", format, strings.Join(Formats, ", "))
	}
	if sc, ok := param(v, "skip-corrupt"); ok {
		if opts.SkipCorrupt, err = strconv.ParseBool(sc); err != nil {
			return opts, "", badRequest("skip-corrupt %q: want true or false", sc)
		}
	}
	opts.Parallel, opts.ChunkSize, opts.Decoders = s.cfg.Parallel, s.cfg.ChunkSize, s.cfg.Decoders
	return opts, format, nil
}

// contentTypes of the /query formats.
var contentTypes = map[string]string{
	FormatJSONL: "application/x-ndjson; charset=utf-8",
	FormatCSV:   "text/csv; charset=utf-8",
	FormatRaw:   "application/octet-stream",
}

// Trailers of /query.
const (
	TrailerError          = "Samsa-Error"
	TrailerRecords        = "Samsa-Records"
	TrailerBytesFetched   = "Samsa-Bytes-Fetched"
	TrailerCorruptSkipped = "Samsa-Corrupt-Skipped"
)

// handleQuery is GET /query.
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	opts, format, err := s.queryOptions(r.URL.Query())
	if err != nil {
		writeError(w, classifyError(err))
		return
	}
	log := s.cfg.Logger.With("path", r.URL.Path, "query", r.URL.RawQuery, "remote", r.RemoteAddr)
	opts.OnCorrupt = func(ce *CorruptError) { log.Warn("skipped corrupt data", "error", ce.Error()) }
	q, err := s.a.NewQuery(opts)
	if err != nil {
		writeError(w, classifyError(err))
		return
	}
	ctx := r.Context()
	if err := s.acquire(ctx); err != nil {
		s.answerFailure(w, log, err, nil, start)
		return
	}
	defer func() { <-s.slots }()
	st := newStream(w, format, s.cfg.FlushInterval)
	err = q.run(ctx, st, st.begin)
	st.end()
	if err == nil {
		err = st.flush()
	}
	stats := q.Stats()
	if !st.started {
		s.answerFailure(w, log, err, &stats, start)
		return
	}
	if err == nil {
		h := w.Header()
		h.Set(TrailerRecords, strconv.FormatInt(stats.Records, 10))
		h.Set(TrailerBytesFetched, strconv.FormatInt(stats.BytesFetched, 10))
		h.Set(TrailerCorruptSkipped, strconv.FormatInt(stats.CorruptSkipped, 10))
		logQuery(log, http.StatusOK, stats, start, nil)
		return
	}
	logQuery(log, http.StatusOK, stats, start, err)
	if ctx.Err() != nil || errors.As(err, new(clientGone)) {
		return
	}
	st.fail(classifyError(err)) // does not return for csv and raw
}

// answerFailure answers a query that failed before its status line went out.
func (s *Server) answerFailure(w http.ResponseWriter, log *slog.Logger, err error, stats *Stats, start time.Time) {
	var st Stats
	if stats != nil {
		st = *stats
	}
	if err == nil { // cannot happen: a query that succeeds has begun its answer
		err = errors.New("query ended without an answer")
	}
	ae := classifyError(err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		logQuery(log, 0, st, start, err) // the client went away: nobody to answer
		return
	}
	logQuery(log, ae.status, st, start, err)
	writeError(w, ae)
}

// logQuery logs the end of a query.
func logQuery(log *slog.Logger, status int, st Stats, start time.Time, err error) {
	attrs := []any{"status", status, "records", st.Records, "bytes_fetched", st.BytesFetched,
		"requests", st.Requests, "segments", st.Segments, "elapsed", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		log.Warn("query failed", append(attrs, "error", oneLine(err.Error()))...)
		return
	}
	log.Info("query", attrs...)
}

// clientGone wraps a failed write to the client.
type clientGone struct{ err error }

func (e clientGone) Error() string { return "write to client: " + e.err.Error() }
func (e clientGone) Unwrap() error { return e.err }

// stream is the Sink of a streaming /query: it begins the answer once the query is planned,
// encodes records into a buffer, and a ticker flushes them out every FlushInterval.
type stream struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	format   string
	interval time.Duration

	mu      sync.Mutex // guards rw, dirty and the ResponseWriter once the ticker runs
	rw      RecordWriter
	dirty   bool
	started bool
	stop    chan struct{}
	stopped sync.WaitGroup
}

func newStream(w http.ResponseWriter, format string, interval time.Duration) *stream {
	rw, _ := NewWriter(w, format) // format is checked
	return &stream{w: w, rc: http.NewResponseController(w), format: format, interval: interval, rw: rw}
}

// begin sends the status line and headers (the query is planned) and starts the ticker.
func (st *stream) begin() error {
	h := st.w.Header()
	h.Set("Content-Type", contentTypes[st.format])
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Trailer", strings.Join([]string{TrailerError, TrailerRecords, TrailerBytesFetched, TrailerCorruptSkipped}, ", "))
	st.w.WriteHeader(http.StatusOK)
	st.started = true
	if err := st.rc.Flush(); err != nil {
		return clientGone{err}
	}
	st.stop = make(chan struct{})
	st.stopped.Add(1)
	go st.tick()
	return nil
}

func (st *stream) tick() {
	defer st.stopped.Done()
	t := time.NewTicker(st.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			st.mu.Lock()
			if st.dirty {
				st.dirty = false
				if st.rw.Flush() == nil {
					st.rc.Flush()
				}
			}
			st.mu.Unlock()
		case <-st.stop:
			return
		}
	}
}

// end stops the ticker.
func (st *stream) end() {
	if st.stop != nil {
		close(st.stop)
		st.stopped.Wait()
		st.stop = nil
	}
}

// WriteRecord encodes a record into the buffer.
func (st *stream) WriteRecord(r *Record) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dirty = true
	if err := st.rw.WriteRecord(r); err != nil {
		return clientGone{err}
	}
	return nil
}

// takesLines reports whether the query's decoders may encode the records (jsonl).
func (st *stream) takesLines() bool { _, ok := st.rw.(*jsonlWriter); return ok }

// writeLines writes JSON lines the query's decoders encoded into the buffer.
func (st *stream) writeLines(b []byte) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dirty = true
	if err := st.rw.(*jsonlWriter).writeLines(b); err != nil {
		return clientGone{err}
	}
	return nil
}

// flush sends everything buffered (the ticker has stopped).
func (st *stream) flush() error {
	if !st.started {
		return nil
	}
	if err := st.rw.Flush(); err != nil {
		return clientGone{err}
	}
	return nil
}

// fail signals an error after the status line: jsonl gets an error line and the trailer;
// csv and raw are aborted, so that the client sees a broken body (see the server's
// documentation).
func (st *stream) fail(ae *apiError) {
	msg := oneLine(ae.err.Error())
	if st.format != FormatJSONL {
		if st.rw.Flush() == nil {
			st.rc.Flush() // what was decoded before goes out; then the body breaks off
		}
		panic(http.ErrAbortHandler)
	}
	line, _ := json.Marshal(struct {
		Error string `json:"error"`
		Kind  string `json:"kind"`
	}{msg, ae.kind})
	st.rw.Flush()
	st.w.Write(append(line, '\n'))
	st.w.Header().Set(TrailerError, msg)
}
