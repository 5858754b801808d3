package mqtt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/agent/groups"
	"github.com/samsa-io/samsa/internal/testmosquitto"
)

// testLog collects a test's logs and prints them if the test fails.
func testLog(t testing.TB) *slog.Logger {
	var mu sync.Mutex
	var b strings.Builder
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("logs:\n%s", b.String())
			mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return b.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var _ io.Writer = writerFunc(nil)

// openStore opens a commit log with fsync=always in dir (a fresh temp dir when ""), closed when
// the test ends (after the bridges, which are closed by cleanups registered later).
func openStore(t testing.TB, dir string, gate func() error) *commitlog.Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := commitlog.Open(commitlog.Options{Dir: dir, Fsync: commitlog.FsyncAlways, AppendGate: gate, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openGroups(t testing.TB, s *commitlog.Store) *groups.Coordinator {
	t.Helper()
	g, err := groups.New(groups.Options{Store: s, Logger: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// startBridge creates and starts a bridge, waits until it is connected, and closes it when
// the test ends.
func startBridge(t testing.TB, o Options) *Bridge {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLog(t)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBridge(t, b) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // failure bound
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		t.Fatalf("bridge %s not connected: %v", o.Name, err)
	}
	return b
}

func closeBridge(t testing.TB, b *Bridge) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("close bridge: %v", err)
	}
}

// rec is a record read back from the log.
type rec struct {
	partition int32
	offset    int64
	key       string
	value     string
	headers   map[string]string
}

// readAll returns every record of topic below the high watermarks, partition by partition.
func readAll(t testing.TB, s *commitlog.Store, topic string) []rec {
	t.Helper()
	tp := s.Topic(topic)
	if tp == nil {
		return nil
	}
	var out []rec
	for p := range tp.NumPartitions() {
		l := tp.Partition(p)
		for off := l.LogStartOffset(); ; {
			res, err := l.Read(off, 1<<20, true, commitlog.ReadToHighWatermark)
			if err != nil {
				t.Fatalf("read %s-%d at %d: %v", topic, p, off, err)
			}
			if res.Bytes == 0 {
				res.Release()
				break
			}
			buf := make([]byte, 0, res.Bytes)
			for _, r := range res.Ranges {
				chunk := make([]byte, r.Len)
				if _, err := r.File.ReadAt(chunk, r.Pos); err != nil {
					t.Fatal(err)
				}
				buf = append(buf, chunk...)
			}
			res.Release()
			err = batch.Split(buf, func(b []byte) error {
				h, err := batch.Validate(b)
				if err != nil {
					return err
				}
				off = h.LastOffset() + 1
				return batch.Records(b, func(r *batch.Record) error {
					hs := map[string]string{}
					for _, h := range r.Headers {
						hs[h.Key] = string(h.Value)
					}
					out = append(out, rec{partition: p, offset: r.Offset, key: string(r.Key), value: string(r.Value), headers: hs})
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or timeout (a failure bound) passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			var more []string
			for _, d := range detail {
				more = append(more, d())
			}
			t.Fatalf("timed out after %s waiting for %s\n%s", timeout, what, strings.Join(more, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// appendRecords appends one uncompressed batch of keyed records to topic-partition.
func appendRecords(t testing.TB, s *commitlog.Store, topic string, partition int32, kv ...string) {
	t.Helper()
	bld := batch.NewBuilder(batch.BuildOptions{ProducerID: -1})
	for i := 0; i+1 < len(kv); i += 2 {
		var key []byte
		if kv[i] != "<nil>" {
			key = []byte(kv[i])
		}
		bld.Add(time.Now().UnixMilli(), key, []byte(kv[i+1]), nil)
	}
	data, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Topic(topic).Partition(partition).Append(data); err != nil {
		t.Fatal(err)
	}
}

// recorder is a paho subscriber with a persistent session that records which sequence numbers
// arrived per MQTT topic: each payload is a number, per topics[i] from 0 to per-1.
type recorder struct {
	mu      sync.Mutex
	seen    map[string]map[int]bool
	next    map[string]int // the lowest number not seen yet, per topic
	per     int
	n, dups int
	early   int // arrivals ahead of a number not seen yet (reordered)
	bad     error
	wake    chan struct{}
}

func startRecorder(t testing.TB, srv *testmosquitto.Server, id, filter string, topics []string, per int) *recorder {
	t.Helper()
	srv.CreateSession(t, id, filter)
	r := &recorder{seen: map[string]map[int]bool{}, next: map[string]int{}, per: per, wake: make(chan struct{}, 1)}
	for _, tp := range topics {
		r.seen[tp] = map[int]bool{}
	}
	o := paho.NewClientOptions().AddBroker(srv.URL).SetClientID(id).SetCleanSession(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond)
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		r.add(m.Topic(), string(m.Payload()))
		select {
		case r.wake <- struct{}{}:
		default:
		}
	})
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("recorder connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return r
}

func (r *recorder) add(topic, payload string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	seq, err := strconv.Atoi(payload)
	seen, ok := r.seen[topic]
	switch {
	case err != nil || !ok || seq < 0 || seq >= r.per:
		if r.bad == nil {
			r.bad = fmt.Errorf("unexpected message %q on %q", payload, topic)
		}
		return
	case seen[seq]:
		r.dups++
		return
	case seq > r.next[topic]:
		r.early++
	}
	seen[seq] = true
	for seen[r.next[topic]] {
		r.next[topic]++
	}
}

// wait waits until every number of every topic has arrived, bounded by timeout, and returns
// how many arrived ahead of a predecessor.
func (r *recorder) wait(t testing.TB, timeout time.Duration) (early int) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		missing := ""
		for tp, n := range r.next {
			if n < r.per {
				missing = fmt.Sprintf("%s: %d of %d", tp, n, r.per)
			}
		}
		if len(r.next) < len(r.seen) {
			missing = "some topics got nothing"
		}
		bad, n, dups, early := r.bad, r.n, r.dups, r.early
		r.mu.Unlock()
		switch {
		case bad != nil:
			t.Fatal(bad)
		case missing == "":
			t.Logf("recorder: %d messages, %d duplicates, %d ahead of a predecessor", n, dups, early)
			return early
		}
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("recorder after %s: %s", timeout, missing)
		}
	}
}
