package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// BuildOptions configure a Builder.
type BuildOptions struct {
	Codec         Codec // compression of the records area
	ProducerID    int64 // -1 if none; then ProducerEpoch and BaseSequence are written as -1 too
	ProducerEpoch int16
	BaseSequence  int32
	BaseOffset    int64 // usually 0: the broker stamps the real one on append
	LogAppendTime bool  // set the timestamp-type attribute bit (3)
}

// Builder accumulates records and encodes them as one v2 batch. Add never
// fails; problems (such as a key longer than an int32 length) surface from
// Build. A Builder is not safe for concurrent use.
type Builder struct {
	opts    BuildOptions
	buf     []byte // HeaderSize reserved bytes, then the encoded records
	n       int32
	firstTS int64
	maxTS   int64
	err     error
}

// zeroHeader is the placeholder the records buffer starts with.
var zeroHeader [HeaderSize]byte

// NewBuilder returns an empty Builder for batches with the given options.
func NewBuilder(opts BuildOptions) *Builder {
	b := &Builder{opts: opts}
	b.reset()
	return b
}

// reset empties the builder, keeping its buffer.
func (b *Builder) reset() {
	b.buf = append(b.buf[:0], zeroHeader[:]...)
	b.n, b.firstTS, b.maxTS, b.err = 0, 0, 0, nil
}

// Add appends a record with the given timestamp (milliseconds), key, value
// and headers. A nil key or value stays null; an empty one is written as
// zero-length. Offsets are consecutive from the batch's base offset.
func (b *Builder) Add(timestamp int64, key, value []byte, headers []RecordHeader) {
	if b.err != nil {
		return
	}
	if b.n == math.MaxInt32 {
		b.err = fmt.Errorf("add record: more than %d records: %w", math.MaxInt32, ErrTooLarge)
		return
	}
	if len(key) > math.MaxInt32 || len(value) > math.MaxInt32 || len(headers) > math.MaxInt32 {
		b.err = fmt.Errorf("add record %d: key, value or headers exceed int32 lengths: %w", b.n, ErrTooLarge)
		return
	}
	if b.n == 0 {
		b.firstTS, b.maxTS = timestamp, timestamp
	}
	b.maxTS = max(b.maxTS, timestamp)
	tsDelta := timestamp - b.firstTS
	body := 1 + varintLen(tsDelta) + varintLen(int64(b.n)) +
		bytesLen(key) + bytesLen(value) + varintLen(int64(len(headers))) // int64: no overflow on 32-bit
	for i := range headers {
		h := &headers[i]
		if len(h.Key) > math.MaxInt32 || len(h.Value) > math.MaxInt32 {
			b.err = fmt.Errorf("add record %d: header %d exceeds int32 lengths: %w", b.n, i, ErrTooLarge)
			return
		}
		body += varintLen(int64(len(h.Key))) + int64(len(h.Key)) + bytesLen(h.Value)
	}
	if body > math.MaxInt32 {
		b.err = fmt.Errorf("add record %d: %d bytes: %w", b.n, body, ErrTooLarge)
		return
	}
	p := binary.AppendVarint(b.buf, body)
	p = append(p, 0) // record attributes: unused
	p = binary.AppendVarint(p, tsDelta)
	p = binary.AppendVarint(p, int64(b.n))
	p = appendBytes(p, key)
	p = appendBytes(p, value)
	p = binary.AppendVarint(p, int64(len(headers)))
	for i := range headers {
		p = binary.AppendVarint(p, int64(len(headers[i].Key)))
		p = append(p, headers[i].Key...)
		p = appendBytes(p, headers[i].Value)
	}
	b.buf = p
	b.n++
}

// varintLen returns the encoded size of v as a zigzag varint.
func varintLen(v int64) int64 {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := int64(1)
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// bytesLen returns the encoded size of a nullable length-prefixed field.
func bytesLen(p []byte) int64 {
	if p == nil {
		return 1
	}
	return varintLen(int64(len(p))) + int64(len(p))
}

// appendBytes appends a nullable length-prefixed field (nil -> length -1).
func appendBytes(dst, p []byte) []byte {
	if p == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(p)))
	return append(dst, p...)
}

// Len returns the number of records added since the last Build.
func (b *Builder) Len() int { return int(b.n) }

// EstimatedSize returns the uncompressed size of the batch so far, header included.
func (b *Builder) EstimatedSize() int { return len(b.buf) }

// Build encodes the records added so far as one batch (compressed per the
// codec, CRC set, partitionLeaderEpoch -1) in a newly allocated slice, and
// resets the builder for reuse, options kept. It fails with ErrEmpty if no
// record was added, ErrTooLarge if the batch does not fit the format's int32
// sizes or the records exceed MaxDecompressedSize, and with a codec error.
// After an error the builder is reset too.
func (b *Builder) Build() ([]byte, error) {
	defer b.reset()
	if b.err != nil {
		return nil, fmt.Errorf("build: %w", b.err)
	}
	if b.n == 0 {
		return nil, fmt.Errorf("build: %w", ErrEmpty)
	}
	var out []byte
	if b.opts.Codec == CodecNone {
		out = append(make([]byte, 0, len(b.buf)), b.buf...)
	} else {
		records := b.buf[HeaderSize:]
		var err error
		out, err = Compress(b.opts.Codec, records, make([]byte, HeaderSize, HeaderSize+len(records)/2+64))
		if err != nil {
			return nil, fmt.Errorf("build: %w", err)
		}
	}
	if len(out)-sizePrefix > maxLength {
		return nil, fmt.Errorf("build: batch of %d bytes: %w", len(out), ErrTooLarge)
	}
	b.writeHeader(out)
	return out, nil
}

// writeHeader fills the fixed header of out, whose records area is complete.
func (b *Builder) writeHeader(out []byte) {
	o := &b.opts
	attrs := int16(o.Codec) & codecMask
	if o.LogAppendTime {
		attrs |= attrLogAppendTime
	}
	pid, epoch, seq := o.ProducerID, o.ProducerEpoch, o.BaseSequence
	if pid < 0 {
		pid, epoch, seq = -1, -1, -1
	}
	be := binary.BigEndian
	be.PutUint64(out[BaseOffsetPos:], uint64(o.BaseOffset))
	be.PutUint32(out[LengthPos:], uint32(len(out)-sizePrefix))
	be.PutUint32(out[PartitionLeaderEpochPos:], math.MaxUint32) // -1: the broker stamps it
	out[MagicPos] = 2
	be.PutUint16(out[AttributesPos:], uint16(attrs))
	be.PutUint32(out[LastOffsetDeltaPos:], uint32(b.n-1))
	be.PutUint64(out[FirstTimestampPos:], uint64(b.firstTS))
	be.PutUint64(out[MaxTimestampPos:], uint64(b.maxTS))
	be.PutUint64(out[ProducerIDPos:], uint64(pid))
	be.PutUint16(out[ProducerEpochPos:], uint16(epoch))
	be.PutUint32(out[BaseSequencePos:], uint32(seq))
	be.PutUint32(out[NumRecordsPos:], uint32(b.n))
	be.PutUint32(out[CRCPos:], CRC(out))
}
