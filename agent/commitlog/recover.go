package commitlog

import (
	"bufio"
	"encoding/binary"
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
// A read error other than the end of the file is not damage: it wraps ErrStorage.
func scanBatches(f *os.File, start, end int64, fn func(pos int64, b []byte, h batch.Header) error) scanResult {
	r := bufio.NewReaderSize(io.NewSectionReader(f, start, end-start), 256<<10)
	pos := start
	var buf []byte
	for pos < end {
		head, err := r.Peek(12)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return scanResult{pos, fmt.Errorf("%w: read %s at %d: %v", ErrStorage, f.Name(), pos, err)}
			}
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
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return scanResult{pos, fmt.Errorf("%w: read %s at %d: %v", ErrStorage, f.Name(), pos, err)}
			}
			return scanResult{pos, fmt.Errorf("read batch: %w", batch.ErrTruncated)}
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

// errOffsetGap marks a batch (or segment) that does not start where the previous one ended.
var errOffsetGap = errors.New("offsets not contiguous")

// recover restores in-memory state. Segments whose indexes are trusted (all of them after a
// clean shutdown, all but the newest two otherwise) are loaded from their indexes, which are
// checked against the log first; the others are scanned with CRC checks and a bad tail is cut.
// Whatever recovery scanned or rewrote is fsynced before the log serves it.
func (l *Log) recover(clean bool) error {
	scanFrom := scanFrom(len(l.segments), clean)
	for i := 0; i < scanFrom; i++ {
		ok, err := l.loadSegment(i)
		if err != nil {
			return err
		}
		if !ok { // the active segment disagrees with its index
			scanFrom = i
			break
		}
	}
	if err := l.recoverTail(scanFrom); err != nil {
		return err
	}
	for _, s := range l.segments[:len(l.segments)-1] {
		if !s.sealed {
			if err := s.seal(); err != nil {
				return err
			}
		}
	}
	return l.syncRecovered(!clean)
}

// scanFrom is the first of n segments recovery scans: none after a clean shutdown, else the
// newest two.
func scanFrom(n int, clean bool) int {
	if clean {
		return n
	}
	return max(n-2, 0)
}

// loadSegment restores segment i from its indexes. A sealed segment whose indexes disagree
// with its log is re-indexed from the log; ok=false: recovery must scan from segment i, because
// the active segment's indexes can't be trusted, or because sealed segment i holds offsets
// at or past the next segment's base (the scan then keeps i and removes the segments after
// it, as after a crash: the log must never end below an offset it holds).
func (l *Log) loadSegment(i int) (ok bool, err error) {
	s := l.segments[i]
	last := i == len(l.segments)-1
	why := l.loadSegmentState(s)
	if why == nil && !last && s.next != l.segments[i+1].base {
		why = fmt.Errorf("%w: segment ends at offset %d, the next one starts at %d", errOffsetGap, s.next, l.segments[i+1].base)
	}
	if why == nil {
		s.synced = true
		return true, nil
	}
	if last {
		l.log.Warn("active segment disagrees with its index; scanning it", "file", s.path, "reason", why.Error())
		return false, nil
	}
	if err := l.reindexSealed(i, why); err != nil {
		return false, err
	}
	return l.segments[i].next <= l.segments[i+1].base, nil
}

// reindexSealed rebuilds the indexes of sealed segment i from its log. Damage found on the way
// is kept (recovery never cuts older segments): reads that reach it fail with ErrCorrupt.
func (l *Log) reindexSealed(i int, why error) error {
	old := l.segments[i]
	l.log.Warn("index of a sealed segment disagrees with its log; rebuilding it", "file", old.path, "reason", why.Error())
	s, err := openSegment(l.dir, old.base, l.config(), true, l.store.usePread())
	if err != nil {
		return err
	}
	old.release()
	l.segments[i] = s
	if res := l.rebuildFromLog(s); errors.Is(res.err, ErrStorage) {
		return res.err
	} else if res.err != nil {
		s.corruptAt, s.corruptErr = res.validEnd, s.corruptError(res)
		l.log.Error("sealed segment is corrupt; reads that reach the damage fail", "file", s.path, "position", res.validEnd, "reason", res.err.Error())
	}
	if next := l.segments[i+1].base; s.next < next {
		l.log.Error("sealed segment ends before the next one starts: offsets are missing", "file", s.path, "end_offset", s.next, "next_base", next)
	}
	return nil
}

// recoverTail scans segments[from:] with CRC checks. At the first torn or corrupt batch, or
// where offsets stop being contiguous (a lost tail followed by a newer segment), everything
// after is removed and the segment is cut there: it becomes the active segment.
func (l *Log) recoverTail(from int) error {
	for i := from; i < len(l.segments); i++ {
		s := l.segments[i]
		res := l.rebuildFromLog(s)
		if errors.Is(res.err, ErrStorage) {
			return res.err // an I/O error is not a torn tail: cut nothing
		}
		reason := res.err
		if reason == nil && i+1 < len(l.segments) && l.segments[i+1].base != s.next {
			reason = fmt.Errorf("%w: segment ends at offset %d, the next one starts at %d", errOffsetGap, s.next, l.segments[i+1].base)
		}
		if reason == nil {
			continue
		}
		l.store.metrics.recoveryCuts.Add(1)
		if err := l.dropSegmentsAfter(i); err != nil {
			return err
		}
		if cut := s.size - res.validEnd; cut > 0 {
			l.log.Warn("recovery truncated a torn or corrupt tail", "file", s.path, "position", res.validEnd, "bytes_cut", cut, "reason", reason.Error())
			l.store.metrics.recoveryBytes.Add(cut)
			if err := s.file.Truncate(res.validEnd); err != nil {
				return fmt.Errorf("truncate %s to %d: %w", s.path, res.validEnd, err)
			}
			s.size, s.diskEnd = res.validEnd, res.validEnd
		}
		break
	}
	return nil
}

// dropSegmentsAfter removes the segments after i (offsets must stay dense).
func (l *Log) dropSegmentsAfter(i int) error {
	later := l.segments[i+1:]
	for j := len(later) - 1; j >= 0; j-- {
		s := later[j]
		l.log.Warn("recovery removed a segment after a truncated one", "file", s.path, "bytes_cut", s.size)
		l.store.metrics.recoveryBytes.Add(s.size)
		s.release()
		if err := removeSegmentFiles(l.dir, s.base); err != nil {
			return err
		}
	}
	l.segments = l.segments[:i+1]
	return nil
}

func removeSegmentFiles(dir string, base int64) error {
	for _, ext := range segmentExts {
		p := segmentPath(dir, base, ext)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

// syncRecovered fsyncs what recovery scanned or rewrote (and, after a crash, the directory):
// it may so far be only in the page cache, and the log is about to serve it.
func (l *Log) syncRecovered(dir bool) error {
	for _, s := range l.segments {
		if s.synced {
			continue
		}
		if err := s.syncFiles(l.fsyncFile, s.sealed); err != nil {
			return err
		}
		s.synced = s.sealed
		dir = true
	}
	if !dir {
		return nil
	}
	if err := l.store.fsync.dir(l.dir); err != nil {
		return fmt.Errorf("fsync dir %s: %w: %v", l.dir, ErrStorage, err)
	}
	return nil
}

// mayHaveGaps reports whether compaction may have removed batches from segment s, so that its
// batches' offsets need not be dense. Elsewhere a batch that does not start where the previous
// one ended is damage (the base offset is outside the CRC). The cleaner records how far it
// rewrote before each rewrite is committed.
func (l *Log) mayHaveGaps(s *segment) bool {
	return s.base < l.gapsBelow
}

// rebuildFromLog rebuilds a segment's indexes and state by scanning its log from the start
// with CRC checks. Offsets must be dense: each batch starts where the previous one ended, the
// first at the segment's base. It reports where the first bad batch starts, if any.
func (l *Log) rebuildFromLog(s *segment) scanResult {
	s.index.reset()
	s.tindex.reset()
	s.next, s.maxTs, s.lastTs, s.sinceIx = s.base, -1, -1, 0
	interval := l.config().IndexIntervalBytes
	var ixErr error
	res := scanBatches(s.file, 0, s.size, func(pos int64, _ []byte, h batch.Header) error {
		if h.BaseOffset != s.next && (h.BaseOffset < s.next || !l.mayHaveGaps(s)) {
			return fmt.Errorf("%w: batch base offset %d, expected %d", errOffsetGap, h.BaseOffset, s.next)
		}
		if err := s.indexBatch(pos, h, interval); err != nil && ixErr == nil {
			ixErr = err // a missing entry only makes lookups scan further
		}
		s.next = h.LastOffset() + 1
		return nil
	})
	if ixErr != nil {
		l.log.Warn("index write failed while rebuilding; lookups will scan", "file", s.path, "err", ixErr)
	}
	s.diskEnd = s.size
	s.verifiedEnd.Store(res.validEnd)
	return res
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

// loadSegmentState restores a segment's state from its indexes, walking only the batch headers
// after the last index entry. It checks the indexes against the log on the way and returns
// why they can't be trusted, if they can't.
func (l *Log) loadSegmentState(s *segment) error {
	s.next, s.maxTs, s.lastTs = s.base, -1, -1
	var pos int64
	if rel, p, ok, err := s.index.last(); err != nil {
		return err
	} else if ok {
		if p == 0 || int64(p) >= s.size {
			return fmt.Errorf("last index entry points at position %d of %d bytes", p, s.size)
		}
		pos, s.next = int64(p), s.base+int64(rel)
	}
	lastIx := pos
	sparse := 2 * l.config().IndexIntervalBytes
	room := s.index.len() < indexCapacity(l.config(), offsetEntrySize)
	var buf [batch.HeaderSize]byte
	for pos < s.size {
		h, err := s.readHeader(pos, s.size, &buf)
		if err != nil {
			return err
		}
		if h.BaseOffset != s.next && (h.BaseOffset < s.next || !l.mayHaveGaps(s)) {
			return fmt.Errorf("%w: batch at position %d has base offset %d, expected %d", errOffsetGap, pos, h.BaseOffset, s.next)
		}
		if room && pos > lastIx && pos-lastIx >= sparse {
			return fmt.Errorf("index entries missing: none for the %d bytes before position %d", pos-lastIx, pos)
		}
		s.next = h.LastOffset() + 1
		s.maxTs = max(s.maxTs, h.MaxTimestamp)
		pos += int64(h.Size())
	}
	s.sinceIx = s.size - lastIx
	return l.loadTimeIndex(s)
}

// loadTimeIndex takes the segment's max timestamp from its time index after checking the
// last entries are in order and inside the segment.
func (l *Log) loadTimeIndex(s *segment) error {
	n := s.tindex.len()
	if n == 0 {
		return nil
	}
	ts, rel, _, err := s.tindex.last()
	if err != nil {
		return err
	}
	if int64(rel) >= s.next-s.base {
		return fmt.Errorf("last time index entry is for offset %d, past the segment end %d", s.base+int64(rel), s.next)
	}
	if n > 1 {
		var b [timeEntrySize]byte
		e, err := s.tindex.entry(n-2, b[:])
		if err != nil {
			return err
		}
		if pts, prel := timeKey(e), binary.BigEndian.Uint32(e[8:12]); pts > ts || prel > rel {
			return fmt.Errorf("time index out of order at its end: (%d, %d) then (%d, %d)", pts, prel, ts, rel)
		}
	}
	s.maxTs, s.lastTs = max(s.maxTs, ts), ts
	return nil
}
