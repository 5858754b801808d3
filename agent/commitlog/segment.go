package commitlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// segment is one log file (RecordBatch v2 bytes as received, offsets stamped) plus its sparse
// offset and time indexes. Fields without a comment are guarded by the owning Log's mu.
type segment struct {
	base    int64
	path    string // .log path
	file    *os.File
	index   offsetIndex
	tindex  timeIndex
	size    int64 // bytes written
	next    int64 // offset after the last batch
	maxTs   int64 // largest batch max timestamp (-1 if none)
	sinceIx int64 // bytes appended since the last index entry
	lastTs  int64 // timestamp of the last time index entry
	created time.Time
	sealed  bool

	// diskEnd is the size the file had when opened; bytes past it were written by this process.
	// verifiedEnd: bytes below it were CRC-checked (by recovery or verify). Bytes loaded from
	// disk are CRC-checked once, on the first read that needs them.
	diskEnd     int64
	verifiedEnd atomic.Int64
	verifyMu    sync.Mutex
	corruptAt   int64 // -1, or the position of the first corrupt batch found by verify
	corruptErr  error

	refs atomic.Int32 // the Log holds one; each in-flight read holds one
}

func segmentPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// indexCapacity sizes a segment's offset index from the topic config.
func indexCapacity(cfg *TopicConfig, entrySize int) int {
	interval := cfg.IndexIntervalBytes
	if interval <= 0 {
		interval = 1
	}
	n := cfg.SegmentBytes/interval + 2
	if max := cfg.SegmentIndexBytes / int64(entrySize); n > max {
		n = max
	}
	if n < 8 {
		n = 8
	}
	return int(n)
}

// openSegment opens (or creates) the segment files. writable: this is the active segment.
func openSegment(dir string, base int64, cfg *TopicConfig, writable, usePread bool) (*segment, error) {
	s := &segment{base: base, path: segmentPath(dir, base, ".log"), maxTs: -1, lastTs: -1, corruptAt: -1, created: time.Now()}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat segment %s: %w", s.path, err)
	}
	s.file, s.size, s.next, s.diskEnd = f, st.Size(), base, st.Size()
	ix, err := openIndexFile(segmentPath(dir, base, ".index"), offsetEntrySize, indexCapacity(cfg, offsetEntrySize), writable, usePread)
	if err != nil {
		f.Close()
		return nil, err
	}
	tix, err := openIndexFile(segmentPath(dir, base, ".timeindex"), timeEntrySize, indexCapacity(cfg, timeEntrySize), writable, usePread)
	if err != nil {
		ix.close()
		f.Close()
		return nil, err
	}
	s.index, s.tindex = offsetIndex{ix}, timeIndex{tix}
	s.sealed = !writable
	s.refs.Store(1)
	return s, nil
}

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the files.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.index.close()
		s.tindex.close()
		s.file.Close()
	}
}

// readHeader reads the batch header at pos.
func (s *segment) readHeader(pos int64, buf *[batch.HeaderSize]byte) (batch.Header, error) {
	if _, err := s.file.ReadAt(buf[:], pos); err != nil {
		if errors.Is(err, io.EOF) {
			return batch.Header{}, fmt.Errorf("segment %s position %d: %w", s.path, pos, batch.ErrTruncated)
		}
		return batch.Header{}, fmt.Errorf("read segment %s position %d: %w", s.path, pos, err)
	}
	h, err := batch.ParseHeader(buf[:])
	if err != nil {
		return h, fmt.Errorf("segment %s position %d: %w", s.path, pos, err)
	}
	return h, nil
}

// findPos returns the position of the first batch whose last offset is >= offset, searching
// from the offset index; end is the position reads must stop at. ok=false: no such batch below end.
func (s *segment) findPos(offset, end int64) (pos int64, ok bool, err error) {
	pos, err = s.index.lookup(offset - s.base)
	if err != nil {
		return 0, false, err
	}
	var buf [batch.HeaderSize]byte
	for pos < end {
		h, err := s.readHeader(pos, &buf)
		if err != nil {
			return 0, false, err
		}
		if h.LastOffset() >= offset {
			return pos, true, nil
		}
		pos += int64(h.Size())
	}
	return 0, false, nil
}

// extend returns the end of a run of whole batches starting at start, at most maxBytes long
// (at least one batch when minOne), not past end.
func (s *segment) extend(start, end, maxBytes int64, minOne bool) (int64, error) {
	if end-start <= maxBytes {
		return end, nil
	}
	// Jump close to the limit with the index, then walk batch headers.
	pos, err := s.index.lookupPos(start + maxBytes)
	if err != nil {
		return 0, err
	}
	if pos < start {
		pos = start
	}
	var buf [batch.HeaderSize]byte
	for pos < end {
		h, err := s.readHeader(pos, &buf)
		if err != nil {
			return 0, err
		}
		next := pos + int64(h.Size())
		if next-start > maxBytes {
			if pos == start && minOne {
				return next, nil
			}
			return pos, nil
		}
		pos = next
	}
	return pos, nil
}

// verify CRC-checks the batches loaded from disk (below the size the segment had when opened)
// once. It returns an error naming the file and position of the first corrupt batch.
func (s *segment) verify(upTo int64) error {
	if upTo > s.diskEnd {
		upTo = s.diskEnd
	}
	if upTo <= s.verifiedEnd.Load() {
		return nil
	}
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	if s.corruptErr != nil {
		return s.corruptErr
	}
	start := s.verifiedEnd.Load()
	if upTo <= start {
		return nil
	}
	res := scanBatches(s.file, start, upTo, nil)
	if res.err != nil && res.err != io.EOF {
		s.corruptAt = res.validEnd
		s.corruptErr = fmt.Errorf("%w: segment %s: batch at position %d: %v", ErrCorrupt, s.path, res.validEnd, res.err)
		return s.corruptErr
	}
	s.verifiedEnd.Store(upTo)
	return nil
}

// corruptPos is the position of the first corrupt batch verify found, or -1.
func (s *segment) corruptPos() int64 {
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	return s.corruptAt
}

// seal makes the segment read-only: a final time index entry, trimmed index files, flushed data
// is the syncer's job.
func (s *segment) seal() error {
	if s.sealed {
		return nil
	}
	if err := s.finishTimeIndex(); err != nil {
		return err
	}
	if err := s.index.trim(); err != nil {
		return err
	}
	if err := s.tindex.trim(); err != nil {
		return err
	}
	s.sealed = true
	return nil
}

// finishTimeIndex records the segment's max timestamp as the last time index entry, so a
// restart recovers it without scanning.
func (s *segment) finishTimeIndex() error {
	if s.maxTs > s.lastTs && s.next > s.base {
		if err := s.tindex.add(s.maxTs, uint32(s.next-1-s.base)); err != nil {
			return err
		}
		s.lastTs = s.maxTs
	}
	return nil
}
