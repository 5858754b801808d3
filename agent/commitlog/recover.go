package commitlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// scanResult is what a sequential, CRC-checking walk over a segment found.
type scanResult struct {
	validEnd int64 // position after the last good batch
	err      error // nil: clean end; otherwise why the walk stopped at validEnd
}

// scanBatches reads batches from start to end, validating each (length, magic, CRC-32C, record
// framing). fn, if set, sees each good batch; its error stops the walk like a corrupt batch.
func scanBatches(f *os.File, start, end int64, fn func(pos int64, b []byte, h batch.Header) error) scanResult {
	r := bufio.NewReaderSize(io.NewSectionReader(f, start, end-start), 256<<10)
	pos := start
	var buf []byte
	for pos < end {
		head, err := r.Peek(12)
		if err != nil {
			return scanResult{pos, fmt.Errorf("torn batch header (%d bytes left): %w", end-pos, batch.ErrTruncated)}
		}
		_, size, err := batch.PeekSize(head)
		if err != nil {
			return scanResult{pos, err}
		}
		if int64(size) > end-pos {
			return scanResult{pos, fmt.Errorf("batch of %d bytes but %d left: %w", size, end-pos, batch.ErrTruncated)}
		}
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(r, buf); err != nil {
			return scanResult{pos, fmt.Errorf("read batch: %w", err)}
		}
		h, err := batch.Validate(buf)
		if err != nil {
			return scanResult{pos, err}
		}
		if fn != nil {
			if err := fn(pos, buf, h); err != nil {
				return scanResult{pos, err}
			}
		}
		pos += int64(size)
	}
	return scanResult{pos, nil}
}

// errNonMonotonic marks a batch whose base offset goes backwards.
var errNonMonotonic = errors.New("batch offsets go backwards")

// recoverSegment rebuilds a segment's indexes and in-memory state by scanning it with CRC checks
// from the start, and truncates a torn or corrupt tail. It reports the bytes cut (0 if none).
func (l *Log) recoverSegment(s *segment) (cut int64, reason error, err error) {
	s.index.reset()
	s.tindex.reset()
	s.next, s.maxTs, s.lastTs, s.sinceIx = s.base, -1, -1, 0
	cfg := l.config()
	res := scanBatches(s.file, 0, s.size, func(pos int64, _ []byte, h batch.Header) error {
		if h.BaseOffset < s.next {
			return fmt.Errorf("%w: base offset %d, expected >= %d", errNonMonotonic, h.BaseOffset, s.next)
		}
		if err := s.indexBatch(pos, h, cfg.IndexIntervalBytes); err != nil {
			return err
		}
		s.next = h.LastOffset() + 1
		return nil
	})
	if res.err != nil {
		cut = s.size - res.validEnd
		reason = res.err
		if err := s.file.Truncate(res.validEnd); err != nil {
			return 0, reason, fmt.Errorf("truncate %s to %d: %w", s.path, res.validEnd, err)
		}
		if err := s.file.Sync(); err != nil {
			return 0, reason, fmt.Errorf("sync %s: %w", s.path, err)
		}
		s.size = res.validEnd
	}
	s.diskEnd = s.size
	s.verifiedEnd.Store(s.size)
	return cut, reason, nil
}

// indexBatch records a batch appended at pos in the segment's indexes and running state.
func (s *segment) indexBatch(pos int64, h batch.Header, interval int64) error {
	if pos > 0 && s.sinceIx >= interval {
		if err := s.index.add(uint32(h.BaseOffset-s.base), uint32(pos)); err != nil {
			return err
		}
		if s.maxTs > s.lastTs {
			// Entry (T, O): every batch before O has timestamps <= T.
			if err := s.tindex.add(s.maxTs, uint32(h.BaseOffset-s.base)); err != nil {
				return err
			}
			s.lastTs = s.maxTs
		}
		s.sinceIx = 0
	}
	s.sinceIx += int64(h.Size())
	if h.MaxTimestamp > s.maxTs {
		s.maxTs = h.MaxTimestamp
	}
	return nil
}

// loadSegmentState restores a cleanly closed segment's state from its indexes, walking only the
// batch headers after the last index entry.
func (l *Log) loadSegmentState(s *segment) error {
	var pos int64
	s.next = s.base
	if rel, p, ok, err := s.index.last(); err != nil {
		return err
	} else if ok {
		pos = int64(p)
		s.next = s.base + int64(rel)
	}
	if ts, _, ok, err := s.tindex.last(); err != nil {
		return err
	} else if ok {
		s.maxTs, s.lastTs = ts, ts
	}
	lastIx := pos
	var buf [batch.HeaderSize]byte
	for pos < s.size {
		h, err := s.readHeader(pos, &buf)
		if err != nil {
			return err
		}
		if int64(h.Size()) > s.size-pos {
			return fmt.Errorf("segment %s position %d: batch of %d bytes runs past the end (%d): %w", s.path, pos, h.Size(), s.size, batch.ErrTruncated)
		}
		s.next = h.LastOffset() + 1
		if h.MaxTimestamp > s.maxTs {
			s.maxTs = h.MaxTimestamp
		}
		pos += int64(h.Size())
	}
	s.sinceIx = s.size - lastIx
	return nil
}
