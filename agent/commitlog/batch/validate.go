package batch

import (
	"fmt"
	"hash/crc32"
)

// Validate checks that b is exactly one complete v2 batch and returns its
// header. It checks: magic 2; the length field against len(b); the CRC-32C
// over attributes..end; a known codec; NumRecords >= 0;
// LastOffsetDelta >= max(NumRecords-1, 0). A batch with no records must be
// a control batch or have an empty records area (the empty batch Filter
// writes when it keeps nothing, valid for every codec). For an uncompressed
// batch it also walks every record: the framing (varint lengths) must stay
// inside the record and the batch, there must be exactly NumRecords records
// with strictly increasing offset deltas from >= 0, none above
// LastOffsetDelta, and no bytes after them. Compressed batches are not
// decompressed. Validate neither allocates nor copies.
//
// Offset gaps (a compacted batch) are accepted, including a last offset
// delta below LastOffsetDelta (compaction dropped the tail); see the package
// doc for the stricter produce rule.
func Validate(b []byte) (Header, error) {
	h, err := validateFrame(b)
	if err != nil {
		return Header{}, err
	}
	if h.Codec() == CodecNone {
		if err := checkRecords(&h, b[HeaderSize:]); err != nil {
			return Header{}, fmt.Errorf("validate batch at offset %d: %w", h.BaseOffset, err)
		}
	}
	return h, nil
}

// validateFrame is Validate without the walk over an uncompressed batch's
// records, for callers that walk them anyway.
func validateFrame(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, fmt.Errorf("validate: %w", err)
	}
	if size := h.Size(); len(b) != size {
		if len(b) < size {
			return Header{}, fmt.Errorf("validate batch at offset %d: have %d bytes, length field says %d: %w",
				h.BaseOffset, len(b), size, ErrTruncated)
		}
		return Header{}, fmt.Errorf("validate batch at offset %d: %d bytes after the batch's %d: %w",
			h.BaseOffset, len(b)-size, size, ErrCorrupt)
	}
	if got := crc32.Checksum(b[AttributesPos:], castagnoli); got != h.CRC {
		return Header{}, fmt.Errorf("validate batch at offset %d: crc %#08x, header says %#08x: %w",
			h.BaseOffset, got, h.CRC, ErrCorrupt)
	}
	if err := checkHeaderFields(&h); err != nil {
		return Header{}, fmt.Errorf("validate batch at offset %d: %w", h.BaseOffset, err)
	}
	return h, nil
}

// checkHeaderFields checks the header fields that must agree with each other.
func checkHeaderFields(h *Header) error {
	if c := h.Codec(); !c.valid() {
		return fmt.Errorf("%v: %w", c, ErrUnsupportedCodec)
	}
	if h.NumRecords < 0 {
		return corruptf("negative record count %d", h.NumRecords)
	}
	if h.NumRecords == 0 && !h.Control() && h.Length != minLength {
		return corruptf("no records in a non-control batch with a records area of %d bytes", int64(h.Length)-minLength)
	}
	if h.LastOffsetDelta < 0 || int64(h.LastOffsetDelta) < int64(h.NumRecords)-1 {
		return corruptf("last offset delta %d with %d records", h.LastOffsetDelta, h.NumRecords)
	}
	// Every record takes at least 7 bytes uncompressed (length, attributes,
	// timestamp, offset, key, value and header count), which caps the count
	// of an uncompressed batch by its size.
	if h.Codec() == CodecNone && int64(h.NumRecords)*minRecordSize > int64(h.Length)-minLength {
		return corruptf("%d records cannot fit in %d bytes", h.NumRecords, int64(h.Length)-minLength)
	}
	return nil
}

// minRecordSize is the smallest encoded record: one byte per field.
const minRecordSize = 7

// Split walks a Kafka "records" field (zero or more concatenated batches, as
// in a ProduceRequest) and calls fn with each complete batch, in order. The
// slices alias records (capacity capped at the batch's end); nothing is
// copied or validated beyond the framing. A legacy v0/v1 message set yields
// ErrLegacyMagic, another magic ErrUnknownMagic, and a trailing partial batch
// ErrTruncated. An error from fn stops the walk and is returned as is.
func Split(records []byte, fn func(batch []byte) error) error {
	for pos := 0; pos < len(records); {
		rest := records[pos:]
		if len(rest) > MagicPos {
			if err := checkMagic(rest[MagicPos]); err != nil {
				return fmt.Errorf("split at byte %d: %w", pos, err)
			}
		}
		_, size, err := PeekSize(rest)
		if err != nil {
			return fmt.Errorf("split at byte %d: %w", pos, err)
		}
		if len(rest) < size {
			return fmt.Errorf("split at byte %d: batch of %d bytes, %d left: %w", pos, size, len(rest), ErrTruncated)
		}
		if err := fn(rest[:size:size]); err != nil {
			return err
		}
		pos += size
	}
	return nil
}
