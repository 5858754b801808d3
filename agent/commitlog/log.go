package commitlog

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/internal/atomicfile"
)

// Log is one partition's commit log: an ordered list of segments, the last one active.
//
// Locking: mu guards the segment list and every offset below. Append holds it for the write
// (one pwrite); reads take it only to snapshot bounds, then pread/sendfile without it. The
// syncer fsyncs without holding it. flushMu (taken before mu) makes flushes run one at a time.
type Log struct {
	topic     string
	partition int32
	dir       string
	store     *Store
	cfg       atomic.Pointer[TopicConfig]
	log       *slog.Logger

	flushMu sync.Mutex
	// maintMu is held by a retention pass or a cleaner pass over this log, so that the two
	// never rewrite and delete the same segments. Taken before flushMu and mu.
	maintMu sync.Mutex
	// startMu orders changes of the log start offset with their checkpoint writes.
	startMu sync.Mutex
	// Cleaner state (cleaner.go), guarded by maintMu: the checkpoint, loaded on first use.
	cleanCk       cleanerCheckpoint
	cleanCkLoaded bool
	abort         atomic.Bool // the log is closing: a cleaner pass gives up
	uncleanable   atomic.Bool // the cleaner found corrupt data: skipped until a restart
	cleanRetryAt  time.Time   // after a failed pass: not before (guarded by the cleaner's passMu)
	cleanFailures int
	// tieredEnd: offsets below it are in object storage (tiered.go); -1 until known.
	tieredEnd atomic.Int64
	// gapsBelow: segments with a base below it may have offset gaps (compacted). Read at open,
	// raised by the cleaner (under maintMu and mu) before it commits a rewrite.
	gapsBelow int64

	mu         sync.RWMutex
	segments   []*segment // sorted by base; replaced, never mutated in place
	logStart   int64
	leo        int64 // log end offset: next offset to assign
	hw         int64 // high watermark: consumers see offsets below it
	hwSeg      *segment
	hwPos      int64         // position in hwSeg that corresponds to hw
	hwCh       chan struct{} // closed when hw advances (if hwChTaken)
	flushed    int64         // offsets below it are fsynced
	unflushed  int64         // records appended since the last fsync
	dirtySince time.Time     // when the oldest unflushed append happened
	dirDirty   bool          // a segment was created since the last fsync
	failed     error         // set by a failed fsync: the log refuses appends (wraps ErrStorage)
	closing    bool
	closed     bool
	epoch      int32
	// deletedBelow is the offset DeleteRecords last moved the start to, kept apart from
	// logStart: on a tiered log it may lie below the local start, inside object storage.
	deletedBelow int64

	producers    producerState     // idempotent producers seen (producerstate.go)
	pendingSnaps []pendingSnapshot // producer snapshots taken at rolls, for the syncer to write

	// replayFrom is where a restart would start replaying producer state: the newest
	// snapshot written, else the log start. Guarded by flushMu.
	replayFrom int64

	// hwChTaken says someone holds hwCh: only then does an advance replace it, so appends
	// allocate nothing when nobody waits. Set under mu (read lock), cleared under mu.
	hwChTaken atomic.Bool

	tick   atomic.Int64  // the syncer's current check interval (ns)
	cfgCh  chan struct{} // tells the syncer the config changed
	syncCh chan struct{} // wakes the syncer
	stop   chan struct{}
	done   chan struct{}
}

// logOptions carries what a Log needs from its Store.
func openLog(store *Store, topic string, partition int32, dir string, cfg *TopicConfig, clean bool) (*Log, error) {
	l := &Log{topic: topic, partition: partition, dir: dir, store: store, log: store.log.With("topic", topic, "partition", partition),
		hwCh: make(chan struct{}), cfgCh: make(chan struct{}, 1), syncCh: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	l.cfg.Store(cfg)
	l.tieredEnd.Store(-1)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create partition dir %s: %w", dir, err)
	}
	if err := recoverSwaps(dir, l.log); err != nil {
		return nil, err
	}
	bases, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(bases) == 0 {
		bases = []int64{0}
	}
	scanFrom := scanFrom(len(bases), clean)
	for i, base := range bases {
		// The segments recovery may scan and cut (and the active one) are opened writable.
		writable := i >= scanFrom || i == len(bases)-1
		s, err := openSegment(dir, base, cfg, writable, store.usePread())
		if err != nil {
			l.closeSegments()
			return nil, err
		}
		l.segments = append(l.segments, s)
	}
	if ck, err := l.cleanerCheckpoint(); err != nil {
		l.log.Warn("cleaner checkpoint unreadable; accepting offset gaps in every closed segment", "err", err)
		l.gapsBelow = math.MaxInt64
	} else {
		l.gapsBelow = ck.GapsBelow
	}
	if err := l.recover(clean); err != nil {
		l.closeSegments()
		return nil, err
	}
	a := l.active()
	l.restoreSegmentAge(a, cfg)
	l.logStart = l.segments[0].base
	l.leo = a.next
	l.hw, l.hwSeg, l.hwPos, l.flushed = l.leo, a, a.size, l.leo
	if err := l.loadLogStart(); err != nil {
		l.closeSegments()
		return nil, err
	}
	l.loadDeletedBelow()
	if ck, err := l.cleanerCheckpoint(); err == nil && ck.clampTo(l.leo) {
		l.log.Warn("cleaner checkpoint was past the recovered log end; clamped", "log_end", l.leo)
		if err := l.saveCleanerCheckpoint(ck); err != nil {
			l.closeSegments()
			return nil, err
		}
	}
	if err := l.loadProducerState(); err != nil {
		l.closeSegments()
		return nil, err
	}
	// The directory entries of segments created here (a new partition's first) must be
	// durable before anything in them is acknowledged.
	l.dirDirty = true
	go l.syncer()
	return l, nil
}

// restoreSegmentAge dates a reopened active segment by its first batch's timestamp, so that
// segment.ms counts from the first record rather than from the last restart. The timestamp is
// clamped to [now - segment.ms, now]: a device clock far in the past rolls the segment once,
// never on every append.
func (l *Log) restoreSegmentAge(a *segment, cfg *TopicConfig) {
	if a.size < batch.HeaderSize {
		return
	}
	var buf [batch.HeaderSize]byte
	h, err := a.readHeader(0, a.size, &buf)
	if err != nil {
		return
	}
	now := time.Now()
	first := time.UnixMilli(h.MaxTimestamp)
	if cfg.SegmentAge > 0 && first.Before(now.Add(-cfg.SegmentAge)) {
		first = now.Add(-cfg.SegmentAge)
	}
	if first.After(now) {
		first = now
	}
	a.created = first
}

// listSegments returns the base offsets of the .log files in dir, sorted.
func listSegments(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list partition dir %s: %w", dir, err)
	}
	var bases []int64
	for _, e := range entries {
		digits, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || len(digits) != 20 || strings.Trim(digits, "0123456789") != "" {
			continue // not a segment: segment names are 20 decimal digits
		}
		base, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			continue
		}
		bases = append(bases, base)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

func (l *Log) active() *segment { return l.segments[len(l.segments)-1] }

func (l *Log) config() *TopicConfig { return l.cfg.Load() }

func (l *Log) setConfig(c *TopicConfig) {
	l.cfg.Store(c)
	select {
	case l.cfgCh <- struct{}{}:
	default:
	}
}

// Topic is the topic name.
func (l *Log) Topic() string { return l.topic }

// Partition is the partition number.
func (l *Log) Partition() int32 { return l.partition }

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// LogStartOffset is the first offset still stored.
func (l *Log) LogStartOffset() int64 { l.mu.RLock(); defer l.mu.RUnlock(); return l.logStart }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { l.mu.RLock(); defer l.mu.RUnlock(); return l.leo }

// HighWatermark is the end of what consumers may read. On one node it follows the durable end:
// with fsync=always the fsynced end, otherwise the written end.
func (l *Log) HighWatermark() int64 { l.mu.RLock(); defer l.mu.RUnlock(); return l.hw }

// Size is the bytes of all segment files.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segments {
		n += s.size
	}
	return n
}

// NumSegments is the number of segment files.
func (l *Log) NumSegments() int { l.mu.RLock(); defer l.mu.RUnlock(); return len(l.segments) }

// Changed returns a channel closed when the high watermark next advances.
func (l *Log) Changed() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	l.hwChTaken.Store(true)
	return l.hwCh
}

// WaitHighWatermark blocks until the high watermark reaches offset, ctx ends or the log closes
// or fails (an error wrapping ErrStorage: the records may not be durable).
func (l *Log) WaitHighWatermark(ctx context.Context, offset int64) error {
	for {
		l.mu.RLock()
		hw, ch, closed, failed := l.hw, l.hwCh, l.closed, l.failed
		l.hwChTaken.Store(true)
		l.mu.RUnlock()
		if hw >= offset {
			return nil
		}
		if failed != nil {
			return fmt.Errorf("wait for offset %d: %w", offset, failed)
		}
		if closed {
			return fmt.Errorf("wait for offset %d in %s-%d: %w", offset, l.topic, l.partition, ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for offset %d in %s-%d: %w", offset, l.topic, l.partition, ctx.Err())
		}
	}
}

// setHWLocked advances the high watermark (never back) and wakes waiters. Caller holds mu.
func (l *Log) setHWLocked(hw int64, seg *segment, pos int64) {
	// At the same offset, only a newer segment (a roll) may take over: a flush that captured
	// a segment retention or the cleaner has replaced since must not bring it back.
	if hw < l.hw || hw == l.hw && (seg == l.hwSeg || seg.base <= l.hwSeg.base) {
		return
	}
	advanced := hw > l.hw
	l.hw, l.hwSeg, l.hwPos = hw, seg, pos
	if !advanced {
		return // same offset, seen from a newer segment
	}
	if l.hwChTaken.Load() {
		close(l.hwCh)
		l.hwCh = make(chan struct{})
		l.hwChTaken.Store(false)
	}
	l.store.notifyChanged()
}

// Append validates the batches in records (a Produce request's records field), stamps their
// base offsets and leader epoch in place, and appends them to the active segment in one write.
func (l *Log) Append(records []byte) (AppendResult, error) {
	cfg := l.config()
	var stack [4]batch.Header
	headers := stack[:0]
	var span int64 // offsets the batches take
	err := batch.Split(records, func(b []byte) error {
		h, err := batch.Validate(b)
		if err != nil {
			return err
		}
		if h.LastOffsetDelta != h.NumRecords-1 {
			// A producer's batch numbers its records 0..n-1; gaps only come from compaction.
			return fmt.Errorf("%w: lastOffsetDelta %d with %d records", batch.ErrCorrupt, h.LastOffsetDelta, h.NumRecords)
		}
		if cfg.MaxMessageBytes > 0 && h.Size() > int(cfg.MaxMessageBytes) {
			return fmt.Errorf("%w: batch of %d bytes, max.message.bytes is %d", ErrMessageTooLarge, h.Size(), cfg.MaxMessageBytes)
		}
		if err := validateProducerFields(&h); err != nil {
			return err
		}
		if cfg.Compacts() {
			if err := requireKeys(b, h); err != nil {
				return err
			}
		}
		headers = append(headers, h)
		span += int64(h.LastOffsetDelta) + 1
		return nil
	})
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s-%d: %w", l.topic, l.partition, err)
	}
	if len(headers) == 0 {
		return AppendResult{}, fmt.Errorf("append to %s-%d: no record batch: %w", l.topic, l.partition, ErrCorrupt)
	}
	if len(headers) > 1 && idempotent(headers) {
		// As in Kafka: sequence checks are per batch, and a request is appended whole or not.
		return AppendResult{}, fmt.Errorf("append to %s-%d: %w: an idempotent batch must be the only batch of its partition in a request", l.topic, l.partition, ErrCorrupt)
	}
	if span > maxSegmentOffsets {
		// Index entries hold offsets relative to the segment base in 31 bits.
		return AppendResult{}, fmt.Errorf("append to %s-%d: %w: batches claim %d offsets (max %d)", l.topic, l.partition, ErrCorrupt, span, int64(maxSegmentOffsets))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(records, headers, cfg)
}

// requireKeys refuses a batch with a record without a key: compaction keeps the latest record
// per key, so Kafka refuses keyless records on compacted topics.
func requireKeys(b []byte, h batch.Header) error {
	return batch.Records(b, func(r *batch.Record) error {
		if r.Key == nil {
			return fmt.Errorf("%w: record at offset delta %d has no key; cleanup.policy=%s needs one (base offset %d)", ErrInvalidRecord, r.OffsetDelta, "compact", h.BaseOffset)
		}
		return nil
	})
}

// maxSegmentOffsets is the most offsets one segment may span (Kafka's rule): offsets relative
// to the base must fit the indexes' 32-bit fields.
const maxSegmentOffsets = math.MaxInt32

func (l *Log) appendLocked(records []byte, headers []batch.Header, cfg *TopicConfig) (AppendResult, error) {
	if l.closed {
		return AppendResult{}, fmt.Errorf("append to %s-%d: %w", l.topic, l.partition, ErrClosed)
	}
	if l.failed != nil {
		return AppendResult{}, fmt.Errorf("append: %w", l.failed)
	}
	var idem *batch.Header // the batch of an idempotent producer (then the only one)
	if headers[0].ProducerID >= 0 {
		idem = &headers[0]
		dup, err := l.producers.check(idem)
		if err != nil {
			return AppendResult{}, fmt.Errorf("append to %s-%d: %w", l.topic, l.partition, err)
		}
		if dup != nil {
			return l.duplicateLocked(dup, cfg), nil // already written: not refused below
		}
	}
	if gate := l.store.opts.AppendGate; gate != nil {
		if err := gate(); err != nil {
			return AppendResult{}, fmt.Errorf("append to %s-%d: %w (%w): %w", l.topic, l.partition, ErrStorage, ErrAppendRefused, err)
		}
	}
	var span int64
	for i := range headers {
		span += int64(headers[i].LastOffsetDelta) + 1
	}
	if err := l.maybeRollLocked(int64(len(records)), span, cfg); err != nil {
		return AppendResult{}, err
	}
	s := l.active()
	res := AppendResult{BaseOffset: l.leo, LogAppendTime: -1}
	next := l.stampLocked(records, headers, cfg, &res)
	if _, err := s.file.WriteAt(records, s.size); err != nil {
		// Leave no partial batch behind: the next append overwrites from s.size anyway.
		s.file.Truncate(s.size)
		return AppendResult{}, fmt.Errorf("append to %s: %w: %v", s.path, ErrStorage, err)
	}
	pos := s.size
	var numRecords int64
	for i := range headers {
		if err := s.indexBatch(pos, headers[i], cfg.IndexIntervalBytes); err != nil {
			l.log.Warn("index append failed; lookups will scan", "file", s.path, "err", err)
		}
		pos += int64(headers[i].Size())
		numRecords += int64(headers[i].NumRecords)
	}
	if s.next == s.base && s.size == 0 {
		s.created = time.Now()
	}
	s.size, s.next, l.leo = pos, next, next
	if idem != nil {
		l.producers.apply(idem, l.store.nowMs())
	}
	m := &l.store.metrics
	m.appendBatches.Add(int64(len(headers)))
	m.appendRecords.Add(numRecords)
	m.appendBytes.Add(int64(len(records)))
	res.LastOffset, res.LogStartOffset = next-1, l.logStart
	if l.unflushed == 0 {
		l.dirtySince = time.Now()
	}
	l.unflushed += numRecords
	if l.store.opts.Fsync == FsyncAlways || l.unflushed >= cfg.FlushMessages {
		l.kickSyncer()
	}
	if l.store.opts.Fsync != FsyncAlways {
		l.setHWLocked(l.leo, s, s.size)
	}
	return res, nil
}

// stampLocked stamps base offsets and the leader epoch (and, with LogAppendTime, the time) in
// the batches and their headers, and returns the offset after the last batch. Caller holds mu.
func (l *Log) stampLocked(records []byte, headers []batch.Header, cfg *TopicConfig, res *AppendResult) int64 {
	now := time.Now().UnixMilli()
	next, off := l.leo, 0
	for i := range headers {
		b := records[off : off+headers[i].Size()]
		batch.SetBaseOffset(b, next)
		batch.SetPartitionLeaderEpoch(b, l.epoch)
		headers[i].BaseOffset = next
		if cfg.LogAppendTime {
			setLogAppendTime(b, now)
			headers[i].MaxTimestamp = now
			res.LogAppendTime = now
		}
		next = headers[i].LastOffset() + 1
		off += headers[i].Size()
	}
	return next
}

// idempotent reports whether any of the batches comes from an idempotent producer.
func idempotent(headers []batch.Header) bool {
	for i := range headers {
		if headers[i].ProducerID >= 0 {
			return true
		}
	}
	return false
}

// duplicateLocked answers a retried idempotent batch with the offsets it got the first time.
// The caller's acknowledgement waits for the high watermark to cover them, as it would have
// for the original append.
func (l *Log) duplicateLocked(dup *producerBatch, cfg *TopicConfig) AppendResult {
	l.store.metrics.producerDuplicates.Add(1)
	res := AppendResult{BaseOffset: dup.firstOffset, LastOffset: dup.lastOffset, LogAppendTime: -1,
		LogStartOffset: l.logStart, Duplicate: true}
	if cfg.LogAppendTime {
		res.LogAppendTime = dup.timestamp
	}
	return res
}

func (l *Log) kickSyncer() {
	select {
	case l.syncCh <- struct{}{}:
	default:
	}
}

// setLogAppendTime switches a batch to LogAppendTime and re-checksums it.
func setLogAppendTime(b []byte, now int64) {
	attrs := uint16(b[batch.AttributesPos])<<8 | uint16(b[batch.AttributesPos+1])
	attrs |= 1 << 3
	b[batch.AttributesPos], b[batch.AttributesPos+1] = byte(attrs>>8), byte(attrs)
	for i := 0; i < 8; i++ {
		b[batch.MaxTimestampPos+i] = byte(uint64(now) >> (56 - 8*i))
	}
	crc := batch.CRC(b)
	b[batch.CRCPos], b[batch.CRCPos+1], b[batch.CRCPos+2], b[batch.CRCPos+3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
}

// maybeRollLocked starts a new segment when the active one would grow past segment.bytes, is
// older than segment.ms, or would span more offsets than its indexes can hold.
func (l *Log) maybeRollLocked(incoming, offsets int64, cfg *TopicConfig) error {
	s := l.active()
	if s.size == 0 {
		return nil
	}
	full := s.size+incoming > cfg.SegmentBytes
	old := cfg.SegmentAge > 0 && time.Since(s.created) >= cfg.SegmentAge
	wide := l.leo+offsets-s.base > maxSegmentOffsets
	if !full && !old && !wide {
		return nil
	}
	return l.rollLocked(cfg)
}

func (l *Log) rollLocked(cfg *TopicConfig) error {
	s := l.active()
	// Recovery after a crash scans only the newest two segments, so the one about to become
	// third newest must be on disk. The syncer has almost always done it long ago (it is
	// kicked at every roll); if not, do it now, with the lock held.
	if n := len(l.segments); n >= 2 && !l.segments[n-2].synced {
		if err := l.syncSealedLocked(l.segments[n-2]); err != nil {
			return fmt.Errorf("roll %s-%d: %w", l.topic, l.partition, err)
		}
	}
	ns, err := createSegment(l.dir, l.leo, cfg, l.store.usePread())
	if err != nil {
		return fmt.Errorf("roll %s-%d: %w: %v", l.topic, l.partition, ErrStorage, err)
	}
	if err := s.seal(); err != nil {
		l.log.Warn("seal segment", "file", s.path, "err", err)
	}
	s.synced = false // the syncer fsyncs it, with its indexes
	l.queueSnapshotLocked(l.leo)
	segs := make([]*segment, len(l.segments), len(l.segments)+1)
	copy(segs, l.segments)
	l.segments = append(segs, ns)
	l.dirDirty = true
	// The sealed segment must reach the disk whatever the fsync mode, so that recovery only
	// ever needs to look at the newest segments.
	l.kickSyncer()
	return nil
}

// segmentFor returns the segment holding offset from a snapshot (last with base <= offset).
func segmentFor(segs []*segment, offset int64) int {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset })
	return i - 1
}

// partitionDir names a partition directory inside a topic directory.
func partitionDir(topicDir string, p int32) string {
	return filepath.Join(topicDir, strconv.Itoa(int(p)))
}

// writeFileAtomic is a seam for tests.
var writeFileAtomic = atomicfile.WriteFile
