package membudget

import (
	"errors"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestShares(t *testing.T) {
	b, err := New(Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if b.Share(Requests) != 16<<20 || b.Share(Cleaner) != 8<<20 || b.MQTTBytes() != 8<<20 {
		t.Fatalf("shares %d %d %d", b.Share(Requests), b.Share(Cleaner), b.MQTTBytes())
	}
	if b.Share(TieredReads) != 4<<20 {
		t.Fatalf("tiered reads share %d", b.Share(TieredReads))
	}
	if b.GoLimit() != 52<<20 || b.Threshold() != (52<<20)*90/100 {
		t.Fatalf("go limit %d threshold %d", b.GoLimit(), b.Threshold())
	}
	if got := b.Limit(Requests, 128<<20); got != 16<<20 {
		t.Fatalf("Limit lowers: %d", got)
	}
	if got := b.Limit(Requests, 1<<20); got != 1<<20 {
		t.Fatalf("Limit never raises: %d", got)
	}

	none, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if none.Enabled() || none.Limit(Requests, 128<<20) != 128<<20 || none.MQTTBytes() != 0 || none.Throttle() != 0 {
		t.Fatal("no budget must change nothing")
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{MaxBytes: 1 << 20},
		{MaxBytes: -1},
		{MaxBytes: MinBytes, ThrottlePercent: 101},
		{MaxBytes: MinBytes, MinThrottle: time.Second, MaxThrottle: time.Millisecond},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", o, err)
		}
	}
}

func TestThrottleFor(t *testing.T) {
	b, err := New(Options{MaxBytes: 96 << 20, ThrottlePercent: 50}) // go limit 96-12-6 = 78 MiB, threshold 39 MiB
	if err != nil {
		t.Fatal(err)
	}
	if b.GoLimit() != 78<<20 || b.Threshold() != 39<<20 {
		t.Fatalf("go limit %d threshold %d", b.GoLimit(), b.Threshold())
	}
	for _, c := range []struct {
		used int64
		want time.Duration
	}{
		{0, 0},
		{39<<20 - 1, 0},
		{39 << 20, DefaultMinThrottle},
		{(39 << 20) + (39<<20)/2, DefaultMinThrottle + (DefaultMaxThrottle-DefaultMinThrottle)/2},
		{78 << 20, DefaultMaxThrottle},
		{1 << 40, DefaultMaxThrottle},
	} {
		if got := b.throttleFor(c.used); got != c.want {
			t.Errorf("throttleFor(%d) = %s, want %s", c.used, got, c.want)
		}
	}
}

// TestThrottleFollowsLiveHeap holds more live heap than a 16 MiB budget allows: the real
// runtime metrics put the process over the budget until the memory is dropped and collected.
func TestThrottleFollowsLiveHeap(t *testing.T) {
	b, err := New(Options{MaxBytes: MinBytes, SampleEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	hold := make([]byte, 2*MinBytes)
	for i := range hold {
		hold[i] = byte(i)
	}
	runtime.GC()
	if d := b.Throttle(); d != DefaultMaxThrottle {
		t.Fatalf("holding %d bytes: throttle %s (used %d, threshold %d)", len(hold), d, b.Used(), b.Threshold())
	}
	runtime.KeepAlive(hold)
	hold = nil
	runtime.GC()
	if d := b.Throttle(); d != 0 {
		t.Fatalf("after dropping it: throttle %s (used %d, threshold %d)", d, b.Used(), b.Threshold())
	}
	var w strings.Builder
	b.WriteMetrics(&w)
	for _, want := range []string{"samsa_memory_budget_bytes 16777216", "samsa_memory_throttles_total 1", `samsa_memory_share_bytes{share="mqtt"} 2097152`} {
		if !strings.Contains(w.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, w.String())
		}
	}
}

func TestApplyRestore(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	b, err := New(Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	b.Apply()
	if got := debug.SetMemoryLimit(-1); got != b.GoLimit() {
		t.Fatalf("limit after Apply %d, want %d", got, b.GoLimit())
	}
	b.Restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit after Restore %d, want %d", got, before)
	}
}
