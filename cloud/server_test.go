package cloud_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/cloud"
)

// serverSpec: two partitions of 1500 records, a record every 10 s from 2026-01-01, every
// 37th stamped 15 minutes late, 8 KiB segments.
var serverSpec = archiveSpec{partitions: 2, perPartition: 1500, segmentBytes: 8192,
	base: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: 10 * time.Second, lateEvery: 37, late: 15 * time.Minute, seed: 3}

// serverNow is the server's clock in these tests, so that relative times ("2h") are fixed.
var serverNow = serverSpec.base.Add(5 * time.Hour)

// TestServer runs the HTTP service on segments a real agent uploaded to a real MinIO (the
// agent stopped) and checks every endpoint against the in-process query the command line
// runs, and against what was produced.
func TestServer(t *testing.T) {
	ar := startArchive(t, serverSpec)
	a := ar.open(t, ar.prefix)
	logs := &logRecorder{}
	srv, err := cloud.NewServer(a, cloud.ServerConfig{Now: func() time.Time { return serverNow },
		Logger: slog.New(logs), FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	t.Run("topics", func(t *testing.T) { testTopics(t, hs.URL, a, ar) })
	t.Run("query-equals-cli", func(t *testing.T) { testQueryEqualsCLI(t, hs.URL, a, ar) })
	t.Run("errors", func(t *testing.T) { testServerErrors(t, hs.URL, a, ar) })
	t.Run("rate", func(t *testing.T) { testRate(t, hs.URL, ar) })
	t.Run("page", func(t *testing.T) { testPage(t, hs.URL, ar) })
	t.Run("stream-cancel-busy", func(t *testing.T) { testStreamCancelBusy(t, ar) })
	t.Run("corrupt", func(t *testing.T) { testServerCorrupt(t, ar) })
}

// answer is an HTTP answer read to its end.
type answer struct {
	status          int
	header, trailer http.Header
	body            []byte
	readErr         error // the body ended badly (an aborted response)
}

func httpGet(t *testing.T, u string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, trailer: resp.Trailer, body: body, readErr: rerr}
}

// errorBody decodes an error answer.
func errorBody(t *testing.T, ans answer) (msg, kind string) {
	t.Helper()
	var e struct{ Error, Kind string }
	if err := json.Unmarshal(ans.body, &e); err != nil || e.Error == "" {
		t.Fatalf("error answer %d %q: %v", ans.status, ans.body, err)
	}
	if ans.header.Get("Content-Type") != "application/json" || bytes.Count(ans.body, []byte("\n")) != 1 {
		t.Errorf("error answer: %v %q", ans.header, ans.body)
	}
	return e.Error, e.Kind
}

func testTopics(t *testing.T, base string, a *cloud.Archive, ar *archive) {
	for _, topic := range []string{"", ar.topic} {
		topics, err := a.Catalog(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := cloud.WriteCatalogJSON(&want, topics); err != nil {
			t.Fatal(err)
		}
		u := base + "/topics"
		if topic != "" {
			u += "?topic=" + topic
		}
		ans := httpGet(t, u)
		if ans.status != http.StatusOK || ans.header.Get("Content-Type") != "application/json" || !bytes.Equal(ans.body, want.Bytes()) {
			t.Fatalf("GET %s: %d %v\n%s\nwant\n%s", u, ans.status, ans.header, ans.body, want.Bytes())
		}
		var cat struct {
			Topics []struct {
				Topic      string `json:"topic"`
				Partitions []json.RawMessage
			}
		}
		if err := json.Unmarshal(ans.body, &cat); err != nil || len(cat.Topics) != 1 || cat.Topics[0].Topic != ar.topic ||
			len(cat.Topics[0].Partitions) != int(serverSpec.partitions) {
			t.Fatalf("catalog %s: %v", ans.body, err)
		}
	}
}

// reference runs a query as "samsa-cloud query" does, in-process: the same parameter parser
// and writer.
func reference(t *testing.T, a *cloud.Archive, v url.Values) ([]byte, cloud.Stats, error) {
	t.Helper()
	opts, err := cloud.ParseQueryParams(v, serverNow)
	if err != nil {
		t.Fatal(err)
	}
	opts.SkipCorrupt = v.Get("skip-corrupt") == "true"
	format := v.Get("format")
	if format == "" {
		format = cloud.FormatJSONL
	}
	var buf bytes.Buffer
	w, err := cloud.NewWriter(&buf, format)
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.Query(context.Background(), opts, w)
	if ferr := w.Flush(); ferr != nil {
		t.Fatal(ferr)
	}
	return buf.Bytes(), st, err
}

func testQueryEqualsCLI(t *testing.T, base string, a *cloud.Archive, ar *archive) {
	m0 := ar.manifest[0]
	at := func(d time.Duration) string { return serverSpec.base.Add(d).Format(time.RFC3339Nano) }
	cases := []string{
		"topic=sensors",
		"topic=sensors&format=csv",
		"topic=sensors&format=raw&partition=1",
		"topic=sensors&partition=0&from_offset=" + fmt.Sprint(m0.Segments[3].BaseOffset+5) + "&to-offset=" + fmt.Sprint(m0.Segments[7].LastOffset),
		"topic=sensors&since=" + url.QueryEscape(at(time.Hour)) + "&until=" + url.QueryEscape(at(90*time.Minute)),
		"topic=sensors&since=" + url.QueryEscape(at(time.Hour)) + "&until=" + url.QueryEscape(at(90*time.Minute)) + "&max-lateness=20m&format=csv",
		"topic=sensors&since=3h", // relative to the server's clock: serverNow-3h
		"topic=sensors&key=device-3&partition=0,1",
		"topic=sensors&key-base64=" + url.QueryEscape("/wAB/g=="), // 0xff 0x00 0x01 0xfe
		"topic=sensors&limit=17&partition=1",
		"topic=sensors&key=",
	}
	for _, c := range cases {
		v, err := url.ParseQuery(c)
		if err != nil {
			t.Fatal(err)
		}
		want, st, err := reference(t, a, v)
		if err != nil {
			t.Fatalf("%s: reference query: %v", c, err)
		}
		ans := httpGet(t, base+"/query?"+c)
		if ans.status != http.StatusOK || ans.readErr != nil {
			t.Fatalf("%s: %d %v %s", c, ans.status, ans.readErr, ans.body)
		}
		if !bytes.Equal(ans.body, want) {
			t.Fatalf("%s: the HTTP answer (%d bytes) differs from the command line's (%d bytes)", c, len(ans.body), len(want))
		}
		if st.Records == 0 && !strings.Contains(c, "key=&") && !strings.HasSuffix(c, "key=") {
			t.Errorf("%s: no records: the case tests nothing", c)
		}
		if ans.trailer.Get(cloud.TrailerRecords) != fmt.Sprint(st.Records) || ans.trailer.Get(cloud.TrailerError) != "" ||
			ans.trailer.Get(cloud.TrailerBytesFetched) == "" || ans.trailer.Get(cloud.TrailerCorruptSkipped) != "0" {
			t.Errorf("%s: trailer %v, want %d records", c, ans.trailer, st.Records)
		}
		wantType := map[string]string{"": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8",
			"raw": "application/octet-stream"}[v.Get("format")]
		if ans.header.Get("Content-Type") != wantType {
			t.Errorf("%s: Content-Type %q", c, ans.header.Get("Content-Type"))
		}
	}
	// The full answer holds exactly the archived records.
	ans := httpGet(t, base+"/query?topic=sensors")
	var out []got
	sc := bufio.NewScanner(bytes.NewReader(ans.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
			Timestamp time.Time
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, got{topic: r.Topic, partition: r.Partition, offset: r.Offset, ts: r.Timestamp.UnixMilli()})
	}
	want := ar.filter(func(produced) bool { return true })
	if len(out) != len(want) {
		t.Fatalf("%d records, %d archived", len(out), len(want))
	}
	for i, w := range want {
		if g := out[i]; g.topic != ar.topic || g.partition != w.partition || g.offset != w.offset || g.ts != w.ts {
			t.Fatalf("record %d: %+v, want %d@%d ts %d", i, g, w.partition, w.offset, w.ts)
		}
	}
}

func testServerErrors(t *testing.T, base string, a *cloud.Archive, ar *archive) {
	last := ar.manifest[0].Segments[len(ar.manifest[0].Segments)-1]
	for _, tc := range []struct {
		path   string
		status int
		kind   string
		text   []string // the message names the parameter and its value
	}{
		{"/query", 400, "bad_request", []string{"topic is required"}},
		{"/query?topic=sensors&since=yesterday", 400, "bad_request", []string{"since", `"yesterday"`}},
		{"/query?topic=sensors&until=2026-13-01", 400, "bad_request", []string{"until", `"2026-13-01"`}},
		{"/query?topic=sensors&limit=-1", 400, "bad_request", []string{`limit "-1"`}},
		{"/query?topic=sensors&from-offset=x", 400, "bad_request", []string{`from-offset "x"`}},
		{"/query?topic=sensors&partition=a", 400, "bad_request", []string{`partition "a"`}},
		{"/query?topic=sensors&max-lateness=-5m", 400, "bad_request", []string{`max-lateness "-5m"`}},
		{"/query?topic=sensors&format=xml", 400, "bad_request", []string{`format "xml"`}},
		{"/query?topic=sensors&skip-corrupt=maybe", 400, "bad_request", []string{`skip-corrupt "maybe"`}},
		{"/query?topic=sensors&sinec=2h", 400, "bad_request", []string{`unknown parameter "sinec"`}},
		{"/query?topic=sensors&key=a&key-base64=YQ==", 400, "bad_request", []string{"key and key-base64"}},
		{"/query?topic=a/b", 400, "bad_request", []string{`"a/b"`}},
		{"/query?topic=nope", 404, "unknown_topic", []string{`"nope"`, "sensors"}},
		{"/query?topic=sensors&partition=7", 404, "unknown_topic", []string{"partition 7"}},
		{"/query?topic=sensors&from-offset=10&to-offset=5", 416, "empty_range", []string{"[10, 5)"}},
		{"/query?topic=sensors&since=2026-01-01T03:00:00Z&until=2026-01-01T02:00:00Z", 416, "empty_range", []string{"not before"}},
		{"/query?topic=sensors&partition=0&from-offset=" + fmt.Sprint(last.LastOffset+1), 416, "empty_range", []string{"nothing archived"}},
		{"/query?topic=sensors&since=2027-01-01", 416, "empty_range", []string{"nothing archived", "2027-01-01"}},
		{"/topics?topic=nope", 404, "unknown_topic", []string{`"nope"`}},
		{"/topics?topics=sensors", 400, "bad_request", []string{`unknown parameter "topics"`}},
		{"/stats/rate?topic=sensors", 400, "bad_request", []string{"since is required"}},
		{"/stats/rate?topic=sensors&since=2h&bucket=10ms", 400, "bad_request", []string{`bucket "10ms"`}},
		{"/stats/rate?topic=sensors&since=2h&limit=5", 400, "bad_request", []string{`unknown parameter "limit"`}},
		{"/stats/rate?topic=sensors&since=30d&bucket=1s", 400, "too_large", []string{`bucket "1s"`, "buckets"}},
		{"/stats/rate?topic=sensors&since=1h&until=2h", 400, "bad_request", []string{"not before"}},
		{"/stats/rate?topic=nope&since=1h", 404, "unknown_topic", []string{`"nope"`}},
	} {
		ans := httpGet(t, base+tc.path)
		if ans.status != tc.status {
			t.Errorf("GET %s: %d %s, want %d", tc.path, ans.status, ans.body, tc.status)
			continue
		}
		msg, kind := errorBody(t, ans)
		if kind != tc.kind {
			t.Errorf("GET %s: kind %q, want %q", tc.path, kind, tc.kind)
		}
		for _, s := range tc.text {
			if !strings.Contains(msg, s) {
				t.Errorf("GET %s: %q does not mention %q", tc.path, msg, s)
			}
		}
	}
	// HEAD would run a whole query: refused.
	resp, err := http.Head(base + "/query?topic=sensors")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
		t.Errorf("HEAD /query: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = http.Post(base+"/query?topic=sensors", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /query: %d", resp.StatusCode)
	}

	// A rate query that would scan more than MaxRateBytes is refused before any ranged GET.
	small, err := cloud.NewServer(a, cloud.ServerConfig{Now: func() time.Time { return serverNow }, MaxRateBytes: 10 << 10})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(small)
	defer hs.Close()
	before, _ := a.Fetched()
	ans := httpGet(t, hs.URL+"/stats/rate?topic=sensors&since=4h")
	if msg, kind := errorBody(t, ans); ans.status != 400 || kind != "too_large" || !strings.Contains(msg, "10.0 KiB") {
		t.Errorf("rate over the byte bound: %d %s", ans.status, ans.body)
	}
	after, _ := a.Fetched()
	var manifests int64
	for _, m := range ar.manifest {
		data, _ := json.Marshal(m)
		manifests += int64(len(data)) * 2 // generous: the manifests and a listing
	}
	if after-before > manifests {
		t.Errorf("the refused rate query fetched %d bytes, more than the manifests", after-before)
	}
}

// rateOf counts the archived records of partition (-1: all) per bucket of [since, until).
func rateOf(ar *archive, partition int32, since, until time.Time, bucket time.Duration) []int64 {
	n := until.Sub(since) / bucket
	counts := make([]int64, n)
	for _, r := range ar.records {
		ts := time.UnixMilli(r.ts)
		if (partition < 0 || r.partition == partition) && !ts.Before(since) && ts.Before(until) {
			counts[ts.Sub(since)/bucket]++
		}
	}
	return counts
}

func testRate(t *testing.T, base string, ar *archive) {
	b := serverSpec.base
	for _, tc := range []struct {
		params       string
		since, until time.Time
		bucket       time.Duration
		partition    int32
	}{
		{"since=2026-01-01T01:00:00Z&until=2026-01-01T02:00:00Z", b.Add(time.Hour), b.Add(2 * time.Hour), time.Minute, -1},
		// unaligned bounds are widened to whole buckets; relative times count from the server's clock
		{"since=4h10m30s&until=3h59m59.5s&bucket=5m&partition=1", b.Add(45 * time.Minute), b.Add(65 * time.Minute), 5 * time.Minute, 1},
		{"since=2025-12-31T23:00:00Z&until=2026-01-01T06:00:00Z&bucket=1h", b.Add(-time.Hour), b.Add(6 * time.Hour), time.Hour, -1},
		// nothing archived there: zeros, not an error
		{"since=2026-02-01T00:00:00Z&until=2026-02-01T00:10:00Z", b.Add(31 * 24 * time.Hour), b.Add(31*24*time.Hour + 10*time.Minute), time.Minute, -1},
	} {
		ans := httpGet(t, base+"/stats/rate?topic=sensors&"+tc.params)
		if ans.status != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.params, ans.status, ans.body)
		}
		var got cloud.RateAnswer
		if err := json.Unmarshal(ans.body, &got); err != nil {
			t.Fatal(err)
		}
		want := rateOf(ar, tc.partition, tc.since, tc.until, tc.bucket)
		var total int64
		for _, c := range want {
			total += c
		}
		if !got.Since.Equal(tc.since) || !got.Until.Equal(tc.until) || got.BucketMs != tc.bucket.Milliseconds() ||
			fmt.Sprint(got.Counts) != fmt.Sprint(want) || got.Records != total {
			t.Errorf("%s:\n got %s %s %d %v (%d)\nwant %s %s %d %v (%d)", tc.params, got.Since, got.Until, got.BucketMs, got.Counts,
				got.Records, tc.since, tc.until, tc.bucket.Milliseconds(), want, total)
		}
		if total == 0 && !strings.Contains(tc.params, "2026-02") {
			t.Errorf("%s: no records: the case tests nothing", tc.params)
		}
	}
}

// logRecorder is a slog.Handler that keeps every record, for tests that wait for one.
type logRecorder struct {
	attrs []slog.Attr
	root  *logRecorder
	mu    sync.Mutex
	recs  []slog.Record
	added chan struct{} // closed and replaced on every record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	root := l.rootOf()
	r = r.Clone()
	r.AddAttrs(l.attrs...)
	root.mu.Lock()
	defer root.mu.Unlock()
	root.recs = append(root.recs, r)
	if root.added != nil {
		close(root.added)
		root.added = nil
	}
	return nil
}

func (l *logRecorder) rootOf() *logRecorder {
	if l.root != nil {
		return l.root
	}
	return l
}

func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{root: l.rootOf(), attrs: append(append([]slog.Attr{}, l.attrs...), as...)}
}

func (l *logRecorder) WithGroup(string) slog.Handler { return l }

// waitFor returns the first record match accepts, waiting for it up to failAfter.
func (l *logRecorder) waitFor(t *testing.T, what string, match func(slog.Record) bool) slog.Record {
	t.Helper()
	deadline := time.NewTimer(failAfter)
	defer deadline.Stop()
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.recs); seen++ {
			if match(l.recs[seen]) {
				r := l.recs[seen]
				l.mu.Unlock()
				return r
			}
		}
		if l.added == nil {
			l.added = make(chan struct{})
		}
		added := l.added
		l.mu.Unlock()
		select {
		case <-added:
		case <-deadline.C:
			t.Fatalf("no log record %s after %s", what, failAfter)
		}
	}
}

// attr returns a record's attribute as a string.
func attr(r slog.Record, key string) string {
	var v string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// stallProxy forwards TCP connections to MinIO, and holds back a request whose bytes contain
// a pattern until released: a stalled link under the test's control.
type stallProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	pattern []byte
	hit     chan struct{} // closed when a request matched the pattern
	release chan struct{} // closed to let it through
	conns   []net.Conn
}

func startProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go p.accept()
	return p
}

func (p *stallProxy) url() string { return "http://" + p.ln.Addr().String() }

// stallOn holds back the next requests containing pattern; the channel closes at the first.
func (p *stallProxy) stallOn(pattern string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pattern, p.hit, p.release = []byte(pattern), make(chan struct{}), make(chan struct{})
	return p.hit
}

// unstall lets the held requests through.
func (p *stallProxy) unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pattern != nil {
		p.pattern = nil
		close(p.release)
	}
}

// close stops accepting and cuts every connection.
func (p *stallProxy) close() {
	p.unstall()
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() {
			io.Copy(c, u)
			c.Close()
		}()
		go p.forward(c, u)
	}
}

// forward copies client bytes upstream, holding back those of a matching request.
func (p *stallProxy) forward(c, u net.Conn) {
	defer u.Close()
	buf := make([]byte, 32<<10)
	var tail []byte // the end of the previous read, for a pattern split across reads
	for {
		n, err := c.Read(buf)
		if n > 0 {
			window := append(tail, buf[:n]...)
			p.mu.Lock()
			pattern, hit, release := p.pattern, p.hit, p.release
			matched := pattern != nil && bytes.Contains(window, pattern)
			if matched {
				select {
				case <-hit:
				default:
					close(hit)
				}
			}
			p.mu.Unlock()
			if matched {
				<-release
			}
			if _, err := u.Write(buf[:n]); err != nil {
				return
			}
			tail = append(tail[:0], window[max(0, len(window)-512):]...)
		}
		if err != nil {
			return
		}
	}
}

// testStreamCancelBusy checks, with a link to MinIO that the test stalls, that records go out
// while a query still runs (periodic flushes), that a second query finds the only slot taken
// (503), that a client going away ends its query, and that the slot is then free.
func testStreamCancelBusy(t *testing.T, ar *archive) {
	p := startProxy(t, strings.TrimPrefix(ar.srv.Endpoint, "http://"))
	a, err := cloud.Open(context.Background(), cloud.Config{Endpoint: p.url(), Bucket: ar.bucket, Prefix: ar.prefix,
		AccessKeyID: ar.srv.AccessKey, SecretAccessKey: ar.srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	srv, err := cloud.NewServer(a, cloud.ServerConfig{MaxQueries: 1, QueueWait: -1, Parallel: 1,
		FlushInterval: 5 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	m := ar.manifest[0]
	stalled := p.stallOn(m.Segments[2].Key(ar.prefix, ar.topic, 0, ".log"))
	ctxA, cancelA := context.WithTimeout(context.Background(), failAfter)
	defer cancelA()
	req, _ := http.NewRequestWithContext(ctxA, http.MethodGet, hs.URL+"/query?topic=sensors&partition=0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query A: %d", resp.StatusCode)
	}
	// The records of segments 0 and 1 arrive while the query waits for segment 2.
	want := m.Segments[0].Records + m.Segments[1].Records
	br := bufio.NewReader(resp.Body)
	for i := range want {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("record %d of %d before the stall: %v", i, want, err)
		}
		var r struct{ Offset int64 }
		if err := json.Unmarshal(line, &r); err != nil || r.Offset != m.Segments[0].BaseOffset+i {
			t.Fatalf("line %d: %s (%v)", i, line, err)
		}
	}
	<-stalled
	ans := httpGet(t, hs.URL+"/query?topic=sensors&limit=1")
	if _, kind := errorBody(t, ans); ans.status != http.StatusServiceUnavailable || kind != "busy" || ans.header.Get("Retry-After") != "1" {
		t.Fatalf("second query with the only slot taken: %d %v %s", ans.status, ans.header, ans.body)
	}
	cancelA() // the client goes away; the query's GET is still held back by the proxy
	rec := logs.waitFor(t, "of the cancelled query", func(r slog.Record) bool {
		return attr(r, "query") == "topic=sensors&partition=0"
	})
	if rec.Message != "query failed" || !strings.Contains(attr(rec, "error"), "context canceled") ||
		attr(rec, "records") != fmt.Sprint(want) {
		t.Fatalf("cancelled query logged %q %v", rec.Message, rec)
	}
	p.unstall()
	ans = httpGet(t, hs.URL+"/query?topic=sensors&limit=3")
	if ans.status != http.StatusOK || bytes.Count(ans.body, []byte("\n")) != 3 {
		t.Fatalf("query after the cancelled one: %d %s", ans.status, ans.body)
	}

	// The object store gone: 502.
	p.close()
	for _, path := range []string{"/topics", "/query?topic=sensors", "/stats/rate?topic=sensors&since=1h"} {
		ans := httpGet(t, hs.URL+path)
		if _, kind := errorBody(t, ans); ans.status != http.StatusBadGateway || kind != "store" {
			t.Errorf("GET %s with the store unreachable: %d %s", path, ans.status, ans.body)
		}
	}
}

// testServerCorrupt checks how corruption found after the answer began is signalled: an
// error line and trailer in jsonl, an aborted body in csv and raw; skip-corrupt steps over
// it; a corrupt manifest is a 502 before anything is sent.
func testServerCorrupt(t *testing.T, ar *archive) {
	mc, err := ar.srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "corrupt-srv"
	copyPrefix(t, ar, mc, prefix)
	m := ar.manifest[0]
	logKey := m.Segments[3].Key(prefix, ar.topic, 0, ".log")
	data := getObject(t, mc, ar.bucket, logKey)
	b := batchesOf(t, data)[1]
	data[b.pos+batch.HeaderSize+3] ^= 0x40
	putObject(t, mc, ar.bucket, logKey, data)

	a := ar.open(t, prefix)
	srv, err := cloud.NewServer(a, cloud.ServerConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	v := url.Values{"topic": {ar.topic}, "partition": {"0"}}
	want, _, err := reference(t, a, v)
	if !errors.Is(err, cloud.ErrCorrupt) {
		t.Fatalf("reference query: %v", err)
	}
	ans := httpGet(t, hs.URL+"/query?"+v.Encode())
	if len(ans.body) == 0 {
		t.Fatalf("jsonl with corrupt data: %d, empty body", ans.status)
	}
	lastNL := bytes.LastIndexByte(ans.body[:len(ans.body)-1], '\n')
	records, errLine := ans.body[:lastNL+1], ans.body[lastNL+1:]
	var e struct{ Error, Kind, Topic string }
	if ans.status != http.StatusOK || ans.readErr != nil || !bytes.Equal(records, want) ||
		json.Unmarshal(errLine, &e) != nil || e.Kind != "corrupt" || e.Topic != "" || !strings.Contains(e.Error, logKey) ||
		!strings.Contains(e.Error, fmt.Sprintf("offset %d", b.base)) {
		t.Fatalf("jsonl with corrupt data: %d %v, %d bytes of records (want %d), last line %q", ans.status, ans.readErr,
			len(records), len(want), errLine)
	}
	if tr := ans.trailer.Get(cloud.TrailerError); tr != e.Error || ans.trailer.Get(cloud.TrailerRecords) != "" {
		t.Errorf("trailer %v, want %s: %q", ans.trailer, cloud.TrailerError, e.Error)
	}
	for _, format := range []string{"csv", "raw"} {
		ans := httpGet(t, hs.URL+"/query?"+v.Encode()+"&format="+format)
		if ans.status != http.StatusOK || !errors.Is(ans.readErr, io.ErrUnexpectedEOF) {
			t.Errorf("%s with corrupt data: %d, body ended with %v; want an aborted body", format, ans.status, ans.readErr)
		}
	}
	v.Set("skip-corrupt", "true")
	want, st, err := reference(t, a, v)
	if err != nil || st.CorruptSkipped != 1 {
		t.Fatalf("reference query with skip-corrupt: %v %+v", err, st)
	}
	ans = httpGet(t, hs.URL+"/query?"+v.Encode())
	if ans.status != http.StatusOK || !bytes.Equal(ans.body, want) || ans.trailer.Get(cloud.TrailerCorruptSkipped) != "1" ||
		ans.trailer.Get(cloud.TrailerRecords) != strconv.FormatInt(st.Records, 10) {
		t.Errorf("skip-corrupt: %d, %d bytes (want %d), trailer %v", ans.status, len(ans.body), len(want), ans.trailer)
	}

	// A manifest that does not parse: 502 before anything is sent.
	putObject(t, mc, ar.bucket, prefix+"/"+ar.topic+"/1/manifest.json", []byte("{not json"))
	for _, path := range []string{"/query?topic=sensors", "/topics", "/stats/rate?topic=sensors&since=2026-01-01&until=2026-01-02&bucket=1h"} {
		ans := httpGet(t, hs.URL+path)
		if msg, kind := errorBody(t, ans); ans.status != http.StatusBadGateway || kind != "corrupt" || !strings.Contains(msg, "manifest.json") {
			t.Errorf("GET %s with a corrupt manifest: %d %s", path, ans.status, ans.body)
		}
	}
}
