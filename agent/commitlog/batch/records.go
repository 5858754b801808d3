package batch

import (
	"fmt"
	"sync"
)

// RecordHeader is one header of a record. Key is never null on the wire; a
// nil Value is a null value.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is one record of a batch as Records hands it out.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil for a null key
	Value          []byte // nil for a null value (tombstone)
	Headers        []RecordHeader
	// Offset and Timestamp are filled by iteration: base+delta (absolute).
	Offset    int64
	Timestamp int64
}

// corruptf wraps ErrCorrupt with a formatted detail.
func corruptf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrCorrupt)...)
}

// varlongAt decodes the zigzag varint at p[i:] and returns it with the index
// after it, or with index -1 if it is malformed or runs past p.
func varlongAt(p []byte, i int) (int64, int) {
	if uint(i+1) < uint(len(p)) { // fast paths for the common one- and two-byte cases
		b0 := p[i]
		if b0 < 0x80 {
			return int64(b0>>1) ^ -int64(b0&1), i + 1
		}
		if b1 := p[i+1]; b1 < 0x80 {
			x := uint64(b0&0x7f) | uint64(b1)<<7
			return int64(x>>1) ^ -int64(x&1), i + 2
		}
	}
	var x uint64
	for shift := uint(0); i >= 0 && i < len(p) && shift < 64; shift, i = shift+7, i+1 {
		b := p[i]
		if b < 0x80 {
			if shift == 63 && b > 1 {
				break // overflows 64 bits
			}
			x |= uint64(b) << shift
			return int64(x>>1) ^ -int64(x&1), i + 1
		}
		x |= uint64(b&0x7f) << shift
	}
	return 0, -1
}

// varintAt is varlongAt for a value that must fit in an int32.
func varintAt(p []byte, i int) (int32, int) {
	v, i := varlongAt(p, i)
	if v != int64(int32(v)) {
		return 0, -1
	}
	return int32(v), i
}

// bytesAt reads the varint length at p[i:] and that many bytes; length -1
// is null (nil) when nullable. It returns index -1 if malformed. The slice's
// capacity ends at its length, so appending to it cannot clobber what follows.
func bytesAt(p []byte, i int, nullable bool) ([]byte, int) {
	n, i := varintAt(p, i)
	switch {
	case i < 0:
		return nil, -1
	case n >= 0 && int(n) <= len(p)-i:
		return p[i : i+int(n) : i+int(n)], i + int(n)
	case n == -1 && nullable:
		return nil, i
	}
	return nil, -1
}

// parseRecord decodes the record at the start of p into r and returns the
// bytes after it. With keepHeaders false, headers are checked but not stored
// (r.Headers is left empty), which keeps Validate allocation-free.
func parseRecord(p []byte, r *Record, keepHeaders bool) ([]byte, error) {
	length, i := varintAt(p, 0)
	if i < 0 || length < 1 || int(length) > len(p)-i {
		return p, corruptf("record length %d (varint ok %v), %d bytes left", length, i >= 0, len(p)-max(i, 0))
	}
	rest := p[i+int(length):]
	p = p[:i+int(length)]
	r.Attributes = int8(p[i])
	if r.TimestampDelta, i = varlongAt(p, i+1); i < 0 {
		return rest, corruptf("bad timestamp delta")
	}
	if r.OffsetDelta, i = varintAt(p, i); i < 0 {
		return rest, corruptf("bad offset delta")
	}
	if r.Key, i = bytesAt(p, i, true); i < 0 {
		return rest, corruptf("bad key")
	}
	if r.Value, i = bytesAt(p, i, true); i < 0 {
		return rest, corruptf("bad value")
	}
	count, i := varintAt(p, i)
	// Each header takes at least two bytes, which bounds the loop by the input.
	if i < 0 || count < 0 || int(count) > (len(p)-i)/2 {
		return rest, corruptf("header count %d, %d bytes left", count, len(p)-max(i, 0))
	}
	r.Headers = r.Headers[:0]
	for h := range int(count) {
		var k, v []byte
		if k, i = bytesAt(p, i, false); i >= 0 {
			v, i = bytesAt(p, i, true)
		}
		if i < 0 {
			return rest, corruptf("bad header %d", h)
		}
		if keepHeaders {
			r.Headers = append(r.Headers, RecordHeader{Key: string(k), Value: v})
		}
	}
	if i != len(p) {
		return rest, corruptf("%d bytes after the record's headers", len(p)-i)
	}
	return rest, nil
}

// recordWalker walks the (uncompressed) records area of the batch with
// header h, checking that there are exactly h.NumRecords records and that
// offset deltas strictly increase from >= 0 and never exceed
// h.LastOffsetDelta. The last delta may be below h.LastOffsetDelta: a
// compacted batch keeps its lastOffsetDelta when its tail records are
// dropped. It never retains the Record it fills, so a caller's stack Record
// stays on the stack.
type recordWalker struct {
	h     Header // a copy: a pointer would force the caller's header to the heap
	data  []byte
	prev  int64
	count int32
}

// next parses the next record into r; it returns false at the end of the data.
func (w *recordWalker) next(r *Record, keepHeaders bool) (bool, error) {
	if len(w.data) == 0 {
		return false, nil
	}
	if w.count >= w.h.NumRecords {
		return false, corruptf("%d bytes after the %d records the header announces", len(w.data), w.h.NumRecords)
	}
	var err error
	if w.data, err = parseRecord(w.data, r, keepHeaders); err != nil {
		return false, fmt.Errorf("record %d: %w", w.count, err)
	}
	if int64(r.OffsetDelta) <= w.prev {
		return false, corruptf("record %d: offset delta %d not above previous %d", w.count, r.OffsetDelta, w.prev)
	}
	if r.OffsetDelta > w.h.LastOffsetDelta {
		return false, corruptf("record %d: offset delta %d above the header's last offset delta %d",
			w.count, r.OffsetDelta, w.h.LastOffsetDelta)
	}
	w.prev = int64(r.OffsetDelta)
	w.count++
	return true, nil
}

// finish checks the totals once next has returned false without error.
func (w *recordWalker) finish() error {
	if w.count != w.h.NumRecords {
		return corruptf("found %d records, header says %d", w.count, w.h.NumRecords)
	}
	return nil
}

// setAbsolute fills r.Offset and r.Timestamp from its deltas and the header h.
func setAbsolute(h *Header, r *Record) {
	r.Offset = h.BaseOffset + int64(r.OffsetDelta)
	if h.LogAppendTime() {
		r.Timestamp = h.MaxTimestamp
	} else {
		r.Timestamp = h.FirstTimestamp + r.TimestampDelta
	}
}

// checkRecords walks data like Records does, without handing records out.
func checkRecords(h *Header, data []byte) error {
	w := recordWalker{h: *h, data: data, prev: -1}
	var r Record
	for {
		ok, err := w.next(&r, false)
		if err != nil {
			return err
		}
		if !ok {
			return w.finish()
		}
	}
}

// walkRecords walks data and calls fn for each record, with Offset,
// Timestamp and Headers filled. An error from fn comes back as a callbackError.
func walkRecords(h *Header, data []byte, r *Record, fn func(*Record) error) error {
	w := recordWalker{h: *h, data: data, prev: -1}
	for {
		ok, err := w.next(r, true)
		if err != nil {
			return err
		}
		if !ok {
			return w.finish()
		}
		setAbsolute(h, r)
		if fn != nil {
			if err := fn(r); err != nil {
				return callbackError{err}
			}
		}
	}
}

// callbackError carries an error returned by the caller's fn, which Records
// passes through unwrapped.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// maxPooledBuf is the largest decompression buffer kept for reuse; bigger
// ones are left to the garbage collector so a rare huge batch does not pin
// memory on a small device.
const maxPooledBuf = 4 << 20

// recordsState is the per-call state of Records, pooled so that iterating a
// batch allocates nothing in the steady state.
type recordsState struct {
	rec Record
	buf []byte
}

var recordsPool = sync.Pool{New: func() any { return new(recordsState) }}

// Records iterates the records of the batch b, decompressing it as needed
// (gzip, snappy raw or xerial-framed, lz4, zstd). fn gets each record in
// order; the Record, its slices and its Headers slice alias internal buffers
// that are valid only during the call (copy what you keep; header keys are
// ordinary strings). With LogAppendTime batches, Timestamp is MaxTimestamp
// for every record. An error from fn stops the iteration and is returned as is.
//
// b must start with one complete batch; bytes after it are ignored. Records
// checks the framing, the record count and the offset deltas like Validate,
// but not the CRC: call Validate first on untrusted bytes. An empty batch
// (no records and an empty records area, as Filter writes when it keeps
// nothing) yields no calls for any codec; nothing is decompressed.
func Records(b []byte, fn func(r *Record) error) error {
	h, err := ParseHeader(b)
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	if len(b) < h.Size() {
		return fmt.Errorf("records: have %d bytes, batch is %d: %w", len(b), h.Size(), ErrTruncated)
	}
	if h.NumRecords < 0 {
		return fmt.Errorf("records: negative record count %d: %w", h.NumRecords, ErrCorrupt)
	}
	data := b[HeaderSize:h.Size()]
	st := recordsPool.Get().(*recordsState)
	defer func() {
		clear(st.rec.Headers[:cap(st.rec.Headers)]) // drop references into caller memory
		st.rec = Record{Headers: st.rec.Headers[:0]}
		if cap(st.buf) > maxPooledBuf {
			st.buf = nil
		}
		recordsPool.Put(st)
	}()
	if c := h.Codec(); c != CodecNone && len(data) > 0 {
		if h.NumRecords == 0 {
			if !h.Control() {
				return fmt.Errorf("records at offset %d: no records but a records area of %d bytes: %w",
					h.BaseOffset, len(data), ErrCorrupt)
			}
			return nil // nothing to decode; a control batch's empty compressed blob need not be well-formed
		}
		st.buf, err = Decompress(c, data, st.buf[:0])
		if err != nil {
			return fmt.Errorf("records at offset %d: %w", h.BaseOffset, err)
		}
		data = st.buf
	}
	if err := walkRecords(&h, data, &st.rec, fn); err != nil {
		if ce, ok := err.(callbackError); ok {
			return ce.err
		}
		return fmt.Errorf("records at offset %d: %w", h.BaseOffset, err)
	}
	return nil
}
