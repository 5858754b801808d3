package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// TestSmoke runs the whole program for 3 s at 1 MB/s with the gateway profile and checks the
// tables, the JSON and that the agent took every record and stopped cleanly. It asserts
// nothing about memory or speed.
func TestSmoke(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "edge.json")
	sizes := filepath.Join(t.TempDir(), "sizes.tsv")
	if err := os.WriteFile(sizes, []byte("samsa-linux-arm64\tlinux/arm64\t14942370\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := benchkit.RunSmoke(t, 5*time.Minute, run, "-duration", "3s", "-rate", "1MB", "-idle-wait", "200ms", "-dir", t.TempDir(),
		"-sizes", sizes, "-json", jsonPath)
	benchkit.CheckOutput(t, out, "### Memory: industrial-gateway-256mb.yaml", "| idle RSS", "| peak RSS under load (VmHWM)",
		"### Binary sizes", "| samsa-linux-arm64 | linux/arm64 | 14942370 |", "the arm64 agent under 20 MB: met")
	var r result
	benchkit.ReadJSON(t, jsonPath, &r)
	if r.Load.Records == 0 || r.Load.Errors != 0 || r.IdleRSS == 0 || r.PeakHWM < r.IdleRSS || !r.CleanStop ||
		r.Metrics["samsa_memory_budget_bytes"] != 40<<20 {
		t.Fatalf("result: %+v", r)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"5MB": 5_000_000, "500kB": 500_000, "1.5MB": 1_500_000, "1234": 1234} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseRate("fast"); err == nil {
		t.Error("parseRate(fast) accepted")
	}
}
