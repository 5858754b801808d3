package commitlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// makeBatch builds an uncompressed batch of n records with values "prefix-i" and timestamps ts+i.
func makeBatch(t testing.TB, n int, prefix string, ts int64) []byte {
	t.Helper()
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1})
	for i := 0; i < n; i++ {
		b.Add(ts+int64(i), []byte(fmt.Sprintf("k%d", i)), []byte(fmt.Sprintf("%s-%d", prefix, i)), nil)
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func openTestStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	opts.Dir = dir
	// Retention and compaction run when a test asks (RunRetention, RunCleaner), not on a timer.
	if opts.RetentionCheckInterval == 0 {
		opts.RetentionCheckInterval = time.Hour
	}
	if opts.CleanerBackoff == 0 {
		opts.CleanerBackoff = time.Hour
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readAll reads every record from offset 0 to the high watermark by following Read results.
func readAll(t testing.TB, l *Log) []batch.Record {
	t.Helper()
	var out []batch.Record
	off := l.LogStartOffset()
	for off < l.HighWatermark() {
		res, err := l.Read(off, 64<<10, true, ReadToHighWatermark)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Ranges) == 0 {
			t.Fatalf("read at %d below hw %d returned nothing", off, l.HighWatermark())
		}
		r := res.Ranges[0]
		buf := make([]byte, r.Len)
		if _, err := r.File.ReadAt(buf, r.Pos); err != nil {
			t.Fatal(err)
		}
		res.Release()
		next := off
		err = batch.Split(buf, func(b []byte) error {
			h, err := batch.ParseHeader(b)
			if err != nil {
				return err
			}
			next = max(next, h.LastOffset()+1) // compacted batches may hold no record at their end
			return batch.Records(b, func(rec *batch.Record) error {
				c := *rec
				c.Key, c.Value = bytes.Clone(rec.Key), bytes.Clone(rec.Value)
				if c.Offset >= off {
					out = append(out, c)
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if next <= off {
			t.Fatalf("read at %d made no progress", off)
		}
		off = next
	}
	return out
}

func TestAppendReadRollReopen(t *testing.T) {
	for _, pread := range []bool{false, true} {
		t.Run(fmt.Sprintf("pread=%v", pread), func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, Options{ForcePread: pread})
			topic, err := s.CreateTopic("events", 2, map[string]string{"segment.bytes": "4096", "index.interval.bytes": "256"}, false)
			if err != nil {
				t.Fatal(err)
			}
			l := topic.Partition(1)
			for i := 0; i < 200; i++ {
				res, err := l.Append(makeBatch(t, 5, fmt.Sprintf("b%d", i), int64(1000+i*10)))
				if err != nil {
					t.Fatal(err)
				}
				if res.BaseOffset != int64(i*5) || res.LastOffset != int64(i*5+4) {
					t.Fatalf("batch %d got offsets %d..%d", i, res.BaseOffset, res.LastOffset)
				}
			}
			if l.NumSegments() < 5 {
				t.Fatalf("expected rolls with segment.bytes=4096, got %d segments", l.NumSegments())
			}
			check := func(l *Log, n int) {
				t.Helper()
				recs := readAll(t, l)
				if len(recs) != n {
					t.Fatalf("read %d records, want %d", len(recs), n)
				}
				for i, r := range recs[:1000] {
					want := fmt.Sprintf("b%d-%d", i/5, i%5)
					if r.Offset != int64(i) || string(r.Value) != want {
						t.Fatalf("record %d: offset %d value %q, want %q", i, r.Offset, r.Value, want)
					}
				}
				// Read from the middle of a batch starts with the batch holding that offset.
				res, err := l.Read(502, 1, true, ReadToHighWatermark)
				if err != nil || len(res.Ranges) != 1 {
					t.Fatalf("read at 502: %v %v", res, err)
				}
				res.Release()
				off, ts, err := l.OffsetForTimestamp(1000 + 100*10 + 3)
				if err != nil || off != 503 || ts != 1000+100*10+3 {
					t.Fatalf("offset for timestamp: %d %d %v, want 503", off, ts, err)
				}
				if off, _, _ := l.OffsetForTimestamp(1 << 50); off != -1 {
					t.Fatalf("offset for a future timestamp: %d, want -1", off)
				}
				if off, ts := l.MaxTimestamp(); off != int64(n-1) || ts != 1000+199*10+4+int64(n-1000) {
					t.Fatalf("max timestamp: %d %d", off, ts)
				}
				if _, err := l.Read(int64(n+1), 100, true, ReadToHighWatermark); !errors.Is(err, ErrOffsetOutOfRange) {
					t.Fatalf("read past end: %v", err)
				}
			}
			check(l, 1000)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, cleanMarker)); err != nil {
				t.Fatalf("no clean marker after Close: %v", err)
			}
			n := 1000
			for _, clean := range []bool{true, false} {
				if !clean {
					os.Remove(filepath.Join(dir, cleanMarker)) // as after a crash
				}
				s = openTestStore(t, dir, Options{ForcePread: pread})
				l = s.Topic("events").Partition(1)
				if l.LogEndOffset() != int64(n) {
					t.Fatalf("clean=%v: reopened LEO %d, want %d", clean, l.LogEndOffset(), n)
				}
				check(l, n)
				if got := s.Topic("events").Config().SegmentBytes; got != 4096 {
					t.Fatalf("segment.bytes after reopen: %d", got)
				}
				// One more record, with the largest timestamp so far.
				res, err := l.Append(makeBatch(t, 1, "after", 1000+199*10+4+int64(n-1000)+1))
				if err != nil || res.BaseOffset != int64(n) {
					t.Fatalf("append after reopen: %v %v", res, err)
				}
				n++
				check(l, n)
				s.Close()
			}
		})
	}
}

func TestRecoveryCutsOnlyDamagedTail(t *testing.T) {
	for _, damage := range []string{"truncate", "bitflip"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, Options{})
			topic, err := s.CreateTopic("t", 1, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			l := topic.Partition(0)
			var lastSize int
			for i := 0; i < 10; i++ {
				b := makeBatch(t, 3, fmt.Sprintf("b%d", i), 100)
				lastSize = len(b)
				if _, err := l.Append(b); err != nil {
					t.Fatal(err)
				}
			}
			segPath := segmentPath(l.Dir(), 0, ".log")
			s.Close()
			os.Remove(filepath.Join(dir, cleanMarker)) // as after a crash
			data, err := os.ReadFile(segPath)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "truncate":
				data = data[:len(data)-7]
			case "bitflip":
				data[len(data)-lastSize/2] ^= 0x10
			}
			if err := os.WriteFile(segPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			s = openTestStore(t, dir, Options{})
			defer s.Close()
			l = s.Topic("t").Partition(0)
			if l.LogEndOffset() != 27 {
				t.Fatalf("LEO after recovery %d, want 27 (only the last batch cut)", l.LogEndOffset())
			}
			recs := readAll(t, l)
			if len(recs) != 27 || string(recs[26].Value) != "b8-2" {
				t.Fatalf("after recovery read %d records", len(recs))
			}
			res, err := l.Append(makeBatch(t, 1, "new", 100))
			if err != nil || res.BaseOffset != 27 {
				t.Fatalf("append after recovery: %+v %v", res, err)
			}
		})
	}
}

func TestCorruptSealedSegmentIsReported(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	topic, err := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "2048"}, false)
	if err != nil {
		t.Fatal(err)
	}
	l := topic.Partition(0)
	for i := 0; i < 40; i++ {
		if _, err := l.Append(makeBatch(t, 4, fmt.Sprintf("b%d", i), 100)); err != nil {
			t.Fatal(err)
		}
	}
	if l.NumSegments() < 3 {
		t.Fatalf("want several segments, got %d", l.NumSegments())
	}
	first := segmentPath(l.Dir(), 0, ".log")
	s.Close()
	data, _ := os.ReadFile(first)
	mid := len(data) / 2
	data[mid] ^= 0xff
	os.WriteFile(first, data, 0o644)
	s = openTestStore(t, dir, Options{}) // clean start: the damage is in a sealed segment
	defer s.Close()
	l = s.Topic("t").Partition(0)
	var served int64
	off := int64(0)
	for {
		res, err := l.Read(off, 1<<20, true, ReadToHighWatermark)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read at %d: %v, want ErrCorrupt", off, err)
			}
			break
		}
		if len(res.Ranges) == 0 {
			t.Fatal("read through corrupt data without an error")
		}
		r := res.Ranges[0]
		buf := make([]byte, r.Len)
		r.File.ReadAt(buf, r.Pos)
		res.Release()
		served += r.Len
		if served > int64(mid) {
			t.Fatalf("served %d bytes, past the corrupt byte at %d", served, mid)
		}
		if err := batch.Split(buf, func(b []byte) error {
			h, err := batch.Validate(b)
			off = h.LastOffset() + 1
			return err
		}); err != nil {
			t.Fatalf("served a bad batch: %v", err)
		}
	}
}

func TestFsyncAlwaysGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{Fsync: FsyncAlways})
	defer s.Close()
	topic, err := s.CreateTopic("t", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	l := topic.Partition(0)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := l.Append(makeBatch(t, 1, fmt.Sprintf("w%d", w), 1))
				if err != nil {
					errs <- err
					return
				}
				if err := l.WaitHighWatermark(context.Background(), res.LastOffset+1); err != nil {
					errs <- err
					return
				}
				l.mu.RLock()
				flushed := l.flushed
				l.mu.RUnlock()
				if flushed <= res.LastOffset {
					errs <- fmt.Errorf("acknowledged offset %d but only %d fsynced", res.LastOffset, flushed)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if hw := l.HighWatermark(); hw != writers*each {
		t.Fatalf("hw %d", hw)
	}
}

func TestHighWatermarkHidesUnflushedWithFsyncAlways(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{Fsync: FsyncAlways})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, nil, false)
	l := topic.Partition(0)
	l.mu.Lock() // hold the log so the syncer cannot advance the HW
	res, err := l.appendLocked(makeBatch(t, 2, "x", 1), mustHeaders(t, makeBatch(t, 2, "x", 1)), l.config())
	if err != nil {
		l.mu.Unlock()
		t.Fatal(err)
	}
	leo, hw := l.leo, l.hw
	l.mu.Unlock()
	if leo != 2 || hw != 0 {
		t.Fatalf("before fsync: leo %d hw %d, want 2 and 0", leo, hw)
	}
	if err := l.WaitHighWatermark(context.Background(), res.LastOffset+1); err != nil {
		t.Fatal(err)
	}
}

func mustHeaders(t *testing.T, b []byte) []batch.Header {
	h, err := batch.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	return []batch.Header{h}
}

func TestAppendRejectsBadInput(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, map[string]string{"max.message.bytes": "200"}, false)
	l := topic.Partition(0)
	if _, err := l.Append(makeBatch(t, 50, "big", 1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversized batch: %v", err)
	}
	b := makeBatch(t, 1, "x", 1)
	b[len(b)-1] ^= 1
	if _, err := l.Append(b); !errors.Is(err, batch.ErrCorrupt) {
		t.Fatalf("corrupt batch: %v", err)
	}
	legacy := makeBatch(t, 1, "x", 1)
	legacy[batch.MagicPos] = 1
	if _, err := l.Append(legacy); !errors.Is(err, batch.ErrLegacyMagic) {
		t.Fatalf("legacy batch: %v", err)
	}
	if l.LogEndOffset() != 0 {
		t.Fatalf("bad input changed the log: LEO %d", l.LogEndOffset())
	}
}

func TestTopicAdmin(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{TopicDefaults: map[string]string{"retention.ms": "1000"}})
	for _, bad := range []string{"", ".", "..", "a/b", "sp ace", string(make([]byte, 250))} {
		if _, err := s.CreateTopic(bad, 1, nil, false); !errors.Is(err, ErrInvalidTopic) {
			t.Fatalf("topic name %q: %v", bad, err)
		}
	}
	if _, err := s.CreateTopic("t", 0, nil, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("0 partitions: %v", err)
	}
	_, err := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "abc"}, false)
	if !errors.Is(err, ErrInvalidConfig) || !bytes.Contains([]byte(err.Error()), []byte(`segment.bytes="abc"`)) {
		t.Fatalf("bad config: %v", err)
	}
	if _, err := s.CreateTopic("t", 1, map[string]string{"no.such.key": "1"}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("unknown config: %v", err)
	}
	if _, err := s.CreateTopic("t", 2, nil, true); err != nil || s.Topic("t") != nil {
		t.Fatalf("validate only created the topic: %v", err)
	}
	topic, err := s.CreateTopic("t", 2, map[string]string{"cleanup.policy": "compact"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic("t", 2, nil, false); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.AlterTopicConfig("t", []ConfigOp{{Key: "retention.ms", Op: OpSet, Value: "5000"}, {Key: "cleanup.policy", Op: OpAppend, Value: "delete"}}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AlterTopicConfig("t", []ConfigOp{{Key: "retention.ms", Op: OpSet, Value: "-5"}}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad alter: %v", err)
	}
	if err := s.CreatePartitions("t", 1, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrink: %v", err)
	}
	if err := s.CreatePartitions("t", 3, false); err != nil {
		t.Fatal(err)
	}
	id := topic.ID()
	s.Close()
	s = openTestStore(t, dir, Options{TopicDefaults: map[string]string{"retention.ms": "1000"}})
	defer s.Close()
	topic = s.Topic("t")
	if topic == nil || topic.NumPartitions() != 3 || topic.ID() != id || s.TopicByID(id) != topic {
		t.Fatalf("topic after reopen: %+v", topic)
	}
	got := map[string]ConfigEntry{}
	for _, e := range topic.DescribeConfigs() {
		got[e.Name] = e
	}
	if e := got["retention.ms"]; e.Value != "5000" || e.Source != SourceDynamicTopic {
		t.Fatalf("retention.ms: %+v", e)
	}
	if e := got["cleanup.policy"]; e.Value != "compact,delete" || e.Source != SourceDynamicTopic {
		t.Fatalf("cleanup.policy: %+v", e)
	}
	if e := got["segment.bytes"]; e.Source != SourceDefault {
		t.Fatalf("segment.bytes: %+v", e)
	}
	if err := s.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if s.Topic("t") != nil || s.TopicByID(id) != nil {
		t.Fatal("topic still there after delete")
	}
	if _, err := os.Stat(filepath.Join(dir, topicsDir, "t")); !os.IsNotExist(err) {
		t.Fatalf("topic data still on disk: %v", err)
	}
	if err := s.DeleteTopic("t"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestSecondStoreOnSameDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	defer s.Close()
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("second Open of a locked data dir succeeded")
	}
}

var _ = io.EOF

// TestSegmentAgeSurvivesRestart: segment.ms counts from the active segment's first record, not
// from the last restart, and a clock far in the past rolls once, not on every append.
func TestSegmentAgeSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	topic, err := s.CreateTopic("aged", 1, map[string]string{"segment.ms": "3600000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	twoHoursAgo := time.Now().Add(-2 * time.Hour).UnixMilli()
	if _, err := topic.Partition(0).Append(makeBatch(t, 1, "old", twoHoursAgo)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l := s.Topic("aged").Partition(0)
	for i := 0; i < 3; i++ {
		if _, err := l.Append(makeBatch(t, 1, "new", time.Now().UnixMilli())); err != nil {
			t.Fatal(err)
		}
	}
	// The first append after the restart rolled (the segment was 2h old); later ones did not.
	if n := l.NumSegments(); n != 2 {
		t.Fatalf("segments after restart and 3 appends: %d, want 2", n)
	}
}
