package cloud

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Parallel decoding.
//
// The scanner of a segment reads batches in order from the ranged GETs and hands each to a
// decodeTask: the CRC-32C check, decompression and record parsing — nearly all of a query's
// CPU — run in a goroutine per batch, up to 2×Decoders batches ahead of the scanner, which
// applies the decoded batches strictly in order (offset checks, stop conditions, filters,
// the sink). So records come out exactly as from a serial decoder, and memory holds at most
// 2×Decoders batches with their decompressed records. Batches below asyncDecodeMin bytes, and
// every batch with Decoders 1, are checked and decompressed inline and their records are
// parsed straight into the sink when applied, as a serial decoder does: for small batches a
// goroutine and its hand-off cost about as much as the work, and a batch decoded in a
// goroutine must keep its records (decodedRecord) until its turn, which costs about a tenth
// of the decoding.

// asyncDecodeMin is the smallest batch decoded in a goroutine of its own (a variable for
// tests, which set it to 0 to send every batch through the goroutines).
var asyncDecodeMin = 16 << 10

// Offsets in a v2 batch header (big-endian fields).
const (
	batchLengthAt     = 8  // int32 length of what follows it
	batchAttributesAt = 21 // int16 attributes; the low 3 bits are the codec
	batchCodecMask    = 0x07
	sizePrefixLen     = 12 // baseOffset and length
)

// Buffers a spare task keeps; bigger ones go to the garbage collector.
const (
	maxKeptRaw   = 4 << 20
	maxKeptPlain = 16 << 20
)

// decodedRecord is a record of a decoded batch. Its key, value and header values are byte
// ranges (see span) of the batch buffer the task decoded or, when batch.Records handed out
// bytes outside it, of the task's arena: no pointers, so keeping them costs no write barriers.
type decodedRecord struct {
	offset, ts int64
	key, value span
	hdr0, hdr1 int32 // the record's headers: task.hdrs[hdr0:hdr1]
}

// decodedHeader is a record header of a decoded batch.
type decodedHeader struct {
	key   string
	value span
}

// span is a byte range [off, off+n) of a task's decoded batch (off >= 0) or of its arena
// (off < 0: arena[-off-1:]); n < 0 is null.
type span struct{ off, n int32 }

// keep returns the span of b, which batch.Records handed out: a range of base when b lies
// in it, else a copy in the arena. (Records promises its slices only for the call; an
// uncompressed batch's bytes are in practice the caller's, which this checks.)
func (t *decodeTask) keep(base, b []byte) span {
	switch {
	case b == nil:
		return span{0, -1}
	case len(b) == 0:
		return span{0, 0}
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(base)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(base)) {
		return span{int32(p - lo), int32(len(b))}
	}
	off := len(t.arena)
	t.arena = append(t.arena, b...)
	return span{int32(-off - 1), int32(len(b))}
}

// bytes returns the bytes of a span, nil for null.
func (t *decodeTask) bytes(sp span) []byte {
	switch {
	case sp.n < 0:
		return nil
	case sp.off >= 0:
		return t.base[sp.off : sp.off+sp.n : sp.off+sp.n]
	}
	off := -sp.off - 1
	return t.arena[off : off+sp.n : off+sp.n]
}

// decodeTask is one batch between the scanner that read it and the scanner applying it.
type decodeTask struct {
	pos   int64  // byte position in the object
	raw   []byte // the batch as stored
	plain []byte // a compressed batch rewritten uncompressed: its header, then the records
	h     batch.Header
	verr  error  // the batch failed batch.Validate
	derr  error  // decoding its records failed (after the records in recs)
	base  []byte // raw or plain: the batch whose records were decoded
	arena []byte // copies of record bytes found outside base
	recs  []decodedRecord
	hdrs  []decodedHeader
	async bool          // decoded in a goroutine, which signals done
	done  chan struct{} // buffered 1
}

// decode checks the batch and, when it may hold offsets in [from, to) and is not a control
// batch, decompresses it (t.base) and, with materialize, decodes its records into recs for
// the scanner to apply later; without, apply walks t.base itself. It runs in any goroutine
// and touches only the task.
func (t *decodeTask) decode(from, to int64, materialize bool) {
	t.recs, t.hdrs, t.arena, t.base, t.derr = t.recs[:0], t.hdrs[:0], t.arena[:0], nil, nil
	t.h, t.verr = batch.Validate(t.raw)
	if t.verr != nil || t.h.Control() || t.h.LastOffset() < from || t.h.BaseOffset >= to {
		return
	}
	b := t.raw
	if c := t.h.Codec(); c != batch.CodecNone && t.h.NumRecords > 0 && len(t.raw) > batch.HeaderSize {
		// Decompress once into a buffer of our own and walk it as an uncompressed batch, so
		// that the records stay valid after batch.Records returns (its own buffer does not).
		plain, ok := append(t.plain[:0], t.raw[:batch.HeaderSize]...), false
		if c == batch.CodecLZ4 {
			plain, ok = appendLZ4(plain, t.raw[batch.HeaderSize:])
		}
		var err error
		if !ok {
			plain, err = batch.Decompress(c, t.raw[batch.HeaderSize:], plain[:batch.HeaderSize])
		}
		if err != nil {
			t.derr = fmt.Errorf("records at offset %d: %w", t.h.BaseOffset, err)
			return
		}
		t.plain = plain
		binary.BigEndian.PutUint32(plain[batchLengthAt:], uint32(len(plain)-sizePrefixLen))
		attrs := binary.BigEndian.Uint16(plain[batchAttributesAt:])
		binary.BigEndian.PutUint16(plain[batchAttributesAt:], attrs&^batchCodecMask)
		b = plain
	}
	if len(b) > math.MaxInt32 {
		t.derr = fmt.Errorf("records at offset %d: a batch of %d bytes: %w", t.h.BaseOffset, len(b), batch.ErrTooLarge)
		return
	}
	t.base = b
	if !materialize {
		return
	}
	t.derr = batch.Records(b, func(r *batch.Record) error {
		h0 := int32(len(t.hdrs))
		for _, h := range r.Headers {
			t.hdrs = append(t.hdrs, decodedHeader{key: h.Key, value: t.keep(b, h.Value)})
		}
		t.recs = append(t.recs, decodedRecord{offset: r.Offset, ts: r.Timestamp, key: t.keep(b, r.Key),
			value: t.keep(b, r.Value), hdr0: h0, hdr1: int32(len(t.hdrs))})
		return nil
	})
}

// newTask returns a spare task with room for a batch of size bytes.
func (q *Query) newTask(size int) *decodeTask {
	var t *decodeTask
	if n := len(q.spare); n > 0 {
		t, q.spare = q.spare[n-1], q.spare[:n-1]
	} else {
		t = &decodeTask{done: make(chan struct{}, 1)}
	}
	if cap(t.raw) < size {
		t.raw = make([]byte, size)
	}
	t.raw = t.raw[:size]
	return t
}

// putTask keeps a task that no goroutine uses any more for the next batch.
func (q *Query) putTask(t *decodeTask) {
	if cap(t.raw) > maxKeptRaw {
		t.raw = nil
	}
	if cap(t.plain) > maxKeptPlain {
		t.plain = nil
	}
	if cap(t.arena) > maxKeptRaw {
		t.arena = nil
	}
	clear(t.hdrs) // drop the header key strings
	t.recs, t.hdrs, t.base, t.verr, t.derr, t.async = t.recs[:0], t.hdrs[:0], nil, nil, nil, false
	q.spare = append(q.spare, t)
}

// submit starts decoding t, in a goroutine when it is big enough and Decoders allows, and
// queues it for apply.
func (s *scanner) submit(t *decodeTask) {
	from, to := s.job.part.from, s.q.opts.ToOffset
	if s.q.opts.Decoders > 1 && len(t.raw) >= asyncDecodeMin {
		t.async = true
		go func() {
			t.decode(from, to, true)
			t.done <- struct{}{}
		}()
	} else {
		t.decode(from, to, false) // apply streams the records: nothing to keep
	}
	s.pending = append(s.pending, t)
}

// window is how many batches may be decoded ahead of the one applied.
func (s *scanner) window() int { return 2 * max(1, s.q.opts.Decoders) }

// applyNext waits for the oldest pending batch and applies it.
func (s *scanner) applyNext() (stop bool, err error) {
	t := s.pending[0]
	s.pending = s.pending[1:]
	if t.async {
		<-t.done
	}
	stop, err = s.apply(t)
	s.q.putTask(t)
	return stop, err
}

// applyAll applies every pending batch, in order; on a stop or an error it waits for the
// rest and drops them.
func (s *scanner) applyAll() (stop bool, err error) {
	for len(s.pending) > 0 {
		if stop, err = s.applyNext(); stop || err != nil {
			s.dropPending()
			return stop, err
		}
	}
	return false, nil
}

// dropPending waits for the pending batches' goroutines and drops the batches.
func (s *scanner) dropPending() {
	for _, t := range s.pending {
		if t.async {
			<-t.done
		}
		s.q.putTask(t)
	}
	s.pending = s.pending[:0]
}

// apply checks a decoded batch's place, updates the partition's state and writes its
// records in range to the sink.
func (s *scanner) apply(t *decodeTask) (stop bool, err error) {
	if t.verr != nil {
		return false, s.corrupt(t.pos, headerBase(t.raw), t.verr)
	}
	h, meta := t.h, s.job.seg.meta
	if h.BaseOffset < s.nextOff || h.LastOffset() > meta.LastOffset {
		return false, s.corrupt(t.pos, h.BaseOffset, fmt.Errorf("batch offsets %d-%d out of place (expected from %d, segment ends at %d)",
			h.BaseOffset, h.LastOffset(), s.nextOff, meta.LastOffset))
	}
	q := s.q
	q.st.batches.Add(1)
	if h.BaseOffset >= q.opts.ToOffset || s.runMax >= q.stopAtMax {
		return true, nil
	}
	s.nextOff, s.lastGood = h.LastOffset()+1, h.LastOffset()
	s.runMax = max(s.runMax, h.MaxTimestamp)
	if h.LastOffset() < s.job.part.from || h.Control() {
		return false, nil
	}
	derr := t.derr
	if t.async {
		for i := range t.recs {
			if err := s.record(t, &t.recs[i]); err != nil {
				return false, err
			}
		}
	} else if t.base != nil {
		err := batch.Records(t.base, func(r *batch.Record) error {
			if err := s.emit(r.Offset, r.Timestamp, r.Key, r.Value, r.Headers); err != nil {
				return sinkError{err}
			}
			return nil
		})
		var se sinkError
		if errors.As(err, &se) {
			return false, se.err
		}
		derr = err
	}
	if derr != nil {
		return false, s.corrupt(t.pos, h.BaseOffset, derr)
	}
	return false, nil
}

// sinkError carries an error of the sink (or errStopQuery) through batch.Records.
type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }

// record writes a materialized record through emit.
func (s *scanner) record(t *decodeTask, r *decodedRecord) error {
	q := s.q
	if r.offset < s.job.part.from || r.offset >= q.opts.ToOffset || r.ts < q.sinceMs || r.ts >= q.untilMs {
		return nil // before building the headers
	}
	s.hdrs = s.hdrs[:0]
	for _, h := range t.hdrs[r.hdr0:r.hdr1] {
		s.hdrs = append(s.hdrs, batch.RecordHeader{Key: h.key, Value: t.bytes(h.value)})
	}
	return s.emit(r.offset, r.ts, t.bytes(r.key), t.bytes(r.value), s.hdrs)
}

// emit filters one record and writes it to the sink; errStopQuery ends the query at Limit.
func (s *scanner) emit(offset, ts int64, key, value []byte, headers []batch.RecordHeader) error {
	q := s.q
	if offset < s.job.part.from || offset >= q.opts.ToOffset || ts < q.sinceMs || ts >= q.untilMs ||
		q.opts.Key != nil && (key == nil || string(key) != string(q.opts.Key)) {
		return nil
	}
	s.rec.Offset, s.rec.Timestamp, s.rec.Key, s.rec.Value, s.rec.Headers = offset, ts, key, value, headers
	if err := s.sink.WriteRecord(&s.rec); err != nil {
		return err
	}
	if n := q.st.records.Add(1); q.opts.Limit > 0 && n >= q.opts.Limit {
		return errStopQuery
	}
	return nil
}
