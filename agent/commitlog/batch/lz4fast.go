package batch

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/pierrec/lz4/v4"
)

// A fast path for lz4, the codec edge producers use most.
//
// The lz4 package's frame Reader checks the frame's xxHash32 checksums (the content checksum
// covers every decompressed byte) and decodes each block into a buffer of its own before
// copying it out. A batch's CRC-32C already covers the compressed bytes as the producer wrote
// them, so the checksums only repeat that check: the content checksum alone cost as much CPU
// as decompressing in samsa-cloud's full scan (benchmarks/cloudscan) and 14 % of the cleaner's
// CPU (benchmarks/compaction). appendLZ4Fast walks the frames itself and decompresses each
// block straight into the output with lz4.UncompressBlockWithDict, skipping the checksums.
// Anything it does not expect (legacy or dictionary frames, sizes past the limits, a bad
// block) makes it give up, and unlz4 falls back to the frame Reader, which then decodes the
// input or reports the error: the fast path never turns an error into data, except for a
// checksum that disagrees (with a CRC-32C that agrees, when the caller checked it).

const (
	lz4FrameMagic     = 0x184D2204
	lz4SkippableMagic = 0x184D2A50 // to 0x184D2A5F
	lz4BlockRawBit    = 0x80000000
	lz4WindowSize     = 64 << 10
	// lz4FirstGuess is the room a block is first decoded into when the output has less than
	// the frame's block maximum spare: producers' frames often announce 4 MiB blocks for a
	// batch of a few hundred KiB, and growing every output to 4 MiB would defeat the pooled
	// buffers of Records (see maxPooledBuf). A block that does not fit is decoded again into
	// the full block maximum.
	lz4FirstGuess = 256 << 10
)

// lz4BlockMax maps the block-maximum-size code of a frame descriptor to bytes.
var lz4BlockMax = [8]int{4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20}

// appendLZ4Fast appends the decompressed lz4 frames of src to dst without checking their
// checksums. ok is false when it gives up (see above); out is then to be ignored, except
// that out[:len(dst)] still holds dst's bytes.
func appendLZ4Fast(dst, src []byte) (out []byte, ok bool) {
	start := len(dst)
	for len(src) > 0 {
		if len(src) < 8 {
			return dst, false
		}
		if magic := binary.LittleEndian.Uint32(src); magic&^0xF == lz4SkippableMagic {
			n := uint64(binary.LittleEndian.Uint32(src[4:]))
			if uint64(len(src)-8) < n {
				return dst, false
			}
			src = src[8+n:]
			continue
		} else if magic != lz4FrameMagic {
			return dst, false
		}
		var frameOK bool
		if dst, src, frameOK = appendLZ4Frame(dst, src, start); !frameOK {
			return dst, false
		}
	}
	return dst, true
}

// appendLZ4Frame decodes the frame at the start of src (at least 8 bytes, starting with the
// frame magic); start is where the whole output began in dst (for the size limit).
func appendLZ4Frame(dst, src []byte, start int) (out, rest []byte, ok bool) {
	flg, bd := src[4], src[5]
	// Version 01, no reserved bits, no dictionary id; block size code 4 to 7.
	if flg>>6 != 1 || flg&0x03 != 0 || bd&0x8F != 0 || lz4BlockMax[bd>>4&7] == 0 {
		return dst, src, false
	}
	blockMax := lz4BlockMax[bd>>4&7]
	independent, blockSum, contentSize, contentSum := flg&0x20 != 0, flg&0x10 != 0, flg&0x08 != 0, flg&0x04 != 0
	hdr := 7 // magic, FLG, BD, header checksum
	var size uint64
	if contentSize {
		if len(src) < 15 {
			return dst, src, false
		}
		size, hdr = binary.LittleEndian.Uint64(src[6:]), 15
	}
	src = src[hdr:]
	frameStart := len(dst)
	for {
		if len(src) < 4 {
			return dst, src, false
		}
		word := binary.LittleEndian.Uint32(src)
		src = src[4:]
		if word == 0 { // end mark
			break
		}
		n := int(word &^ lz4BlockRawBit)
		if n > blockMax || n > len(src) {
			return dst, src, false
		}
		block := src[:n]
		src = src[n:]
		if blockSum {
			if len(src) < 4 {
				return dst, src, false
			}
			src = src[4:]
		}
		if len(dst)-start+min(n, blockMax) > MaxDecompressedSize {
			return dst, src, false // the Reader reports ErrTooLarge
		}
		if word&lz4BlockRawBit != 0 {
			dst = append(dst, block...)
			continue
		}
		var k int
		var blockOK bool
		if dst, k, blockOK = appendLZ4Block(dst, block, frameStart, blockMax, independent); !blockOK ||
			len(dst)-start+k > MaxDecompressedSize {
			return dst, src, false
		}
		dst = dst[:len(dst)+k]
	}
	if contentSize && uint64(len(dst)-frameStart) != size {
		return dst, src, false
	}
	if contentSum {
		if len(src) < 4 {
			return dst, src, false
		}
		src = src[4:]
	}
	return dst, src, true
}

// appendLZ4Block decodes a compressed block into the spare capacity of dst (grown as needed)
// and returns dst and the number of bytes decoded there (not yet part of dst's length).
// Linked blocks see the frame's output from frameStart as their dictionary.
func appendLZ4Block(dst, block []byte, frameStart, blockMax int, independent bool) (out []byte, k int, ok bool) {
	room := blockMax
	if spare := cap(dst) - len(dst); spare < blockMax {
		// Every byte of a compressed block decodes to at most 255 bytes.
		room = min(blockMax, max(spare, lz4FirstGuess, 4*len(block)), 255*len(block)+16)
	}
	for {
		dst = slices.Grow(dst, room)
		var dict []byte
		if !independent {
			dict = dst[max(frameStart, len(dst)-lz4WindowSize):]
		}
		k, err := lz4.UncompressBlockWithDict(block, dst[len(dst):len(dst)+room], dict)
		switch {
		case err == nil:
			return dst, k, true
		case room >= blockMax || room >= 255*len(block)+16:
			return dst, 0, false // corrupt, not short of room
		}
		room = blockMax
	}
}

// RecordsData iterates the records of a batch whose records area has been taken out
// already: data holds its records uncompressed (as Decompress returns them for a compressed
// batch, or the bytes after the header of an uncompressed one) and h is the batch's header.
// It calls fn and checks the records exactly like Records, which decompresses the batch
// itself; it lets a caller keep the decompressed records (Records' buffers are its own) and
// walk them without rewriting the batch as an uncompressed one.
func RecordsData(h Header, data []byte, fn func(r *Record) error) error {
	if h.NumRecords < 0 {
		return fmt.Errorf("records: negative record count %d: %w", h.NumRecords, ErrCorrupt)
	}
	st := recordsPool.Get().(*recordsState)
	defer func() {
		clear(st.rec.Headers[:cap(st.rec.Headers)]) // drop references into caller memory
		st.rec = Record{Headers: st.rec.Headers[:0]}
		recordsPool.Put(st)
	}()
	if err := walkRecords(&h, data, &st.rec, fn); err != nil {
		if ce, ok := err.(callbackError); ok {
			return ce.err
		}
		return fmt.Errorf("records at offset %d: %w", h.BaseOffset, err)
	}
	return nil
}
