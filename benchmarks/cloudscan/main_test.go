package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
	"github.com/samsa-io/samsa/internal/testminio"
)

// TestSmoke runs the whole program on a tiny archive (about 4 MiB in 512 KiB segments, two
// partitions) with a real MinIO and agent, and checks the table and the JSON: every query
// decoded every archived record and every mode read every .log byte. It asserts nothing
// about speed.
func TestSmoke(t *testing.T) {
	testminio.Binary(t) // skips without MinIO (fails when CI is set)
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	work := t.TempDir()
	out := benchkit.RunSmoke(t, 5*time.Minute, run, "-size", "4MiB", "-segment-bytes", "512KiB", "-partitions", "2", "-runs", "2",
		"-chunk", "256KiB", "-dir", work, "-json", jsonPath)
	benchkit.CheckOutput(t, out, "| mode | MB/s | records/s | ÷ raw parallel |", "| raw GET, sequential |",
		"| raw GET, parallel | ", "| query, counting sink | ", "| query, jsonl → discard | ", "| query, counting, 1 decoder | ",
		"Target (query ≥ 70% of the raw download", "lz4 compression", "2 partitions")
	var rep report
	benchkit.ReadJSON(t, jsonPath, &rep)
	a := rep.Archive
	if a.Records == 0 || a.Segments < 4 || a.LogBytes < 3<<20 || a.Records > a.Produced || a.Batches == 0 {
		t.Errorf("archive %+v", a)
	}
	if len(rep.Runs) != 2*len(modes) {
		t.Fatalf("%d runs, want %d", len(rep.Runs), 2*len(modes))
	}
	for _, r := range rep.Runs {
		if r.LogBytes != a.LogBytes || r.Seconds <= 0 || r.MBps <= 0 {
			t.Errorf("run %+v: read %d bytes, the archive has %d", r, r.LogBytes, a.LogBytes)
		}
		if strings.HasPrefix(r.Mode, "query") && r.Records != a.Records {
			t.Errorf("%s decoded %d records, the archive has %d", r.Mode, r.Records, a.Records)
		}
		if r.Mode == modeQueryJSONL && r.OutputSize < a.Records*50 {
			t.Errorf("jsonl wrote %d bytes for %d records", r.OutputSize, a.Records)
		}
	}
	if rep.Ratio <= 0 || rep.Median[modeQueryCount].RecPerSec <= 0 {
		t.Errorf("summary %v %+v", rep.Ratio, rep.Median)
	}
	if ents, err := os.ReadDir(work); err != nil || len(ents) == 0 {
		t.Errorf("work directory: %v %v", ents, err)
	}
}
