package membudget

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// MinBytes is the smallest budget New accepts: below it the shares are too small to hold one
// ordinary produce request.
const MinBytes = 16 << 20

// Defaults of Options.
const (
	DefaultThrottlePercent = 90
	DefaultMinThrottle     = 50 * time.Millisecond
	DefaultMaxThrottle     = time.Second
	DefaultSampleEvery     = 20 * time.Millisecond
)

// ErrInvalid is wrapped by New's errors about Options.
var ErrInvalid = errors.New("invalid memory budget")

// Share names a part of the budget.
type Share int

// The shares of a budget (doc.go: Shares).
const (
	Requests    Share = iota // Kafka requests in memory at once, and the largest request: 1/4
	Cleaner                  // the log cleaner's key map, outside the Go heap: 1/8
	MQTT                     // the MQTT bridge's batching: 1/8
	TieredReads              // chunks of tiered segments held in memory, outside the Go heap: 1/16
	numShares
)

var shareNames = [numShares]string{"requests", "cleaner", "mqtt", "tiered_reads"}
var shareDivisors = [numShares]int64{4, 8, 8, 16}

// String names the share as the metrics label it.
func (s Share) String() string {
	if s < 0 || s >= numShares {
		return fmt.Sprintf("share(%d)", int(s))
	}
	return shareNames[s]
}

// Options configure a Budget. Zero durations and percent get the defaults.
type Options struct {
	// MaxBytes is the budget (memory.max_bytes). 0: no budget: every share is 0, Limit
	// returns what was configured, Apply does nothing and Throttle always returns 0.
	// Otherwise at least MinBytes.
	MaxBytes int64
	// ThrottlePercent (memory.throttle_percent) is the use, in percent of the Go memory limit,
	// from which clients are throttled. Default 90; 1 to 100.
	ThrottlePercent int
	// MinThrottle and MaxThrottle bound the throttle time: MinThrottle at the threshold,
	// growing linearly to MaxThrottle at the Go memory limit. Defaults 50ms and 1s.
	MinThrottle, MaxThrottle time.Duration
	// SampleEvery is how long a sample of the runtime's memory use is reused. Default 20ms.
	SampleEvery time.Duration
}

// Budget is the agent's memory budget. Its methods are safe for concurrent use.
type Budget struct {
	opts      Options
	goLimit   int64 // the Go memory limit Apply sets
	threshold int64 // use from which clients are throttled

	applyMu   sync.Mutex
	applied   bool
	prevLimit int64

	sampleMu   sync.Mutex
	samples    []metrics.Sample
	nextSample atomic.Int64 // unix nanoseconds after which the next call samples again
	used       atomic.Int64 // bytes at the last sample
	throttle   atomic.Int64 // nanoseconds, from the last sample
	throttled  atomic.Uint64
}

// The runtime/metrics that make up the use the throttle looks at.
var sampleNames = []string{
	"/gc/heap/live:bytes",                // heap held by reachable objects at the last GC
	"/memory/classes/heap/stacks:bytes",  // goroutine stacks
	"/memory/classes/os-stacks:bytes",    // stacks of threads the OS allocated
	"/memory/classes/heap/objects:bytes", // not summed: a floor for live before the first GC
}

// New checks o and returns a budget; nothing changes in the process until Apply.
func New(o Options) (*Budget, error) {
	if o.MaxBytes != 0 && o.MaxBytes < MinBytes {
		return nil, fmt.Errorf("%w: %d bytes (at least %d, or 0 for none)", ErrInvalid, o.MaxBytes, MinBytes)
	}
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, o.MaxBytes)
	}
	if o.ThrottlePercent == 0 {
		o.ThrottlePercent = DefaultThrottlePercent
	}
	if o.ThrottlePercent < 1 || o.ThrottlePercent > 100 {
		return nil, fmt.Errorf("%w: throttle percent %d (1 to 100)", ErrInvalid, o.ThrottlePercent)
	}
	if o.MinThrottle <= 0 {
		o.MinThrottle = DefaultMinThrottle
	}
	if o.MaxThrottle <= 0 {
		o.MaxThrottle = DefaultMaxThrottle
	}
	if o.MaxThrottle < o.MinThrottle {
		return nil, fmt.Errorf("%w: max throttle %s below min throttle %s", ErrInvalid, o.MaxThrottle, o.MinThrottle)
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = DefaultSampleEvery
	}
	b := &Budget{opts: o, samples: make([]metrics.Sample, len(sampleNames))}
	for i, name := range sampleNames {
		b.samples[i].Name = name
	}
	if o.MaxBytes > 0 {
		b.goLimit = o.MaxBytes - b.Share(Cleaner) - b.Share(TieredReads)
		b.threshold = b.goLimit * int64(o.ThrottlePercent) / 100
	}
	return b, nil
}

// Enabled reports whether there is a budget.
func (b *Budget) Enabled() bool { return b.opts.MaxBytes > 0 }

// MaxBytes is the budget; 0 when there is none.
func (b *Budget) MaxBytes() int64 { return b.opts.MaxBytes }

// GoLimit is the Go memory limit Apply sets: the budget minus the shares that live outside
// the Go heap, the cleaner's and the tiered reads' (0 without a budget).
func (b *Budget) GoLimit() int64 { return b.goLimit }

// Threshold is the use from which clients are throttled (0 without a budget).
func (b *Budget) Threshold() int64 { return b.threshold }

// Share returns the bytes of a share of the budget; 0 without a budget.
func (b *Budget) Share(s Share) int64 {
	if !b.Enabled() || s < 0 || s >= numShares {
		return 0
	}
	return b.opts.MaxBytes / shareDivisors[s]
}

// Limit returns configured lowered to the share s, or configured itself without a budget (or
// when it is already within the share).
func (b *Budget) Limit(s Share, configured int64) int64 {
	if share := b.Share(s); share > 0 && configured > share {
		return share
	}
	return configured
}

// MQTTBytes is the MQTT bridge's share: the most its batching should hold in memory
// (0 without a budget: the bridge's own default applies).
func (b *Budget) MQTTBytes() int64 { return b.Share(MQTT) }

// Apply sets the Go memory limit to GoLimit, remembering the limit it replaces; it does
// nothing without a budget. The limit is process-wide: the last Apply wins.
func (b *Budget) Apply() {
	if !b.Enabled() {
		return
	}
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	if b.applied {
		return
	}
	b.prevLimit = debug.SetMemoryLimit(b.goLimit)
	b.applied = true
}

// Restore puts back the Go memory limit Apply replaced.
func (b *Budget) Restore() {
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	if b.applied {
		debug.SetMemoryLimit(b.prevLimit)
		b.applied = false
	}
}

// Throttle returns how long the caller's client should wait before its next request: 0 while
// the process's memory use is below the threshold (and always without a budget).
func (b *Budget) Throttle() time.Duration {
	if !b.Enabled() {
		return 0
	}
	b.sample(time.Now())
	d := time.Duration(b.throttle.Load())
	if d > 0 {
		b.throttled.Add(1)
	}
	return d
}

// Used returns the memory use at the last sample, sampling first if that one is stale:
// the live heap plus goroutine and OS thread stacks.
func (b *Budget) Used() int64 {
	b.sample(time.Now())
	return b.used.Load()
}

// sample reads the runtime's memory use unless a sample younger than SampleEvery exists or
// another goroutine is taking one.
func (b *Budget) sample(now time.Time) {
	if now.UnixNano() < b.nextSample.Load() || !b.sampleMu.TryLock() {
		return
	}
	defer b.sampleMu.Unlock()
	metrics.Read(b.samples)
	var live, stacks, objects int64
	for i, s := range b.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			continue // not in this runtime
		}
		v := int64(s.Value.Uint64())
		switch i {
		case 0:
			live = v
		case 1, 2:
			stacks += v
		case 3:
			objects = v
		}
	}
	if live == 0 { // no collection yet: everything allocated may still be live
		live = objects
	}
	used := live + stacks
	b.used.Store(used)
	b.throttle.Store(int64(b.throttleFor(used)))
	b.nextSample.Store(now.Add(b.opts.SampleEvery).UnixNano())
}

// throttleFor maps a use to a throttle time: 0 below the threshold, MinThrottle at it, growing
// linearly to MaxThrottle at the Go memory limit.
func (b *Budget) throttleFor(used int64) time.Duration {
	if !b.Enabled() || used < b.threshold {
		return 0
	}
	span := b.goLimit - b.threshold
	if span <= 0 || used >= b.goLimit {
		return b.opts.MaxThrottle
	}
	frac := float64(used-b.threshold) / float64(span)
	return b.opts.MinThrottle + time.Duration(frac*float64(b.opts.MaxThrottle-b.opts.MinThrottle))
}

// WriteMetrics writes the budget's metrics in Prometheus text format (doc.go: Metrics).
func (b *Budget) WriteMetrics(w io.Writer) {
	used := b.Used()
	over := 0
	if b.Enabled() && used >= b.threshold {
		over = 1
	}
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	gauge("samsa_memory_budget_bytes", "The memory budget, memory.max_bytes (0: none).", b.opts.MaxBytes)
	gauge("samsa_memory_go_limit_bytes", "The Go memory limit the budget sets (0: not set by the budget).", b.goLimit)
	gauge("samsa_memory_used_bytes", "Live Go heap at the last collection plus goroutine and thread stacks.", used)
	gauge("samsa_memory_throttle_threshold_bytes", "Memory use from which Kafka clients are throttled (0: never).", b.threshold)
	gauge("samsa_memory_throttled", "1 while the memory use is at or above the threshold.", int64(over))
	fmt.Fprintf(w, "# HELP samsa_memory_throttles_total Kafka responses that carried a throttle because of the budget.\n"+
		"# TYPE samsa_memory_throttles_total counter\nsamsa_memory_throttles_total %d\n", b.throttled.Load())
	fmt.Fprintf(w, "# HELP samsa_memory_share_bytes The budget's shares (0: no budget).\n# TYPE samsa_memory_share_bytes gauge\n")
	for s := range numShares {
		fmt.Fprintf(w, "samsa_memory_share_bytes{share=%q} %d\n", s.String(), b.Share(s))
	}
}
