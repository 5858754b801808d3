package batch

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// filterState is the per-call state of Filter, pooled so that filtering a
// stream of batches allocates nothing in the steady state beyond what the
// codecs and record headers need.
type filterState struct {
	rec  Record
	buf  []byte // the decompressed records area
	kept []byte // the kept records, uncompressed, before recompression
}

var filterPool = sync.Pool{New: func() any { return new(filterState) }}

// release drops st's references into caller memory and returns it to the
// pool, leaving oversized buffers to the garbage collector.
func (st *filterState) release() {
	clear(st.rec.Headers[:cap(st.rec.Headers)])
	st.rec = Record{Headers: st.rec.Headers[:0]}
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	if cap(st.kept) > maxPooledBuf {
		st.kept = nil
	}
	st.buf, st.kept = st.buf[:0], st.kept[:0]
	filterPool.Put(st)
}

// keepAll is the keep function Filter uses for a nil one.
func keepAll(*Record) bool { return true }

// Filter rewrites the batch b keeping only the records for which keep
// returns true, appends the new batch to dst and returns the extended slice
// with the number of records kept. It is the record-level step of log
// compaction.
//
// b must be exactly one valid batch: Filter checks it like Validate (CRC
// included) and also decompresses and walks the records of a compressed
// batch, so it fails with an error wrapping ErrTruncated, ErrCorrupt,
// ErrLegacyMagic, ErrUnknownMagic, ErrUnsupportedCodec or ErrTooLarge on bad
// input, returning dst unchanged (its spare capacity may have been written).
//
// keep sees each record in order with Offset, Timestamp, Key, Value (nil for
// a tombstone) and Headers filled as Records fills them. The Record and its
// slices alias b or an internal buffer and are valid only during the call;
// keep must not modify them. A nil keep keeps every record.
//
// The new batch keeps every header field of b (baseOffset,
// partitionLeaderEpoch, magic, attributes with the codec, timestamp type and
// transactional and control bits, lastOffsetDelta, firstTimestamp,
// maxTimestamp, producerId, producerEpoch, baseSequence) and gets a new
// numRecords, length and CRC-32C. lastOffsetDelta stays even when the last
// record is dropped, because producer state relies on
// baseSequence+lastOffsetDelta. Kept records are copied byte for byte, so
// their offset and timestamp deltas, and hence their offsets and timestamps,
// are unchanged; the records area is recompressed with b's codec. When keep
// accepts nothing, the result is an empty batch: the header alone with
// numRecords 0 and a records area of zero bytes (not a compressed empty
// stream), which Validate and Records accept for every codec. When keep
// accepts every record (or b has none), b is appended unchanged.
//
// dst must not overlap b. Filter is safe for concurrent use.
func Filter(dst, b []byte, keep func(r *Record) bool) (out []byte, kept int, err error) {
	h, err := validateFrame(b)
	if err != nil {
		return dst, 0, fmt.Errorf("filter: %w", err)
	}
	if h.NumRecords == 0 {
		// An empty control batch may carry a records area; an uncompressed
		// one must still hold no record bytes, as Validate demands.
		if h.Codec() == CodecNone {
			if err := checkRecords(&h, b[HeaderSize:]); err != nil {
				return dst, 0, fmt.Errorf("filter batch at offset %d: %w", h.BaseOffset, err)
			}
		}
		return append(dst, b...), 0, nil
	}
	if keep == nil {
		keep = keepAll
	}
	st := filterPool.Get().(*filterState)
	defer st.release()
	codec := h.Codec()
	data := b[HeaderSize:]
	if codec != CodecNone {
		st.buf, err = Decompress(codec, data, st.buf[:0])
		if err != nil {
			return dst, 0, fmt.Errorf("filter batch at offset %d: %w", h.BaseOffset, err)
		}
		data = st.buf
	}
	// Kept records of an uncompressed batch go straight after a copy of the
	// header in dst; those of a compressed one are gathered for recompression.
	start := len(dst)
	var sink []byte
	if codec == CodecNone {
		sink = append(dst, b[:HeaderSize]...)
	} else {
		sink = st.kept[:0]
	}
	w := recordWalker{h: h, data: data, prev: -1}
	r := &st.rec
	runStart := -1 // where in data the current run of kept records starts, -1 if none
	dropped := false
	for {
		pos := len(data) - len(w.data)
		ok, err := w.next(r, true)
		if err == nil && !ok {
			err = w.finish()
		}
		if err != nil {
			return dst, 0, fmt.Errorf("filter batch at offset %d: %w", h.BaseOffset, err)
		}
		if !ok {
			if !dropped {
				return append(dst[:start], b...), int(h.NumRecords), nil
			}
			if runStart >= 0 {
				sink = append(sink, data[runStart:]...)
			}
			break
		}
		setAbsolute(&h, r)
		if keep(r) {
			kept++
			if runStart < 0 {
				runStart = pos
			}
			continue
		}
		// A dropped record ends the run before it; copying runs lazily means
		// a batch that keeps everything is never copied record by record.
		dropped = true
		if runStart >= 0 {
			sink = append(sink, data[runStart:pos]...)
			runStart = -1
		}
	}
	if codec == CodecNone {
		out = sink
	} else {
		st.kept = sink
		out = append(dst[:start], b[:HeaderSize]...)
		if kept > 0 {
			if out, err = Compress(codec, st.kept, out); err != nil {
				return dst, 0, fmt.Errorf("filter batch at offset %d: %w", h.BaseOffset, err)
			}
		}
	}
	nb := out[start:]
	if len(nb)-sizePrefix > maxLength {
		return dst, 0, fmt.Errorf("filter batch at offset %d: new batch of %d bytes: %w", h.BaseOffset, len(nb), ErrTooLarge)
	}
	be := binary.BigEndian
	be.PutUint32(nb[LengthPos:], uint32(len(nb)-sizePrefix))
	be.PutUint32(nb[NumRecordsPos:], uint32(kept))
	be.PutUint32(nb[CRCPos:], CRC(nb))
	return out, kept, nil
}
