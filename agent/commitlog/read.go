package commitlog

import (
	"errors"
	"fmt"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Read returns whole batches starting with the one that holds offset, from one segment, at most
// maxBytes (but at least one batch when minOne, as KIP-74 asks), never past the limit. The
// result holds file ranges, not copies; call Release after sending them.
func (l *Log) Read(offset, maxBytes int64, minOne bool, limit ReadLimit) (ReadResult, error) {
	l.mu.RLock()
	res := ReadResult{HighWatermark: l.hw, LogStartOffset: l.logStart, LogEndOffset: l.leo}
	if l.closed {
		l.mu.RUnlock()
		return res, fmt.Errorf("read %s-%d: %w", l.topic, l.partition, ErrClosed)
	}
	if offset < l.logStart || offset > l.leo {
		l.mu.RUnlock()
		return res, fmt.Errorf("read %s-%d at %d (log %d..%d): %w", l.topic, l.partition, offset, l.logStart, l.leo, ErrOffsetOutOfRange)
	}
	endOffset, endSeg, endPos := l.hw, l.hwSeg, l.hwPos
	if limit == ReadToLogEnd {
		endOffset, endSeg, endPos = l.leo, l.active(), l.active().size
	}
	if offset >= endOffset {
		l.mu.RUnlock()
		return res, nil
	}
	segs := l.segments
	i := segmentFor(segs, offset)
	if i < 0 {
		i = 0
	}
	// Pin the segments we may touch (at most until endSeg).
	var pinned []*segment
	for j := i; j < len(segs); j++ {
		segs[j].acquire()
		pinned = append(pinned, segs[j])
		if segs[j] == endSeg {
			break
		}
	}
	l.mu.RUnlock()
	release := func() {
		for _, s := range pinned {
			s.release()
		}
	}
	for _, s := range pinned {
		end := s.size // sealed segments before endSeg are complete
		if s == endSeg {
			end = endPos
		}
		r, ok, err := readSegment(s, offset, end, maxBytes, minOne)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				l.store.metrics.corruptReads.Add(1)
				l.log.Error("refusing to serve corrupt data", "err", err)
			}
			release()
			return res, err
		}
		if ok {
			res.Ranges, res.Bytes = []FileRange{r}, r.Len
			res.release = release
			return res, nil
		}
		if s == endSeg {
			break
		}
	}
	release()
	return res, nil
}

// readSegment finds the range of whole batches for a read in one segment. ok=false: the
// segment holds nothing at or after offset below end.
func readSegment(s *segment, offset, end, maxBytes int64, minOne bool) (FileRange, bool, error) {
	start, ok, err := s.findPos(offset, end)
	if err != nil || !ok {
		return FileRange{}, false, err
	}
	stop, err := s.extend(start, end, maxBytes, minOne)
	if err != nil {
		return FileRange{}, false, err
	}
	if stop <= start {
		return FileRange{}, false, nil
	}
	if err := s.verify(stop); err != nil {
		switch at := s.corruptPos(); {
		case at >= stop:
		case at > start:
			stop = at // serve the good batches before the damage; the next read reports it
		default:
			return FileRange{}, false, err // counted by the caller
		}
	}
	return FileRange{File: s.file, Pos: start, Len: stop - start}, true, nil
}

// OffsetForTimestamp returns the first record (below the high watermark) whose timestamp is
// >= ts, or offset -1 when there is none.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	l.mu.RLock()
	segs, hw, hwSeg, hwPos := l.segments, l.hw, l.hwSeg, l.hwPos
	var pinned []*segment
	for _, s := range segs {
		if s.maxTs >= ts {
			s.acquire()
			pinned = append(pinned, s)
		}
		if s == hwSeg {
			break
		}
	}
	ends := make([]int64, len(pinned))
	for i, s := range pinned {
		ends[i] = s.size
		if s == hwSeg {
			ends[i] = hwPos
		}
	}
	l.mu.RUnlock()
	defer func() {
		for _, s := range pinned {
			s.release()
		}
	}()
	for i, s := range pinned {
		off, t, found, err := s.findTimestamp(ts, ends[i], hw)
		if err != nil {
			return -1, -1, fmt.Errorf("offset for timestamp %d in %s-%d: %w", ts, l.topic, l.partition, err)
		}
		if found {
			return off, t, nil
		}
	}
	return -1, -1, nil
}

// findTimestamp scans a segment from its time index hint for the first record with timestamp >= ts.
func (s *segment) findTimestamp(ts, end, hw int64) (offset, timestamp int64, found bool, err error) {
	start := int64(0)
	if ts > -1<<62 {
		if rel, ok, err := s.tindex.lookupBefore(ts); err != nil {
			return 0, 0, false, err
		} else if ok {
			if start, err = s.index.lookup(rel); err != nil {
				return 0, 0, false, err
			}
		}
	}
	var hbuf [batch.HeaderSize]byte
	for pos := start; pos < end; {
		h, err := s.readHeader(pos, &hbuf)
		if err != nil {
			return 0, 0, false, err
		}
		if h.MaxTimestamp >= ts {
			off, t, ok, err := s.recordAtOrAfter(pos, h, ts, hw)
			if err != nil || ok {
				return off, t, ok, err
			}
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}

// recordAtOrAfter reads the batch at pos and returns its first record with timestamp >= ts.
func (s *segment) recordAtOrAfter(pos int64, h batch.Header, ts, hw int64) (offset, timestamp int64, found bool, err error) {
	buf := make([]byte, h.Size())
	if _, err := s.file.ReadAt(buf, pos); err != nil {
		return 0, 0, false, fmt.Errorf("read batch at %s position %d: %w", s.path, pos, err)
	}
	err = batch.Records(buf, func(r *batch.Record) error {
		if r.Offset >= hw {
			return errStopScan
		}
		if r.Timestamp >= ts {
			offset, timestamp, found = r.Offset, r.Timestamp, true
			return errStopScan
		}
		return nil
	})
	if err != nil && err != errStopScan {
		return 0, 0, false, fmt.Errorf("decode batch at %s position %d: %w", s.path, pos, err)
	}
	return offset, timestamp, found, nil
}

type stopScan struct{}

func (stopScan) Error() string { return "stop" }

var errStopScan error = stopScan{}

// MaxTimestamp returns the record with the largest timestamp below the high watermark (the
// first such record if several share it), or -1, -1 for an empty log.
func (l *Log) MaxTimestamp() (offset, timestamp int64) {
	l.mu.RLock()
	var best *segment
	for _, s := range l.segments {
		if s.maxTs >= 0 && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
		if s == l.hwSeg {
			break
		}
	}
	if best == nil {
		l.mu.RUnlock()
		return -1, -1
	}
	best.acquire()
	end, hw, maxTs := best.size, l.hw, best.maxTs
	if best == l.hwSeg {
		end = l.hwPos
	}
	l.mu.RUnlock()
	defer best.release()
	var hbuf [batch.HeaderSize]byte
	for pos := int64(0); pos < end; {
		h, err := best.readHeader(pos, &hbuf)
		if err != nil {
			l.log.Warn("max timestamp lookup", "err", err)
			return -1, -1
		}
		if h.MaxTimestamp == maxTs {
			if off, ts, ok, err := best.recordAtOrAfter(pos, h, maxTs, hw); err == nil && ok {
				return off, ts
			}
			return h.LastOffset(), maxTs
		}
		pos += int64(h.Size())
	}
	return -1, -1
}
