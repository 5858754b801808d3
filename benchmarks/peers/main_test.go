package main

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// TestSmoke runs the whole program with tiny counts against a real agent and a real
// nats-server, and checks the table and the JSON. It asserts nothing about speed.
func TestSmoke(t *testing.T) {
	benchkit.RequireTool(t, func() error { _, err := findNATSServer(""); return err })
	benchkit.RequireTool(t, func() error { _, err := exec.LookPath("go"); return err })
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	out := benchkit.RunSmoke(t, 3*time.Minute, run, "-records", "2000", "-latency-duration", "1s", "-latency-warmup", "200ms",
		"-idle-wait", "100ms", "-latency-rate", "2000", "-json", jsonPath, "-work-dir", t.TempDir())
	benchkit.CheckOutput(t, out,
		"| metric | samsa fsync=interval | samsa fsync=always | nats-server JetStream | ratio samsa ÷ JetStream | target | met? |",
		"| produce 100 B, msgs/s |", "| consume 1 KiB, MB/s |", "| produce latency p99 @ 2,000 msgs/s, ms |",
		"| server peak RSS, produce tests, MiB |", "Targets met:",
		"| group consume 100 B, 3 members, 6 partitions, msgs/s |", "| group rebalance, 3rd member joins (range), ms |",
	)
	checkJSON(t, jsonPath)
}

func checkJSON(t *testing.T, path string) {
	t.Helper()
	var rep report
	benchkit.ReadJSON(t, path, &rep)
	if len(rep.Results) != 3 {
		t.Fatalf("JSON has %d results, want 3", len(rep.Results))
	}
	for _, r := range rep.Results {
		for name, tp := range map[string]throughput{"produce 100 B": r.Produce100, "produce 1 KiB": r.Produce1K,
			"consume 100 B": r.Consume100, "consume 1 KiB": r.Consume1K} {
			if tp.Records != 2000 || !(tp.MsgsPerSec > 0) {
				t.Errorf("%s %s: %+v", r.Name, name, tp)
			}
		}
		if r.Latency.Messages != 2000 || !(r.Latency.P99 > 0) || r.Latency.P99 < r.Latency.P50 {
			t.Errorf("%s latency: %+v", r.Name, r.Latency)
		}
		if r.Memory == nil || !(r.Memory.IdleRSS > 0) || r.Memory.PeakRSS < r.Memory.PeakRSSProduce {
			t.Errorf("%s memory: %+v", r.Name, r.Memory)
		}
		if g := r.Group; r.Name != srvJetStream && (g == nil || g.Consume.Records != 2000 || !(g.Rebalance["range"] > 0) ||
			len(g.RebalanceTrials["cooperative-sticky"]) != groupTrials) {
			t.Errorf("%s group: %+v", r.Name, g)
		}
	}
	if len(rep.Targets) == 0 || rep.Meta.NATSServerVersion == "" || rep.Meta.NProc == 0 {
		t.Errorf("JSON meta/targets incomplete: %+v %+v", rep.Meta, rep.Targets)
	}
}

// TestPacing checks the burst schedule: message i is planned at i/rate rounded up to a tick,
// and due(elapsed) counts exactly the messages planned at or before elapsed.
func TestPacing(t *testing.T) {
	r := newLatencyRecorder(paceConfig{rate: 10_000, duration: time.Second})
	for _, c := range []struct {
		i    int
		want time.Duration
	}{{0, 0}, {1, time.Millisecond}, {10, time.Millisecond}, {11, 2 * time.Millisecond}, {10_000, time.Second}} {
		if got := r.planned(c.i); got != c.want {
			t.Errorf("planned(%d) = %v, want %v", c.i, got, c.want)
		}
	}
	for _, el := range []time.Duration{0, 999 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, time.Second} {
		n := r.due(el)
		if n < 1 || r.planned(n-1) > el || r.planned(n) <= el {
			t.Errorf("due(%v) = %d: planned(%d) = %v, planned(%d) = %v", el, n, n-1, r.planned(n-1), n, r.planned(n))
		}
	}
}

// TestSummarize checks that the warm-up is dropped and percentiles pick the right samples.
func TestSummarize(t *testing.T) {
	p := paceConfig{rate: 100, warmup: time.Second, duration: time.Second} // 100 warm-up + 100 measured
	lat := make([]time.Duration, p.total())
	for i := range lat {
		lat[i] = time.Hour // warm-up: must not show
	}
	for i := 100; i < 200; i++ {
		lat[i] = time.Duration(200-i) * time.Millisecond // 100 ms .. 1 ms
	}
	s := summarize(p, lat)
	if s.Messages != 100 || s.P50 != 50 || s.P99 != 99 || s.Max != 100 {
		t.Errorf("summarize = %+v, want 100 messages, p50 50 ms, p99 99 ms, max 100 ms", s)
	}
}
