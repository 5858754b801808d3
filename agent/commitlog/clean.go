package commitlog

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// cleanerCrashAt is a test seam: when it returns true for a stage ("written": output
// fsynced, not committed; "committed": swap committed, old segments still there), the pass
// stops there and leaves the files as a crash at that point would.
var cleanerCrashAt func(stage string) bool

var errSimulatedCrash = errors.New("simulated crash")

// cleanLog runs one compaction pass over l: map the keys of the dirty part, then rewrite the
// compactable segments from the log start, group by group.
func (c *cleaner) cleanLog(l *Log, now time.Time) error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	p, err := l.planClean(now)
	if err != nil || !p.due {
		return err
	}
	records, err := l.countDirtyRecords(p)
	if err != nil {
		return err
	}
	// The map is sized for this pass (at most the budget) and dropped after it, so a small
	// partition such as __consumer_offsets does not hold the whole budget in memory.
	c.keys = newKeyMap(min(c.store.opts.CleanerBufferBytes, (records+records/8+64)*keyMapSlotBytes))
	defer func() { c.keys.release(); c.keys = nil }()
	c.progressTotal.Store(p.dirtyBytes + p.totalBytes)
	c.progressDone.Store(0)
	mappedEnd, err := c.mapKeys(l, p)
	if err != nil {
		return err
	}
	before, err := l.cleanerCheckpoint()
	if err != nil {
		return err
	}
	pass := cleanPass{c: c, l: l, cfg: l.config(), mappedEnd: mappedEnd, nowMs: now.UnixMilli(), producers: l.lastProducerBatches(),
		deadline: math.MaxInt64, cleaned: before}
	for i := 0; i < len(p.segs) && p.segs[i].base < mappedEnd; {
		n, err := pass.rewrite(p.segs[i:])
		if err != nil {
			return err
		}
		i += n
	}
	ck, err := l.cleanerCheckpoint() // the rewrites raised GapsBelow
	if err != nil {
		return err
	}
	ck.FirstDirty = max(ck.FirstDirty, mappedEnd)
	ck.markCleaned(mappedEnd, pass.nowMs)
	ck.TombstoneDeadline = 0
	if pass.deadline < math.MaxInt64 {
		ck.TombstoneDeadline = pass.deadline
	}
	if err := l.saveCleanerCheckpoint(ck); err != nil {
		return err
	}
	l.log.Info("compacted", "segments", len(p.segs), "mapped_to_offset", mappedEnd,
		"records_removed", pass.removed, "tombstones_removed", pass.tombstones,
		"bytes_before", pass.bytesIn, "bytes_after", pass.bytesOut)
	return nil
}

// countDirtyRecords bounds the number of dirty records by the offsets they span (no I/O:
// reading every batch header cost as much as the mapping pass on a cold cache).
func (l *Log) countDirtyRecords(p cleanPlan) (int64, error) {
	var n int64
	for _, s := range p.segs {
		if s.next > p.firstDirty {
			n += s.next - max(s.base, p.firstDirty)
		}
	}
	return n, nil
}

// mapKeys fills the key map with the latest offset of every key at or after the first dirty
// offset, in order, and returns the offset it mapped up to: the end of the compactable
// segments, or where the map filled up.
func (c *cleaner) mapKeys(l *Log, p cleanPlan) (int64, error) {
	end := p.segs[len(p.segs)-1].next
	full := errors.New("key map full")
	for _, s := range p.segs {
		if s.next <= p.firstDirty {
			continue
		}
		res := scanBatches(s.file, 0, s.size, func(_ int64, b []byte, h batch.Header) error {
			if err := c.checkAbort(l); err != nil {
				return err
			}
			c.bytesRead.Add(int64(len(b)))
			c.progressDone.Add(int64(len(b)))
			c.throttle(l, int64(len(b)))
			if h.LastOffset() < p.firstDirty || h.NumRecords == 0 {
				return nil
			}
			return batch.Records(b, func(r *batch.Record) error {
				if r.Offset < p.firstDirty || r.Key == nil {
					return nil
				}
				if !c.keys.put(r.Key, r.Offset) {
					end = r.Offset
					return full
				}
				return nil
			})
		})
		switch {
		case res.err == nil:
		case errors.Is(res.err, full):
			l.log.Info("cleaner key map full; compacting part of the dirty data this pass", "mapped_to_offset", end, "keys", c.keys.len())
			return end, nil
		case errors.Is(res.err, errCleanAborted), errors.Is(res.err, ErrStorage):
			return 0, res.err
		default:
			return 0, fmt.Errorf("%w: segment %s position %d: %v", ErrCorrupt, s.path, res.validEnd, res.err)
		}
	}
	return end, nil
}

func (c *cleaner) checkAbort(l *Log) error {
	if l.abort.Load() || c.stopping() {
		return errCleanAborted
	}
	return nil
}

// lastProducerBatches maps each tracked idempotent producer to the last offset of its newest
// batch: a batch that compaction empties is kept (as an empty batch) when it is that one, so
// a replay of the log rebuilds the producer's sequence.
func (l *Log) lastProducerBatches() map[int64]int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[int64]int64, l.producers.len())
	for id, e := range l.producers.byID {
		if b := e.last(); b != nil {
			out[id] = b.lastOffset
		}
	}
	return out
}

// cleanPass is the state of one pass's rewrites.
type cleanPass struct {
	c         *cleaner
	l         *Log
	cfg       *TopicConfig
	mappedEnd int64
	nowMs     int64
	cleaned   cleanerCheckpoint // before this pass: when offsets were first compacted
	producers map[int64]int64

	deadline   int64 // earliest time a kept tombstone may go (MaxInt64: none kept)
	removed    int64
	tombstones int64
	// what the store's counters already have of removed and tombstones (counted per
	// committed rewrite, so a pass that is interrupted counts what it committed)
	countedRemoved, countedTombs int64
	bytesIn                      int64
	bytesOut                     int64
}

// keep decides whether a record survives compaction.
func (p *cleanPass) keep(r *batch.Record) bool {
	if r.Key == nil || r.Offset >= p.mappedEnd {
		return true
	}
	if latest, ok := p.c.keys.get(r.Key); ok && latest > r.Offset {
		p.removed++
		return false
	}
	if r.Value == nil { // a tombstone, the latest record of its key
		// It stays delete.retention.ms after the pass that first compacted it.
		at := p.cleaned.firstCleanedAt(r.Offset)
		if at >= 0 && at+p.cfg.DeleteRetentionMs <= p.nowMs {
			p.tombstones++
			return false
		}
		if at < 0 {
			at = p.nowMs
		}
		if d := at + p.cfg.DeleteRetentionMs; d < p.deadline {
			p.deadline = d
		}
	}
	return true
}

// rewrite compacts a run of segments from the start of segs into one new segment and swaps
// it in (swap.go has the protocol). It returns how many segments it replaced.
func (p *cleanPass) rewrite(segs []*segment) (int, error) {
	l, base := p.l, segs[0].base
	removeCleaned(l.dir, base)
	ns, err := openSegmentAt(l.dir, base, cleanedSuffix, p.cfg, true, l.store.usePread())
	if err != nil {
		return 0, fmt.Errorf("compact %s-%d: %w: %v", l.topic, l.partition, ErrStorage, err)
	}
	ns.index.path, ns.tindex.path = segmentPath(l.dir, base, ".index"), segmentPath(l.dir, base, ".timeindex")
	n, err := p.writeGroup(ns, segs)
	if err != nil {
		ns.release()
		removeCleaned(l.dir, base)
		return 0, err
	}
	group := segs[:n]
	if cleanerCrashAt != nil && cleanerCrashAt("written") {
		ns.release()
		return 0, errSimulatedCrash // leave the files as a crash would
	}
	if err := l.allowGapsBelow(segs[n-1].next); err != nil {
		ns.release()
		removeCleaned(l.dir, base)
		return 0, err
	}
	if err := commitSwap(l.dir, base); err != nil {
		ns.release()
		removeCleaned(l.dir, base)
		return 0, err
	}
	if cleanerCrashAt != nil && cleanerCrashAt("committed") {
		ns.release()
		return 0, errSimulatedCrash
	}
	if err := l.publishCleaned(group, ns); err != nil {
		// Committed on disk but not in memory: a restart finishes the swap.
		ns.release()
		return 0, err
	}
	if err := completeSwap(l.dir, base, group); err != nil {
		l.log.Error("finishing a compacted segment's swap failed; a restart finishes it", "err", err)
	}
	for _, s := range group {
		s.release()
	}
	p.c.segmentsRewritten.Add(int64(len(group)))
	p.c.recordsRemoved.Add(p.removed - p.countedRemoved)
	p.c.tombstonesRemoved.Add(p.tombstones - p.countedTombs)
	p.countedRemoved, p.countedTombs = p.removed, p.tombstones
	return n, nil
}

// allowGapsBelow records, durably, that segments below end may have offset gaps, before a
// rewrite of them commits. Caller holds maintMu.
func (l *Log) allowGapsBelow(end int64) error {
	ck, err := l.cleanerCheckpoint()
	if err != nil {
		return err
	}
	if end <= ck.GapsBelow {
		return nil
	}
	ck.GapsBelow = end
	if err := l.saveCleanerCheckpoint(ck); err != nil {
		return err
	}
	l.mu.Lock()
	l.gapsBelow = max(l.gapsBelow, end)
	l.mu.Unlock()
	return nil
}

// joins decides whether segment s may join a group whose output so far is out bytes from in
// bytes of input: its estimated output (at the group's ratio so far) must fit segment.bytes,
// its offsets the indexes, and its whole input the 32-bit file positions.
func (p *cleanPass) joins(s *segment, base, in, out int64) bool {
	if s.base >= p.mappedEnd || s.next-base > maxSegmentOffsets || out+s.size > math.MaxInt32 {
		return false
	}
	est := s.size
	if in > 0 {
		est = s.size * out / in
	}
	return out+est <= p.cfg.SegmentBytes
}

// writeGroup writes the compacted batches of segs[0] and of as many following segments as
// join the group to ns, then indexes, seals and fsyncs it. The group's last batch is always
// written (empty if compaction emptied it), so ns ends where the group did.
func (p *cleanPass) writeGroup(ns *segment, segs []*segment) (int, error) {
	l := p.l
	w := bufio.NewWriterSize(ns.file, 256<<10)
	var in, pos int64
	var out, tail []byte
	n := 0
	for ; n < len(segs); n++ {
		s := segs[n]
		if n > 0 && !p.joins(s, ns.base, in, pos) {
			break
		}
		if tail != nil {
			tail = tail[:0] // the previous segment's emptied last batch is not the end now
		}
		res := scanBatches(s.file, 0, s.size, func(_ int64, b []byte, h batch.Header) error {
			if err := p.c.checkAbort(l); err != nil {
				return err
			}
			p.c.bytesRead.Add(int64(len(b)))
			p.c.progressDone.Add(int64(len(b)))
			in += int64(len(b))
			var kept int
			var err error
			out, kept, err = batch.Filter(out[:0], b, p.keep)
			if err != nil {
				return fmt.Errorf("%w: filter batch at offset %d: %v", ErrCorrupt, h.BaseOffset, err)
			}
			p.c.throttle(l, int64(len(b)+len(out)))
			if kept == 0 && !p.producerNeeds(h) {
				if h.LastOffset()+1 == s.next {
					tail = append(tail[:0], out...) // written only if the group ends here
				}
				return nil // an emptied batch nobody needs
			}
			return p.writeBatch(ns, w, out, &pos)
		})
		if res.err != nil {
			if errors.Is(res.err, errCleanAborted) || errors.Is(res.err, ErrStorage) || errors.Is(res.err, ErrCorrupt) {
				return 0, res.err
			}
			return 0, fmt.Errorf("%w: segment %s position %d: %v", ErrCorrupt, s.path, res.validEnd, res.err)
		}
	}
	if len(tail) > 0 {
		if err := p.writeBatch(ns, w, tail, &pos); err != nil {
			return 0, err
		}
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w: %v", ns.path+cleanedSuffix, ErrStorage, err)
	}
	if end := segs[n-1].next; ns.next != end {
		return 0, fmt.Errorf("compact %s: rewritten segment ends at offset %d, not %d", ns.path, ns.next, end)
	}
	ns.size, ns.diskEnd = pos, pos
	ns.verifiedEnd.Store(pos)
	if err := ns.seal(); err != nil {
		return 0, fmt.Errorf("seal %s: %w: %v", ns.path+cleanedSuffix, ErrStorage, err)
	}
	if err := ns.syncFiles(l.fsyncFile, true); err != nil {
		return 0, err
	}
	ns.synced = true
	p.bytesIn += in
	p.bytesOut += pos
	return n, nil
}

// producerNeeds reports whether h is the newest batch of a tracked idempotent producer: kept
// even when emptied, so a replay of the log rebuilds the producer's sequence.
func (p *cleanPass) producerNeeds(h batch.Header) bool {
	last, ok := p.producers[h.ProducerID]
	return ok && h.ProducerID >= 0 && last == h.LastOffset()
}

// writeBatch appends a compacted batch to the segment being written and indexes it.
func (p *cleanPass) writeBatch(ns *segment, w *bufio.Writer, b []byte, pos *int64) error {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return fmt.Errorf("%w: compacted batch: %v", ErrCorrupt, err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w: %v", ns.path+cleanedSuffix, ErrStorage, err)
	}
	if err := ns.indexBatch(*pos, h, p.cfg.IndexIntervalBytes); err != nil {
		p.l.log.Warn("index of a compacted segment is incomplete; lookups will scan", "err", err)
	}
	*pos += int64(len(b))
	ns.next = h.LastOffset() + 1
	p.c.bytesWritten.Add(int64(len(b)))
	return nil
}

// publishCleaned puts ns in place of group in the segment list.
func (l *Log) publishCleaned(group []*segment, ns *segment) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := segmentFor(l.segments, group[0].base)
	if i < 0 || i+len(group) > len(l.segments)-1 || l.segments[i] != group[0] || l.segments[i+len(group)-1] != group[len(group)-1] {
		return fmt.Errorf("compact %s-%d: the segments changed during the pass", l.topic, l.partition)
	}
	segs := make([]*segment, 0, len(l.segments)-len(group)+1)
	segs = append(segs, l.segments[:i]...)
	segs = append(segs, ns)
	segs = append(segs, l.segments[i+len(group):]...)
	for _, s := range group {
		if s == l.hwSeg {
			l.hwSeg, l.hwPos = ns, ns.size
		}
	}
	l.segments = segs
	return nil
}
