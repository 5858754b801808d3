package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
	"github.com/samsa-io/samsa/internal/testminio"
	"github.com/samsa-io/samsa/tiering"
)

// TestSmoke runs the whole program on 12 MiB (5 MiB segments: two chunks each) against a real
// MinIO and a real agent, and checks the tables and the JSON: every record read back through
// the agent byte for byte, every byte uploaded. It asserts nothing about speed.
func TestSmoke(t *testing.T) {
	testminio.Binary(t) // skips without MinIO (fails when CI is set or SAMSA_MINIO_BIN is missing)
	benchkit.RequireTool(t, func() error { _, err := exec.LookPath("go"); return err })
	work := t.TempDir()
	jsonPath := filepath.Join(t.TempDir(), "results.json")
	out := benchkit.RunSmoke(t, 5*time.Minute, run, "-bytes", "12MiB", "-segment-bytes", "5MiB", "-rounds", "1", "-dir", work, "-json", jsonPath)
	benchkit.CheckOutput(t, out,
		"| operation (median of 1 round) | samsa | ceiling | samsa ÷ ceiling | target | met? |",
		"| upload, MB/s |", "(PutObject loop + the agent's manifest PUT after each segment)", "| cold read, one franz-go consumer, MB/s |", "(GetObject loop, 4MiB ranges)",
		"| cold read, bare Fetch requests (no record decoding), MB/s |", "| read again in the same agent, every chunk in its memory (no GETs), one franz-go consumer, MB/s |",
		"Cold reads (tiering.read_ahead_bytes 32MiB): the agent's GETs fetched 1.00× the .log bytes; 0 chunks written to the on-disk chunk cache.",
		"| 1 | samsa, read again (memory), franz-go |",
		"| read from the agent's local segments, one franz-go consumer", "| 1 | samsa cold, raw Fetch |", "Targets met: ",
		"- Log: one partition of a remote.storage.enable topic, segment.bytes 5MiB; 12,288 records of 1KiB",
	)
	if ents, err := os.ReadDir(work); err != nil || len(ents) != 0 {
		t.Errorf("the work directory was not removed: %v %v", ents, err)
	}
	checkJSON(t, jsonPath)
}

func checkJSON(t *testing.T, path string) {
	t.Helper()
	var r report
	benchkit.ReadJSON(t, path, &r)
	const records = 12 << 10
	l := r.Log
	if l.Records != records || l.Segments != 3 || l.LogBytes < 12<<20 || l.LogBytes > 13<<20 || l.IndexBytes == 0 ||
		l.UploadBytes != l.LogBytes+l.IndexBytes+l.TimeIndexBytes {
		t.Errorf("log: %+v, want 12,288 records in 3 segments of about 12 MiB", l)
	}
	if lr := r.LocalRead; !lr.Verified || lr.Records != records || lr.LastOffset != records-1 || !(lr.MBPerSec > 0) {
		t.Errorf("local read: %+v", lr)
	}
	if len(r.Upload) != 1 || len(r.Read) != 1 {
		t.Fatalf("%d upload and %d read rounds, want 1 and 1", len(r.Upload), len(r.Read))
	}
	u := r.Upload[0]
	if s := u.Samsa; s.Bytes != l.UploadBytes || s.Segments != int64(l.Segments) || s.Errors != 0 || !s.ManifestChecked ||
		!(s.MBPerSec > 0) || !(s.PutSeconds > 0) || s.PutSeconds > s.Seconds || !strings.HasPrefix(s.Timing, "agent log") {
		t.Errorf("samsa upload: %+v", s)
	}
	if c := u.Ceiling; c.Bytes != l.UploadBytes || c.Requests != 3*l.Segments || !(c.MBPerSec > 0) {
		t.Errorf("ceiling upload: %+v", c)
	}
	if c := u.CeilingManifests; c.Bytes != l.UploadBytes || c.Requests != 4*l.Segments || !(c.MBPerSec > 0) {
		t.Errorf("ceiling upload with manifests: %+v", c)
	}
	x := r.Read[0]
	// The default read_ahead_bytes (32 MiB: 8 slots) holds every chunk of this log: each is
	// fetched once, served from memory and never written to the disk cache.
	for name, s := range map[string]readRun{"franz-go": x.Samsa, "raw Fetch": x.Raw} {
		if !s.Verified || s.Records != records || s.LastOffset != records-1 || s.BatchBytes < l.LogBytes || !(s.MBPerSec > 0) ||
			s.CacheMisses < 1 || s.RemoteGetBytes != l.LogBytes || s.RemoteReads == 0 || s.RemoteReadErrors != 0 ||
			s.CacheWrites != 0 || s.Spills != 0 || s.MemoryBytes < l.LogBytes {
			t.Errorf("samsa cold read (%s): %+v", name, s)
		}
	}
	if a := x.Samsa.Again; a == nil || !a.Verified || a.Records != records || a.Source != "memory" ||
		a.RemoteGetBytes != 0 || a.CacheMisses != 0 || a.CacheWrites != 0 || a.MemoryBytes < l.LogBytes {
		t.Errorf("second read: %+v", a)
	}
	if x.Raw.Again != nil {
		t.Errorf("a second read after the raw Fetch read: %+v", x.Raw.Again)
	}
	if l.Chunks != int64(x.Ranged.Requests) {
		t.Errorf("log: %d chunks, the ranged GET loop made %d requests", l.Chunks, x.Ranged.Requests)
	}
	if x.Whole.Bytes != l.LogBytes || x.Whole.Requests != l.Segments || x.Ranged.Bytes != l.LogBytes || x.Ranged.Requests != 2*l.Segments-1 {
		t.Errorf("ceiling reads: whole %+v, ranged %+v", x.Whole, x.Ranged)
	}
	if s := r.Summary; !(s.UploadRatio > 0) || !(s.ReadRatio > 0) || !(s.ReadRawRatio > 0) || s.ReadGetRatioMin != 1 || s.ReadGetRatioMax != 1 ||
		s.ReadCacheWrites != 0 || s.SecondReadSource != "memory" || !(s.SecondRead > 0) {
		t.Errorf("summary: %+v", s)
	}
	if r.Meta.NProc == 0 || r.Meta.Command == "" || r.Options["segment_bytes"] != "5MiB" || r.Options["read_ahead_bytes"] != "32MiB" {
		t.Errorf("meta/options incomplete: %+v %+v", r.Meta, r.Options)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-bytes", "1GiB", "-record-size", "100", "-segment-bytes", "64MiB", "-rounds", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.bytes != 1<<30 || o.recordSize != 100 || o.segmentBytes != 64<<20 || o.rounds != 5 || o.fetchMax != 8<<20 || o.readAhead != tiering.DefaultReadAheadBytes {
		t.Errorf("parsed %+v", o)
	}
	for arg, want := range map[string]int64{"0": 0, "4MiB": 4 << 20, "1GiB": 1 << 30} {
		if o, err := parseFlags([]string{"-read-ahead-bytes", arg}, io.Discard); err != nil || o.readAhead != want {
			t.Errorf("-read-ahead-bytes %s: %d, %v; want %d", arg, o.readAhead, err, want)
		}
	}
	for _, bad := range [][]string{{"-bytes", "1TB"}, {"-record-size", "8KiB"}, {"-rounds", "0"}, {"-segment-bytes", "1KiB"},
		{"-bytes", "10", "-record-size", "1KiB"}, {"-read-ahead-bytes", "1MiB"}, {"-read-ahead-bytes", "2GiB"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// TestSecondReadSource checks when a second read finds the whole log in the agent.
func TestSecondReadSource(t *testing.T) {
	const mib = 1 << 20
	b := &bench{sealed: []segmentFiles{{LogBytes: 9 * mib}, {LogBytes: 4 * mib}}} // 3 + 1 chunks
	b.rep.Log.LogBytes = 13 * mib
	for _, c := range []struct {
		readAhead, cache int64
		want             string
	}{
		{16 * mib, 256 * mib, "memory"}, {15 * mib, 256 * mib, ""}, {32 * mib, 16 * mib, "memory"},
		{0, 256 * mib, "disk cache"}, {0, 16 * mib, ""}, {4 * mib, 256 * mib, ""},
	} {
		b.o.readAhead, b.o.cacheBytes = c.readAhead, c.cache
		if got := b.secondReadSource(); got != c.want {
			t.Errorf("read-ahead %d, cache %d: %q, want %q", c.readAhead, c.cache, got, c.want)
		}
	}
	if n := b.logChunks(); n != 4 {
		t.Errorf("logChunks %d, want 4", n)
	}
}

// TestValues checks that values are defined by their offset and that neighbours differ.
func TestValues(t *testing.T) {
	g, g2 := newValueGen(1024, 7), newValueGen(1024, 7)
	for i := range int64(1000) {
		v := g.value(i)
		if len(v) != 1024 || cap(v) != 1024 || !bytes.Equal(v, g2.value(i)) {
			t.Fatalf("value(%d): %d bytes (cap %d), equal to another generator's: %v", i, len(v), cap(v), bytes.Equal(v, g2.value(i)))
		}
		if bytes.Equal(v, g.value(i+1)) || bytes.Equal(v[:8], g.value(i + 1)[:8]) {
			t.Fatalf("value(%d) and value(%d) are alike", i, i+1)
		}
	}
	if bytes.Equal(g.value(0), newValueGen(1024, 8).value(0)) {
		t.Error("the seed does not change the values")
	}
}

// TestUploadTiming checks the split of an upload's time from the agent's log lines.
func TestUploadTiming(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	events := []uploadEvent{{At: ms(150), Took: 100 * time.Millisecond}, {At: ms(300), Took: 120 * time.Millisecond}}
	u := uploadRun{Bytes: 2e6}
	u.timing(t0, ms(20), ms(310), events, 2)
	near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	if !near(u.Seconds, 0.28) || !near(u.BeforeFirstPut, 0.03) || !near(u.PutSeconds, 0.22) || !near(u.BetweenSegments, 0.03) ||
		!near(u.StartupToTieringOn, 0.02) || !near(u.SpawnToDone, 0.31) || !near(u.MBPerSec, 2/0.28) {
		t.Errorf("timing: %+v", u)
	}
	u = uploadRun{Bytes: 2e6}
	u.timing(t0, time.Time{}, ms(500), events[:1], 2) // log lines missing: process start to the poll
	if !near(u.Seconds, 0.5) || !strings.HasPrefix(u.Timing, "process start") {
		t.Errorf("timing without log lines: %+v", u)
	}
}
