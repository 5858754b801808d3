package commitlog

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Idempotent producers
//
// A batch whose header carries a producer id (>= 0) comes from an idempotent producer: it
// also carries the producer's epoch and the sequence number of its first record, and
// producers number their records 0, 1, 2, ... per partition (wrapping from MaxInt32 to 0).
// Each partition remembers, per producer id, the epoch and the last producerWindow batches
// (first and last sequence, first and last offset, timestamp), which is what Kafka keeps
// and what a client with up to five requests in flight needs:
//
//   - a batch equal to a remembered one (same epoch, same first and last sequence) is a
//     retry: it is not appended, and the append answers with the offsets it got first;
//   - a batch of the current epoch must continue the sequence (first = last + 1), else
//     ErrOutOfOrderSequence;
//   - an older epoch is a fenced producer: ErrInvalidProducerEpoch;
//   - a newer epoch (the producer bumped it, KIP-360) must start at sequence 0;
//   - an unknown producer id is accepted at any sequence (Kafka >= 2.5): its state may have
//     expired while the producer was idle.
//
// The check and the update run under Log.mu with the write, so concurrent appends of one
// producer are serialised; the steady state allocates nothing. Memory is bounded: ids idle
// longer than the producer id expiration are dropped (Store.ExpireProducers), and a partition
// tracks at most Options.MaxProducers ids, evicting the least recently used. The state
// survives restarts through snapshots (producersnapshot.go).

// producerWindow is how many batches per producer a partition remembers (Kafka's 5: the most
// requests a client may have in flight with idempotence on).
const producerWindow = 5

// producerBatch is one remembered batch of a producer.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	timestamp               int64 // the batch's max timestamp (append time with LogAppendTime)
}

// producerEntry is what a partition knows about one producer id.
type producerEntry struct {
	id       int64
	epoch    int16
	n        uint8 // batches held, up to producerWindow
	next     uint8 // ring slot of the next batch
	lastSeen int64 // ms (store clock) of the last append, for expiry
	batches  [producerWindow]producerBatch

	older, newer *producerEntry // least recently used list
}

// last returns the newest remembered batch; the entry holds at least one.
func (e *producerEntry) last() *producerBatch {
	return &e.batches[(int(e.next)+producerWindow-1)%producerWindow]
}

// push remembers a batch, forgetting the oldest when the window is full.
func (e *producerEntry) push(b producerBatch) {
	e.batches[e.next] = b
	e.next = uint8((int(e.next) + 1) % producerWindow)
	if e.n < producerWindow {
		e.n++
	}
}

// each calls fn with the remembered batches, oldest first.
func (e *producerEntry) each(fn func(b *producerBatch)) {
	start := (int(e.next) + producerWindow - int(e.n)) % producerWindow
	for i := 0; i < int(e.n); i++ {
		fn(&e.batches[(start+i)%producerWindow])
	}
}

// producerState is one partition's producers. Guarded by the owning Log's mu.
type producerState struct {
	byID           map[int64]*producerEntry // nil until the first producer
	newest, oldest *producerEntry
	max            int           // cap on tracked ids (0: none)
	evictions      *atomic.Int64 // counts ids evicted by the cap, if set
}

// len is the number of producer ids tracked.
func (ps *producerState) len() int { return len(ps.byID) }

// lastSeq is the sequence of the last record of a batch starting at first with delta more
// records; sequences wrap from MaxInt32 to 0.
func lastSeq(first, delta int32) int32 {
	if first > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - first) - 1
	}
	return first + delta
}

// inSequence reports whether next follows last.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || next == 0 && last == math.MaxInt32
}

// validateProducerFields rejects producer fields no client sends: a transactional or control
// batch (transactions are not supported yet), or a producer id with a negative epoch or
// sequence.
func validateProducerFields(h *batch.Header) error {
	if h.Transactional() || h.Control() {
		return fmt.Errorf("%w (producer id %d): transactions are not supported yet", ErrTransactionalBatch, h.ProducerID)
	}
	if h.ProducerID >= 0 && (h.ProducerEpoch < 0 || h.BaseSequence < 0) {
		return fmt.Errorf("%w: producer id %d with epoch %d and base sequence %d", ErrCorrupt, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
	}
	return nil
}

// check decides what to do with an idempotent batch (h.ProducerID >= 0): append it (nil,
// nil), answer it as a duplicate of a remembered batch (dup, nil) or reject it. It changes
// nothing.
func (ps *producerState) check(h *batch.Header) (dup *producerBatch, err error) {
	e := ps.byID[h.ProducerID]
	if e == nil {
		return nil, nil // new, or expired: any sequence is accepted
	}
	first, last := h.BaseSequence, lastSeq(h.BaseSequence, h.LastOffsetDelta)
	if h.ProducerEpoch == e.epoch {
		for i := 0; i < int(e.n); i++ {
			if b := &e.batches[i]; b.firstSeq == first && b.lastSeq == last {
				return b, nil
			}
		}
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, fmt.Errorf("%w: producer id %d epoch %d, the partition has seen epoch %d",
			ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	case h.ProducerEpoch > e.epoch:
		if first != 0 {
			return nil, fmt.Errorf("%w: producer id %d starts its new epoch %d at sequence %d, not 0",
				ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, first)
		}
		return nil, nil
	}
	if prev := e.last().lastSeq; !inSequence(prev, first) {
		return nil, fmt.Errorf("%w: producer id %d epoch %d sent sequence %d, expected %d",
			ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, first, lastSeq(prev, 1))
	}
	return nil, nil
}

// apply records an appended idempotent batch (BaseOffset stamped) at time now (ms). A batch
// of an older epoch than known is ignored (only recovery could meet one).
func (ps *producerState) apply(h *batch.Header, now int64) {
	e := ps.byID[h.ProducerID]
	switch {
	case e == nil:
		e = ps.insert(h.ProducerID)
		e.epoch = h.ProducerEpoch
	case h.ProducerEpoch < e.epoch:
		return
	case h.ProducerEpoch > e.epoch:
		e.epoch, e.n, e.next = h.ProducerEpoch, 0, 0
		ps.touch(e)
	default:
		ps.touch(e)
	}
	e.push(producerBatch{
		firstSeq:    h.BaseSequence,
		lastSeq:     lastSeq(h.BaseSequence, h.LastOffsetDelta),
		firstOffset: h.BaseOffset,
		lastOffset:  h.LastOffset(),
		timestamp:   h.MaxTimestamp,
	})
	e.lastSeen = now
}

// insert adds an empty entry for id as the most recently used, evicting the least recently
// used one when the partition is at its cap (its memory is reused).
func (ps *producerState) insert(id int64) *producerEntry {
	if ps.byID == nil {
		ps.byID = make(map[int64]*producerEntry)
	}
	var e *producerEntry
	if ps.max > 0 && len(ps.byID) >= ps.max && ps.oldest != nil {
		e = ps.oldest
		ps.remove(e)
		if ps.evictions != nil {
			ps.evictions.Add(1)
		}
		*e = producerEntry{}
	} else {
		e = &producerEntry{}
	}
	e.id = id
	ps.byID[id] = e
	ps.pushNewest(e)
	return e
}

// touch makes e the most recently used.
func (ps *producerState) touch(e *producerEntry) {
	if ps.newest == e {
		return
	}
	ps.unlink(e)
	ps.pushNewest(e)
}

func (ps *producerState) pushNewest(e *producerEntry) {
	e.older, e.newer = ps.newest, nil
	if ps.newest != nil {
		ps.newest.newer = e
	}
	ps.newest = e
	if ps.oldest == nil {
		ps.oldest = e
	}
}

func (ps *producerState) unlink(e *producerEntry) {
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		ps.oldest = e.newer
	}
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		ps.newest = e.older
	}
	e.older, e.newer = nil, nil
}

// remove forgets e.
func (ps *producerState) remove(e *producerEntry) {
	ps.unlink(e)
	delete(ps.byID, e.id)
}

// expire drops the producers last seen at or before cutoff (ms) and returns how many. The
// list is in order of last use, so the walk stops at the first one still live (a wall clock
// that stepped back may leave a few expired ones for a later pass).
func (ps *producerState) expire(cutoff int64) int {
	n := 0
	for e := ps.oldest; e != nil && e.lastSeen <= cutoff; e = ps.oldest {
		ps.remove(e)
		n++
	}
	if len(ps.byID) == 0 {
		ps.byID = nil // give the map's memory back
	}
	return n
}

// reset forgets every producer.
func (ps *producerState) reset() {
	ps.byID, ps.newest, ps.oldest = nil, nil, nil
}
