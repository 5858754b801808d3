package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestRoundTripAllCodecs(t *testing.T) {
	for _, codec := range allCodecs {
		for _, n := range []int{1, 7, 2500} {
			for _, lat := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/%d/lat=%v", codec, n, lat), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(n), uint64(codec)))
					recs := genRecords(rng, n, 1_700_000_000_000)
					opts := BuildOptions{Codec: codec, ProducerID: 42, ProducerEpoch: 3, BaseSequence: 17,
						BaseOffset: 1000, LogAppendTime: lat}
					b := build(t, opts, recs)
					h, err := Validate(b)
					if err != nil {
						t.Fatalf("Validate: %v", err)
					}
					minTS, maxTS := recs[0].ts, recs[0].ts
					for _, r := range recs {
						maxTS = max(maxTS, r.ts)
						minTS = min(minTS, r.ts)
					}
					want := Header{BaseOffset: 1000, Length: int32(len(b) - 12), PartitionLeaderEpoch: -1, Magic: 2,
						CRC: CRC(b), Attributes: int16(codec), LastOffsetDelta: int32(n - 1),
						FirstTimestamp: recs[0].ts, MaxTimestamp: maxTS, ProducerID: 42, ProducerEpoch: 3,
						BaseSequence: 17, NumRecords: int32(n)}
					if lat {
						want.Attributes |= 8
					}
					if h != want {
						t.Fatalf("header\n got %+v\nwant %+v", h, want)
					}
					if h.Size() != len(b) || h.Codec() != codec || h.LogAppendTime() != lat || h.LastOffset() != 1000+int64(n-1) {
						t.Fatalf("accessors: size %d codec %v lat %v last %d", h.Size(), h.Codec(), h.LogAppendTime(), h.LastOffset())
					}
					if h.Transactional() || h.Control() {
						t.Fatalf("unexpected transactional/control bits %#x", h.Attributes)
					}
					compareRecords(t, h, collect(t, b), recs)
				})
			}
		}
	}
}

func TestBuilderReuseAndEmpty(t *testing.T) {
	bld := NewBuilder(BuildOptions{Codec: CodecNone, ProducerID: -1})
	if _, err := bld.Build(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty Build: %v, want ErrEmpty", err)
	}
	if bld.EstimatedSize() != HeaderSize || bld.Len() != 0 {
		t.Fatalf("empty builder: size %d len %d", bld.EstimatedSize(), bld.Len())
	}
	bld.Add(5, []byte("k1"), []byte("v1"), nil)
	bld.Add(6, nil, nil, []RecordHeader{{Key: "a", Value: nil}})
	if bld.Len() != 2 || bld.EstimatedSize() <= HeaderSize {
		t.Fatalf("after 2 adds: len %d size %d", bld.Len(), bld.EstimatedSize())
	}
	first, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	if bld.Len() != 0 || bld.EstimatedSize() != HeaderSize {
		t.Fatalf("Build did not reset: len %d size %d", bld.Len(), bld.EstimatedSize())
	}
	snapshot := append([]byte{}, first...)
	bld.Add(9, []byte("other"), []byte("different value entirely"), nil)
	second, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, snapshot) {
		t.Fatal("second Build modified the first batch's bytes")
	}
	h1, err := Validate(first)
	if err != nil {
		t.Fatal(err)
	}
	if h1.ProducerID != -1 || h1.ProducerEpoch != -1 || h1.BaseSequence != -1 || h1.NumRecords != 2 {
		t.Fatalf("first header %+v", h1)
	}
	h2, err := Validate(second)
	if err != nil {
		t.Fatal(err)
	}
	if h2.NumRecords != 1 || h2.FirstTimestamp != 9 || h2.MaxTimestamp != 9 {
		t.Fatalf("second header %+v", h2)
	}
	got := collect(t, first)
	if got[1].Key != nil || got[1].Value != nil || len(got[1].Headers) != 1 || got[1].Headers[0].Value != nil {
		t.Fatalf("null fields did not stay null: %+v", got[1])
	}
}

func TestParseHeaderAndPeekSize(t *testing.T) {
	b := build(t, BuildOptions{ProducerID: -1, BaseOffset: 77}, genRecords(rand.New(rand.NewPCG(1, 2)), 3, 50))
	h, err := ParseHeader(b[:HeaderSize])
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 77 || h.NumRecords != 3 || h.Size() != len(b) {
		t.Fatalf("ParseHeader: %+v", h)
	}
	off, size, err := PeekSize(b[:12])
	if err != nil || off != 77 || size != len(b) {
		t.Fatalf("PeekSize = %d, %d, %v; want 77, %d", off, size, err, len(b))
	}
	if _, _, err := PeekSize(b[:11]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("PeekSize short: %v", err)
	}
	short := append([]byte{}, b[:12]...)
	binary.BigEndian.PutUint32(short[LengthPos:], 48)
	if _, _, err := PeekSize(short); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("PeekSize length 48: %v", err)
	}
	binary.BigEndian.PutUint32(short[LengthPos:], 49)
	if _, size, err := PeekSize(short); err != nil || size != HeaderSize {
		t.Fatalf("PeekSize length 49: %d %v", size, err)
	}
	// The largest length whose total size still fits an int32 (32-bit ARM's int).
	binary.BigEndian.PutUint32(short[LengthPos:], 0x7fffffff-12)
	if _, size, err := PeekSize(short); err != nil || size != 0x7fffffff {
		t.Fatalf("PeekSize max length: %d %v", size, err)
	}
	binary.BigEndian.PutUint32(short[LengthPos:], 0x7fffffff-11)
	if _, _, err := PeekSize(short); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("PeekSize length overflowing int32: %v", err)
	}
	binary.BigEndian.PutUint32(short[LengthPos:], 0xffffffff)
	if _, _, err := PeekSize(short); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("PeekSize length -1: %v", err)
	}
	for i := range HeaderSize {
		if _, err := ParseHeader(b[:i]); err == nil {
			t.Fatalf("ParseHeader accepted %d bytes", i)
		} else if !errors.Is(err, ErrTruncated) {
			t.Fatalf("ParseHeader(%d bytes): %v, want ErrTruncated", i, err)
		}
	}
	for m, want := range map[byte]error{0: ErrLegacyMagic, 1: ErrLegacyMagic, 3: ErrUnknownMagic, 0xff: ErrUnknownMagic} {
		c := append([]byte{}, b...)
		c[MagicPos] = m
		if _, err := ParseHeader(c); !errors.Is(err, want) {
			t.Fatalf("magic %d: %v, want %v", m, err, want)
		}
		if _, err := Validate(c); !errors.Is(err, want) {
			t.Fatalf("Validate magic %d: %v, want %v", m, err, want)
		}
	}
}

func TestSetFieldsKeepBatchValid(t *testing.T) {
	for _, codec := range allCodecs {
		b := build(t, BuildOptions{Codec: codec, ProducerID: -1}, genRecords(rand.New(rand.NewPCG(3, 4)), 20, 1e12))
		SetBaseOffset(b, 123456789)
		SetPartitionLeaderEpoch(b, 42)
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("%v: Validate after stamping: %v", codec, err)
		}
		if h.BaseOffset != 123456789 || h.PartitionLeaderEpoch != 42 {
			t.Fatalf("%v: stamped header %+v", codec, h)
		}
		got := collect(t, b)
		if got[0].Offset != 123456789 || got[19].Offset != 123456789+19 {
			t.Fatalf("%v: offsets %d..%d", codec, got[0].Offset, got[19].Offset)
		}
	}
	// Short slices are ignored, not a panic.
	SetBaseOffset(make([]byte, 7), 1)
	SetPartitionLeaderEpoch(make([]byte, 15), 1)
	if CRC(make([]byte, 20)) != 0 {
		t.Fatal("CRC of a short slice is not 0")
	}
}

func TestValidateRejectsEveryBitFlip(t *testing.T) {
	for _, codec := range allCodecs {
		b := build(t, BuildOptions{Codec: codec, ProducerID: -1}, genRecords(rand.New(rand.NewPCG(5, 6)), 4, 1e12))
		for i := range b {
			for bit := range 8 {
				c := append([]byte{}, b...)
				c[i] ^= 1 << bit
				_, err := Validate(c)
				switch {
				case i < LengthPos || (i >= PartitionLeaderEpochPos && i < MagicPos):
					if err != nil {
						t.Fatalf("%v: flip in byte %d (outside the CRC) rejected: %v", codec, i, err)
					}
				case i >= CRCPos: // CRC field or covered by it
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("%v: flip in byte %d bit %d: %v, want ErrCorrupt", codec, i, bit, err)
					}
				default: // length or magic
					if err == nil {
						t.Fatalf("%v: flip in byte %d bit %d accepted", codec, i, bit)
					}
				}
			}
		}
	}
}

func TestValidateTruncatedAndTrailing(t *testing.T) {
	b := build(t, BuildOptions{ProducerID: -1}, genRecords(rand.New(rand.NewPCG(7, 8)), 5, 1e12))
	for n := range len(b) {
		if _, err := Validate(b[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("Validate(%d of %d bytes): %v, want ErrTruncated", n, len(b), err)
		}
		if err := Records(b[:n], func(*Record) error { return nil }); !errors.Is(err, ErrTruncated) {
			t.Fatalf("Records(%d of %d bytes): %v, want ErrTruncated", n, len(b), err)
		}
	}
	if _, err := Validate(append(append([]byte{}, b...), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v, want ErrCorrupt", err)
	}
}

// setField writes v into a 4-byte header field and fixes the CRC.
func setField(b []byte, pos int, v int32) []byte {
	c := append([]byte{}, b...)
	binary.BigEndian.PutUint32(c[pos:], uint32(v))
	return withCRC(c)
}

func TestValidateRejectsInconsistentCounts(t *testing.T) {
	for _, codec := range allCodecs {
		b := build(t, BuildOptions{Codec: codec, ProducerID: -1}, genRecords(rand.New(rand.NewPCG(9, 10)), 10, 1e12))
		cases := []struct {
			name string
			b    []byte
			bad  bool // must Validate reject it?
		}{
			{"count+1", setField(b, NumRecordsPos, 11), true},
			{"count-1", setField(b, NumRecordsPos, 9), codec == CodecNone},
			{"count 0", setField(b, NumRecordsPos, 0), true},
			{"count -1", setField(b, NumRecordsPos, -1), true},
			{"lastOffsetDelta-1", setField(b, LastOffsetDeltaPos, 8), true},
			{"lastOffsetDelta+1", setField(b, LastOffsetDeltaPos, 10), false}, // as if compaction dropped the tail
			{"lastOffsetDelta -1", setField(b, LastOffsetDeltaPos, -1), true},
		}
		for _, tc := range cases {
			_, err := Validate(tc.b)
			if tc.bad && !errors.Is(err, ErrCorrupt) {
				t.Errorf("%v %s: Validate = %v, want ErrCorrupt", codec, tc.name, err)
			}
			if !tc.bad && err != nil {
				t.Errorf("%v %s: Validate = %v, want nil (compressed, not decompressed)", codec, tc.name, err)
			}
			// Records sees every inconsistency once it decompresses.
			err = Records(tc.b, func(*Record) error { return nil })
			if tc.name == "lastOffsetDelta+1" {
				if err != nil {
					t.Errorf("%v %s: Records = %v, want nil", codec, tc.name, err)
				}
			} else if err == nil {
				t.Errorf("%v %s: Records accepted it", codec, tc.name)
			}
		}
		attrs := append([]byte{}, b...)
		binary.BigEndian.PutUint16(attrs[AttributesPos:], 5)
		if _, err := Validate(withCRC(attrs)); !errors.Is(err, ErrUnsupportedCodec) {
			t.Errorf("codec 5: %v, want ErrUnsupportedCodec", err)
		}
		if err := Records(attrs, func(*Record) error { return nil }); !errors.Is(err, ErrUnsupportedCodec) {
			t.Errorf("Records codec 5: %v, want ErrUnsupportedCodec", err)
		}
	}
}

func TestValidateOffsetGapsAndFraming(t *testing.T) {
	recs := func(deltas ...int64) []byte {
		var p []byte
		for _, d := range deltas {
			p = append(p, rawRecord(d, fmt.Sprint("v", d))...)
		}
		return p
	}
	// A compacted batch: offsets 0, 2, 5 survive.
	gap := rawBatch(0, 5, 3, recs(0, 2, 5))
	if _, err := Validate(gap); err != nil {
		t.Fatalf("compacted batch: %v", err)
	}
	var offs []int64
	if err := Records(gap, func(r *Record) error {
		offs = append(offs, r.Offset)
		if string(r.Value) != fmt.Sprint("v", r.OffsetDelta) || r.Timestamp != 1000 || r.Key != nil {
			return fmt.Errorf("record %+v", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(offs) != "[100 102 105]" {
		t.Fatalf("offsets %v", offs)
	}
	bad := map[string][]byte{
		"decreasing deltas":     rawBatch(0, 5, 3, recs(0, 5, 2)),
		"repeated delta":        rawBatch(0, 2, 3, recs(0, 2, 2)),
		"negative first delta":  rawBatch(0, 1, 3, recs(-1, 0, 1)),
		"delta above header":    rawBatch(0, 4, 3, recs(0, 2, 5)),
		"empty with records":    rawBatch(0, 5, 0, recs(0)),
		"record past batch end": rawBatch(0, 0, 1, rawRecord(0, "x")[:5]),
		"trailing garbage":      rawBatch(0, 0, 1, append(rawRecord(0, "x"), 0)),
		"zero-length record":    rawBatch(0, 0, 1, []byte{0}),
		"negative record len":   rawBatch(0, 0, 1, []byte{1, 0, 0, 0, 1, 1, 0}),
	}
	// A record whose key length claims more than the record holds.
	r := rawRecord(0, "abc")
	r[4] = 40 // keyLen varint: 20
	bad["key past record end"] = rawBatch(0, 0, 1, r)
	for name, b := range bad {
		if _, err := Validate(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Validate = %v, want ErrCorrupt", name, err)
		}
		if err := Records(b, func(*Record) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Records = %v, want ErrCorrupt", name, err)
		}
	}
	// An empty control batch is allowed.
	if _, err := Validate(rawBatch(attrControl|attrTransactional, 0, 0, nil)); err != nil {
		t.Fatalf("empty control batch: %v", err)
	}
}

func TestRecordsCallbackErrorAndLogAppendTime(t *testing.T) {
	b := build(t, BuildOptions{ProducerID: -1, LogAppendTime: true}, []testRecord{{ts: 5}, {ts: 9}, {ts: 7}})
	var ts []int64
	stop := errors.New("stop")
	err := Records(b, func(r *Record) error {
		ts = append(ts, r.Timestamp)
		if len(ts) == 2 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("callback error = %v, want it unwrapped", err)
	}
	if fmt.Sprint(ts) != "[9 9]" {
		t.Fatalf("LogAppendTime timestamps %v, want MaxTimestamp", ts)
	}
}

func TestSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	a := build(t, BuildOptions{Codec: CodecZstd, ProducerID: -1}, genRecords(rng, 3, 1e12))
	b := build(t, BuildOptions{Codec: CodecNone, ProducerID: -1}, genRecords(rng, 5, 1e12))
	records := append(append([]byte{}, a...), b...)
	var got [][]byte
	if err := Split(records, func(p []byte) error {
		if cap(p) != len(p) {
			t.Errorf("batch slice cap %d != len %d", cap(p), len(p))
		}
		if _, err := Validate(p); err != nil {
			t.Errorf("split batch invalid: %v", err)
		}
		got = append(got, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) || &got[0][0] != &records[0] {
		t.Fatalf("Split gave %d batches (aliased %v)", len(got), len(got) > 0 && &got[0][0] == &records[0])
	}
	if err := Split(nil, func([]byte) error { t.Fatal("called on empty"); return nil }); err != nil {
		t.Fatal(err)
	}
	for n := 1; n < len(b); n++ {
		if err := Split(append(append([]byte{}, a...), b[:n]...), func([]byte) error { return nil }); !errors.Is(err, ErrTruncated) {
			t.Fatalf("trailing %d bytes: %v, want ErrTruncated", n, err)
		}
	}
	stop := errors.New("stop")
	if err := Split(records, func([]byte) error { return stop }); err != stop {
		t.Fatalf("fn error = %v", err)
	}
	for _, magic := range []int8{0, 1} {
		legacy := legacyMessageSet(magic)
		calls := 0
		err := Split(legacy, func([]byte) error { calls++; return nil })
		if !errors.Is(err, ErrLegacyMagic) || calls != 0 {
			t.Fatalf("legacy v%d: %v after %d calls, want ErrLegacyMagic", magic, err, calls)
		}
		if _, err := Validate(legacy); !errors.Is(err, ErrLegacyMagic) {
			t.Fatalf("Validate legacy v%d: %v", magic, err)
		}
		// A legacy set after a good batch: the good one is delivered first.
		calls = 0
		err = Split(append(append([]byte{}, a...), legacy...), func([]byte) error { calls++; return nil })
		if !errors.Is(err, ErrLegacyMagic) || calls != 1 {
			t.Fatalf("batch+legacy v%d: %v after %d calls", magic, err, calls)
		}
	}
}

// legacyMessageSet encodes a two-message v0 or v1 message set with kmsg.
func legacyMessageSet(magic int8) []byte {
	var out []byte
	for i := range 2 {
		if magic == 0 {
			m := kmsg.MessageV0{Offset: int64(i), Magic: 0, Value: []byte("legacy")}
			m.MessageSize = int32(len(m.AppendTo(nil)) - 12)
			out = m.AppendTo(out)
		} else {
			m := kmsg.MessageV1{Offset: int64(i), Magic: 1, Timestamp: 1e12, Value: []byte("legacy")}
			m.MessageSize = int32(len(m.AppendTo(nil)) - 12)
			out = m.AppendTo(out)
		}
	}
	return out
}

func TestVarlongAtMatchesBinaryVarint(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	check := func(p []byte) {
		t.Helper()
		want, wn := binary.Varint(p)
		got, gi := varlongAt(p, 0)
		if wn <= 0 {
			if gi != -1 {
				t.Fatalf("% x: binary.Varint fails (%d), varlongAt gave %d at %d", p, wn, got, gi)
			}
			return
		}
		if got != want || gi != wn {
			t.Fatalf("% x: varlongAt = %d,%d; binary.Varint = %d,%d", p, got, gi, want, wn)
		}
	}
	for _, v := range []int64{0, 1, -1, 63, -64, 64, -65, 8191, -8192, 8192, 1 << 31, -1 << 31, 1<<63 - 1, -1 << 63} {
		p := binary.AppendVarint(nil, v)
		check(p)
		check(append(p, 0xff)) // trailing bytes are not consumed
		for n := range len(p) {
			check(p[:n]) // truncated
		}
	}
	for range 200000 {
		p := make([]byte, rng.IntN(12))
		for i := range p {
			p[i] = byte(rng.Uint32())
			if rng.IntN(3) == 0 {
				p[i] |= 0x80
			}
		}
		check(p)
	}
	check(bytes.Repeat([]byte{0x80}, 10))
	check(append(bytes.Repeat([]byte{0xff}, 9), 0x01))
	check(append(bytes.Repeat([]byte{0xff}, 9), 0x02))
}

func TestConcurrentCodecs(t *testing.T) {
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			errs <- func() error {
				rng := rand.New(rand.NewPCG(uint64(g), 99))
				for i := range 20 {
					codec := allCodecs[(g+i)%len(allCodecs)]
					recs := genRecords(rng, 50, 1e12)
					bld := NewBuilder(BuildOptions{Codec: codec, ProducerID: -1})
					for _, r := range recs {
						bld.Add(r.ts, r.key, r.value, r.headers)
					}
					b, err := bld.Build()
					if err != nil {
						return err
					}
					if _, err := Validate(b); err != nil {
						return err
					}
					n := 0
					if err := Records(b, func(r *Record) error {
						if !equalNullable(r.Value, recs[n].value) {
							return fmt.Errorf("%v: record %d value differs", codec, n)
						}
						n++
						return nil
					}); err != nil {
						return err
					}
				}
				return nil
			}()
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
