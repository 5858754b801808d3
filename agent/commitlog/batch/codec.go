package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedSize bounds the output of one Decompress call (and the
// records area of a compressed batch): 64 MiB, far above Kafka's default
// 1 MiB max.message.bytes yet small enough for a gateway's memory.
const MaxDecompressedSize = 64 << 20

// Decompress appends the decompressed form of src, compressed with codec c,
// to dst and returns the extended slice. Snappy input may be a raw block or
// xerial-framed (as Java clients send it). lz4 frames are decoded without
// checking their xxHash32 checksums, which only repeat the batch's CRC-32C
// (call Validate on untrusted batches first). It fails with ErrUnsupportedCodec
// for an unknown codec, ErrTooLarge if the output would exceed
// MaxDecompressedSize, and ErrCorrupt (wrapping the codec's error) for bad input.
func Decompress(c Codec, src []byte, dst []byte) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch c {
	case CodecNone:
		if len(src) > MaxDecompressedSize {
			return dst, fmt.Errorf("decompress none: %d bytes: %w", len(src), ErrTooLarge)
		}
		return append(dst, src...), nil
	case CodecGzip:
		out, err = gunzip(src, dst)
	case CodecSnappy:
		out, err = unsnappy(src, dst)
	case CodecLZ4:
		out, err = unlz4(src, dst)
	case CodecZstd:
		out, err = unzstd(src, dst)
	default:
		return dst, fmt.Errorf("decompress: %v: %w", c, ErrUnsupportedCodec)
	}
	if err != nil {
		if !errors.Is(err, ErrTooLarge) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return dst, fmt.Errorf("decompress %v (%d bytes): %w", c, len(src), err)
	}
	return out, nil
}

// Compress appends src compressed with codec c to dst and returns the
// extended slice. Snappy output is a raw snappy block, which every Kafka
// client reads; lz4 output is an LZ4 frame with 64 KiB independent blocks,
// like the Java client writes. It fails with ErrUnsupportedCodec for an
// unknown codec and with ErrTooLarge if src exceeds MaxDecompressedSize
// (readers would refuse it).
func Compress(c Codec, src []byte, dst []byte) ([]byte, error) {
	if !c.valid() {
		return dst, fmt.Errorf("compress: %v: %w", c, ErrUnsupportedCodec)
	}
	if len(src) > MaxDecompressedSize {
		return dst, fmt.Errorf("compress %v: %d bytes, limit %d: %w", c, len(src), MaxDecompressedSize, ErrTooLarge)
	}
	var (
		out []byte
		err error
	)
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		out, err = gzipAppend(src, dst)
	case CodecSnappy:
		dst = slices.Grow(dst, s2.MaxEncodedLen(len(src)))
		enc := s2.EncodeSnappy(dst[len(dst):cap(dst)], src)
		out = dst[:len(dst)+len(enc)]
	case CodecLZ4:
		out, err = lz4Append(src, dst)
	case CodecZstd:
		var enc *zstd.Encoder
		if enc, err = zstdEncoder(); err == nil {
			out = enc.EncodeAll(src, dst)
		}
	}
	if err != nil {
		return dst, fmt.Errorf("compress %v: %w", c, err)
	}
	return out, nil
}

// appendWriter is an io.Writer that appends to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// readAppend reads r to EOF, appending to dst, and fails with ErrTooLarge
// once more than MaxDecompressedSize bytes arrive. hint sizes the first growth.
func readAppend(r io.Reader, dst []byte, hint int) ([]byte, error) {
	start := len(dst)
	limit := start + MaxDecompressedSize + 1 // one extra byte detects overflow
	dst = slices.Grow(dst, min(max(hint, 512), MaxDecompressedSize+1))
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, min(max(cap(dst)-start, 4096), limit-len(dst)))
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit)])
		dst = dst[:len(dst)+n]
		if len(dst) >= limit {
			return dst[:start], fmt.Errorf("more than %d bytes: %w", MaxDecompressedSize, ErrTooLarge)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], err
		}
	}
}

// gzipState is a pooled gzip decoder with the reader it reads from.
type gzipState struct {
	zr  gzip.Reader
	src bytes.Reader
}

var gzipReaders = sync.Pool{New: func() any { return new(gzipState) }}

func gunzip(src, dst []byte) ([]byte, error) {
	g := gzipReaders.Get().(*gzipState)
	defer func() {
		g.src.Reset(nil)
		gzipReaders.Put(g)
	}()
	g.src.Reset(src)
	if err := g.zr.Reset(&g.src); err != nil {
		return dst, err
	}
	// The trailer's ISIZE is the size mod 2^32 of the last member: a hint,
	// capped by deflate's best ratio so a forged value cannot force a big
	// allocation.
	var hint int64
	if len(src) >= 18 {
		hint = min(int64(binary.LittleEndian.Uint32(src[len(src)-4:])), 1032*int64(len(src)), MaxDecompressedSize)
	}
	return readAppend(&g.zr, dst, int(hint))
}

// gzipWriterState is a pooled gzip encoder with its output buffer.
type gzipWriterState struct {
	zw  *gzip.Writer
	out appendWriter
}

var gzipWriters = sync.Pool{New: func() any {
	s := new(gzipWriterState)
	s.zw = gzip.NewWriter(&s.out)
	return s
}}

func gzipAppend(src, dst []byte) ([]byte, error) {
	g := gzipWriters.Get().(*gzipWriterState)
	defer func() {
		g.out.b = nil
		gzipWriters.Put(g)
	}()
	g.out.b = dst
	g.zw.Reset(&g.out)
	if _, err := g.zw.Write(src); err != nil {
		return dst, err
	}
	if err := g.zw.Close(); err != nil {
		return dst, err
	}
	return g.out.b, nil
}

// lz4State is a pooled lz4 frame decoder with the reader it reads from.
type lz4State struct {
	zr  *lz4.Reader
	src bytes.Reader
}

var lz4Readers = sync.Pool{New: func() any { return &lz4State{zr: lz4.NewReader(nil)} }}

// unlz4 decodes lz4 frames with appendLZ4Fast, falling back to the frame Reader when the
// fast path gives up (which then decodes the input or reports the error).
func unlz4(src, dst []byte) ([]byte, error) {
	start := len(dst)
	out, ok := appendLZ4Fast(dst, src)
	if ok {
		return out, nil
	}
	return unlz4Reader(src, out[:start])
}

// unlz4Reader decodes lz4 frames with the lz4 package's frame Reader, checking their checksums.
func unlz4Reader(src, dst []byte) ([]byte, error) {
	l := lz4Readers.Get().(*lz4State)
	defer func() {
		l.zr.Reset(nil)
		l.src.Reset(nil)
		lz4Readers.Put(l)
	}()
	l.src.Reset(src)
	l.zr.Reset(&l.src)
	return readAppend(l.zr, dst, int(min(4*int64(len(src)), MaxDecompressedSize)))
}

// lz4WriterState is a pooled lz4 frame encoder with its output buffer.
type lz4WriterState struct {
	zw  *lz4.Writer
	out appendWriter
}

var lz4Writers = sync.Pool{New: func() any {
	s := new(lz4WriterState)
	s.zw = lz4.NewWriter(&s.out)
	// 64 KiB blocks like the Java client: small buffers suit small devices.
	_ = s.zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
	return s
}}

func lz4Append(src, dst []byte) ([]byte, error) {
	l := lz4Writers.Get().(*lz4WriterState)
	defer func() {
		l.out.b = nil
		l.zw.Reset(&l.out)
		lz4Writers.Put(l)
	}()
	l.out.b = dst
	l.zw.Reset(&l.out)
	if _, err := l.zw.Write(src); err != nil {
		return dst, err
	}
	if err := l.zw.Close(); err != nil {
		return dst, err
	}
	return l.out.b, nil
}

// xerialMagic starts the xerial snappy framing Java clients write; it is
// followed by two int32 (version, compatible version) and then blocks, each
// an int32 big-endian length and a raw snappy block.
const xerialMagic = "\x82SNAPPY\x00"

const xerialHeaderSize = 16

func unsnappy(src, dst []byte) ([]byte, error) {
	if len(src) < xerialHeaderSize || string(src[:len(xerialMagic)]) != xerialMagic {
		return snappyBlock(src, dst, MaxDecompressedSize)
	}
	start := len(dst)
	for p := src[xerialHeaderSize:]; len(p) > 0; {
		if len(p) < 4 {
			return dst[:start], fmt.Errorf("xerial: %d stray bytes", len(p))
		}
		n := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(n) > uint64(len(p)) {
			return dst[:start], fmt.Errorf("xerial: block of %d bytes, %d left", n, len(p))
		}
		var err error
		dst, err = snappyBlock(p[:n], dst, MaxDecompressedSize-(len(dst)-start))
		if err != nil {
			return dst[:start], fmt.Errorf("xerial: %w", err)
		}
		p = p[n:]
	}
	return dst, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst, failing
// with ErrTooLarge if it would exceed budget bytes.
func snappyBlock(src, dst []byte, budget int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n > budget {
		return dst, fmt.Errorf("snappy block of %d bytes, %d allowed: %w", n, budget, ErrTooLarge)
	}
	dst = slices.Grow(dst, n)
	if _, err := s2.Decode(dst[len(dst):len(dst)+n], src); err != nil {
		return dst, err
	}
	return dst[:len(dst)+n], nil
}

// zstdConcurrency bounds the zstd coders kept: enough for a few partitions
// decoding at once without the memory of one per core on bigger machines.
var zstdConcurrency = min(4, runtime.GOMAXPROCS(0))

// zstdDecoder is the shared decoder: DecodeAll is safe for concurrent use and
// reuses internal decoders, so no batch allocates one.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(zstdConcurrency),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(MaxDecompressedSize),
	)
	if err != nil {
		return nil, fmt.Errorf("new zstd decoder: %w", err)
	}
	return d, nil
})

// zstdEncoder is the shared encoder; EncodeAll is safe for concurrent use.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(zstdConcurrency),
		zstd.WithLowerEncoderMem(true),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, fmt.Errorf("new zstd encoder: %w", err)
	}
	return e, nil
})

func unzstd(src, dst []byte) ([]byte, error) {
	d, err := zstdDecoder()
	if err != nil {
		return dst, err
	}
	start := len(dst)
	out, err := d.DecodeAll(src, dst)
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			err = fmt.Errorf("%w: %w", ErrTooLarge, err)
		}
		return dst[:start], err
	}
	return out, nil
}
