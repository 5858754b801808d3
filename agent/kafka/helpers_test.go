package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// failAfter bounds how long any test waits for the server: a failure bound
// only, never a timing assertion.
const failAfter = 2 * time.Minute

// logRecorder is a slog.Handler keeping every record, so tests can check
// what the server logged.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

// find returns the first logged line containing every part.
func (l *logRecorder) find(parts ...string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
outer:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue outer
			}
		}
		return line, true
	}
	return "", false
}

func (l *logRecorder) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// env is a running server over a real store on 127.0.0.1:0.
type env struct {
	t        *testing.T
	srv      *Server
	st       *commitlog.Store
	addr     string
	logs     *logRecorder
	served   chan struct{} // closed when Serve returned, with its error in serveErr
	serveErr error
}

// newEnv opens a store in a temp dir and serves it; mod may change the
// options and setup the server before it serves.
func newEnv(t *testing.T, mod func(*Options), setup ...func(*Server)) *env {
	t.Helper()
	logs := &logRecorder{}
	st, err := commitlog.Open(commitlog.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Store: st, AdvertisedHost: "127.0.0.1", AdvertisedPort: int32(ln.Addr().(*net.TCPAddr).Port),
		AutoCreateTopics: true, Logger: slog.New(logs)}
	if mod != nil {
		mod(&opts)
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(srv)
	}
	e := &env{t: t, srv: srv, st: st, addr: ln.Addr().String(), logs: logs, served: make(chan struct{})}
	go func() {
		defer close(e.served)
		e.serveErr = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), failAfter)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-e.served
		if e.serveErr != nil {
			t.Errorf("serve returned %v after shutdown, want nil", e.serveErr)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.dump())
		}
	})
	return e
}

// client returns a franz-go client of the server with franz-go's defaults (an idempotent
// producer) plus opts.
func (e *env) client(opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(e.addr)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

func (e *env) admin() *kadm.Client { return kadm.NewClient(e.client()) }

// topic creates a topic in the store directly.
func (e *env) topic(name string, partitions int32, configs map[string]string) *commitlog.Topic {
	e.t.Helper()
	tp, err := e.st.CreateTopic(name, partitions, configs, false)
	if err != nil {
		e.t.Fatalf("create topic %s: %v", name, err)
	}
	return tp
}

// dial opens a raw connection with a failure-bound deadline.
func (e *env) dial() net.Conn {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(failAfter))
	e.t.Cleanup(func() { nc.Close() })
	return nc
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	t.Cleanup(cancel)
	return ctx
}

// rawSend writes req at version on nc.
func rawSend(t *testing.T, nc net.Conn, req kmsg.Request, version int16, corrID int32) {
	t.Helper()
	if _, err := nc.Write(frameOf(req, version, corrID)); err != nil {
		t.Fatalf("write request: %v", err)
	}
}

// rawRead reads one response frame into resp (whose version must be set)
// and checks its correlation id.
func rawRead(t *testing.T, nc net.Conn, resp kmsg.Response, corrID int32) {
	t.Helper()
	body, err := readResponseFrame(nc, corrID)
	if err != nil {
		t.Fatal(err)
	}
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		if body, err = skipTags(body); err != nil {
			t.Fatalf("response header tags: %v", err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
}

// readResponseFrame reads one frame and returns what follows the correlation id.
func readResponseFrame(r io.Reader, corrID int32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, fmt.Errorf("read response size: %w", err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(buf) < 4 {
		return nil, fmt.Errorf("response of %d bytes", len(buf))
	}
	if got := int32(binary.BigEndian.Uint32(buf)); got != corrID {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corrID)
	}
	return buf[4:], nil
}

// rawRoundTrip sends req and reads its response.
func rawRoundTrip[R kmsg.Response](t *testing.T, nc net.Conn, req kmsg.Request, version int16, corrID int32) R {
	t.Helper()
	rawSend(t, nc, req, version, corrID)
	resp := req.ResponseKind().(R)
	resp.SetVersion(version)
	rawRead(t, nc, resp, corrID)
	return resp
}

// expectClosed reads until the server closes nc and fails if it does not.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	n, err := io.Copy(io.Discard, nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) { // a reset is a close with unread data
		t.Fatalf("expected the server to close the connection, got %v after %d bytes", err, n)
	}
}

// produceSync produces records and fails on any error.
func produceSync(t *testing.T, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctxFor(t), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeN polls cl until n records arrived.
func consumeN(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx := ctxFor(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s[%d]: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

func sameHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}
