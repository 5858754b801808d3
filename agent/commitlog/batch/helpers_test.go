package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// allCodecs lists every codec Kafka defines.
var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// testRecord is what a test expects a record to read back as.
type testRecord struct {
	ts      int64
	key     []byte
	value   []byte
	headers []RecordHeader
}

// genRecords makes n records with a mix of null, empty and filled keys,
// values and header values, and timestamps that go back and forth around base.
func genRecords(rng *rand.Rand, n int, base int64) []testRecord {
	out := make([]testRecord, n)
	for i := range out {
		r := &out[i]
		r.ts = base + int64(rng.IntN(2000)) - 500
		switch i % 4 {
		case 0:
			r.key = nil
		case 1:
			r.key = []byte{}
		default:
			r.key = []byte(fmt.Sprintf("key-%d", i))
		}
		switch i % 5 {
		case 0:
			r.value = nil // tombstone
		case 1:
			r.value = []byte{}
		default:
			r.value = bytes.Repeat([]byte{byte(i)}, rng.IntN(300))
		}
		for h := range i % 3 {
			var v []byte
			if h == 1 {
				v = []byte(fmt.Sprintf("hv-%d-%d", i, h))
			}
			r.headers = append(r.headers, RecordHeader{Key: fmt.Sprintf("h%d", h), Value: v})
		}
	}
	return out
}

// build builds recs with opts, failing the test on error.
func build(t testing.TB, opts BuildOptions, recs []testRecord) []byte {
	t.Helper()
	bld := NewBuilder(opts)
	for _, r := range recs {
		bld.Add(r.ts, r.key, r.value, r.headers)
	}
	b, err := bld.Build()
	if err != nil {
		t.Fatalf("Build(%v): %v", opts.Codec, err)
	}
	return b
}

// gotRecord is a deep copy of a Record handed out by Records.
type gotRecord struct {
	Record
}

// collect copies every record of b.
func collect(t testing.TB, b []byte) []gotRecord {
	t.Helper()
	var out []gotRecord
	err := Records(b, func(r *Record) error {
		c := *r
		c.Key = cloneNullable(r.Key)
		c.Value = cloneNullable(r.Value)
		c.Headers = nil
		for _, h := range r.Headers {
			c.Headers = append(c.Headers, RecordHeader{Key: h.Key, Value: cloneNullable(h.Value)})
		}
		out = append(out, gotRecord{c})
		return nil
	})
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	return out
}

// cloneNullable copies p, keeping nil distinct from empty.
func cloneNullable(p []byte) []byte {
	if p == nil {
		return nil
	}
	return append([]byte{}, p...)
}

// equalNullable compares two nullable byte fields, nil != empty.
func equalNullable(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

// compareRecords checks got against want for a batch built at baseOffset.
func compareRecords(t testing.TB, h Header, got []gotRecord, want []testRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := &got[i], &want[i]
		if g.Offset != h.BaseOffset+int64(i) || g.OffsetDelta != int32(i) {
			t.Fatalf("record %d: offset %d delta %d, want %d", i, g.Offset, g.OffsetDelta, h.BaseOffset+int64(i))
		}
		wantTS := w.ts
		if h.LogAppendTime() {
			wantTS = h.MaxTimestamp
		}
		if g.Timestamp != wantTS {
			t.Fatalf("record %d: timestamp %d, want %d", i, g.Timestamp, wantTS)
		}
		if !equalNullable(g.Key, w.key) || !equalNullable(g.Value, w.value) {
			t.Fatalf("record %d: key %q value %q, want %q %q (nil key %v/%v, nil value %v/%v)",
				i, g.Key, g.Value, w.key, w.value, g.Key == nil, w.key == nil, g.Value == nil, w.value == nil)
		}
		if len(g.Headers) != len(w.headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.headers))
		}
		for j := range w.headers {
			if g.Headers[j].Key != w.headers[j].Key || !equalNullable(g.Headers[j].Value, w.headers[j].Value) {
				t.Fatalf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], w.headers[j])
			}
		}
	}
}

// withCRC recomputes and stores b's CRC in place and returns b.
func withCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[CRCPos:], CRC(b))
	return b
}

// rawBatch assembles a batch by hand around an encoded records area, with the
// CRC set, for tests that need fields Builder would never write.
func rawBatch(attrs int16, lastOffsetDelta, numRecords int32, records []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(records))
	be := binary.BigEndian
	be.PutUint64(b[BaseOffsetPos:], 100)
	be.PutUint32(b[LengthPos:], uint32(HeaderSize-12+len(records)))
	be.PutUint32(b[PartitionLeaderEpochPos:], 7)
	b[MagicPos] = 2
	be.PutUint16(b[AttributesPos:], uint16(attrs))
	be.PutUint32(b[LastOffsetDeltaPos:], uint32(lastOffsetDelta))
	be.PutUint64(b[FirstTimestampPos:], 1000)
	be.PutUint64(b[MaxTimestampPos:], 2000)
	be.PutUint64(b[ProducerIDPos:], ^uint64(0))
	be.PutUint16(b[ProducerEpochPos:], 0xffff)
	be.PutUint32(b[BaseSequencePos:], 0xffffffff)
	be.PutUint32(b[NumRecordsPos:], uint32(numRecords))
	return withCRC(append(b, records...))
}

// rawRecord encodes one record with the given offset delta and value.
func rawRecord(offsetDelta int64, value string) []byte {
	var body []byte
	body = append(body, 0)
	body = binary.AppendVarint(body, 0)
	body = binary.AppendVarint(body, offsetDelta)
	body = binary.AppendVarint(body, -1)
	body = binary.AppendVarint(body, int64(len(value)))
	body = append(body, value...)
	body = binary.AppendVarint(body, 0)
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}
