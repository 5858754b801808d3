package commitlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// What a damaged checkpoint file (a flipped bit on an SD card) may and may not do to a
// partition: never wipe it, never cut compacted segments as damage, never make a tombstone go
// before delete.retention.ms. These tests use files the log wrote itself and damage them as
// the medium would, so they also describe what earlier versions did wrong.

// deleteRecordsLog makes a partition of 40 one-record batches with DeleteRecords at 30 (both
// offset files hold 30) and retention applied, closed. It returns the store's directory, the
// partition's, and the base of its first segment.
func deleteRecordsLog(t *testing.T) (dir, pdir string, base0 int64) {
	t.Helper()
	dir = t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := oneTopic(t, s, map[string]string{"segment.bytes": "1024"})
	appendAt(t, l, 40, time.Now().UnixMilli())
	if got, err := l.DeleteRecordsBefore(30); err != nil || got != 30 {
		t.Fatalf("DeleteRecordsBefore(30) = %d, %v", got, err)
	}
	s.RunRetention() // what the janitor DeleteRecords kicked does, done before the close
	l.mu.RLock()
	base0 = l.segments[0].base
	l.mu.RUnlock()
	if base0 == 0 || base0 > 30 {
		t.Fatalf("first segment at %d after DeleteRecords at 30 and retention", base0)
	}
	pdir = l.Dir()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, pdir, base0
}

// flipDigit flips the bit 0x04 of the first character of the offset 30 in an offset file
// ("30" becomes "70"), whatever the file's format.
func flipDigit(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("30\n"))
	if i < 0 {
		t.Fatalf("%s holds no offset 30: %q", path, data)
	}
	data[i] ^= 0x04
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkKept checks that the reopened partition has its end at 40, its start at start, the
// segments from there on, and serves the records.
func checkKept(t *testing.T, l *Log, start int64) {
	t.Helper()
	if l.LogEndOffset() != 40 || l.LogStartOffset() != start {
		t.Fatalf("log %d..%d after reopening, want %d..40", l.LogStartOffset(), l.LogEndOffset(), start)
	}
	if got := len(readAll(t, l)); got != int(40-start) { // one record a batch
		t.Fatalf("%d records readable, want %d", got, 40-start)
	}
	l.mu.RLock()
	base := l.segments[0].base
	l.mu.RUnlock()
	if base > start {
		t.Fatalf("first segment starts at %d, past the log start %d: segments were deleted", base, start)
	}
}

// TestFlippedLogStartDigitPastEndKeepsThePartition: a flipped bit turns the saved log start
// 30 into 70, past the log end (40). Earlier versions took that for a power loss that cut the
// log below a saved start and restarted the log empty at 70, deleting every segment. The
// checksum catches it: the file is ignored (the DeleteRecords floor still holds the start).
func TestFlippedLogStartDigitPastEndKeepsThePartition(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			dir, pdir, _ := deleteRecordsLog(t)
			flipDigit(t, filepath.Join(pdir, logStartName))
			if !clean {
				if err := os.Remove(filepath.Join(dir, cleanMarker)); err != nil {
					t.Fatal(err)
				}
			}
			s := openTestStore(t, dir, Options{})
			defer s.Close()
			checkKept(t, s.Topic("t").Partition(0), 30)
		})
	}
}

// TestFlippedDeleteRecordsDigitPastEndKeepsThePartition: the same flip in
// delete-records-offset raised the log start to the log end, hiding every record, and
// retention then deleted every segment. The checksum catches it; log-start-offset holds.
func TestFlippedDeleteRecordsDigitPastEndKeepsThePartition(t *testing.T) {
	dir, pdir, _ := deleteRecordsLog(t)
	flipDigit(t, filepath.Join(pdir, deletedBelowName))
	s := openTestStore(t, dir, Options{})
	defer s.Close()
	l := s.Topic("t").Partition(0)
	s.RunRetention()
	checkKept(t, l, 30)
	if l.RecordsDeletedBelow() > 30 {
		t.Fatalf("records deleted below %d", l.RecordsDeletedBelow())
	}
}

// TestOldFormatOffsetFiles: the bare numbers earlier versions wrote still load when they lie
// within the log; one past the log end, which nothing can tell from a damaged digit, neither
// restarts the log nor hides it.
func TestOldFormatOffsetFiles(t *testing.T) {
	dir, pdir, base0 := deleteRecordsLog(t)
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(pdir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(logStartName, "30\n")
	write(deletedBelowName, "25\n")
	s := openTestStore(t, dir, Options{})
	l := s.Topic("t").Partition(0)
	checkKept(t, l, 30)
	if l.RecordsDeletedBelow() != 25 {
		t.Fatalf("delete-records floor %d, want 25", l.RecordsDeletedBelow())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	write(logStartName, "70\n")
	write(deletedBelowName, "70\n")
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	s.RunRetention()
	checkKept(t, l, base0)
}

// TestCheckedLogStartPastEndRestartsEmpty: a log start that passed its check and lies past
// the recovered end (a power loss cut the log below it) still restarts the log empty there,
// as Kafka does, so no offset a client saw deleted is handed out again.
func TestCheckedLogStartPastEndRestartsEmpty(t *testing.T) {
	dir, pdir, _ := deleteRecordsLog(t)
	if err := os.Remove(filepath.Join(dir, cleanMarker)); err != nil {
		t.Fatal(err)
	}
	logs, err := filepath.Glob(filepath.Join(pdir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("segments %v: %v", logs, err)
	}
	for _, name := range logs { // the power loss took every record
		if err := os.Truncate(name, 0); err != nil {
			t.Fatal(err)
		}
	}
	s := openTestStore(t, dir, Options{})
	defer s.Close()
	l := s.Topic("t").Partition(0)
	if l.LogStartOffset() != 30 || l.LogEndOffset() != 30 {
		t.Fatalf("log %d..%d, want to restart empty at 30", l.LogStartOffset(), l.LogEndOffset())
	}
	if res, err := l.Append(makeBatch(t, 1, "r", time.Now().UnixMilli())); err != nil || res.BaseOffset != 30 {
		t.Fatalf("append after the restart: %+v, %v", res, err)
	}
}

// compactedLog makes a compacted partition, closed: updates and five tombstones compacted by
// one pass at the clock's time into a segment with offset gaps, then an empty active
// segment. It returns the store's directory, the partition's, the latest value per key (nil
// for the deleted keys) and the log end.
func compactedLog(t *testing.T, clock *fakeClock) (dir, pdir string, want map[string][]byte, end int64) {
	t.Helper()
	dir = t.TempDir()
	s := openTestStore(t, dir, Options{Now: clock.Now})
	l := compactTopic(t, s, map[string]string{"delete.retention.ms": "60000"})
	now := clock.Now().UnixMilli()
	want = produceUpdates(t, l, 2000, 50, now)
	for i := range 5 {
		k := fmt.Sprintf("key-%d", i)
		if _, err := l.Append(kvBatch(t, batch.CodecNone, now, noProducer, kv{k, nil})); err != nil {
			t.Fatal(err)
		}
		want[k] = nil
	}
	sealAll(t, l)
	if err := s.RunCleaner(); err != nil {
		t.Fatal(err)
	}
	checkLatest(t, l, want)
	pdir, end = l.Dir(), l.LogEndOffset()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, pdir, want, end
}

// reopenAfterCrash replaces the partition's cleaner checkpoint by what damage makes of it,
// then reopens the store as after a crash: recovery scans the compacted segment.
func reopenAfterCrash(t *testing.T, dir, pdir string, clock *fakeClock, damage func(written []byte) []byte) *Store {
	t.Helper()
	path := filepath.Join(pdir, cleanerCheckpointName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, damage(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, cleanMarker)); err != nil {
		t.Fatal(err)
	}
	return openTestStore(t, dir, Options{Now: clock.Now})
}

// TestFlippedCleanerCheckpointBitKeepsCompactedSegments: one flipped bit in the name
// gaps_below ("gaps_belov") made earlier versions read the checkpoint without it, so recovery
// took the compacted segment's offset gaps for damage and cut the log there. The checksum
// catches it, and recovery accepts gaps in every segment instead.
func TestFlippedCleanerCheckpointBitKeepsCompactedSegments(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	dir, pdir, want, end := compactedLog(t, clock)
	s := reopenAfterCrash(t, dir, pdir, clock, func(data []byte) []byte {
		i := bytes.Index(data, []byte(`gaps_below"`))
		if i < 0 {
			t.Fatalf("checkpoint without gaps_below: %s", data)
		}
		data[i+len("gaps_below")-1] ^= 0x01
		return data
	})
	defer s.Close()
	l := s.Topic("t").Partition(0)
	if l.LogEndOffset() != end {
		t.Fatalf("log end %d after recovery, want %d: compacted data was cut", l.LogEndOffset(), end)
	}
	checkLatest(t, l, want)
}

// TestInvalidCleanerCheckpointIsReset: a cleaner checkpoint that fails its checks (damaged,
// or holding what no pass writes: negative offsets, unsorted or overlapping cleaned ranges,
// progress past the log end or first_dirty) is replaced at open by one that has the whole log
// compacted again, accepts offset gaps in every segment there is, and remembers no first
// compaction, so tombstones stay delete.retention.ms from the next pass. Earlier versions
// kept such checkpoints (a negative gaps_below had recovery cut the compacted segment; a
// clamped past-end range made tombstones go early) or, for one that did not decode, stopped
// compacting the partition for good.
func TestInvalidCleanerCheckpointIsReset(t *testing.T) {
	const T int64 = 1_700_000_000_000
	cases := map[string]func(written []byte, end int64) string{
		"unsorted": func(_ []byte, end int64) string {
			return fmt.Sprintf(`{"first_dirty":%d,"gaps_below":%d,"cleaned":[{"end":%d,"at_ms":%d},{"end":10,"at_ms":%d}]}`, end, end, end, T, T)
		},
		"overlapping": func(_ []byte, end int64) string {
			return fmt.Sprintf(`{"first_dirty":%d,"gaps_below":%d,"cleaned":[{"end":%d,"at_ms":%d},{"end":%d,"at_ms":%d}]}`, end, end, end/2, T, end/2, T)
		},
		"negative gaps_below": func(_ []byte, end int64) string {
			return fmt.Sprintf(`{"first_dirty":%d,"gaps_below":-1}`, end)
		},
		"negative at_ms": func(_ []byte, end int64) string {
			return fmt.Sprintf(`{"first_dirty":%d,"gaps_below":%d,"cleaned":[{"end":%d,"at_ms":-5}]}`, end, end, end)
		},
		"negative first_dirty": func(_ []byte, end int64) string {
			return fmt.Sprintf(`{"first_dirty":-3,"gaps_below":%d}`, end)
		},
		"past the end": func(_ []byte, end int64) string {
			return fmt.Sprintf(`{"first_dirty":%d,"gaps_below":%d,"cleaned":[{"end":%d,"at_ms":1}]}`, end*100, end*100, end*100)
		},
		"cleaned past first_dirty": func(_ []byte, end int64) string {
			return fmt.Sprintf(`{"first_dirty":10,"gaps_below":%d,"cleaned":[{"end":%d,"at_ms":%d}]}`, end, end, T)
		},
		"not JSON": func([]byte, int64) string { return `{"first_dirty":12,"gaps_` },
		"flipped digit": func(written []byte, _ int64) string { // first_dirty's last digit, one lower or higher
			out := bytes.Clone(written)
			i := bytes.Index(out, []byte(`"first_dirty":`)) + len(`"first_dirty":`)
			for out[i+1] >= '0' && out[i+1] <= '9' {
				i++
			}
			out[i] ^= 0x01
			return string(out)
		},
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			dir, pdir, want, end := compactedLog(t, clock)
			clock.advance(30 * time.Second)
			s := reopenAfterCrash(t, dir, pdir, clock, func(data []byte) []byte { return []byte(content(data, end)) })
			defer s.Close()
			l := s.Topic("t").Partition(0)
			if l.LogEndOffset() != end {
				t.Fatalf("log end %d after recovery, want %d: compacted data was cut", l.LogEndOffset(), end)
			}
			checkLatest(t, l, want)
			l.maintMu.Lock()
			ck, err := l.cleanerCheckpoint()
			l.maintMu.Unlock()
			if reset := (cleanerCheckpoint{GapsBelow: end}); err != nil || !reflect.DeepEqual(ck, reset) {
				t.Fatalf("cleaner checkpoint after open: %+v, %v; want %+v", ck, err, reset)
			}
			// The whole log is compacted again; the tombstones' delete.retention.ms starts now.
			if err := s.RunCleaner(); err != nil {
				t.Fatal(err)
			}
			checkLatest(t, l, want)
			clock.advance(45 * time.Second) // 75 s after the first pass, 45 s after the second
			if err := s.RunCleaner(); err != nil {
				t.Fatal(err)
			}
			checkLatest(t, l, want)
			clock.advance(20 * time.Second)
			if err := s.RunCleaner(); err != nil {
				t.Fatal(err)
			}
			got := latestByKey(t, l)
			for k, v := range want {
				if _, ok := got[k]; ok == (v == nil) {
					t.Fatalf("%s: present %v, want %v, 65 s after the tombstones' last pass", k, ok, v != nil)
				}
			}
		})
	}
}
