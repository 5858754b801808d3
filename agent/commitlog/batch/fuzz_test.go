package batch

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// crossCheckRecords runs Records on b and checks it against h when it succeeds.
func crossCheckRecords(t *testing.T, b []byte, h Header) error {
	var n int32
	prev := int64(-1)
	err := Records(b, func(r *Record) error {
		if int64(r.OffsetDelta) <= prev || r.Offset != h.BaseOffset+int64(r.OffsetDelta) {
			t.Fatalf("record %d: offset delta %d after %d, offset %d", n, r.OffsetDelta, prev, r.Offset)
		}
		prev = int64(r.OffsetDelta)
		n++
		return nil
	})
	if err == nil && n != h.NumRecords {
		t.Fatalf("Records gave %d records, header says %d", n, h.NumRecords)
	}
	if err == nil && n > 0 && prev > int64(h.LastOffsetDelta) {
		t.Fatalf("last offset delta %d above the header's %d", prev, h.LastOffsetDelta)
	}
	return err
}

// fuzzValidateOne validates b and, if valid, cross-checks Records.
func fuzzValidateOne(t *testing.T, b []byte) {
	h, err := Validate(b)
	if err != nil {
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrLegacyMagic) &&
			!errors.Is(err, ErrUnknownMagic) && !errors.Is(err, ErrUnsupportedCodec) {
			t.Fatalf("Validate error wraps no sentinel: %v", err)
		}
		return
	}
	if h.Size() != len(b) || h.CRC != CRC(b) {
		t.Fatalf("valid batch: size %d of %d, crc %x vs %x", h.Size(), len(b), h.CRC, CRC(b))
	}
	rerr := crossCheckRecords(t, b, h)
	if rerr != nil && h.Codec() == CodecNone {
		t.Fatalf("Validate accepted an uncompressed batch Records rejects: %v", rerr)
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range seedBatches(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzValidateOne(t, b)
		// Fix the CRC so the fuzzer also reaches the checks behind it.
		if len(b) > AttributesPos {
			c := bytes.Clone(b)
			fuzzValidateOne(t, withCRC(c))
		}
	})
}

func FuzzSplit(f *testing.F) {
	for _, s := range seedBatches(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, records []byte) {
		total := 0
		err := Split(records, func(p []byte) error {
			_, size, err := PeekSize(p)
			if err != nil || size != len(p) || cap(p) != len(p) {
				t.Fatalf("Split handed out %d bytes (cap %d), PeekSize says %d, %v", len(p), cap(p), size, err)
			}
			if len(p) > 0 && &p[0] != &records[total] {
				t.Fatal("Split copied a batch")
			}
			total += len(p)
			fuzzValidateOne(t, p)
			return nil
		})
		if err == nil && total != len(records) {
			t.Fatalf("Split covered %d of %d bytes", total, len(records))
		}
		if err != nil && total >= len(records) {
			t.Fatalf("Split failed after covering everything: %v", err)
		}
	})
}

func FuzzRecords(f *testing.F) {
	for _, s := range seedBatches(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, herr := ParseHeader(b)
		err := crossCheckRecords(t, b, h)
		if herr != nil && err == nil {
			t.Fatalf("Records accepted a batch ParseHeader rejects: %v", herr)
		}
	})
}

func FuzzDecompress(f *testing.F) {
	for _, s := range seedCompressed(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		codec := Codec(in[0] % 6) // 5 checks the unsupported path
		out, err := Decompress(codec, in[1:], []byte("pre"))
		if err != nil {
			return
		}
		if !bytes.HasPrefix(out, []byte("pre")) || len(out)-3 > MaxDecompressedSize {
			t.Fatalf("%v: bad output of %d bytes", codec, len(out))
		}
		// Whatever decoded must survive our own round trip.
		c, err := Compress(codec, out[3:], nil)
		if err != nil {
			t.Fatalf("%v: recompress: %v", codec, err)
		}
		back, err := Decompress(codec, c, nil)
		if err != nil || !bytes.Equal(back, out[3:]) {
			t.Fatalf("%v: round trip of fuzz output: %v", codec, err)
		}
	})
}

// filteredRecord is a deep copy of a record keep accepted in FuzzFilter.
type filteredRecord struct {
	offset, timestamp int64
	key, value        []byte
	headers           []RecordHeader
}

// copyFiltered deep-copies r.
func copyFiltered(r *Record) filteredRecord {
	c := filteredRecord{offset: r.Offset, timestamp: r.Timestamp, key: cloneNullable(r.Key), value: cloneNullable(r.Value)}
	for _, h := range r.Headers {
		c.headers = append(c.headers, RecordHeader{Key: h.Key, Value: cloneNullable(h.Value)})
	}
	return c
}

// fuzzFilterOne filters b with the keep decisions in the bits of mask
// (record i is kept if bit i%64 is set) and checks the result.
func fuzzFilterOne(t *testing.T, b []byte, mask uint64) {
	orig := bytes.Clone(b)
	var accepted []filteredRecord
	calls := 0
	out, kept, err := Filter([]byte("dst"), b, func(r *Record) bool {
		ok := mask>>(calls%64)&1 == 1
		calls++
		if ok {
			accepted = append(accepted, copyFiltered(r))
		}
		return ok
	})
	if !bytes.Equal(b, orig) {
		t.Fatal("Filter modified its input")
	}
	h, verr := Validate(b)
	if err != nil {
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrLegacyMagic) &&
			!errors.Is(err, ErrUnknownMagic) && !errors.Is(err, ErrUnsupportedCodec) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Filter error wraps no sentinel: %v", err)
		}
		if string(out) != "dst" || kept != 0 {
			t.Fatalf("failed Filter returned %q, kept %d", out, kept)
		}
		if verr == nil && h.Codec() == CodecNone {
			t.Fatalf("Filter rejected an uncompressed batch Validate accepts: %v", err)
		}
		return
	}
	if verr != nil {
		t.Fatalf("Filter accepted a batch Validate rejects: %v", verr)
	}
	if !bytes.HasPrefix(out, []byte("dst")) {
		t.Fatal("Filter lost dst")
	}
	nb := out[3:]
	if kept != len(accepted) {
		t.Fatalf("kept %d, keep accepted %d", kept, len(accepted))
	}
	if calls == int(h.NumRecords) && kept == calls && !bytes.Equal(nb, b) {
		t.Fatal("keeping everything changed the batch")
	}
	nh, err := Validate(nb)
	if err != nil {
		t.Fatalf("Validate(filtered): %v", err)
	}
	if headerWithout(nh) != headerWithout(h) || nh.NumRecords != int32(kept) {
		t.Fatalf("filtered header %+v, input %+v, kept %d", nh, h, kept)
	}
	i := 0
	err = Records(nb, func(r *Record) error {
		if i >= len(accepted) {
			return fmt.Errorf("record %d beyond the %d kept", i, len(accepted))
		}
		g, w := copyFiltered(r), accepted[i]
		if g.offset != w.offset || g.timestamp != w.timestamp || !equalNullable(g.key, w.key) ||
			!equalNullable(g.value, w.value) || len(g.headers) != len(w.headers) {
			return fmt.Errorf("record %d: %+v, keep accepted %+v", i, g, w)
		}
		for j := range w.headers {
			if g.headers[j].Key != w.headers[j].Key || !equalNullable(g.headers[j].Value, w.headers[j].Value) {
				return fmt.Errorf("record %d header %d: %+v, want %+v", i, j, g.headers[j], w.headers[j])
			}
		}
		i++
		return nil
	})
	if err != nil || i != len(accepted) {
		t.Fatalf("Records(filtered) gave %d of %d records: %v", i, len(accepted), err)
	}
}

func FuzzFilter(f *testing.F) {
	for i, s := range seedBatches(f) {
		f.Add(s, filterSeedMasks[i%len(filterSeedMasks)])
	}
	f.Fuzz(func(t *testing.T, b []byte, mask uint64) {
		fuzzFilterOne(t, b, mask)
		// Fix the CRC so the fuzzer also reaches the checks behind it.
		if len(b) > AttributesPos {
			fuzzFilterOne(t, withCRC(bytes.Clone(b)), mask)
		}
	})
}

// filterSeedMasks are keep masks for the FuzzFilter seeds: keep everything,
// nothing, alternate records and all but the last of four.
var filterSeedMasks = []uint64{^uint64(0), 0, 0xaaaaaaaaaaaaaaaa, 0x7}

// seedBatches returns small interesting inputs: a valid batch per codec (and
// a LogAppendTime, transactional-control and compacted one), two batches
// back to back, a truncated batch and legacy message sets.
func seedBatches(t testing.TB) [][]byte {
	rng := rand.New(rand.NewPCG(31, 32))
	var seeds [][]byte
	var all []byte
	for _, c := range allCodecs {
		b := build(t, BuildOptions{Codec: c, ProducerID: 5, ProducerEpoch: 1, BaseSequence: 0}, genRecords(rng, 4, 1e12))
		seeds = append(seeds, b)
		all = append(all, b...)
	}
	seeds = append(seeds,
		build(t, BuildOptions{ProducerID: -1, LogAppendTime: true}, genRecords(rng, 3, 1e12)),
		rawBatch(attrControl|attrTransactional, 0, 1, rawRecord(0, "\x00\x00\x00\x00\x00\x00")),
		rawBatch(0, 4, 2, append(rawRecord(1, "a"), rawRecord(4, "b")...)),
		rawBatch(int16(CodecSnappy), 2, 3, xerialFrame(append(append(rawRecord(0, "x"), rawRecord(1, "y")...), rawRecord(2, "z")...), 8)),
		all,
		seeds[0][:len(seeds[0])-3],
		legacyMessageSet(0),
		legacyMessageSet(1),
	)
	return seeds
}

// seedCompressed returns codec-prefixed compressed inputs for FuzzDecompress.
func seedCompressed(t testing.TB) [][]byte {
	var seeds [][]byte
	src := []byte("samsa samsa samsa gregor gregor insect")
	for _, c := range allCodecs {
		out, err := Compress(c, src, []byte{byte(c)})
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, out)
	}
	return append(seeds, append([]byte{byte(CodecSnappy)}, xerialFrame(src, 10)...))
}

// TestWriteFuzzCorpus writes the seeds to testdata/fuzz in the go test fuzz
// v1 format, so that plain `go test` replays them. Run with
// SAMSA_WRITE_CORPUS=1 after changing the seeds.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_CORPUS") == "" {
		t.Skip("set SAMSA_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(name string, seeds [][]byte) {
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
	write("FuzzValidate", seedBatches(t))
	write("FuzzSplit", seedBatches(t))
	write("FuzzRecords", seedBatches(t))
	write("FuzzDecompress", seedCompressed(t))
	dir := filepath.Join("testdata", "fuzz", "FuzzFilter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seedBatches(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint64(%d)\n", s, filterSeedMasks[i%len(filterSeedMasks)])
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
