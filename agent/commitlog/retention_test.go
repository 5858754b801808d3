package commitlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// appendAt appends n one-record batches with timestamp ts and returns the offset of the first.
func appendAt(t testing.TB, l *Log, n int, ts int64) int64 {
	t.Helper()
	first := int64(-1)
	for i := 0; i < n; i++ {
		res, err := l.Append(makeBatch(t, 1, "r", ts))
		if err != nil {
			t.Fatal(err)
		}
		if first < 0 {
			first = res.BaseOffset
		}
	}
	return first
}

// segmentFiles lists the .log files in a partition directory.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRetentionByTimeDeletesExactlyTheExpiredSegments(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := openTestStore(t, t.TempDir(), Options{Now: clock.Now, Fsync: FsyncAlways})
	defer s.Close()
	l := oneTopic(t, s, map[string]string{"segment.bytes": "1024", "retention.ms": "60000"})
	old := clock.Now().Add(-2 * time.Minute).UnixMilli()
	appendAt(t, l, 40, old)
	// Roll so that the old records end a segment exactly: the next append starts a new one.
	l.mu.Lock()
	if err := l.rollLocked(l.config()); err != nil {
		t.Fatal(err)
	}
	l.mu.Unlock()
	firstNew := appendAt(t, l, 40, clock.Now().UnixMilli())
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	before := l.NumSegments()
	s.RunRetention()
	if got := l.LogStartOffset(); got != firstNew {
		t.Fatalf("log start %d after time retention, want %d (the first unexpired offset)", got, firstNew)
	}
	for _, base := range segmentBases(l) {
		if base < firstNew {
			t.Fatalf("segment %d with expired records survived: %v", base, segmentBases(l))
		}
	}
	if l.NumSegments() >= before {
		t.Fatalf("no segment deleted: %d before, %d after", before, l.NumSegments())
	}
	if n := len(segmentFiles(t, l.Dir())); n != l.NumSegments() {
		t.Fatalf("%d segment files on disk, %d segments", n, l.NumSegments())
	}
	recs := readAll(t, l)
	if len(recs) != 40 || recs[0].Offset != firstNew {
		t.Fatalf("read %d records from %d, want 40 from %d", len(recs), recs[0].Offset, firstNew)
	}
	if _, err := l.Read(firstNew-1, 1024, true, ReadToHighWatermark); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v, want ErrOffsetOutOfRange", err)
	}

	// Once the new records expire too, the active segment is rolled and deleted; the log
	// stays usable and keeps its offsets.
	clock.advance(5 * time.Minute)
	end := l.LogEndOffset()
	s.RunRetention()
	if l.LogStartOffset() != end || l.Size() != 0 {
		t.Fatalf("after everything expired: start %d (want %d), size %d", l.LogStartOffset(), end, l.Size())
	}
	if res, err := l.Append(makeBatch(t, 1, "after", clock.Now().UnixMilli())); err != nil || res.BaseOffset != end {
		t.Fatalf("append after full expiry: %+v %v", res, err)
	}
}

func TestRetentionBySizeKeepsRetentionBytesPlusOneSegment(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	const limit, segBytes = 8192, 2048
	l := oneTopic(t, s, map[string]string{"segment.bytes": "2048", "retention.bytes": "8192"})
	for round := 0; round < 5; round++ {
		appendAt(t, l, 200, time.Now().UnixMilli())
		s.RunRetention()
		size := l.Size()
		if size > limit+segBytes {
			t.Fatalf("round %d: %d bytes kept, more than retention.bytes %d plus one segment %d", round, size, limit, segBytes)
		}
		if size < limit {
			t.Fatalf("round %d: %d bytes kept, retention deleted below retention.bytes %d", round, size, limit)
		}
	}
	recs := readAll(t, l)
	if recs[0].Offset != l.LogStartOffset() || recs[len(recs)-1].Offset != l.HighWatermark()-1 {
		t.Fatalf("read %d..%d, log %d..%d", recs[0].Offset, recs[len(recs)-1].Offset, l.LogStartOffset(), l.HighWatermark())
	}
}

func TestCompactOnlyTopicIgnoresRetention(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := openTestStore(t, t.TempDir(), Options{Now: clock.Now})
	defer s.Close()
	l := oneTopic(t, s, map[string]string{"segment.bytes": "1024", "retention.ms": "1", "retention.bytes": "1", "cleanup.policy": "compact"})
	appendAt(t, l, 100, clock.Now().Add(-time.Hour).UnixMilli())
	s.RunRetention()
	if l.LogStartOffset() != 0 {
		t.Fatalf("cleanup.policy=compact topic lost records to retention: start %d", l.LogStartOffset())
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := oneTopic(t, s, map[string]string{"segment.bytes": "1024"})
	appendAt(t, l, 100, time.Now().UnixMilli())
	bases := segmentBases(l)
	if len(bases) < 3 {
		t.Fatalf("want several segments, got %v", bases)
	}
	mid := bases[1] + 2 // inside the second segment
	got, err := l.DeleteRecordsBefore(mid)
	if err != nil || got != mid {
		t.Fatalf("DeleteRecordsBefore(%d) = %d, %v", mid, got, err)
	}
	if got, err := l.DeleteRecordsBefore(mid - 1); err != nil || got != mid {
		t.Fatalf("moving the start back: %d, %v; want it to stay at %d", got, err, mid)
	}
	if _, err := l.DeleteRecordsBefore(l.HighWatermark() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the high watermark: %v", err)
	}
	if off, _, err := l.OffsetForTimestamp(0); err != nil || off != mid {
		t.Fatalf("offset for timestamp 0 after DeleteRecords: %d, %v; want the log start %d", off, err, mid)
	}
	if _, err := l.Read(mid-1, 1024, true, ReadToHighWatermark); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
	if recs := readAll(t, l); recs[0].Offset != mid || len(recs) != 100-int(mid) {
		t.Fatalf("read from %d: %d records, want %d from %d", recs[0].Offset, len(recs), 100-mid, mid)
	}
	s.RunRetention()
	if b := segmentBases(l); b[0] != bases[1] {
		t.Fatalf("after retention the first segment is %d, want %d (the one holding the start)", b[0], bases[1])
	}
	if _, err := os.Stat(segmentPath(l.Dir(), bases[0], ".log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment below the start still on disk: %v", err)
	}
	crash(t, s) // the start must survive an unclean restart too
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	if l.LogStartOffset() != mid {
		t.Fatalf("log start %d after restart, want %d", l.LogStartOffset(), mid)
	}
	hw := l.HighWatermark()
	if got, err := l.DeleteRecordsBefore(-1); err != nil || got != hw {
		t.Fatalf("DeleteRecordsBefore(-1) = %d, %v; want the high watermark %d", got, err, hw)
	}
	s.RunRetention()
	if l.Size() != 0 || l.LogStartOffset() != hw {
		t.Fatalf("after deleting everything: size %d, start %d", l.Size(), l.LogStartOffset())
	}
}

// TestDeleteRecordsBelowLocalStartIsKept: an offset below the local log start (a tiered log's
// records there live in object storage) leaves the local start alone but is kept as
// RecordsDeletedBelow, never moves back, and survives an unclean restart; a crash between
// saving it and the log start still hides the records below it.
func TestDeleteRecordsBelowLocalStartIsKept(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := oneTopic(t, s, map[string]string{"segment.bytes": "1024"})
	appendAt(t, l, 100, time.Now().UnixMilli())
	if got, err := l.DeleteRecordsBefore(60); err != nil || got != 60 {
		t.Fatalf("DeleteRecordsBefore(60) = %d, %v", got, err)
	}
	if got, err := l.DeleteRecordsBefore(30); err != nil || got != 60 || l.RecordsDeletedBelow() != 60 {
		t.Fatalf("DeleteRecordsBefore(30) = %d, %v, floor %d; want 60 for both", got, err, l.RecordsDeletedBelow())
	}
	// As if the local start had moved past the floor (local retention of a tiered log).
	if err := os.WriteFile(filepath.Join(l.Dir(), deletedBelowName), []byte("20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	s = openTestStore(t, dir, Options{})
	l = s.Topic("t").Partition(0)
	if l.RecordsDeletedBelow() != 20 || l.LogStartOffset() != 60 {
		t.Fatalf("floor %d, start %d after restart; want 20, 60", l.RecordsDeletedBelow(), l.LogStartOffset())
	}
	if got, err := l.DeleteRecordsBefore(40); err != nil || got != 60 || l.RecordsDeletedBelow() != 40 {
		t.Fatalf("DeleteRecordsBefore(40) below the start = %d, %v, floor %d; want start 60, floor 40", got, err, l.RecordsDeletedBelow())
	}
	// A crash after the floor was saved but before the log start: the floor wins at open.
	if err := os.WriteFile(filepath.Join(l.Dir(), deletedBelowName), []byte("70\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	if l.RecordsDeletedBelow() != 70 || l.LogStartOffset() != 70 {
		t.Fatalf("floor %d, start %d after a crash between the two saves; want 70, 70", l.RecordsDeletedBelow(), l.LogStartOffset())
	}
	if _, err := l.Read(69, 1024, true, ReadToHighWatermark); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the floor: %v", err)
	}
}
