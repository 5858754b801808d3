package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // failure bound only
	defer cancel()
	args := []string{"-duration", "3s", "-rate", "1MB", "-idle-wait", "200ms", "-dir", t.TempDir(),
		"-sizes", sizes, "-json", jsonPath}
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"### Memory: industrial-gateway-256mb.yaml", "| idle RSS", "| peak RSS under load (VmHWM)",
		"### Binary sizes", "| samsa-linux-arm64 | linux/arm64 | 14942370 |", "the arm64 agent under 20 MB: met"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
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
