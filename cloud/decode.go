package cloud

import (
	"errors"
	"fmt"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Parallel decoding.
//
// The scanner of a segment reads batches in order from the ranged GETs and hands each to a
// decodeTask: the CRC-32C check and decompression — most of a query's CPU — run in a
// goroutine per batch, up to 2×Decoders batches ahead of the scanner, which applies the
// decoded batches strictly in order (offset checks, stop conditions, record parsing, filters,
// Limit, the sink). So records come out exactly as from a serial decoder, and memory holds at
// most 2×Decoders batches with their decompressed records. A batch that lies in one GET's
// buffer is decoded from there (the task holds a reference to the chunk, which is released
// when its last task is applied); one that spans two is copied into a buffer of the task's
// own.
//
// Parsing the records in the scanner (recordReader: about 15 ns a record) costs less than
// keeping them for it: decode goroutines that also parsed and kept each record's fields used
// as much CPU in all, for more memory. JSON lines are the exception: encoding costs several
// times the decoding, so when the sink takes lines (a lineSink: NewWriter's jsonl writer, the
// HTTP server's stream) the goroutine also parses, filters and encodes the records
// (jsonlBatch), and the scanner only copies each batch's lines out, cut at Limit. Batches
// below asyncDecodeMin bytes, and every batch with Decoders 1, are decoded inline: for small
// batches a goroutine and its hand-off cost about as much as the work.

// asyncDecodeMin is the smallest batch decoded in a goroutine of its own (a variable for
// tests, which set it to 0 to send every batch through the goroutines).
var asyncDecodeMin = 16 << 10

// sizePrefixLen is the number of bytes of a batch's baseOffset and length fields.
const sizePrefixLen = 12

// Buffers a spare task keeps; bigger ones go to the garbage collector.
const (
	maxKeptRaw   = 4 << 20
	maxKeptPlain = 16 << 20
)

// span is a byte range [off, off+n) of a records area; n < 0 is null.
type span struct{ off, n int32 }

// spanBytes returns the bytes of a span of data, nil for null.
func spanBytes(data []byte, sp span) []byte {
	if sp.n < 0 {
		return nil
	}
	return data[sp.off : sp.off+sp.n : sp.off+sp.n]
}

// recordFilter decides which records go to the sink (before Limit): offsets in [from, to),
// timestamps in [since, until), and the key when key is set.
type recordFilter struct {
	from, to, since, until int64
	key                    []byte
	byKey                  bool
}

// pass reports whether a record goes to the sink.
func (f *recordFilter) pass(offset, ts int64, key []byte) bool {
	return offset >= f.from && offset < f.to && ts >= f.since && ts < f.until &&
		(!f.byKey || key != nil && string(key) == string(f.key))
}

// decodeEnv is what a scanner's decode goroutines share (read only).
type decodeEnv struct {
	filter    recordFilter
	jsonl     bool // encode the records as JSON lines (the sink is a *jsonlWriter)
	topic     string
	partition int32
}

// decodeTask is one batch between the scanner that read it and the scanner applying it.
type decodeTask struct {
	pos   int64  // byte position in the object
	raw   []byte // the batch as stored: a range of ref's buffer, or of buf
	buf   []byte // the task's own buffer, for a batch that spans chunks
	ref   *chunk // the chunk raw lies in, nil when in buf
	plain []byte // a compressed batch's records, decompressed
	h     batch.Header
	verr  error         // the batch failed batch.Validate
	derr  error         // decoding its records failed (after the records in lines)
	data  []byte        // the records area, uncompressed (raw's or plain); nil: nothing to apply
	lines jsonlBatch    // the records in JSON lines, when the sink takes them
	async bool          // decoded in a goroutine, which signals done
	done  chan struct{} // buffered 1
}

// decode checks the batch and, when it may hold offsets in [from, to) and is not a control
// batch, decompresses it (t.data) and, with encode, encodes its records that pass the filter
// into lines; without, apply walks t.data itself. It runs in any goroutine and touches only
// the task.
func (t *decodeTask) decode(env *decodeEnv, encode bool) {
	t.data, t.derr = nil, nil
	t.lines.reset()
	t.h, t.verr = batch.Validate(t.raw)
	f := &env.filter
	if t.verr != nil || t.h.Control() || t.h.LastOffset() < f.from || t.h.BaseOffset >= f.to {
		return
	}
	data := t.raw[batch.HeaderSize:]
	if c := t.h.Codec(); c != batch.CodecNone && t.h.NumRecords > 0 && len(data) > 0 {
		plain, err := batch.Decompress(c, data, t.plain[:0])
		if err != nil {
			t.derr = fmt.Errorf("records at offset %d: %w", t.h.BaseOffset, err)
			return
		}
		t.plain, data = plain, plain
	}
	t.data = data
	if !encode {
		return
	}
	l := &t.lines
	rr := newRecordReader(&t.h, data)
	var r rawRecord
	for rr.next(&r) {
		key := spanBytes(data, r.key)
		if !f.pass(r.offset, r.ts, key) {
			continue
		}
		l.hdrs = l.hdrs[:0]
		if r.nHdrs > 0 {
			l.hdrs = headersOf(l.hdrs, data, &r, &l.keys)
		}
		l.add(env, r.offset, r.ts, key, spanBytes(data, r.value), l.hdrs)
	}
	if rr.stopped { // the rest (see recordReader)
		skip := rr.count
		t.derr = batch.RecordsData(t.h, data, func(r *batch.Record) error {
			if skip > 0 {
				skip--
			} else if f.pass(r.Offset, r.Timestamp, r.Key) {
				l.add(env, r.Offset, r.Timestamp, r.Key, r.Value, r.Headers)
			}
			return nil
		})
	}
}

// newTask returns a spare task.
func (q *Query) newTask() *decodeTask {
	if n := len(q.spare); n > 0 {
		t := q.spare[n-1]
		q.spare = q.spare[:n-1]
		return t
	}
	return &decodeTask{done: make(chan struct{}, 1)}
}

// putTask keeps a task that no goroutine uses any more for the next batch, and lets go of
// the chunk its batch lies in.
func (q *Query) putTask(t *decodeTask) {
	if t.ref != nil {
		t.ref.unref()
		t.ref = nil
	}
	if cap(t.buf) > maxKeptRaw {
		t.buf = nil
	}
	if cap(t.plain) > maxKeptPlain {
		t.plain = nil
	}
	t.lines.trim()
	t.raw, t.data, t.verr, t.derr, t.async = nil, nil, nil, nil, false
	q.spare = append(q.spare, t)
}

// submit starts decoding t, in a goroutine when it is big enough and Decoders allows, and
// queues it for apply.
func (s *scanner) submit(t *decodeTask) {
	if s.q.opts.Decoders > 1 && len(t.raw) >= asyncDecodeMin {
		t.async = true
		go func() {
			t.decode(&s.env, s.env.jsonl)
			t.done <- struct{}{}
		}()
	} else {
		t.decode(&s.env, false) // apply streams the records
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
	s.q.st.records.Store(s.q.written) // once per batch: an atomic add per record cost 3 %
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
	switch {
	case t.async && s.env.jsonl:
		err = s.writeLines(t)
	case t.data != nil:
		derr, err = s.stream(t)
	}
	if err != nil {
		return false, err
	}
	if derr != nil {
		return false, s.corrupt(t.pos, h.BaseOffset, derr)
	}
	return false, nil
}

// stream parses a decoded batch and writes its records that pass the filter to the sink:
// derr is what is wrong with the records after those, err the sink's error.
func (s *scanner) stream(t *decodeTask) (derr, err error) {
	data, f := t.data, &s.env.filter
	rr := newRecordReader(&t.h, data)
	var r rawRecord
	for rr.next(&r) {
		key := spanBytes(data, r.key)
		if !f.pass(r.offset, r.ts, key) {
			continue
		}
		s.hdrs = s.hdrs[:0]
		if r.nHdrs > 0 {
			s.hdrs = headersOf(s.hdrs, data, &r, &s.keys)
		}
		if err := s.write(r.offset, r.ts, key, spanBytes(data, r.value), s.hdrs); err != nil {
			return nil, err
		}
	}
	if !rr.stopped {
		return nil, nil
	}
	skip := rr.count
	derr = batch.RecordsData(t.h, data, func(r *batch.Record) error {
		if skip > 0 {
			skip--
			return nil
		}
		if !f.pass(r.Offset, r.Timestamp, r.Key) {
			return nil
		}
		if err := s.write(r.Offset, r.Timestamp, r.Key, r.Value, r.Headers); err != nil {
			return sinkError{err}
		}
		return nil
	})
	var se sinkError
	if errors.As(derr, &se) {
		return nil, se.err
	}
	return derr, nil
}

// sinkError carries an error of the sink (or errStopQuery) through batch.RecordsData.
type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }

// write writes one record that passed the filter to the sink; errStopQuery ends the query at
// Limit.
func (s *scanner) write(offset, ts int64, key, value []byte, headers []batch.RecordHeader) error {
	q := s.q
	s.rec.Offset, s.rec.Timestamp, s.rec.Key, s.rec.Value, s.rec.Headers = offset, ts, key, value, headers
	if err := s.sink.WriteRecord(&s.rec); err != nil {
		return err
	}
	if q.written++; q.opts.Limit > 0 && q.written >= q.opts.Limit {
		return errStopQuery
	}
	return nil
}

// writeLines writes the JSON lines a decode goroutine encoded, cut at Limit.
func (s *scanner) writeLines(t *decodeTask) error {
	n := len(t.lines.ends)
	if n == 0 {
		return nil
	}
	q := s.q
	if q.opts.Limit > 0 {
		n = int(min(int64(n), q.opts.Limit-q.written))
	}
	if err := s.jw.writeLines(t.lines.out[:t.lines.ends[n-1]]); err != nil {
		return err
	}
	if q.written += int64(n); q.opts.Limit > 0 && q.written >= q.opts.Limit {
		return errStopQuery
	}
	return nil
}
