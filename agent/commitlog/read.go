package commitlog

import (
	"errors"
	"fmt"
	"sort"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Read returns whole batches starting with the one that holds offset, from one segment, at most
// maxBytes (but at least one batch when minOne, as KIP-74 asks), never past the limit. When the
// first batch is larger than maxBytes and minOne is false, the result is empty. The result
// holds file ranges, not copies; call Release after sending them.
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
	pinned, ends := l.pinForRead(offset, endSeg, endPos)
	l.mu.RUnlock()
	release := func() {
		for _, s := range pinned {
			s.release()
		}
	}
	for i, s := range pinned {
		r, found, err := readSegment(s, offset, ends[i], maxBytes, minOne)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				l.store.metrics.corruptReads.Add(1)
				l.log.Error("refusing to serve corrupt data", "err", err)
			}
			release()
			return res, err
		}
		if r.Len > 0 {
			res.Ranges, res.Bytes = []FileRange{r}, r.Len
			res.release = release
			return res, nil
		}
		if found {
			break // the batch is there but larger than maxBytes
		}
	}
	release()
	return res, nil
}

// pinForRead pins the segment holding offset and, only when offset lies past its end (a gap
// in the offsets), the following ones up to endSeg, with the position reads must stop at in
// each. Caller holds mu.
func (l *Log) pinForRead(offset int64, endSeg *segment, endPos int64) ([]*segment, []int64) {
	segs := l.segments
	i := max(segmentFor(segs, offset), 0)
	var pinned []*segment
	var ends []int64
	for ; i < len(segs); i++ {
		s := segs[i]
		s.acquire()
		end := s.size // segments before endSeg are sealed and complete
		if s == endSeg {
			end = endPos
		}
		pinned, ends = append(pinned, s), append(ends, end)
		if s == endSeg || offset < s.next {
			break
		}
	}
	return pinned, ends
}

// readSegment finds the range of whole batches for a read in one segment. found=false: the
// segment holds nothing at or after offset below end. found with an empty range: the first
// batch is larger than maxBytes and minOne is false.
func readSegment(s *segment, offset, end, maxBytes int64, minOne bool) (r FileRange, found bool, err error) {
	start, ok, err := s.findPos(offset, end)
	if err != nil || !ok {
		return FileRange{}, false, err
	}
	stop, err := s.extend(start, end, maxBytes, minOne)
	if err != nil {
		return FileRange{}, true, err
	}
	if stop <= start {
		return FileRange{}, true, nil
	}
	if bad, err := s.verify(start, stop); err != nil {
		if bad <= start {
			return FileRange{}, true, err // counted by the caller
		}
		stop = bad // serve the good batches before the damage; the next read reports it
	}
	return FileRange{File: s.file, Pos: start, Len: stop - start}, true, nil
}

// OffsetForTimestamp returns the first record at or after the log start and below the high
// watermark whose timestamp is >= ts, or offset -1 when there is none.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	after := int64(-1) // look at segments with a base above this
	from := l.LogStartOffset()
	for {
		s, end, hw := l.pinForTimestamp(ts, after)
		if s == nil {
			return -1, -1, nil
		}
		off, t, found, err := s.findTimestamp(ts, end, hw, from)
		s.release()
		if err != nil {
			return -1, -1, fmt.Errorf("offset for timestamp %d in %s-%d: %w", ts, l.topic, l.partition, err)
		}
		if found {
			return off, t, nil
		}
		after = s.base
	}
}

// pinForTimestamp pins the first segment with a base above after that may hold a timestamp
// >= ts below the high watermark, and returns the position to stop at in it and the high
// watermark. It returns nil when there is none.
func (l *Log) pinForTimestamp(ts, after int64) (*segment, int64, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	segs := l.segments
	for i := sort.Search(len(segs), func(i int) bool { return segs[i].base > after }); i < len(segs); i++ {
		s := segs[i]
		if s.maxTs >= ts && s.next > l.logStart {
			s.acquire()
			end := s.size
			if s == l.hwSeg {
				end = l.hwPos
			}
			return s, end, l.hw
		}
		if s == l.hwSeg {
			break
		}
	}
	return nil, 0, 0
}

// findTimestamp scans a segment from its time index hint for the first record at or after
// offset from with timestamp >= ts.
func (s *segment) findTimestamp(ts, end, hw, from int64) (offset, timestamp int64, found bool, err error) {
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
		h, err := s.readHeader(pos, end, &hbuf)
		if err != nil {
			return 0, 0, false, err
		}
		if h.MaxTimestamp >= ts && h.LastOffset() >= from {
			off, t, ok, err := s.recordAtOrAfter(pos, h, ts, hw, from)
			if err != nil || ok {
				return off, t, ok, err
			}
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}

// recordAtOrAfter reads the batch at pos and returns its first record with timestamp >= ts.
// h was read with readHeader, so the batch lies inside the segment.
func (s *segment) recordAtOrAfter(pos int64, h batch.Header, ts, hw, from int64) (offset, timestamp int64, found bool, err error) {
	buf := make([]byte, h.Size())
	if _, err := s.file.ReadAt(buf, pos); err != nil {
		return 0, 0, false, fmt.Errorf("read batch at %s position %d: %w: %v", s.path, pos, ErrStorage, err)
	}
	err = batch.Records(buf, func(r *batch.Record) error {
		if r.Offset >= hw {
			return errStopScan
		}
		if r.Offset >= from && r.Timestamp >= ts {
			offset, timestamp, found = r.Offset, r.Timestamp, true
			return errStopScan
		}
		return nil
	})
	if err != nil && err != errStopScan {
		return 0, 0, false, fmt.Errorf("%w: decode batch at %s position %d: %w", ErrCorrupt, s.path, pos, err)
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
	// Segments before the high watermark's are wholly below it: their maxTs is exact. The
	// high watermark's segment may hold larger timestamps above it, so it is walked.
	var sealed, hwSeg *segment
	for _, s := range l.segments {
		if s == l.hwSeg {
			if s.maxTs >= 0 && (sealed == nil || s.maxTs > sealed.maxTs) {
				hwSeg = s
				hwSeg.acquire()
			}
			break
		}
		if s.maxTs >= 0 && (sealed == nil || s.maxTs > sealed.maxTs) {
			sealed = s
		}
	}
	if sealed != nil {
		sealed.acquire()
	}
	hw, hwPos := l.hw, l.hwPos
	var sealedEnd, sealedMax int64
	if sealed != nil {
		sealedEnd, sealedMax = sealed.size, sealed.maxTs
	}
	l.mu.RUnlock()
	offset, timestamp = -1, -1
	if hwSeg != nil {
		off, ts, err := hwSeg.maxRecord(hwPos, hw, -1)
		hwSeg.release()
		if err != nil {
			l.log.Warn("max timestamp lookup", "err", err)
		} else if sealed == nil || ts > sealedMax {
			offset, timestamp = off, ts
		}
	}
	if sealed != nil {
		if timestamp < 0 {
			off, ts, err := sealed.maxRecord(sealedEnd, hw, sealedMax)
			if err != nil {
				l.log.Warn("max timestamp lookup", "err", err)
			} else {
				offset, timestamp = off, ts
			}
		}
		sealed.release()
	}
	return offset, timestamp
}

// maxRecord returns the first record with the largest timestamp in the batches below end,
// or -1, -1. known >= 0 is that timestamp, when known: the walk stops at the first batch
// that reaches it.
func (s *segment) maxRecord(end, hw, known int64) (offset, timestamp int64, err error) {
	var hbuf [batch.HeaderSize]byte
	var best batch.Header
	bestPos := int64(-1)
	for pos := int64(0); pos < end; {
		h, err := s.readHeader(pos, end, &hbuf)
		if err != nil {
			return -1, -1, err
		}
		if bestPos < 0 || h.MaxTimestamp > best.MaxTimestamp {
			best, bestPos = h, pos
		}
		if known >= 0 && h.MaxTimestamp == known {
			break
		}
		pos += int64(h.Size())
	}
	if bestPos < 0 {
		return -1, -1, nil
	}
	if off, ts, ok, err := s.recordAtOrAfter(bestPos, best, best.MaxTimestamp, hw, -1); err == nil && ok {
		return off, ts, nil
	}
	return best.LastOffset(), best.MaxTimestamp, nil
}
