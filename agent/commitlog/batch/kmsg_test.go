package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kgoCodec maps our codec to franz-go's.
func kgoCodec(c Codec) kgo.CompressionCodec {
	switch c {
	case CodecGzip:
		return kgo.GzipCompression()
	case CodecSnappy:
		return kgo.SnappyCompression()
	case CodecLZ4:
		return kgo.Lz4Compression()
	case CodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// kmsgRecords encodes recs with kmsg.Record, the way franz-go producers do.
func kmsgRecords(recs []testRecord, firstTS int64) []byte {
	var out []byte
	for i, r := range recs {
		kr := kmsg.Record{TimestampDelta64: r.ts - firstTS, OffsetDelta: int32(i), Key: r.key, Value: r.value}
		for _, h := range r.headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		body := kr.AppendTo(nil)[1:] // encoded with Length 0, a one-byte varint
		kr.Length = int32(len(body))
		out = kr.AppendTo(out)
	}
	return out
}

// kmsgBatch builds a batch with kmsg.RecordBatch, compressing with franz-go's
// own compressor, entirely independent of our Builder.
func kmsgBatch(t *testing.T, codec Codec, recs []testRecord) (kmsg.RecordBatch, []byte) {
	t.Helper()
	firstTS, maxTS := recs[0].ts, recs[0].ts
	for _, r := range recs {
		maxTS = max(maxTS, r.ts)
	}
	raw := kmsgRecords(recs, firstTS)
	if codec != CodecNone {
		comp, err := kgo.DefaultCompressor(kgoCodec(codec))
		if err != nil {
			t.Fatal(err)
		}
		var used kgo.CompressionCodecType
		raw, used = comp.Compress(new(bytes.Buffer), raw)
		if int(used) != int(codec) {
			t.Fatalf("kgo compressed with %d, want %d", used, codec)
		}
		raw = append([]byte{}, raw...)
	}
	rb := kmsg.RecordBatch{
		FirstOffset: 5000, PartitionLeaderEpoch: 9, Magic: 2, Attributes: int16(codec),
		LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: firstTS, MaxTimestamp: maxTS,
		ProducerID: 77, ProducerEpoch: 2, FirstSequence: 100, NumRecords: int32(len(recs)), Records: raw,
	}
	rb.Length = int32(HeaderSize - 12 + len(raw))
	enc := rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb, rb.AppendTo(nil)
}

func TestKmsgEncodedBatchesValidate(t *testing.T) {
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			recs := genRecords(rand.New(rand.NewPCG(21, uint64(codec))), 300, 1e12)
			rb, b := kmsgBatch(t, codec, recs)
			h, err := Validate(b)
			if err != nil {
				t.Fatalf("Validate(kmsg batch): %v", err)
			}
			want := Header{BaseOffset: rb.FirstOffset, Length: rb.Length, PartitionLeaderEpoch: rb.PartitionLeaderEpoch,
				Magic: 2, CRC: uint32(rb.CRC), Attributes: rb.Attributes, LastOffsetDelta: rb.LastOffsetDelta,
				FirstTimestamp: rb.FirstTimestamp, MaxTimestamp: rb.MaxTimestamp, ProducerID: rb.ProducerID,
				ProducerEpoch: rb.ProducerEpoch, BaseSequence: rb.FirstSequence, NumRecords: rb.NumRecords}
			if h != want {
				t.Fatalf("header\n got %+v\nwant %+v", h, want)
			}
			compareRecords(t, h, collect(t, b), recs)
		})
	}
}

func TestOurBatchesDecodeWithKmsg(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			recs := genRecords(rand.New(rand.NewPCG(22, uint64(codec))), 300, 1e12)
			b := build(t, BuildOptions{Codec: codec, ProducerID: 9, ProducerEpoch: 1, BaseSequence: 3, BaseOffset: 10}, recs)
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				t.Fatalf("kmsg ReadFrom: %v", err)
			}
			if int(rb.Length)+12 != len(b) || rb.Magic != 2 || rb.NumRecords != 300 || rb.LastOffsetDelta != 299 ||
				rb.FirstOffset != 10 || rb.ProducerID != 9 || rb.ProducerEpoch != 1 || rb.FirstSequence != 3 ||
				rb.Attributes != int16(codec) || rb.FirstTimestamp != recs[0].ts {
				t.Fatalf("kmsg header %+v", rb)
			}
			if uint32(rb.CRC) != crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) {
				t.Fatal("CRC does not match an independent CRC-32C")
			}
			raw := rb.Records
			if codec != CodecNone {
				ours, err := Decompress(codec, raw, nil)
				if err != nil {
					t.Fatalf("our Decompress: %v", err)
				}
				theirs, err := dec.Decompress(raw, kgo.CompressionCodecType(codec))
				if err != nil {
					t.Fatalf("franz-go cannot decompress our %v: %v", codec, err)
				}
				if !bytes.Equal(ours, theirs) {
					t.Fatal("our and franz-go's decompression differ")
				}
				raw = ours
			}
			for i, w := range recs {
				var kr kmsg.Record
				if err := kr.ReadFrom(raw); err != nil {
					t.Fatalf("record %d: kmsg ReadFrom: %v", i, err)
				}
				n := binary.PutVarint(make([]byte, 10), int64(kr.Length)) + int(kr.Length)
				raw = raw[n:]
				if kr.OffsetDelta != int32(i) || kr.TimestampDelta64 != w.ts-recs[0].ts ||
					!equalNullable(kr.Key, w.key) || !equalNullable(kr.Value, w.value) || len(kr.Headers) != len(w.headers) {
					t.Fatalf("record %d: kmsg %+v, want %+v", i, kr, w)
				}
				for j, h := range w.headers {
					if kr.Headers[j].Key != h.Key || !equalNullable(kr.Headers[j].Value, h.Value) {
						t.Fatalf("record %d header %d: %+v want %+v", i, j, kr.Headers[j], h)
					}
				}
			}
			if len(raw) != 0 {
				t.Fatalf("%d bytes after the last record", len(raw))
			}
		})
	}
}

// xerialFrame frames raw as the Java client's snappy-java stream does.
func xerialFrame(raw []byte, blockSize int) []byte {
	out := []byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01")
	for len(raw) > 0 {
		n := min(blockSize, len(raw))
		blk := s2.EncodeSnappy(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
		out = append(out, blk...)
		raw = raw[n:]
	}
	return out
}

func TestXerialSnappyBatch(t *testing.T) {
	recs := genRecords(rand.New(rand.NewPCG(23, 24)), 500, 1e12)
	raw := kmsgRecords(recs, recs[0].ts)
	framed := xerialFrame(raw, 4096)
	b := rawBatch(int16(CodecSnappy), int32(len(recs)-1), int32(len(recs)), framed)
	binary.BigEndian.PutUint64(b[FirstTimestampPos:], uint64(recs[0].ts))
	withCRC(b)
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, b)
	for i := range got {
		if !equalNullable(got[i].Value, recs[i].value) || got[i].Offset != 100+int64(i) {
			t.Fatalf("record %d differs", i)
		}
	}
	if len(got) != int(h.NumRecords) {
		t.Fatalf("%d records", len(got))
	}
	// franz-go agrees on the framing.
	theirs, err := kgo.DefaultDecompressor().Decompress(framed, kgo.CodecSnappy)
	if err != nil || !bytes.Equal(theirs, raw) {
		t.Fatalf("franz-go xerial decode: %v", err)
	}
	for _, bad := range [][]byte{
		append(framed[:len(framed):len(framed)], 1, 2), // stray bytes after the last block
		framed[:len(framed)-1],                         // last block cut short
		append(append([]byte{}, framed[:16]...), 0xff, 0xff, 0xff, 0xff),
	} {
		if _, err := Decompress(CodecSnappy, bad, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bad xerial: %v, want ErrCorrupt", err)
		}
	}
}

func TestCompressDecompress(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	inputs := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("samsa "), 50000), make([]byte, 300000)}
	for i := range inputs[3] {
		inputs[3][i] = byte(rng.IntN(16))
	}
	dec := kgo.DefaultDecompressor()
	for _, codec := range allCodecs {
		for i, in := range inputs {
			prefix := []byte("prefix")
			c, err := Compress(codec, in, append([]byte{}, prefix...))
			if err != nil {
				t.Fatalf("%v input %d: Compress: %v", codec, i, err)
			}
			if !bytes.HasPrefix(c, prefix) {
				t.Fatalf("%v: Compress did not append", codec)
			}
			d, err := Decompress(codec, c[len(prefix):], append([]byte{}, prefix...))
			if err != nil {
				t.Fatalf("%v input %d: Decompress: %v", codec, i, err)
			}
			if !bytes.Equal(d[len(prefix):], in) || !bytes.HasPrefix(d, prefix) {
				t.Fatalf("%v input %d: round trip differs", codec, i)
			}
			if codec != CodecNone && len(in) > 0 {
				theirs, err := dec.Decompress(c[len(prefix):], kgo.CompressionCodecType(codec))
				if err != nil || !bytes.Equal(theirs, in) {
					t.Fatalf("%v input %d: franz-go decompress: %v", codec, i, err)
				}
			}
		}
	}
	for _, c := range []Codec{5, 7, -1} {
		if _, err := Compress(c, []byte("x"), nil); !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("Compress codec %d: %v", c, err)
		}
		if _, err := Decompress(c, []byte("x"), nil); !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("Decompress codec %d: %v", c, err)
		}
	}
	for _, codec := range allCodecs[1:] {
		if _, err := Decompress(codec, []byte("definitely not compressed data"), nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v garbage: %v, want ErrCorrupt", codec, err)
		}
	}
}

func TestDecompressionBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates ~130 MiB")
	}
	zeros := make([]byte, MaxDecompressedSize+1)
	for _, codec := range allCodecs[1:] {
		// Compress with franz-go: ours refuses inputs over the limit.
		comp, err := kgo.DefaultCompressor(kgoCodec(codec))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := comp.Compress(new(bytes.Buffer), zeros)
		if _, err := Decompress(codec, c, nil); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v bomb (%d bytes): %v, want ErrTooLarge", codec, len(c), err)
		}
		if _, err := Compress(codec, zeros, nil); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v Compress over limit: %v", codec, err)
		}
		if codec == CodecSnappy {
			if _, err := Decompress(codec, xerialFrame(zeros, 1<<20), nil); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("xerial bomb: %v, want ErrTooLarge", err)
			}
		}
	}
	// Exactly the limit is fine.
	c, err := Compress(CodecZstd, zeros[:MaxDecompressedSize], nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := Decompress(CodecZstd, c, nil); err != nil || len(d) != MaxDecompressedSize {
		t.Fatalf("at the limit: %d bytes, %v", len(d), err)
	}
}
