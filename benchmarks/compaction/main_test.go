package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// TestMain lets the test binary be the cleaner child that run starts (it re-executes itself).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := childMain(os.Args[1:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "compaction child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole program on a 16 MiB log (1 MiB segments, 2,000 keys) and checks
// the table, the JSON and that compaction left every key exactly once. It asserts nothing
// about speed.
func TestSmoke(t *testing.T) {
	work := t.TempDir()
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	out := benchkit.RunSmoke(t, 5*time.Minute, run, "-size", "16MiB", "-segment-bytes", "1MiB", "-keys", "2000", "-codec", "zstd",
		"-drop-caches=false", "-dir", work, "-json", jsonPath)
	benchkit.CheckOutput(t, out,
		"| metric | value |", "| **compaction throughput, MB/s** (sealed bytes before ÷ wall time) | **",
		"| **cleaner peak RSS (VmHWM of the child), MiB** | **", "| every key exactly once after compaction | yes |",
		"| distinct keys (sealed segments) | 2,000 |", "| key map budget (-buffer), MiB | 16.0 |",
		"raw sequential read of the sealed files, warm cache", "- Shape: one partition, cleanup.policy=compact, segment.bytes 1MiB;",
		"(zstd)", "msg=compacted", "Page cache: -drop-caches=false", "| compacted up to offset (cleaner checkpoint) / end of the sealed segments | ",
	)
	if strings.Contains(out, "**no**") {
		t.Errorf("output has a failed check:\n%s", out)
	}
	if ents, err := os.ReadDir(work); err != nil || len(ents) != 0 {
		t.Errorf("the temporary data directory was not removed: %v %v", ents, err)
	}
	checkJSON(t, jsonPath)
}

func checkJSON(t *testing.T, path string) {
	t.Helper()
	var r report
	benchkit.ReadJSON(t, path, &r)
	b, a, c, sh := r.Before, r.After, r.Cleaner, r.Shape
	const size = 16 << 20
	if b.SealedBytes < size-(1<<20) || b.SealedBytes > size+(1<<20) || b.SealedSegments < 15 || b.Segments != b.SealedSegments+1 {
		t.Errorf("before: %+v, want about 16 MiB in about 16 sealed segments and one active", b)
	}
	if sh.KeysWritten != 2000 || sh.SealedKeys != 2000 || sh.Records != b.Records || sh.Records < 10*2000 || sh.Codec != "zstd" {
		t.Errorf("shape: %+v (before: %+v)", sh, b)
	}
	if a.DistinctKeys != sh.SealedKeys || a.DuplicateRecords != 0 || a.SealedRecords != int64(a.DistinctKeys) ||
		a.SealedBytes >= b.SealedBytes || a.Records != a.SealedRecords+int64(sh.BatchRecords) {
		t.Errorf("after: %+v, want every one of %d keys once in less than %d bytes", a, sh.SealedKeys, b.SealedBytes)
	}
	if r.RemovedRecords != b.SealedRecords-a.SealedRecords || r.RemovedRecords <= 0 {
		t.Errorf("removed records %d, before %d, after %d", r.RemovedRecords, b.SealedRecords, a.SealedRecords)
	}
	if c.Passes < 1 || c.Errors != 0 || c.ReadBytes < b.SealedBytes || c.WrittenBytes <= 0 || c.SegmentsRewritten < 1 {
		t.Errorf("cleaner counters: %+v", c)
	}
	if !(c.Seconds > 0) || !(c.MBPerSec > 0) || !(c.OpenSeconds > 0) || c.UserCPUSeconds+c.SysCPUSeconds <= 0 {
		t.Errorf("cleaner times: %+v", c)
	}
	if !(c.RSSAfterOpen > 0) || c.PeakRSS < c.RSSAfterOpen || !(c.PeakAnon > 0) || !(c.PeakHeap > 0) || c.KeyMapMiB != 16 {
		t.Errorf("cleaner memory: %+v", c)
	}
	if r.ReadCold != nil || r.CleanerCold || !(r.ReadWarm.MBPerSec > 0) || r.ReadWarm.Bytes != b.SealedBytes {
		t.Errorf("reads: cold %+v, warm %+v, cleaner cold %v", r.ReadCold, r.ReadWarm, r.CleanerCold)
	}
	if r.FirstDirty != r.SealedEnd || r.SealedEnd != sh.Records-int64(sh.BatchRecords) {
		t.Errorf("first dirty %d, sealed end %d, records %d", r.FirstDirty, r.SealedEnd, sh.Records)
	}
	if r.Meta.NProc == 0 || r.Meta.Command == "" || r.Options["codec"] != "zstd" {
		t.Errorf("meta/options incomplete: %+v %+v", r.Meta, r.Options)
	}
}

// TestSmokeKeyMapFull runs with a key map far too small for the keys: the cleaner compacts
// part of the log per pass and the report says so instead of flagging a failure.
func TestSmokeKeyMapFull(t *testing.T) {
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	out := benchkit.RunSmoke(t, 5*time.Minute, run, "-size", "4MiB", "-segment-bytes", "256KiB", "-keys", "10000", "-buffer", "64KiB",
		"-drop-caches=false", "-dir", t.TempDir(), "-json", jsonPath)
	if !strings.Contains(out, "| every key exactly once after compaction | no: the key map filled up;") || strings.Contains(out, "**no**") {
		t.Errorf("output does not explain the partial compaction:\n%s", out)
	}
	var r report
	benchkit.ReadJSON(t, jsonPath, &r)
	if r.FirstDirty <= 0 || r.FirstDirty >= r.SealedEnd || r.Cleaner.Passes < 1 || r.After.SealedRecords >= r.Before.SealedRecords {
		t.Errorf("first dirty %d of %d, passes %d, records %d -> %d", r.FirstDirty, r.SealedEnd, r.Cleaner.Passes,
			r.Before.SealedRecords, r.After.SealedRecords)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-size", "512MiB", "-buffer", "64KiB", "-segment-bytes", "1048576"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.size != 512<<20 || o.buffer != 64<<10 || o.segmentBytes != 1<<20 || o.codec != "lz4" || o.keys != 100_000 {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range [][]string{{"-size", "1TB"}, {"-size", "-1"}, {"-codec", "brotli"}, {"-value-min", "10", "-value-max", "5"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// TestValues checks the generated keys and values: keys look like MQTT topics, values are
// JSON of about their key's fixed length.
func TestValues(t *testing.T) {
	if got := string(keyName(123)); got != "plant3/line27/sensor000123" {
		t.Errorf("keyName(123) = %q", got)
	}
	sh := &shape{Keys: 50, ValueMin: 100, ValueMax: 1000}
	g := newValueGen(sh, newRand(1))
	for k := range sh.Keys {
		for range 3 {
			v := g.value(k, keyName(k), 1763771234567)
			if n, want := len(v), int(g.size[k]); n < want-8 || n > want+1 {
				t.Errorf("key %d: value of %d bytes, want about %d", k, n, want)
			}
			var doc struct {
				ID  string    `json:"id"`
				Seq int       `json:"seq"`
				V   []float64 `json:"v"`
			}
			if err := json.Unmarshal(v, &doc); err != nil || doc.ID != string(keyName(k)) || doc.Seq < 1 || len(doc.V) == 0 {
				t.Errorf("key %d: value %s: %+v %v", k, v, doc, err)
			}
		}
	}
}
