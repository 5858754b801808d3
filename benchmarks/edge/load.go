package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// loadResult is what the producer achieved.
type loadResult struct {
	Records     int64         `json:"records_acked"`
	Errors      int64         `json:"errors"`
	FirstError  string        `json:"first_error,omitempty"`
	Bytes       int64         `json:"value_bytes_acked"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	RateMBps    float64       `json:"rate_mb_per_s"`
	Throttles   int64         `json:"client_throttles"` // KIP-219 throttles franz-go applied
	ThrottleMax time.Duration `json:"client_throttle_max_ns"`
}

// throttleHook counts the throttles franz-go honours.
type throttleHook struct {
	n   atomic.Int64
	max atomic.Int64
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// produceAtRate sends recordSize-byte records to a fresh one-partition topic at rate bytes per
// second for d, then waits for every acknowledgement.
func produceAtRate(ctx context.Context, addr string, rate int64, recordSize int, d time.Duration) (loadResult, error) {
	hook := &throttleHook{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("edge-load"),
		kgo.AllowAutoTopicCreation(), kgo.WithHooks(hook))
	if err != nil {
		return loadResult{}, err
	}
	defer cl.Close()
	// One synchronous record first: connection and metadata, not timed.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, recordSize)}).FirstErr(); err != nil {
		return loadResult{}, fmt.Errorf("first record: %w", err)
	}
	values := make([][]byte, 64) // random, incompressible; reused (franz-go does not keep them)
	for i := range values {
		values[i] = make([]byte, recordSize)
		for j := range values[i] {
			values[i][j] = byte(rand.Uint32())
		}
	}
	var (
		res   loadResult
		mu    sync.Mutex
		acked atomic.Int64
	)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if res.Errors == 0 {
				res.FirstError = err.Error()
			}
			res.Errors++
			mu.Unlock()
			return
		}
		acked.Add(1)
	}
	perSec := float64(rate) / float64(recordSize)
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var sent int64
	for {
		now := time.Now()
		el := min(now.Sub(start), d)
		for due := int64(el.Seconds() * perSec); sent < due; sent++ {
			cl.Produce(ctx, &kgo.Record{Value: values[sent%int64(len(values))]}, done)
		}
		if el >= d || ctx.Err() != nil {
			break
		}
		<-tick.C
	}
	if err := cl.Flush(ctx); err != nil {
		return res, fmt.Errorf("flush: %w", err)
	}
	res.Elapsed = time.Since(start)
	res.Records = acked.Load()
	res.Bytes = res.Records * int64(recordSize)
	res.RateMBps = float64(res.Bytes) / 1e6 / res.Elapsed.Seconds()
	res.Throttles, res.ThrottleMax = hook.n.Load(), time.Duration(hook.max.Load())
	return res, ctx.Err()
}
