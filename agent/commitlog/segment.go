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
	synced  bool // sealed, and its three files fsynced since

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
	return openSegmentAt(dir, base, "", cfg, writable, usePread)
}

// openSegmentAt opens (or creates) the files of segment base with suffix appended to their
// names (".cleaned" for a cleaner's output); the segment's path is always the final name.
func openSegmentAt(dir string, base int64, suffix string, cfg *TopicConfig, writable, usePread bool) (*segment, error) {
	s := &segment{base: base, path: segmentPath(dir, base, ".log"), maxTs: -1, lastTs: -1, corruptAt: -1, created: time.Now()}
	f, err := os.OpenFile(s.path+suffix, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", s.path+suffix, err)
	}
	return s.openFiles(f, dir, suffix, cfg, writable, usePread)
}

func (s *segment) openFiles(f *os.File, dir, suffix string, cfg *TopicConfig, writable, usePread bool) (*segment, error) {
	base := s.base
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat segment %s: %w", s.path, err)
	}
	s.file, s.size, s.next, s.diskEnd = f, st.Size(), base, st.Size()
	ix, err := openIndexFile(segmentPath(dir, base, ".index")+suffix, offsetEntrySize, indexCapacity(cfg, offsetEntrySize), writable, usePread)
	if err != nil {
		f.Close()
		return nil, err
	}
	tix, err := openIndexFile(segmentPath(dir, base, ".timeindex")+suffix, timeEntrySize, indexCapacity(cfg, timeEntrySize), writable, usePread)
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

// segmentExts are the extensions of a segment's files.
var segmentExts = [...]string{".log", ".index", ".timeindex"}

// createSegment starts a new, empty active segment. Files left behind under its name (by an
// interrupted delete or a recovery cut) describe other data: they are emptied first.
func createSegment(dir string, base int64, cfg *TopicConfig, usePread bool) (*segment, error) {
	for _, ext := range segmentExts {
		p := segmentPath(dir, base, ext)
		if err := os.Truncate(p, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("clear stale %s: %w", p, err)
		}
	}
	return openSegment(dir, base, cfg, true, usePread)
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

// readHeader reads the header of the batch at pos, which must end by end. A header that does
// not parse or a batch that runs past end is ErrCorrupt (never an allocation of what a
// damaged length field claims).
func (s *segment) readHeader(pos, end int64, buf *[batch.HeaderSize]byte) (batch.Header, error) {
	if end-pos < batch.HeaderSize {
		return batch.Header{}, fmt.Errorf("%w: segment %s position %d: %d bytes left for a batch header", ErrCorrupt, s.path, pos, end-pos)
	}
	if _, err := s.file.ReadAt(buf[:], pos); err != nil {
		if errors.Is(err, io.EOF) {
			return batch.Header{}, fmt.Errorf("%w: segment %s position %d: %w", ErrCorrupt, s.path, pos, batch.ErrTruncated)
		}
		return batch.Header{}, fmt.Errorf("read segment %s position %d: %w: %v", s.path, pos, ErrStorage, err)
	}
	h, err := batch.ParseHeader(buf[:])
	if err != nil {
		return h, fmt.Errorf("%w: segment %s position %d: %w", ErrCorrupt, s.path, pos, err)
	}
	if int64(h.Size()) > end-pos {
		return h, fmt.Errorf("%w: segment %s position %d: batch of %d bytes runs past %d", ErrCorrupt, s.path, pos, h.Size(), end)
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
	if pos > 0 && pos >= end {
		// Entries below offset are for batches below it, so below end: the index is damaged.
		return 0, false, fmt.Errorf("%w: index %s points at position %d, past %d", ErrCorrupt, s.index.path, pos, end)
	}
	var buf [batch.HeaderSize]byte
	for first := pos > 0; pos < end; first = false {
		h, err := s.readHeader(pos, end, &buf)
		if err != nil {
			return 0, false, err
		}
		if first && h.BaseOffset > offset {
			return 0, false, fmt.Errorf("%w: index %s points offset %d at a batch starting at %d", ErrCorrupt, s.index.path, offset, h.BaseOffset)
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
		h, err := s.readHeader(pos, end, &buf)
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

// verify CRC-checks the bytes of [start, stop) (whole batches) that were loaded from disk.
// The segment's verified prefix grows once and is not checked again. It returns the position
// of the first corrupt batch in [start, stop) with an error naming the file, or -1, nil. A
// read that starts past known damage checks its own range, so the damage does not make the
// rest of the segment unreadable.
func (s *segment) verify(start, stop int64) (bad int64, err error) {
	if stop > s.diskEnd {
		stop = s.diskEnd
	}
	if stop <= start || stop <= s.verifiedEnd.Load() {
		return -1, nil
	}
	s.verifyMu.Lock()
	defer s.verifyMu.Unlock()
	if stop <= s.verifiedEnd.Load() {
		return -1, nil
	}
	if s.corruptErr == nil {
		res := scanBatches(s.file, s.verifiedEnd.Load(), stop, nil)
		if res.err == nil {
			s.verifiedEnd.Store(stop)
			return -1, nil
		}
		if errors.Is(res.err, ErrStorage) {
			return res.validEnd, res.err // an I/O error is not damage: nothing remembered
		}
		s.verifiedEnd.Store(res.validEnd)
		s.corruptAt, s.corruptErr = res.validEnd, s.corruptError(res)
	}
	// The verified prefix ends at the damage, below stop.
	if s.corruptAt >= start {
		return s.corruptAt, s.corruptErr
	}
	if res := scanBatches(s.file, start, stop, nil); res.err != nil {
		if errors.Is(res.err, ErrStorage) {
			return res.validEnd, res.err
		}
		return res.validEnd, s.corruptError(res)
	}
	return -1, nil
}

func (s *segment) corruptError(res scanResult) error {
	return fmt.Errorf("%w: segment %s: batch at position %d: %v", ErrCorrupt, s.path, res.validEnd, res.err)
}

// syncFiles fsyncs the log and, for a sealed segment, its indexes.
func (s *segment) syncFiles(sync func(*os.File) error, indexes bool) error {
	if err := sync(s.file); err != nil {
		return fmt.Errorf("fsync %s: %w: %v", s.path, ErrStorage, err)
	}
	if !indexes {
		return nil
	}
	for _, x := range [...]*indexFile{s.index.indexFile, s.tindex.indexFile} {
		if err := sync(x.f); err != nil {
			return fmt.Errorf("fsync %s: %w: %v", x.path, ErrStorage, err)
		}
	}
	return nil
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
