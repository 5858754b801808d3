package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// HeaderSize is the number of bytes of the v2 batch header (baseOffset..numRecords).
const HeaderSize = 61

// Offsets of the header fields within a batch.
const (
	BaseOffsetPos           = 0  // int64 baseOffset
	LengthPos               = 8  // int32 length: bytes after this field
	PartitionLeaderEpochPos = 12 // int32 partitionLeaderEpoch
	MagicPos                = 16 // int8 magic
	CRCPos                  = 17 // uint32 CRC-32C of attributes..end
	AttributesPos           = 21 // int16 attributes
	LastOffsetDeltaPos      = 23 // int32 lastOffsetDelta
	FirstTimestampPos       = 27 // int64 firstTimestamp
	MaxTimestampPos         = 35 // int64 maxTimestamp
	ProducerIDPos           = 43 // int64 producerId
	ProducerEpochPos        = 51 // int16 producerEpoch
	BaseSequencePos         = 53 // int32 baseSequence
	NumRecordsPos           = 57 // int32 numRecords
)

// sizePrefix is the number of bytes before the records that the length field
// does not count (baseOffset and length itself).
const sizePrefix = 12

// minLength is the smallest valid length field: a header with no records.
const minLength = HeaderSize - sizePrefix

// maxLength is the largest length field whose total size still fits an int
// on 32-bit platforms.
const maxLength = math.MaxInt32 - sizePrefix

// Attribute bits.
const (
	codecMask         = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Sentinel errors. Functions wrap them with detail; test with errors.Is.
var (
	// ErrTruncated means the bytes end before the batch (or its header) does.
	ErrTruncated = errors.New("batch: truncated")
	// ErrCorrupt means a CRC mismatch or fields that contradict each other.
	ErrCorrupt = errors.New("batch: corrupt")
	// ErrLegacyMagic means a v0/v1 message set (magic 0 or 1), which samsa does not accept.
	ErrLegacyMagic = errors.New("batch: legacy message format (magic 0 or 1)")
	// ErrUnknownMagic means a magic byte other than 0, 1 or 2.
	ErrUnknownMagic = errors.New("batch: unknown magic")
	// ErrUnsupportedCodec means compression codec bits 5, 6 or 7.
	ErrUnsupportedCodec = errors.New("batch: unsupported compression codec")
	// ErrTooLarge means data that would decompress (or build) beyond MaxDecompressedSize
	// or a batch larger than the int32 length field allows.
	ErrTooLarge = errors.New("batch: too large")
	// ErrEmpty means Build was called on a Builder with no records.
	ErrEmpty = errors.New("batch: no records")
)

// castagnoli is the CRC-32C table; crc32 uses the CPU's CRC instructions for it
// on amd64 and arm64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec of a batch (attribute bits 0-2).
type Codec int8

// Compression codecs Kafka defines.
const (
	CodecNone   Codec = 0 // uncompressed
	CodecGzip   Codec = 1 // gzip
	CodecSnappy Codec = 2 // snappy (raw block or xerial framing)
	CodecLZ4    Codec = 3 // LZ4 frame format
	CodecZstd   Codec = 4 // zstandard
)

// String returns the codec's Kafka name ("none", "gzip", "snappy", "lz4", "zstd").
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// valid reports whether c is one of the five Kafka codecs.
func (c Codec) valid() bool { return c >= CodecNone && c <= CodecZstd }

// Header is the decoded fixed header of a v2 batch.
type Header struct {
	BaseOffset           int64
	Length               int32 // the batch length field: bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size returns the total number of bytes of the batch: 12 + Length.
func (h Header) Size() int { return sizePrefix + int(h.Length) }

// LastOffset returns the offset of the batch's last record: BaseOffset + LastOffsetDelta.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec returns the compression codec (attribute bits 0-2).
func (h Header) Codec() Codec { return Codec(h.Attributes & codecMask) }

// LogAppendTime reports whether timestamps are broker append time (attribute bit 3).
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction (attribute bit 4).
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (attribute bit 5).
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// checkMagic classifies the magic byte m.
func checkMagic(m byte) error {
	switch m {
	case 2:
		return nil
	case 0, 1:
		return fmt.Errorf("magic %d: %w", m, ErrLegacyMagic)
	}
	return fmt.Errorf("magic %d: %w", int8(m), ErrUnknownMagic)
}

// checkLength rejects a length field too small for a header or too big for an int.
func checkLength(length int32) error {
	if length < minLength {
		return fmt.Errorf("length field %d below minimum %d: %w", length, minLength, ErrCorrupt)
	}
	if length > maxLength {
		return fmt.Errorf("length field %d above maximum %d: %w", length, maxLength, ErrCorrupt)
	}
	return nil
}

// ParseHeader decodes the fixed header from b, which must hold at least
// HeaderSize bytes (only the header is read; b may be longer or shorter than
// the whole batch). It requires magic 2 (else ErrLegacyMagic or
// ErrUnknownMagic) and a plausible length field (else ErrCorrupt). It does
// not check the CRC.
func ParseHeader(b []byte) (Header, error) {
	if len(b) > MagicPos {
		if err := checkMagic(b[MagicPos]); err != nil {
			return Header{}, fmt.Errorf("parse header: %w", err)
		}
	}
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("parse header: have %d bytes, need %d: %w", len(b), HeaderSize, ErrTruncated)
	}
	b = b[:HeaderSize]
	be := binary.BigEndian
	h := Header{
		BaseOffset:           int64(be.Uint64(b[BaseOffsetPos:])),
		Length:               int32(be.Uint32(b[LengthPos:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[PartitionLeaderEpochPos:])),
		Magic:                int8(b[MagicPos]),
		CRC:                  be.Uint32(b[CRCPos:]),
		Attributes:           int16(be.Uint16(b[AttributesPos:])),
		LastOffsetDelta:      int32(be.Uint32(b[LastOffsetDeltaPos:])),
		FirstTimestamp:       int64(be.Uint64(b[FirstTimestampPos:])),
		MaxTimestamp:         int64(be.Uint64(b[MaxTimestampPos:])),
		ProducerID:           int64(be.Uint64(b[ProducerIDPos:])),
		ProducerEpoch:        int16(be.Uint16(b[ProducerEpochPos:])),
		BaseSequence:         int32(be.Uint32(b[BaseSequencePos:])),
		NumRecords:           int32(be.Uint32(b[NumRecordsPos:])),
	}
	if err := checkLength(h.Length); err != nil {
		return Header{}, fmt.Errorf("parse header: %w", err)
	}
	return h, nil
}

// PeekSize reads just baseOffset and length from the first 12 bytes of b, so
// a segment can be walked with 12-byte reads. It returns the total batch size
// (12 + length). It fails with ErrTruncated if len(b) < 12 and with
// ErrCorrupt if length < HeaderSize-12 (49) or too large for an int32 size.
func PeekSize(b []byte) (baseOffset int64, size int, err error) {
	if len(b) < sizePrefix {
		return 0, 0, fmt.Errorf("peek size: have %d bytes, need %d: %w", len(b), sizePrefix, ErrTruncated)
	}
	baseOffset = int64(binary.BigEndian.Uint64(b[BaseOffsetPos:]))
	length := int32(binary.BigEndian.Uint32(b[LengthPos:]))
	if err := checkLength(length); err != nil {
		return 0, 0, fmt.Errorf("peek size at base offset %d: %w", baseOffset, err)
	}
	return baseOffset, sizePrefix + int(length), nil
}

// SetBaseOffset writes baseOffset in place. The field is outside the CRC, so
// the batch stays valid. It does nothing if b is shorter than 8 bytes.
func SetBaseOffset(b []byte, off int64) {
	if len(b) < BaseOffsetPos+8 {
		return
	}
	binary.BigEndian.PutUint64(b[BaseOffsetPos:], uint64(off))
}

// SetPartitionLeaderEpoch writes partitionLeaderEpoch in place. The field is
// outside the CRC, so the batch stays valid. It does nothing if b is shorter
// than 16 bytes.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	if len(b) < PartitionLeaderEpochPos+4 {
		return
	}
	binary.BigEndian.PutUint32(b[PartitionLeaderEpochPos:], uint32(epoch))
}

// CRC computes the CRC-32C a batch should carry: over b[21:], so b must be
// exactly one batch. It returns 0 (the CRC of nothing) if b is shorter than 21 bytes.
func CRC(b []byte) uint32 {
	if len(b) < AttributesPos {
		return 0
	}
	return crc32.Checksum(b[AttributesPos:], castagnoli)
}
