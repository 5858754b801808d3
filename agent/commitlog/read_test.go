package commitlog

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// firstBatch parses the header of the first batch of a read.
func firstBatch(t testing.TB, res ReadResult) batch.Header {
	t.Helper()
	if len(res.Ranges) != 1 {
		t.Fatalf("read returned %d ranges", len(res.Ranges))
	}
	buf := make([]byte, batch.HeaderSize)
	if _, err := res.Ranges[0].File.ReadAt(buf, res.Ranges[0].Pos); err != nil {
		t.Fatal(err)
	}
	h, err := batch.ParseHeader(buf)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Without minOne, a batch larger than maxBytes means "nothing": the read must not go on to
// the next segment and return later offsets (the consumer would skip the big batch).
func TestReadWithoutMinOneNeverSkipsABigBatch(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := smallTopic(t, s)
	l.Append(makeBatch(t, 1, "small", 1))
	n := 1
	for len(makeBatch(t, n+1, "big-big-big-big", 1)) < 900 {
		n++
	}
	big, err := l.Append(makeBatch(t, n, "big-big-big-big", 1))
	if err != nil {
		t.Fatal(err)
	}
	l.Append(makeBatch(t, 1, "small", 1)) // rolls: segment.bytes is 1024
	if l.NumSegments() != 2 {
		t.Fatalf("%d segments, want 2", l.NumSegments())
	}
	res, err := l.Read(big.BaseOffset+3, 200, false, ReadToHighWatermark)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if len(res.Ranges) != 0 {
		t.Fatalf("read at %d (in a batch larger than maxBytes) returned batch %d..", big.BaseOffset+3, firstBatch(t, res).BaseOffset)
	}
}

// A read returns data from one segment: it pins that one, not every segment up to the high
// watermark (which made a lagging consumer's reads O(segments)).
func TestReadPinsOnlyTheSegmentItReads(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := smallTopic(t, s)
	fillUntilSegments(t, l, 20, 1)
	l.flushMu.Lock() // no flush holds segments meanwhile
	defer l.flushMu.Unlock()
	res, err := l.Read(0, 100, true, ReadToHighWatermark)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	l.mu.RLock()
	defer l.mu.RUnlock()
	pinned := 0
	for _, s := range l.segments {
		if s.refs.Load() > 1 {
			pinned++
		}
	}
	if pinned != 1 {
		t.Fatalf("a read of segment 0 pinned %d segments", pinned)
	}
}

// A corrupt batch in a sealed segment is reported to the reader who reaches it, and does not
// make the rest of the segment unreadable for a consumer positioned after it.
func TestReadAfterACorruptBatch(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	fillUntilSegments(t, l, 3, 1)
	bases := segmentBases(l)
	path := segmentPath(l.Dir(), bases[0], ".log")
	s.Close()
	b := batchBounds(t, path)
	data, _ := os.ReadFile(path)
	data[b[3]-2] ^= 0x40 // inside the records of batch 2 (offset 2)
	os.WriteFile(path, data, 0o644)
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	res, err := l.Read(0, 1<<20, true, ReadToHighWatermark)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Ranges[0].Len; got != b[2] {
		t.Fatalf("read from 0 returned %d bytes, want the %d before the damage", got, b[2])
	}
	res.Release()
	if _, err := l.Read(2, 1<<20, true, ReadToHighWatermark); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of the corrupt batch: %v, want ErrCorrupt", err)
	}
	res, err = l.Read(3, 1<<20, true, ReadToHighWatermark)
	if err != nil {
		t.Fatalf("read after the corrupt batch: %v", err)
	}
	if h := firstBatch(t, res); h.BaseOffset != 3 || res.Ranges[0].Pos+res.Ranges[0].Len != b[len(b)-1] {
		t.Fatalf("read after the corrupt batch: batch %d, range %+v", h.BaseOffset, res.Ranges[0])
	}
	res.Release()
}

// A damaged length field must not make a lookup allocate what it claims (up to 2 GiB).
func TestDamagedLengthDoesNotAllocate(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	fillUntilSegments(t, l, 3, 1000)
	bases := segmentBases(l)
	path := segmentPath(l.Dir(), bases[0], ".log")
	s.Close()
	b := batchBounds(t, path)
	data, _ := os.ReadFile(path)
	binary.BigEndian.PutUint32(data[b[2]+batch.LengthPos:], 0x7ffffff0) // batch 2 (offset 2, ts 1002)
	os.WriteFile(path, data, 0o644)
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := l.OffsetForTimestamp(1002)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("offset for timestamp over a damaged batch: %v, want ErrCorrupt", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("lookup allocated %d bytes", n)
	}
	if _, err := l.Read(2, 1<<20, true, ReadToHighWatermark); !errors.Is(err, ErrCorrupt) {
		t.Errorf("read of the damaged batch: %v, want ErrCorrupt", err)
	}
}

// Appending allocates nothing (no per-append channels when nobody waits).
func TestAppendDoesNotAllocate(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncInterval, FsyncAlways} {
		s := openTestStore(t, t.TempDir(), Options{Fsync: mode})
		topic, _ := s.CreateTopic("t", 1, nil, false)
		l := topic.Partition(0)
		b := makeBatch(t, 10, "x", 1)
		if n := testing.AllocsPerRun(200, func() {
			if _, err := l.Append(b); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("fsync mode %d: %v allocations per append", mode, n)
		}
		s.Close()
	}
}
