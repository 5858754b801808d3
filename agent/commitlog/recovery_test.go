package commitlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// smallTopic creates topic "t" with one partition, tiny segments and a dense offset index.
func smallTopic(t testing.TB, s *Store) *Log {
	t.Helper()
	topic, err := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "1024", "index.interval.bytes": "100"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return topic.Partition(0)
}

// checkDense reads the whole log and checks the records are offsets 0..n-1.
func checkDense(t testing.TB, l *Log, n int64) {
	t.Helper()
	if leo := l.LogEndOffset(); leo != n {
		t.Fatalf("LEO %d, want %d", leo, n)
	}
	recs := readAll(t, l)
	if int64(len(recs)) != n {
		t.Fatalf("read %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
	}
	// Every offset on its own, which goes through the offset index.
	for off := int64(0); off < n; off++ {
		res, err := l.Read(off, 1, true, ReadToHighWatermark)
		if err != nil || len(res.Ranges) != 1 {
			t.Fatalf("read at %d: %+v %v", off, res, err)
		}
		buf := make([]byte, batch.HeaderSize)
		res.Ranges[0].File.ReadAt(buf, res.Ranges[0].Pos)
		res.Release()
		h, err := batch.ParseHeader(buf)
		if err != nil || h.BaseOffset > off || h.LastOffset() < off {
			t.Fatalf("read at %d returned batch %d..%d (%v)", off, h.BaseOffset, h.LastOffset(), err)
		}
	}
	if off, _, err := l.OffsetForTimestamp(-1); err != nil || (n > 0 && off != 0) {
		t.Fatalf("offset for timestamp -1: %d %v", off, err)
	}
	res, err := l.Append(makeBatch(t, 1, "next", 1))
	if err != nil || res.BaseOffset != n {
		t.Fatalf("append after reopen: %+v %v, want offset %d", res, err, n)
	}
}

// After a power loss right after a roll, the newest segment can be there (empty, or with
// unacknowledged batches) while the tail of the one before it is gone at a batch boundary.
// Recovery must not leave a hole of offsets with no data below the log end.
func TestRecoveryAfterLostTailBeforeNewestSegment(t *testing.T) {
	for _, newest := range []string{"empty", "non-empty"} {
		t.Run(newest, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, Options{})
			l := smallTopic(t, s)
			fillUntilSegments(t, l, 3, 1)
			bases := segmentBases(l)
			ldir := l.Dir()
			crash(t, s)
			mid := segmentPath(ldir, bases[1], ".log")
			b := batchBounds(t, mid)
			if err := os.Truncate(mid, b[len(b)-3]); err != nil { // two batches lost
				t.Fatal(err)
			}
			if newest == "empty" {
				os.Truncate(segmentPath(ldir, bases[2], ".log"), 0)
			}
			s = openTestStore(t, dir, Options{})
			defer s.Close()
			checkDense(t, s.Topic("t").Partition(0), bases[2]-2)
		})
	}
}

// A crash right after a roll leaves an empty newest segment: nothing to cut.
func TestRecoveryAfterRollWithEmptyNewestSegment(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	fillUntilSegments(t, l, 3, 1)
	bases := segmentBases(l)
	ldir := l.Dir()
	crash(t, s)
	os.Truncate(segmentPath(ldir, bases[2], ".log"), 0)
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	checkDense(t, s.Topic("t").Partition(0), bases[2])
}

// The base offset is outside the CRC: a damaged one must not make offsets jump.
func TestRecoveryCutsBatchWithWrongBaseOffset(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	for i := 0; i < 5; i++ {
		l.Append(makeBatch(t, 2, "x", 1))
	}
	path := segmentPath(l.Dir(), 0, ".log")
	crash(t, s)
	data, _ := os.ReadFile(path)
	b := batchBounds(t, path)
	binary.BigEndian.PutUint64(data[b[4]:], 1000) // the last batch claims offset 1000
	os.WriteFile(path, data, 0o644)
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	checkDense(t, s.Topic("t").Partition(0), 8)
}

// Recovery rebuilds the indexes of both scanned segments completely and leaves them trimmed,
// even when the second newest one's index file is missing or was never trimmed.
func TestRecoveryRebuildsIndexesOfScannedSegments(t *testing.T) {
	for _, damage := range []string{"missing", "untrimmed"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, Options{})
			l := smallTopic(t, s)
			fillUntilSegments(t, l, 2, 1)
			bases := segmentBases(l)
			ldir := l.Dir()
			l.mu.RLock()
			want := l.segments[0].index.len()
			l.mu.RUnlock()
			if want < 2 {
				t.Fatalf("want a few index entries, got %d", want)
			}
			crash(t, s)
			ix := segmentPath(ldir, bases[0], ".index")
			switch damage {
			case "missing":
				os.Remove(ix)
			case "untrimmed": // as after a crash between the roll and the seal's trim
				os.Truncate(ix, 64<<10)
			}
			s = openTestStore(t, dir, Options{})
			l = s.Topic("t").Partition(0)
			l.mu.RLock()
			got := l.segments[0].index.len()
			l.mu.RUnlock()
			if got != want {
				t.Errorf("rebuilt index has %d entries, want %d", got, want)
			}
			if st, err := os.Stat(ix); err != nil || st.Size() != int64(want*offsetEntrySize) {
				t.Errorf("index file after recovery: %v %v, want %d bytes", st.Size(), err, want*offsetEntrySize)
			}
			checkDense(t, l, bases[1]+1)
			s.Close()
		})
	}
}

// After a clean shutdown the indexes are trusted, but not blindly: an index that points past
// the end of its log, or holds garbage, or is missing, must not give a wrong log end, failed
// reads or an Open error.
func TestCleanOpenChecksIndexes(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, ldir string, bases []int64) int64 // returns the records left
	}{
		{"active log shorter than its index", func(t *testing.T, ldir string, bases []int64) int64 {
			path := segmentPath(ldir, bases[2], ".log")
			b := batchBounds(t, path)
			os.Truncate(path, b[1]) // keep one batch of the active segment
			return bases[2] + 1
		}},
		{"sealed log shorter than its index", func(t *testing.T, ldir string, bases []int64) int64 {
			path := segmentPath(ldir, bases[0], ".log")
			b := batchBounds(t, path)
			os.Truncate(path, b[1]) // keep one batch: offsets 1.. are gone
			return -1
		}},
		{"stale index of a missing first segment", func(t *testing.T, ldir string, bases []int64) int64 {
			for _, b := range bases {
				for _, ext := range []string{".log", ".timeindex"} {
					os.Remove(segmentPath(ldir, b, ext))
				}
				if b != 0 {
					os.Remove(segmentPath(ldir, b, ".index"))
				}
			}
			return 0
		}},
		{"garbage sealed index", func(t *testing.T, ldir string, bases []int64) int64 {
			os.WriteFile(segmentPath(ldir, bases[0], ".index"), bytes.Repeat([]byte{0, 0, 0, 1, 0, 0xff, 0xff, 0xff}, 5), 0o644)
			os.WriteFile(segmentPath(ldir, bases[1], ".timeindex"), bytes.Repeat([]byte{0xff}, 36), 0o644)
			return bases[2] + 11
		}},
		{"sealed index with trailing zeros", func(t *testing.T, ldir string, bases []int64) int64 {
			os.Truncate(segmentPath(ldir, bases[1], ".index"), 4096)
			return bases[2] + 11
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir, Options{})
			l := smallTopic(t, s)
			fillUntilSegments(t, l, 3, 1)
			for i := 0; i < 10; i++ {
				l.Append(makeBatch(t, 1, "x", 1))
			}
			bases := segmentBases(l)
			ldir := l.Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			n := c.damage(t, ldir, bases)
			s, err := Open(Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			l = s.Topic("t").Partition(0)
			if n < 0 {
				// Offsets 1..bases[1]-1 are gone: reads skip to the next segment.
				res, err := l.Read(1, 1<<20, true, ReadToHighWatermark)
				if err != nil || len(res.Ranges) != 1 || res.Ranges[0].File.Name() != segmentPath(ldir, bases[1], ".log") {
					t.Fatalf("read in the lost range: %+v %v", res, err)
				}
				res.Release()
				return
			}
			checkDense(t, l, n)
		})
	}
}

// A missing index of a sealed segment is rebuilt, not left empty (which made every read of
// the segment scan it from the start).
func TestCleanOpenRebuildsMissingSealedIndex(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	fillUntilSegments(t, l, 3, 1)
	ldir := l.Dir()
	s.Close()
	os.Remove(segmentPath(ldir, 0, ".index"))
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	l.mu.RLock()
	n := l.segments[0].index.len()
	l.mu.RUnlock()
	if n == 0 {
		t.Fatal("missing index of a sealed segment was not rebuilt")
	}
}

// Garbage in segment files must neither panic nor stop the store from opening: the active
// segment is cut (and the cut logged), a sealed one reports the damage on read.
func TestCleanOpenWithGarbageSegments(t *testing.T) {
	t.Run("active", func(t *testing.T) {
		dir := t.TempDir()
		s := openTestStore(t, dir, Options{})
		l := smallTopic(t, s)
		fillUntilSegments(t, l, 2, 1)
		bases := segmentBases(l)
		ldir := l.Dir()
		s.Close()
		os.WriteFile(segmentPath(ldir, bases[1], ".log"), bytes.Repeat([]byte("garbage!"), 30), 0o644)
		s, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.metrics.recoveryCuts.Load() != 1 {
			t.Errorf("recovery cuts %d, want 1", s.metrics.recoveryCuts.Load())
		}
		checkDense(t, s.Topic("t").Partition(0), bases[1])
	})
	t.Run("sealed", func(t *testing.T) {
		dir := t.TempDir()
		s := openTestStore(t, dir, Options{})
		l := smallTopic(t, s)
		fillUntilSegments(t, l, 3, 1)
		bases := segmentBases(l)
		ldir := l.Dir()
		s.Close()
		path := segmentPath(ldir, bases[0], ".log")
		b := batchBounds(t, path)
		data, _ := os.ReadFile(path)
		copy(data[b[len(b)-2]:], "garbage!garbage!garbage!") // the last batch's header
		os.WriteFile(path, data, 0o644)
		s, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		l = s.Topic("t").Partition(0)
		if l.LogEndOffset() != bases[2]+1 {
			t.Fatalf("LEO %d, want %d", l.LogEndOffset(), bases[2]+1)
		}
		if _, err := l.Read(bases[1]-1, 1<<20, true, ReadToHighWatermark); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read of the damaged batch: %v, want ErrCorrupt", err)
		}
		res, err := l.Read(bases[1], 1<<20, true, ReadToHighWatermark)
		if err != nil || len(res.Ranges) != 1 {
			t.Fatalf("read after the damaged segment: %v %v", res, err)
		}
		res.Release()
	})
}

// A roll must start the new segment with empty indexes even when index files with that base
// were left behind (by a recovery cut, a crash while deleting, an operator).
func TestRollIgnoresStaleIndexFiles(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	n := fillUntilSegments(t, l, 2, 1)
	ldir := l.Dir()
	// Where the next roll will land: the active segment grows by one batch per record.
	next := int64(2 * (n - 1))
	stale := make([]byte, 0, 64)
	for i := 1; i <= 4; i++ {
		stale = binary.BigEndian.AppendUint32(stale, uint32(i))
		stale = binary.BigEndian.AppendUint32(stale, uint32(5000*i))
	}
	os.WriteFile(segmentPath(ldir, next, ".index"), stale, 0o644)
	fillUntilSegments(t, l, 3, 1)
	if b := segmentBases(l); b[2] != next {
		t.Fatalf("rolled at %d, expected %d", b[2], next)
	}
	for i := 0; i < 5; i++ {
		l.Append(makeBatch(t, 1, "y", 1))
	}
	checkDense(t, l, next+6)
	s.Close()
}

// Segment file names are 20 decimal digits; anything else (a sign, say) is not a segment.
func TestSignedSegmentNamesAreIgnored(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	l.Append(makeBatch(t, 3, "x", 1))
	ldir := l.Dir()
	s.Close()
	for _, name := range []string{"+0000000000000000005.log", "-0000000000000000001.log", "0000000000000000x001.log"} {
		os.WriteFile(filepath.Join(ldir, name), []byte("junk"), 0o644)
	}
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	checkDense(t, s.Topic("t").Partition(0), 3)
}

// hugeBatch is a compressed batch that claims n records: the log cannot check the count
// without decompressing, so a client can make offsets jump by up to 2^31 per batch.
func hugeBatch(t testing.TB, n int32) []byte {
	t.Helper()
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1, Codec: batch.CodecGzip})
	b.Add(1, nil, []byte("v"), nil)
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(out[batch.LastOffsetDeltaPos:], uint32(n-1))
	binary.BigEndian.PutUint32(out[batch.NumRecordsPos:], uint32(n))
	binary.BigEndian.PutUint32(out[batch.CRCPos:], batch.CRC(out))
	return out
}

// Index entries hold offsets relative to the segment base in 32 bits: the log must roll
// before they would overflow.
func TestAppendRollsBeforeRelativeOffsetsOverflow(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	topic, _ := s.CreateTopic("t", 1, map[string]string{"index.interval.bytes": "0"}, false)
	l := topic.Partition(0)
	var bases []int64
	for i, b := range [][]byte{makeBatch(t, 1, "a", 1), hugeBatch(t, 1<<31-1), hugeBatch(t, 1<<31-1), hugeBatch(t, 1<<31-1), makeBatch(t, 1, "b", 1), makeBatch(t, 1, "c", 1)} {
		res, err := l.Append(b)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		bases = append(bases, res.BaseOffset)
	}
	check := func(l *Log) {
		for _, off := range bases {
			res, err := l.Read(off, 1, true, ReadToHighWatermark)
			if err != nil || len(res.Ranges) != 1 {
				t.Fatalf("read at %d: %v %v", off, res, err)
			}
			buf := make([]byte, res.Ranges[0].Len)
			res.Ranges[0].File.ReadAt(buf, res.Ranges[0].Pos)
			res.Release()
			h, err := batch.ParseHeader(buf)
			if err != nil || h.BaseOffset != off {
				t.Fatalf("read at %d returned the batch at %d (%v)", off, h.BaseOffset, err)
			}
		}
	}
	check(l)
	crash(t, s)
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	if want := bases[len(bases)-1] + 1; l.LogEndOffset() != want {
		t.Fatalf("LEO after recovery %d, want %d", l.LogEndOffset(), want)
	}
	check(l)
}

var _ = fmt.Sprint

// A read error while scanning is an I/O problem, not a torn tail: recovery must not cut data
// because the disk hiccuped.
func TestScanReportsReadErrorsAsStorageErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg.log")
	b := makeBatch(t, 2, "x", 1)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0) // reads fail with EBADF
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := scanBatches(f, 0, int64(len(b)), nil)
	if !errors.Is(res.err, ErrStorage) || errors.Is(res.err, batch.ErrTruncated) {
		t.Fatalf("scan with failing reads: %v, want ErrStorage", res.err)
	}
}
