package cloud

import (
	"encoding/binary"
	"slices"

	"github.com/pierrec/lz4/v4"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// A fast path for lz4 batches, the codec edge producers use most.
//
// batch.Decompress reads lz4 with the lz4 package's frame Reader, which checks the frame's
// xxHash32 checksums (the content checksum covers every decompressed byte) and decodes each
// block into a buffer of its own before copying it out. A query has already checked the
// batch's CRC-32C, which covers the compressed bytes as the producer wrote them, so the
// checksums only repeat that check: in the full-scan benchmark (benchmarks/cloudscan) the
// content checksum took as much CPU as decompressing. appendLZ4 walks the frames itself and
// decompresses each block straight into the output with lz4.UncompressBlockWithDict,
// skipping the checksums. Anything it does not expect (legacy or dictionary frames, sizes
// past the limits, a bad block) makes it give up, and the caller falls back to
// batch.Decompress, which then decodes it or reports the error: the fast path never turns
// an error into data except for a checksum that disagrees with a CRC-32C that agrees.
//
// (This belongs in package batch, where the agent's cleaner would gain from it too; it lives
// here until batch offers a checksum-free decode.)

const (
	lz4FrameMagic     = 0x184D2204
	lz4SkippableMagic = 0x184D2A50 // to 0x184D2A5F
	lz4BlockRawBit    = 0x80000000
	lz4WindowSize     = 64 << 10
)

// lz4BlockMax maps the block-maximum-size code of a frame descriptor to bytes.
var lz4BlockMax = [8]int{4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20}

// appendLZ4 appends the decompressed LZ4 frames of src to dst. ok is false when it gives up
// (see above); dst is then to be ignored.
func appendLZ4(dst, src []byte) (out []byte, ok bool) {
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

// appendLZ4Frame decodes the frame at the start of src; start is where the whole output
// began in dst (for the size limit).
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
		if len(dst)-start+min(n, blockMax) > batch.MaxDecompressedSize {
			return dst, src, false // batch.Decompress reports ErrTooLarge
		}
		if word&lz4BlockRawBit != 0 {
			dst = append(dst, block...)
			continue
		}
		dst = slices.Grow(dst, blockMax)
		var dict []byte
		if !independent {
			dict = dst[max(frameStart, len(dst)-lz4WindowSize):]
		}
		k, err := lz4.UncompressBlockWithDict(block, dst[len(dst):len(dst)+blockMax], dict)
		if err != nil || len(dst)-start+k > batch.MaxDecompressedSize {
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
