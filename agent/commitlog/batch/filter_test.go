package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// filterCase is one keep rule applied to a batch of n records in the round
// trip tests; keep gets the record's index (its offset delta) and the record.
type filterCase struct {
	name string
	keep func(i int, r *Record) bool
}

var filterCases = []filterCase{
	{"keep all", func(int, *Record) bool { return true }},
	{"keep none", func(int, *Record) bool { return false }},
	{"keep odd offsets", func(_ int, r *Record) bool { return r.Offset%2 == 1 }},
	{"drop last", func(i int, _ *Record) bool { return i != filterN-1 }},
	{"drop first", func(i int, _ *Record) bool { return i != 0 }},
	{"keep only last", func(i int, _ *Record) bool { return i == filterN-1 }},
	{"drop tombstones", func(_ int, r *Record) bool { return r.Value != nil }},
	{"keep only tombstones", func(_ int, r *Record) bool { return r.Value == nil }},
}

// filterN is the number of records in the round trip batches.
const filterN = 23

// headerWithout returns h with the fields Filter rewrites zeroed.
func headerWithout(h Header) Header {
	h.Length, h.CRC, h.NumRecords = 0, 0, 0
	return h
}

// stampedBatch builds recs and stamps a base offset and leader epoch, as the log does.
func stampedBatch(t testing.TB, opts BuildOptions, recs []testRecord) []byte {
	t.Helper()
	b := build(t, opts, recs)
	SetBaseOffset(b, 1000)
	SetPartitionLeaderEpoch(b, 3)
	return b
}

func TestFilterRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, codec := range allCodecs {
		for _, lat := range []bool{false, true} {
			recs := genRecords(rng, filterN, 1e12)
			b := stampedBatch(t, BuildOptions{Codec: codec, ProducerID: 9, ProducerEpoch: 4, BaseSequence: 70, LogAppendTime: lat}, recs)
			orig := bytes.Clone(b)
			h, err := Validate(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, fc := range filterCases {
				t.Run(fmt.Sprintf("%v/lat=%v/%s", codec, lat, fc.name), func(t *testing.T) {
					checkFilter(t, h, b, recs, fc)
					if !bytes.Equal(b, orig) {
						t.Fatal("Filter modified its input")
					}
				})
			}
		}
	}
}

// checkFilter filters b (built from recs, with header h) with fc and checks
// the result end to end.
func checkFilter(t *testing.T, h Header, b []byte, recs []testRecord, fc filterCase) {
	t.Helper()
	all := collect(t, b)
	prefix := []byte("prefix")
	var want []testRecord
	var wantOffsets []int64
	i := 0
	out, kept, err := Filter(bytes.Clone(prefix), b, func(r *Record) bool {
		// keep sees the record exactly as Records hands it out.
		g := &all[i]
		if r.Offset != g.Offset || r.Timestamp != g.Timestamp || r.OffsetDelta != int32(i) ||
			!equalNullable(r.Key, g.Key) || !equalNullable(r.Value, g.Value) || len(r.Headers) != len(g.Headers) {
			t.Fatalf("keep got record %d as %+v, Records gives %+v", i, *r, g.Record)
		}
		for j := range g.Headers {
			if r.Headers[j].Key != g.Headers[j].Key || !equalNullable(r.Headers[j].Value, g.Headers[j].Value) {
				t.Fatalf("keep got record %d header %d as %+v, want %+v", i, j, r.Headers[j], g.Headers[j])
			}
		}
		ok := fc.keep(i, r)
		if ok {
			want = append(want, recs[i])
			wantOffsets = append(wantOffsets, r.Offset)
		}
		i++
		return ok
	})
	if err != nil {
		t.Fatalf("Filter: %v", err)
	}
	if i != len(recs) {
		t.Fatalf("keep called %d times, want %d", i, len(recs))
	}
	if kept != len(want) {
		t.Fatalf("kept %d, keep accepted %d", kept, len(want))
	}
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("dst prefix lost: %q", out[:min(len(out), len(prefix))])
	}
	nb := out[len(prefix):]
	if kept == len(recs) && !bytes.Equal(nb, b) {
		t.Fatal("keeping every record did not return the batch unchanged")
	}
	nh, err := Validate(nb)
	if err != nil {
		t.Fatalf("Validate(filtered): %v", err)
	}
	if headerWithout(nh) != headerWithout(h) {
		t.Fatalf("header changed:\n got %+v\nwant %+v", nh, h)
	}
	if nh.NumRecords != int32(kept) || nh.CRC != CRC(nb) || nh.Size() != len(nb) {
		t.Fatalf("numRecords %d (kept %d), crc %#x (computed %#x), size %d of %d",
			nh.NumRecords, kept, nh.CRC, CRC(nb), nh.Size(), len(nb))
	}
	if kept == 0 && len(nb) != HeaderSize {
		t.Fatalf("empty batch of %d bytes, want header only (%d)", len(nb), HeaderSize)
	}
	got := collect(t, nb)
	if len(got) != len(want) {
		t.Fatalf("Records gave %d records, want %d", len(got), len(want))
	}
	for k := range got {
		g, w := &got[k], &want[k]
		wantTS := w.ts
		if h.LogAppendTime() {
			wantTS = h.MaxTimestamp
		}
		if g.Offset != wantOffsets[k] || g.OffsetDelta != int32(wantOffsets[k]-h.BaseOffset) || g.Timestamp != wantTS {
			t.Fatalf("kept record %d: offset %d ts %d, want %d %d", k, g.Offset, g.Timestamp, wantOffsets[k], wantTS)
		}
		if !equalNullable(g.Key, w.key) || !equalNullable(g.Value, w.value) || len(g.Headers) != len(w.headers) {
			t.Fatalf("kept record %d: key %q value %q headers %v, want %q %q %v", k, g.Key, g.Value, g.Headers, w.key, w.value, w.headers)
		}
		for j := range w.headers {
			if g.Headers[j].Key != w.headers[j].Key || !equalNullable(g.Headers[j].Value, w.headers[j].Value) {
				t.Fatalf("kept record %d header %d: %+v, want %+v", k, j, g.Headers[j], w.headers[j])
			}
		}
	}
}

func TestFilterDropLastKeepsLastOffsetDelta(t *testing.T) {
	for _, codec := range allCodecs {
		b := stampedBatch(t, BuildOptions{Codec: codec, ProducerID: 1, BaseSequence: 10}, genRecords(rand.New(rand.NewPCG(1, 2)), 5, 1e12))
		out, kept, err := Filter(nil, b, func(r *Record) bool { return r.OffsetDelta < 3 })
		if err != nil || kept != 3 {
			t.Fatalf("%v: Filter kept %d, %v", codec, kept, err)
		}
		h, err := Validate(out)
		if err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		if h.LastOffsetDelta != 4 || h.LastOffset() != 1004 || h.BaseSequence != 10 || h.NumRecords != 3 || h.Codec() != codec {
			t.Fatalf("%v: header %+v", codec, h)
		}
		var offs []int64
		if err := Records(out, func(r *Record) error { offs = append(offs, r.Offset); return nil }); err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		if fmt.Sprint(offs) != "[1000 1001 1002]" {
			t.Fatalf("%v: offsets %v", codec, offs)
		}
		// Filtering the filtered batch again keeps working on the gapped deltas.
		again, kept, err := Filter(nil, out, func(r *Record) bool { return r.Offset == 1001 })
		if err != nil || kept != 1 {
			t.Fatalf("%v: second Filter kept %d, %v", codec, kept, err)
		}
		h2, err := Validate(again)
		if err != nil || h2.LastOffsetDelta != 4 || h2.NumRecords != 1 {
			t.Fatalf("%v: second Filter header %+v, %v", codec, h2, err)
		}
		got := collect(t, again)
		if len(got) != 1 || got[0].Offset != 1001 {
			t.Fatalf("%v: second Filter records %+v", codec, got)
		}
	}
}

func TestFilterEmptyBatch(t *testing.T) {
	for _, codec := range allCodecs {
		for _, attrs := range []int16{0, attrTransactional, attrTransactional | attrControl, attrLogAppendTime} {
			recs := []byte{}
			for d := range int64(3) {
				recs = append(recs, rawRecord(d, "v")...)
			}
			area := recs
			if codec != CodecNone {
				var err error
				if area, err = Compress(codec, recs, nil); err != nil {
					t.Fatal(err)
				}
			}
			b := rawBatch(attrs|int16(codec), 2, 3, area)
			out, kept, err := Filter(nil, b, func(*Record) bool { return false })
			if err != nil || kept != 0 {
				t.Fatalf("%v attrs %#x: Filter kept %d, %v", codec, attrs, kept, err)
			}
			if len(out) != HeaderSize || !bytes.Equal(out[AttributesPos:NumRecordsPos], b[AttributesPos:NumRecordsPos]) ||
				!bytes.Equal(out[:CRCPos], append(binary.BigEndian.AppendUint64(nil, 100), 0, 0, 0, HeaderSize-12, 0, 0, 0, 7, 2)) {
				t.Fatalf("%v attrs %#x: empty batch % x", codec, attrs, out)
			}
			h, err := Validate(out)
			if err != nil {
				t.Fatalf("%v attrs %#x: Validate(empty): %v", codec, attrs, err)
			}
			if h.NumRecords != 0 || h.LastOffsetDelta != 2 || h.Codec() != codec || h.Attributes != attrs|int16(codec) {
				t.Fatalf("%v attrs %#x: header %+v", codec, attrs, h)
			}
			calls := 0
			if err := Records(out, func(*Record) error { calls++; return nil }); err != nil || calls != 0 {
				t.Fatalf("%v attrs %#x: Records on the empty batch: %d calls, %v", codec, attrs, calls, err)
			}
			// An empty batch filters to itself without keep being called.
			again, kept, err := Filter(nil, out, func(*Record) bool { t.Fatal("keep called on an empty batch"); return false })
			if err != nil || kept != 0 || !bytes.Equal(again, out) {
				t.Fatalf("%v attrs %#x: Filter(empty) = %d, %v", codec, attrs, kept, err)
			}
		}
	}
	// With no records, only an empty area is valid outside control batches.
	for _, codec := range allCodecs[1:] {
		area, err := Compress(codec, rawRecord(0, "x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		b := rawBatch(int16(codec), 0, 0, area)
		if _, err := Validate(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%v: no records with a records area: Validate = %v, want ErrCorrupt", codec, err)
		}
		if err := Records(b, func(*Record) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%v: no records with a records area: Records = %v, want ErrCorrupt", codec, err)
		}
		if _, _, err := Filter(nil, b, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%v: no records with a records area: Filter = %v, want ErrCorrupt", codec, err)
		}
	}
	if _, err := Validate(rawBatch(0, -1, 0, nil)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("empty batch with last offset delta -1: %v, want ErrCorrupt", err)
	}
}

func TestFilterControlAndTransactionalBits(t *testing.T) {
	ctrl := rawRecord(0, "\x00\x00\x00\x00\x00\x00")
	b := rawBatch(attrControl|attrTransactional, 1, 2, append(ctrl, rawRecord(1, "y")...))
	out, kept, err := Filter(nil, b, func(r *Record) bool { return r.OffsetDelta == 0 })
	if err != nil || kept != 1 {
		t.Fatalf("Filter kept %d, %v", kept, err)
	}
	h, err := Validate(out)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Control() || !h.Transactional() || h.LastOffsetDelta != 1 || h.NumRecords != 1 || h.BaseOffset != 100 || h.PartitionLeaderEpoch != 7 {
		t.Fatalf("header %+v", h)
	}
	if want := rawBatch(attrControl|attrTransactional, 1, 1, ctrl); !bytes.Equal(out, want) {
		t.Fatalf("filtered control batch\n% x\nwant\n% x", out, want)
	}
}

func TestFilterNilKeepKeepsEverything(t *testing.T) {
	b := build(t, BuildOptions{Codec: CodecLZ4, ProducerID: -1}, genRecords(rand.New(rand.NewPCG(3, 4)), 7, 1e12))
	out, kept, err := Filter(nil, b, nil)
	if err != nil || kept != 7 || !bytes.Equal(out, b) {
		t.Fatalf("Filter(nil keep) kept %d, equal %v, %v", kept, bytes.Equal(out, b), err)
	}
}

func TestFilterRejectsBadInput(t *testing.T) {
	good := build(t, BuildOptions{ProducerID: -1}, genRecords(rand.New(rand.NewPCG(5, 6)), 6, 1e12))
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	garbage := rawBatch(int16(CodecGzip), 1, 2, []byte("not gzip at all"))
	wrongCount := bytes.Clone(good)
	binary.BigEndian.PutUint32(wrongCount[NumRecordsPos:], 5)
	lz := build(t, BuildOptions{Codec: CodecLZ4, ProducerID: -1}, genRecords(rand.New(rand.NewPCG(5, 6)), 6, 1e12))
	lzCount := bytes.Clone(lz)
	binary.BigEndian.PutUint32(lzCount[NumRecordsPos:], 7) // only decompression shows it
	// An uncompressed control batch announcing no records but carrying
	// record bytes (found by FuzzFilter): Validate rejects it, so must Filter.
	emptyControl := rawBatch(attrControl, 0, 0, bytes.Repeat([]byte{'0'}, 16))
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad crc", badCRC, ErrCorrupt},
		{"empty control with record bytes", emptyControl, ErrCorrupt},
		{"truncated", good[:len(good)-1], ErrTruncated},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt},
		{"short header", good[:20], ErrTruncated},
		{"legacy", legacyMessageSet(1), ErrLegacyMagic},
		{"garbage gzip", garbage, ErrCorrupt},
		{"wrong count", withCRC(wrongCount), ErrCorrupt},
		{"wrong count lz4", withCRC(lzCount), ErrCorrupt},
	}
	for _, tc := range cases {
		dst := []byte("keep me")
		out, kept, err := Filter(dst, tc.b, func(*Record) bool { return false })
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Filter = %v, want %v", tc.name, err, tc.want)
		}
		if kept != 0 || string(out) != "keep me" {
			t.Errorf("%s: Filter returned %q, kept %d", tc.name, out, kept)
		}
	}
}

func TestFilterAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items, so allocation counts are not meaningful")
	}
	for _, codec := range allCodecs {
		b := benchBatch(t, codec, 64<<10)
		dst := make([]byte, 0, 2*len(b)+4096)
		n := 0
		keep := func(*Record) bool { n++; return n%3 != 0 }
		if _, _, err := Filter(dst, b, keep); err != nil { // warm the pools
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(20, func() {
			if _, _, err := Filter(dst, b, keep); err != nil {
				t.Fatal(err)
			}
		})
		// Nothing per record (~600 of them): a handful per call at most for
		// codec internals; nothing at all for uncompressed batches.
		if limit := map[bool]float64{true: 0, false: 8}[codec == CodecNone]; allocs > limit {
			t.Errorf("%v: Filter allocates %.1f times per batch, limit %.0f", codec, allocs, limit)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			batch := benchBatch(b, codec, 1<<20)
			h, _ := ParseHeader(batch)
			dst := make([]byte, 0, 2*len(batch))
			n := 0
			keep := func(*Record) bool { n++; return n%2 == 0 }
			b.SetBytes(int64(HeaderSize) + int64(h.NumRecords)*100)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Filter(dst, batch, keep); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
