package batch

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pierrec/lz4/v4"
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

// lz4Text is compressible JSON readings of about n bytes.
func lz4Text(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, `{"device":"d-%d","seq":%d,"temp":%.2f,"id":"%016x"}`, i%300, i, float64(i%3000)/100, uint64(i)*0x9e3779b97f4a7c15)
	}
	return b[:n]
}

// lz4Inputs are frames of every kind a producer may send: block sizes (franz-go's 4 MiB
// default, Java's 64 KiB), block and content checksums, content size, incompressible blocks,
// several frames, a skippable frame, no frame at all.
func lz4Inputs(t testing.TB) [][]byte {
	text := lz4Text(500 << 10)
	noise := make([]byte, 300<<10)
	for i := range noise {
		noise[i] = byte(uint64(i) * 0x9e3779b97f4a7c15 >> 56)
	}
	mixed := append(append([]byte{}, text[:100<<10]...), noise...)
	zeros := make([]byte, 3<<20) // decodes to far more than lz4FirstGuess per block
	ins := [][]byte{
		lz4Frame(t, text),
		lz4Frame(t, text, lz4.BlockSizeOption(lz4.Block64Kb)),
		lz4Frame(t, text, lz4.BlockChecksumOption(true), lz4.ChecksumOption(false)),
		lz4Frame(t, mixed, lz4.BlockSizeOption(lz4.Block256Kb)),
		lz4Frame(t, mixed, lz4.BlockSizeOption(lz4.Block1Mb)),
		lz4Frame(t, text[:1000], lz4.SizeOption(1000)),
		lz4Frame(t, nil),
		lz4Frame(t, zeros),
		lz4Frame(t, zeros[:100<<10], lz4.BlockSizeOption(lz4.Block64Kb)),
	}
	java, err := Compress(CodecLZ4, text[:70000], nil)
	if err != nil {
		t.Fatal(err)
	}
	ins = append(ins, java)
	two := append(append([]byte{}, ins[0]...), ins[5]...)
	skippable := append([]byte{0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3}, ins[5]...)
	return append(ins, two, skippable, []byte{})
}

// TestLZ4Fast compares the fast path with the frame Reader on valid frames of every kind,
// appending to outputs with and without spare room.
func TestLZ4Fast(t *testing.T) {
	for i, in := range lz4Inputs(t) {
		want, err := unlz4Reader(in, []byte("prefix"))
		if err != nil {
			t.Fatalf("input %d: frame Reader: %v", i, err)
		}
		for _, room := range []int{0, 100 << 10, 8 << 20} {
			dst := append(make([]byte, 0, 6+room), "prefix"...)
			got, ok := appendLZ4Fast(dst, in)
			if !ok || !bytes.Equal(got, want) {
				t.Errorf("input %d, room %d: ok %v, %d bytes, want %d", i, room, ok, len(got), len(want))
			}
			if got, err := Decompress(CodecLZ4, in, dst); err != nil || !bytes.Equal(got, want) {
				t.Errorf("input %d, room %d: Decompress: %d bytes, want %d: %v", i, room, len(got), len(want), err)
			}
		}
	}
}

// TestLZ4FastFallback: what the fast path gives up on still decodes, or fails as before.
func TestLZ4FastFallback(t *testing.T) {
	text := lz4Text(10000)
	good := lz4Frame(t, text, lz4.BlockChecksumOption(true))
	dict := bytes.Clone(good)
	dict[4] |= 0x01 // a dictionary id: the fast path gives up, the Reader refuses it too
	if _, ok := appendLZ4Fast(nil, dict); ok {
		t.Error("fast path decoded a frame with a dictionary id")
	}
	if _, err := Decompress(CodecLZ4, dict, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("dictionary frame: %v, want ErrCorrupt", err)
	}
	cut := good[:len(good)-10]
	if _, err := Decompress(CodecLZ4, cut, []byte("x")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated frame: %v, want ErrCorrupt", err)
	}
	// A block checksum that disagrees is not checked: the batch's CRC-32C covers it.
	bad := bytes.Clone(good)
	bad[len(bad)-9] ^= 0xff // the block checksum, before the end mark and the content checksum
	if got, err := Decompress(CodecLZ4, bad, nil); err != nil || !bytes.Equal(got, text) {
		t.Errorf("bad block checksum: %d bytes, %v", len(got), err)
	}
}

// TestLZ4FastTooLarge: output past MaxDecompressedSize is ErrTooLarge, as from the Reader.
func TestLZ4FastTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 64 MiB")
	}
	in := lz4Frame(t, make([]byte, MaxDecompressedSize+1))
	if _, ok := appendLZ4Fast(nil, in); ok {
		t.Fatal("fast path decoded more than MaxDecompressedSize")
	}
	if _, err := Decompress(CodecLZ4, in, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

// TestLZ4FastKeepsBuffersSmall: a frame announcing 4 MiB blocks (franz-go's default) for a
// small batch does not grow the output to 4 MiB, so Records keeps pooling its buffer.
func TestLZ4FastKeepsBuffersSmall(t *testing.T) {
	text := lz4Text(100 << 10)
	in := lz4Frame(t, text) // 4 MiB blocks
	out, err := Decompress(CodecLZ4, in, nil)
	if err != nil || !bytes.Equal(out, text) {
		t.Fatalf("%d bytes, %v", len(out), err)
	}
	if cap(out) > maxPooledBuf {
		t.Fatalf("output capacity %d for %d bytes", cap(out), len(out))
	}
}

// FuzzLZ4Fast: on any bytes the fast path never panics, and when it returns data, the frame
// Reader returns the same data or fails only on a checksum; what it gives up on, Decompress
// decodes as the Reader does.
func FuzzLZ4Fast(f *testing.F) {
	for _, s := range seedLZ4(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := appendLZ4Fast([]byte("pre"), in)
		want, err := unlz4Reader(in, []byte("pre"))
		switch {
		case !ok:
			if string(got[:3]) != "pre" {
				t.Fatal("fast path lost dst")
			}
			out, derr := Decompress(CodecLZ4, in, []byte("pre"))
			if (derr == nil) != (err == nil) || derr == nil && !bytes.Equal(out, want) {
				t.Fatalf("fallback: %d bytes, %v; Reader: %d bytes, %v", len(out), derr, len(want), err)
			}
		case err == nil:
			if !bytes.Equal(got, want) {
				t.Fatalf("fast path: %d bytes, Reader: %d", len(got), len(want))
			}
		case !errors.Is(err, lz4.ErrInvalidFrameChecksum) && !errors.Is(err, lz4.ErrInvalidBlockChecksum) &&
			!errors.Is(err, lz4.ErrInvalidHeaderChecksum):
			t.Fatalf("fast path decoded %d bytes where the Reader fails: %v", len(got), err)
		}
	})
}

// seedLZ4 returns the seeds of FuzzLZ4Fast: small frames of every kind.
func seedLZ4(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, in := range lz4Inputs(t) {
		if len(in) < 4096 {
			seeds = append(seeds, in)
		}
	}
	text := lz4Text(3000)
	return append(seeds,
		lz4Frame(t, []byte("short"), lz4.BlockChecksumOption(true)),
		lz4Frame(t, text, lz4.BlockSizeOption(lz4.Block64Kb), lz4.SizeOption(3000)),
		lz4Frame(t, bytes.Repeat([]byte{7}, 5000), lz4.BlockChecksumOption(true)),
		[]byte{0x04, 0x22, 0x4d, 0x18, 0x40, 0x40, 0xc0, 0, 0, 0, 0},
		[]byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73, 0x05, 0, 0, 0x80, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0},
	)
}

// TestRecordsData: walking a batch's records area, decompressed beforehand, gives what
// Records gives, records and errors, for every codec and for damaged records.
func TestRecordsData(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var batches [][]byte
	for _, c := range allCodecs {
		batches = append(batches, build(t, BuildOptions{Codec: c, ProducerID: -1}, genRecords(rng, 40, 1e12)))
	}
	batches = append(batches,
		build(t, BuildOptions{ProducerID: -1, LogAppendTime: true}, genRecords(rng, 3, 1e12)),
		rawBatch(0, 4, 2, append(rawRecord(1, "a"), rawRecord(4, "b")...)),
		rawBatch(0, 4, 3, append(rawRecord(1, "a"), rawRecord(4, "b")...)),
		rawBatch(0, 4, 2, append(rawRecord(1, "a"), rawRecord(1, "b")...)),
		rawBatch(0, 2, 2, append(rawRecord(1, "a"), rawRecord(4, "b")...)),
		rawBatch(int16(CodecLZ4), 1, 2, lz4Frame(t, append(rawRecord(0, "a"), rawRecord(1, "bc")[:3]...))),
	)
	for i, b := range batches {
		if err := compareRecordsData(b); err != nil {
			t.Errorf("batch %d: %v", i, err)
		}
	}
}

// compareRecordsData checks RecordsData against Records on the batch b.
func compareRecordsData(b []byte) error {
	h, err := ParseHeader(b)
	if err != nil || len(b) < h.Size() || h.Control() {
		return nil
	}
	data := b[HeaderSize:h.Size()]
	if h.Codec() != CodecNone && len(data) > 0 && h.NumRecords <= 0 {
		return nil // Records refuses it without decompressing (as Validate does): no records area to walk
	}
	if c := h.Codec(); c != CodecNone && len(data) > 0 && h.NumRecords > 0 {
		if data, err = Decompress(c, data, nil); err != nil {
			return nil
		}
	}
	var want, got bytes.Buffer
	werr := Records(b, traceRecord(&want))
	gerr := RecordsData(h, data, traceRecord(&got))
	if fmt.Sprint(werr) != fmt.Sprint(gerr) || want.String() != got.String() {
		return fmt.Errorf("RecordsData:\n%s%v\nRecords:\n%s%v", got.String(), gerr, want.String(), werr)
	}
	return nil
}

// traceRecord renders every field of each record into b.
func traceRecord(b *bytes.Buffer) func(*Record) error {
	return func(r *Record) error {
		fmt.Fprintf(b, "%d %d %d %d %d %q/%v %q/%v", r.Attributes, r.TimestampDelta, r.OffsetDelta, r.Offset, r.Timestamp,
			r.Key, r.Key == nil, r.Value, r.Value == nil)
		for _, h := range r.Headers {
			fmt.Fprintf(b, " %q=%q/%v", h.Key, h.Value, h.Value == nil)
		}
		b.WriteByte('\n')
		return nil
	}
}

// FuzzRecordsData: on any batch, RecordsData over the decompressed records area gives what
// Records gives, and never panics.
func FuzzRecordsData(f *testing.F) {
	for _, s := range seedBatches(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := compareRecordsData(b); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriteLZ4FuzzCorpus writes the seeds of FuzzLZ4Fast and FuzzRecordsData to testdata/fuzz
// (see TestWriteFuzzCorpus). Run with SAMSA_WRITE_CORPUS=1 after changing the seeds.
func TestWriteLZ4FuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_CORPUS") == "" {
		t.Skip("set SAMSA_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	for name, seeds := range map[string][][]byte{"FuzzLZ4Fast": seedLZ4(t), "FuzzRecordsData": seedBatches(t)} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// BenchmarkLZ4Fast compares the fast path with the frame Reader on 64 KiB of JSON readings,
// in Java's frames (64 KiB blocks) and franz-go's (4 MiB blocks, content checksum).
func BenchmarkLZ4Fast(b *testing.B) {
	data := lz4Text(64 << 10)
	java, err := Compress(CodecLZ4, data, nil)
	if err != nil {
		b.Fatal(err)
	}
	for name, in := range map[string][]byte{"java": java, "franz": lz4Frame(b, data)} {
		buf := make([]byte, 0, 1<<20)
		b.Run(name+"/reader", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := unlz4Reader(in, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/fast", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, ok := appendLZ4Fast(buf[:0], in); !ok {
					b.Fatal("fast path gave up")
				}
			}
		})
	}
}
