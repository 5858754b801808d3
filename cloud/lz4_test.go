package cloud

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// lz4Frame compresses data as a frame with the given options.
func lz4Frame(t testing.TB, data []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lz4Inputs are frames of every kind a producer may send: block sizes, block and content
// checksums, content size, incompressible blocks, several frames, a skippable frame.
func lz4Inputs(t testing.TB) [][]byte {
	text := bytes.Repeat([]byte(`{"device":"d-17","temp":21.5,"hum":40.25,"note":"hello"}`), 9000)
	noise := make([]byte, 300<<10)
	for i := range noise {
		noise[i] = byte(uint64(i) * 0x9e3779b97f4a7c15 >> 56)
	}
	mixed := append(append([]byte{}, text[:100<<10]...), noise...)
	ins := [][]byte{
		lz4Frame(t, text),
		lz4Frame(t, text, lz4.BlockSizeOption(lz4.Block4Mb)),
		lz4Frame(t, text, lz4.BlockChecksumOption(true), lz4.ChecksumOption(false)),
		lz4Frame(t, mixed, lz4.BlockSizeOption(lz4.Block256Kb)),
		lz4Frame(t, text[:1000], lz4.SizeOption(1000)),
		lz4Frame(t, nil),
		batchLZ4(t, text[:70000]),
	}
	two := append(append([]byte{}, ins[0]...), ins[4]...)
	skippable := append([]byte{0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3}, ins[4]...)
	return append(ins, two, skippable)
}

// batchLZ4 compresses data as package batch does for the agent.
func batchLZ4(t testing.TB, data []byte) []byte {
	out, err := batch.Compress(batch.CodecLZ4, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAppendLZ4 compares the fast path with batch.Decompress on valid frames of every kind.
func TestAppendLZ4(t *testing.T) {
	for i, in := range lz4Inputs(t) {
		want, err := batch.Decompress(batch.CodecLZ4, in, []byte("prefix"))
		if err != nil {
			t.Fatalf("input %d: batch.Decompress: %v", i, err)
		}
		got, ok := appendLZ4([]byte("prefix"), in)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("input %d: ok %v, %d bytes, want %d", i, ok, len(got), len(want))
		}
	}
}

// FuzzAppendLZ4: on any bytes the fast path never panics, and when it returns data,
// batch.Decompress returns the same data or fails only on a checksum.
func FuzzAppendLZ4(f *testing.F) {
	for _, in := range lz4Inputs(f) {
		if len(in) < 4096 {
			f.Add(in)
		}
	}
	f.Add(lz4Frame(f, []byte("short"), lz4.BlockChecksumOption(true)))
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x40, 0x40, 0xc0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := appendLZ4(nil, in)
		want, err := batch.Decompress(batch.CodecLZ4, in, nil)
		switch {
		case !ok:
		case err == nil:
			if !bytes.Equal(got, want) {
				t.Fatalf("fast path: %d bytes, batch.Decompress: %d", len(got), len(want))
			}
		case !errors.Is(err, lz4.ErrInvalidFrameChecksum) && !errors.Is(err, lz4.ErrInvalidBlockChecksum) &&
			!errors.Is(err, lz4.ErrInvalidHeaderChecksum):
			t.Fatalf("fast path decoded %d bytes where batch.Decompress fails: %v", len(got), err)
		}
	})
}

// BenchmarkLZ4 compares the fast path with batch.Decompress on 64 KiB of JSON readings.
func BenchmarkLZ4(b *testing.B) {
	var data []byte
	for i := 0; len(data) < 64<<10; i++ {
		data = fmt.Appendf(data, `{"device":"d-%d","seq":%d,"temp":%.2f,"id":"%016x"}`, i%300, i, float64(i%3000)/100, uint64(i)*0x9e3779b97f4a7c15)
	}
	in := batchLZ4(b, data)
	buf := make([]byte, 0, 1<<20)
	b.Run("batch.Decompress", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := batch.Decompress(batch.CodecLZ4, in, buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendLZ4", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, ok := appendLZ4(buf[:0], in); !ok {
				b.Fatal("fast path gave up")
			}
		}
	})
}
