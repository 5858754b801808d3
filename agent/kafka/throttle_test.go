package kafka

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// throttleHook records what franz-go's HookBrokerThrottle reports.
type throttleHook struct {
	mu    sync.Mutex
	calls []time.Duration // only throttles the client applies after the response (KIP-219)
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, afterResponse bool) {
	if afterResponse {
		h.mu.Lock()
		h.calls = append(h.calls, d)
		h.mu.Unlock()
	}
}

func (h *throttleHook) seen() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.calls...)
}

// TestThrottleFranzGo throttles every Produce and Fetch by 150ms: a franz-go producer and a
// consumer both see throttle_time_ms as a KIP-219 throttle (applied after the response), and
// every record still goes through.
func TestThrottleFranzGo(t *testing.T) {
	t.Parallel()
	var throttle atomic.Int64
	throttle.Store(int64(150 * time.Millisecond))
	e := newEnv(t, func(o *Options) { o.Throttle = func() time.Duration { return time.Duration(throttle.Load()) } })
	e.topic("throttled", 1, nil)

	prodHook := &throttleHook{}
	prod := e.client(kgo.WithHooks(prodHook), kgo.DefaultProduceTopic("throttled"))
	const n = 5
	for i := range n {
		produceSync(t, prod, &kgo.Record{Value: []byte{byte('a' + i)}})
	}
	if got := prodHook.seen(); len(got) < n || got[0] != 150*time.Millisecond {
		t.Fatalf("producer saw throttles %v, want %d of 150ms", got, n)
	}

	consHook := &throttleHook{}
	cons := e.client(kgo.WithHooks(consHook), kgo.ConsumeTopics("throttled"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxFor(t)
	var got []byte
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %q", got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Value...) })
	}
	if string(got) != "abcde" {
		t.Fatalf("consumed %q, want abcde", got)
	}
	if seen := consHook.seen(); len(seen) == 0 || seen[0] != 150*time.Millisecond {
		t.Fatalf("consumer saw throttles %v, want 150ms", seen)
	}
	if th := e.srv.th.throttled.Load(); th < n+1 {
		t.Fatalf("%d throttled responses, want at least %d", th, n+1)
	}
}

// TestThrottleMutesConnection checks the broker side of KIP-219 on a raw connection: the
// response carries throttle_time_ms at once, then the connection is not read for that long
// (the next request is answered only after the mute, which the muted gauge shows), while a
// request that is not throttled leaves the connection alone.
func TestThrottleMutesConnection(t *testing.T) {
	t.Parallel()
	var throttle atomic.Int64
	e := newEnv(t, func(o *Options) { o.Throttle = func() time.Duration { return time.Duration(throttle.Load()) } })
	e.topic("muted", 1, nil)
	nc := e.dial()

	// Not throttled: no throttle field, no mute.
	rawSend(t, nc, produceReq("muted", 1, map[int32][]byte{0: testBatch(t, 2)}), 9, 1)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	rawRead(t, nc, resp, 1)
	if resp.ThrottleMillis != 0 || e.srv.th.throttled.Load() != 0 {
		t.Fatalf("unthrottled produce: throttle %d ms, %d throttled", resp.ThrottleMillis, e.srv.th.throttled.Load())
	}

	// Throttled for 300ms: the answer comes with throttle_time_ms, then the reader is muted.
	throttle.Store(int64(300 * time.Millisecond))
	rawSend(t, nc, produceReq("muted", 1, map[int32][]byte{0: testBatch(t, 2)}), 9, 2)
	rawRead(t, nc, resp, 2)
	if resp.ThrottleMillis != 300 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("throttled produce: %+v", resp)
	}
	waitFor(t, func() bool { return e.srv.th.muted.Load() == 1 })
	throttle.Store(0)
	meta := kmsg.NewPtrMetadataRequest()
	rawSend(t, nc, meta, 1, 3)
	mresp := kmsg.NewPtrMetadataResponse()
	mresp.Version = 1
	rawRead(t, nc, mresp, 3) // only after the mute: a timer never fires early
	if ms := e.srv.th.mutedMs.Load(); ms < 300 {
		t.Fatalf("muted %d ms, want at least the 300 ms throttle", ms)
	}
	if e.srv.th.muted.Load() != 0 {
		t.Fatal("still muted after answering the next request")
	}

	// A fetch is throttled the same way; the cap bounds an absurd answer.
	throttle.Store(int64(time.Hour))
	rawSend(t, nc, fetchReq("muted", [16]byte{}, 0, 0, 1<<20, 1<<20, map[int32]int64{0: 0}), 11, 4)
	fresp := kmsg.NewPtrFetchResponse()
	fresp.Version = 11
	rawRead(t, nc, fresp, 4)
	if fresp.ThrottleMillis != int32(maxThrottle/time.Millisecond) || len(fresp.Topics) != 1 {
		t.Fatalf("throttled fetch: throttle %d ms, %d topics", fresp.ThrottleMillis, len(fresp.Topics))
	}
	waitFor(t, func() bool { return e.srv.th.muted.Load() == 1 })
	// Shutdown (in the cleanup) ends the 30s mute at once.
}
