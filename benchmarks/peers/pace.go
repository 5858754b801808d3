package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

// paceConfig describes a fixed-rate latency test.
type paceConfig struct {
	rate     int           // messages per second
	warmup   time.Duration // paced, not measured
	duration time.Duration // paced and measured
	size     int           // record value bytes
}

func (p paceConfig) warmupCount() int { return int(p.warmup.Seconds() * float64(p.rate)) }
func (p paceConfig) total() int {
	return p.warmupCount() + max(1, int(p.duration.Seconds()*float64(p.rate)))
}

// paceTick is how often the sender wakes up. The schedule is bursts: message i is planned for
// the first tick at or after i/rate, so at 10k msgs/s bursts of 10 go out every millisecond.
const paceTick = time.Millisecond

// latencyRecorder holds one latency per message, measured from the message's planned send
// time (its tick), not from when it actually went out: if the sender, client or server stalls,
// the messages that should have been sent meanwhile are charged the stall (no coordinated
// omission). Timer wake-up lateness is charged too.
type latencyRecorder struct {
	start    time.Time
	interval time.Duration
	lat      []time.Duration
	acked    atomic.Int64
	failed   atomic.Int64
	firstErr atomic.Value // error
}

func newLatencyRecorder(p paceConfig) *latencyRecorder {
	return &latencyRecorder{interval: time.Second / time.Duration(p.rate), lat: make([]time.Duration, p.total())}
}

// ack records message i as acknowledged now. Each i must be acked once.
func (r *latencyRecorder) ack(i int) {
	if i < 0 || i >= len(r.lat) {
		r.fail(fmt.Errorf("ack for unknown message %d", i))
		return
	}
	r.lat[i] = time.Since(r.start.Add(r.planned(i)))
	r.acked.Add(1)
}

// planned is message i's send time relative to start: i/rate rounded up to a whole tick.
func (r *latencyRecorder) planned(i int) time.Duration {
	ideal := time.Duration(i) * r.interval
	return (ideal + paceTick - 1) / paceTick * paceTick
}

// due is how many messages are planned at or before elapsed.
func (r *latencyRecorder) due(elapsed time.Duration) int {
	return int(elapsed/paceTick*paceTick/r.interval) + 1
}

func (r *latencyRecorder) fail(err error) {
	r.firstErr.CompareAndSwap(nil, err)
	r.failed.Add(1)
}

// run paces send over p.total() messages, then waits for every ack or failure. send must not
// block for long; it reports the outcome through ack or fail later.
func (r *latencyRecorder) run(ctx context.Context, m *meter, send func(i int) error) ([]time.Duration, error) {
	total := len(r.lat)
	m.begin()
	// start before the ticker's own start, so tick k fires at or after start + k ticks and
	// the messages planned for it are due when it fires.
	r.start = time.Now()
	t := time.NewTicker(paceTick)
	defer t.Stop()
	for next := 0; next < total; {
		due := min(total, r.due(time.Since(r.start)))
		for ; next < due; next++ {
			if err := send(next); err != nil {
				return nil, fmt.Errorf("send %d: %w", next, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.acked.Load()+r.failed.Load() < int64(total) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d messages never acknowledged", int64(total)-r.acked.Load()-r.failed.Load(), total)
		}
		sleep(ctx, time.Millisecond)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	m.end()
	if n := r.failed.Load(); n > 0 {
		err, _ := r.firstErr.Load().(error)
		return nil, fmt.Errorf("%d of %d messages failed, first: %w", n, total, err)
	}
	return r.lat, nil
}

// latencyResult summarizes the measured part of a latency test, in milliseconds.
type latencyResult struct {
	Rate     int     `json:"rate_msgs_per_sec"`
	Seconds  float64 `json:"seconds"`
	Messages int     `json:"messages"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Max      float64 `json:"max_ms"`
	CPU      cpuUse  `json:"cpu"`
}

// summarize drops the warm-up messages and takes percentiles of the rest.
func summarize(p paceConfig, lat []time.Duration) latencyResult {
	w := p.warmupCount()
	if len(lat) <= w {
		return latencyResult{Rate: p.rate}
	}
	m := slices.Clone(lat[w:])
	slices.Sort(m)
	q := func(f float64) float64 {
		i := int(f*float64(len(m)) + 0.5)
		i = min(max(i-1, 0), len(m)-1)
		return ms(m[i])
	}
	return latencyResult{
		Rate: p.rate, Seconds: p.duration.Seconds(), Messages: len(m),
		P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999), Max: ms(m[len(m)-1]),
	}
}

// pacerBaseline runs the latency test against nothing: every message is acknowledged as it
// is sent, so what remains is the pacer's own lateness (timer wake-ups, scheduling). It is the
// floor under every server's latency numbers on this machine.
func pacerBaseline(ctx context.Context, o options) (latencyResult, error) {
	p := paceConfig{rate: o.latencyRate, warmup: o.latencyWarmup, duration: o.latencyDuration, size: smallSize}
	rec := newLatencyRecorder(p)
	m := &meter{}
	lat, err := rec.run(ctx, m, func(i int) error { rec.ack(i); return nil })
	if err != nil {
		return latencyResult{}, err
	}
	res := summarize(p, lat)
	res.CPU = m.use
	return res, nil
}

// dumpLatencies writes one line per message: planned send time since start and latency, in ms.
func dumpLatencies(path string, p paceConfig, lat []time.Duration) error {
	r := newLatencyRecorder(p)
	var b bytes.Buffer
	for i, l := range lat {
		fmt.Fprintf(&b, "%.3f\t%.3f\n", ms(r.planned(i)), ms(l))
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
