package commitlog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// kv is one record of a test batch; a nil value is a tombstone.
type kv struct {
	key   string
	value []byte
}

// kvBatch builds a batch of records with the given codec and producer fields.
func kvBatch(t testing.TB, codec batch.Codec, ts int64, opts batch.BuildOptions, recs ...kv) []byte {
	t.Helper()
	opts.Codec = codec
	b := batch.NewBuilder(opts)
	for _, r := range recs {
		b.Add(ts, []byte(r.key), r.value, nil)
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var noProducer = batch.BuildOptions{ProducerID: -1}

var testCodecs = []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}

// sealAll rolls the active segment and flushes, so everything appended may be compacted.
func sealAll(t testing.TB, l *Log) {
	t.Helper()
	l.mu.Lock()
	err := l.rollLocked(l.config())
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
}

// latestByKey reads the log and checks that every key appears once; it returns key -> value
// (nil for a tombstone).
func latestByKey(t testing.TB, l *Log) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	prev := int64(-1)
	for _, r := range readAll(t, l) {
		if r.Offset <= prev {
			t.Fatalf("offsets not increasing: %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		if _, dup := out[string(r.Key)]; dup {
			t.Fatalf("key %q appears twice after compaction (again at offset %d)", r.Key, r.Offset)
		}
		out[string(r.Key)] = r.Value
	}
	return out
}

// produceUpdates appends n updates over keys keys (codecs rotating, 10 records a batch) and
// returns the latest value of each key.
func produceUpdates(t testing.TB, l *Log, n, keys int, ts int64) map[string][]byte {
	t.Helper()
	want := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i += 10 {
		var recs []kv
		for j := i; j < i+10 && j < n; j++ {
			k := fmt.Sprintf("key-%d", rng.IntN(keys))
			v := []byte(fmt.Sprintf("value-%d-%s", j, strings.Repeat("x", j%7)))
			recs = append(recs, kv{k, v})
			want[k] = v
		}
		if _, err := l.Append(kvBatch(t, testCodecs[(i/10)%len(testCodecs)], ts, noProducer, recs...)); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

func checkLatest(t testing.TB, l *Log, want map[string][]byte) {
	t.Helper()
	got := latestByKey(t, l)
	if len(got) != len(want) {
		t.Fatalf("%d keys after compaction, want %d", len(got), len(want))
	}
	for k, v := range want {
		if string(got[k]) != string(v) {
			t.Fatalf("key %q: %q after compaction, want the latest %q", k, got[k], v)
		}
	}
}

func compactTopic(t testing.TB, s *Store, extra map[string]string) *Log {
	cfg := map[string]string{"cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"}
	for k, v := range extra {
		cfg[k] = v
	}
	return oneTopic(t, s, cfg)
}

func TestCompactionKeepsTheLatestValuePerKey(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := compactTopic(t, s, nil)
	want := produceUpdates(t, l, 5000, 100, time.Now().UnixMilli())
	sealAll(t, l)
	end, sizeBefore, segsBefore := l.LogEndOffset(), l.Size(), l.NumSegments()
	if err := s.RunCleaner(); err != nil {
		t.Fatal(err)
	}
	checkLatest(t, l, want)
	if l.LogEndOffset() != end || l.LogStartOffset() != 0 {
		t.Fatalf("compaction moved the offsets: %d..%d, want 0..%d", l.LogStartOffset(), l.LogEndOffset(), end)
	}
	if l.Size() >= sizeBefore/4 || l.NumSegments() >= segsBefore {
		t.Fatalf("compaction kept %d of %d bytes in %d of %d segments", l.Size(), sizeBefore, l.NumSegments(), segsBefore)
	}
	// More updates, compacted again on top of the clean part.
	for k, v := range produceUpdates(t, l, 3000, 150, time.Now().UnixMilli()) {
		want[k] = v
	}
	sealAll(t, l)
	if err := s.RunCleaner(); err != nil {
		t.Fatal(err)
	}
	checkLatest(t, l, want)
	// A clean restart and an unclean one read the same.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, Options{})
	checkLatest(t, s.Topic("t").Partition(0), want)
	crash(t, s)
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	checkLatest(t, l, want)
	if res, err := l.Append(kvBatch(t, batch.CodecNone, 1, noProducer, kv{"new", []byte("v")})); err != nil || res.BaseOffset != end+3000 {
		t.Fatalf("append after compaction and restart: %+v, %v", res, err)
	}
}

func TestCompactionRemovesTombstonesAfterDeleteRetention(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := openTestStore(t, t.TempDir(), Options{Now: clock.Now})
	defer s.Close()
	l := compactTopic(t, s, map[string]string{"delete.retention.ms": "60000"})
	now := clock.Now().UnixMilli()
	want := produceUpdates(t, l, 2000, 50, now)
	for i := 0; i < 10; i++ {
		k := fmt.Sprintf("key-%d", i)
		if _, err := l.Append(kvBatch(t, batch.CodecLZ4, now, noProducer, kv{k, nil})); err != nil {
			t.Fatal(err)
		}
		want[k] = nil
	}
	sealAll(t, l)
	if err := s.RunCleaner(); err != nil {
		t.Fatal(err)
	}
	got := latestByKey(t, l)
	for i := 0; i < 10; i++ {
		if v, ok := got[fmt.Sprintf("key-%d", i)]; !ok || v != nil {
			t.Fatalf("key-%d: tombstone gone before delete.retention.ms (present %v, value %q)", i, ok, v)
		}
	}
	clock.advance(2 * time.Minute)
	if err := s.RunCleaner(); err != nil { // due because a kept tombstone expired
		t.Fatal(err)
	}
	got = latestByKey(t, l)
	for k, v := range want {
		g, ok := got[k]
		if v == nil && ok {
			t.Fatalf("%s: deleted key still there after delete.retention.ms", k)
		}
		if v != nil && string(g) != string(v) {
			t.Fatalf("%s = %q, want %q", k, g, v)
		}
	}
	if len(got) != 40 {
		t.Fatalf("%d keys left, want 40", len(got))
	}
}

func TestCompactionKeepsIdempotentProducerState(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := compactTopic(t, s, nil)
	pid := int64(42)
	var seq int32
	var last []byte
	for i := 0; i < 300; i++ { // the same two keys over and over: most batches empty out
		last = kvBatch(t, testCodecs[i%len(testCodecs)], time.Now().UnixMilli(), batch.BuildOptions{ProducerID: pid, ProducerEpoch: 3, BaseSequence: seq},
			kv{"a", []byte(fmt.Sprint("a", i))}, kv{"b", []byte(fmt.Sprint("b", i))})
		if _, err := l.Append(append([]byte(nil), last...)); err != nil {
			t.Fatal(err)
		}
		seq += 2
	}
	sealAll(t, l)
	if err := s.RunCleaner(); err != nil {
		t.Fatal(err)
	}
	checkLatest(t, l, map[string][]byte{"a": []byte("a299"), "b": []byte("b299")})
	// Kept batches carry their producer fields unchanged.
	res, err := l.Read(0, 1<<20, true, ReadToHighWatermark)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, res.Ranges[0].Len)
	res.Ranges[0].File.ReadAt(buf, res.Ranges[0].Pos)
	res.Release()
	batch.Split(buf, func(b []byte) error {
		h, err := batch.Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.ProducerID != pid || h.ProducerEpoch != 3 || int64(h.BaseSequence) != h.BaseOffset {
			t.Fatalf("batch at %d: producer %d/%d seq %d", h.BaseOffset, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil
	})
	// Replaying the compacted log (no snapshots) still knows the producer's sequence.
	crash(t, s)
	snaps, _ := filepath.Glob(filepath.Join(l.Dir(), "*.snapshot"))
	for _, p := range snaps {
		os.Remove(p)
	}
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	if r, err := l.Append(last); err != nil || !r.Duplicate {
		t.Fatalf("retry of the last batch after compaction and replay: %+v, %v; want a duplicate", r, err)
	}
	next := kvBatch(t, batch.CodecNone, time.Now().UnixMilli(), batch.BuildOptions{ProducerID: pid, ProducerEpoch: 3, BaseSequence: seq}, kv{"a", []byte("next")})
	if _, err := l.Append(next); err != nil {
		t.Fatalf("next sequence after compaction and replay: %v", err)
	}
}

func TestCompactionWithASmallKeyMapWorksInParts(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{CleanerBufferBytes: minCleanerBufferBytes})
	defer s.Close()
	l := compactTopic(t, s, nil)
	capacity := newKeyMap(minCleanerBufferBytes).capacity()
	keys := capacity * 3
	want := produceUpdates(t, l, keys*4, keys, time.Now().UnixMilli())
	sealAll(t, l)
	if err := s.RunCleaner(); err != nil {
		t.Fatal(err)
	}
	if p := s.cleaner.passes.Load(); p < 3 {
		t.Fatalf("%d passes with a key map of %d keys for %d keys; want several", p, capacity, keys)
	}
	checkLatest(t, l, want)
}

func TestCleanerCrashLeavesOldOrNewSegments(t *testing.T) {
	for _, stage := range []string{"written", "committed"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, Options{})
			l := compactTopic(t, s, map[string]string{"segment.bytes": "2048"})
			want := produceUpdates(t, l, 3000, 60, time.Now().UnixMilli())
			sealAll(t, l)
			before := len(readAll(t, l))
			crashes := 0
			cleanerCrashAt = func(st string) bool {
				if st == stage && crashes == 0 {
					crashes++
					return true
				}
				return false
			}
			t.Cleanup(func() { cleanerCrashAt = nil })
			if err := s.RunCleaner(); !errors.Is(err, errSimulatedCrash) {
				t.Fatalf("RunCleaner: %v, want the simulated crash", err)
			}
			crash(t, s)
			s = openTestStore(t, dir, Options{})
			defer s.Close()
			l = s.Topic("t").Partition(0)
			leftovers, _ := filepath.Glob(filepath.Join(l.Dir(), "*.*.*"))
			if len(leftovers) > 0 {
				t.Fatalf("rewrite files left after restart: %v", leftovers)
			}
			recs := readAll(t, l)
			if stage == "written" && len(recs) != before {
				t.Fatalf("crash before the commit: %d records, want the %d of the old segments", len(recs), before)
			}
			if stage == "committed" && len(recs) >= before {
				t.Fatalf("crash after the commit: %d records, want the first group compacted (< %d)", len(recs), before)
			}
			last := map[string][]byte{}
			for _, r := range recs {
				last[string(r.Key)] = r.Value
			}
			for k, v := range want {
				if string(last[k]) != string(v) {
					t.Fatalf("%s = %q after the crash, want %q", k, last[k], v)
				}
			}
			if err := s.RunCleaner(); err != nil {
				t.Fatal(err)
			}
			checkLatest(t, l, want)
		})
	}
}

func TestCompactedTopicRefusesRecordsWithoutKey(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := compactTopic(t, s, nil)
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1, Codec: batch.CodecLZ4})
	b.Add(1, []byte("k"), []byte("v"), nil)
	b.Add(1, nil, []byte("no key"), nil)
	data, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(data); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("append of a keyless record to a compacted topic: %v, want ErrInvalidRecord", err)
	}
	if l.LogEndOffset() != 0 {
		t.Fatalf("a refused batch was appended: log end %d", l.LogEndOffset())
	}
}
