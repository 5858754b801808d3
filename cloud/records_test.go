package cloud

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// traceRecordTo renders a record's fields.
func traceRecordTo(b *strings.Builder, offset, ts int64, key, value []byte, hs []batch.RecordHeader) {
	fmt.Fprintf(b, "%d t=%d k=%q/%v v=%q/%v h=[", offset, ts, key, key == nil, value, value == nil)
	for _, h := range hs {
		fmt.Fprintf(b, "%q=%q/%v ", h.Key, h.Value, h.Value == nil)
	}
	b.WriteString("]\n")
}

// readerTrace walks data with recordReader, then batch.RecordsData for the rest, as the
// decoders do, and renders the records and the error.
func readerTrace(h batch.Header, data []byte) string {
	var b strings.Builder
	rr := newRecordReader(&h, data)
	var r rawRecord
	var keys keyCache
	for rr.next(&r) {
		var hs []batch.RecordHeader
		if r.nHdrs > 0 {
			hs = headersOf(nil, data, &r, &keys)
		}
		traceRecordTo(&b, r.offset, r.ts, spanBytes(data, r.key), spanBytes(data, r.value), hs)
	}
	var err error
	if rr.stopped {
		skip := rr.count
		err = batch.RecordsData(h, data, func(r *batch.Record) error {
			if skip > 0 {
				skip--
				return nil
			}
			traceRecordTo(&b, r.Offset, r.Timestamp, r.Key, r.Value, r.Headers)
			return nil
		})
	}
	fmt.Fprintf(&b, "err=%v\n", err)
	return b.String()
}

// recordsDataTrace renders what batch.RecordsData gives.
func recordsDataTrace(h batch.Header, data []byte) string {
	var b strings.Builder
	err := batch.RecordsData(h, data, func(r *batch.Record) error {
		traceRecordTo(&b, r.Offset, r.Timestamp, r.Key, r.Value, r.Headers)
		return nil
	})
	fmt.Fprintf(&b, "err=%v\n", err)
	return b.String()
}

// appendTestRecord encodes a record with the given fields (nil: null), with varints as
// binary.AppendVarint writes them.
func appendTestRecord(b []byte, tsDelta, offsetDelta int64, key, value []byte, hs []batch.RecordHeader) []byte {
	var body []byte
	body = append(body, 0)
	body = binary.AppendVarint(body, tsDelta)
	body = binary.AppendVarint(body, offsetDelta)
	for _, v := range [][]byte{key, value} {
		if v == nil {
			body = binary.AppendVarint(body, -1)
			continue
		}
		body = binary.AppendVarint(body, int64(len(v)))
		body = append(body, v...)
	}
	body = binary.AppendVarint(body, int64(len(hs)))
	for _, h := range hs {
		body = binary.AppendVarint(body, int64(len(h.Key)))
		body = append(body, h.Key...)
		if h.Value == nil {
			body = binary.AppendVarint(body, -1)
			continue
		}
		body = binary.AppendVarint(body, int64(len(h.Value)))
		body = append(body, h.Value...)
	}
	return append(binary.AppendVarint(b, int64(len(body))), body...)
}

// recordAreas are records areas with their headers: ordinary records, nulls, headers,
// long varints (big values, distant timestamps), and damage of every kind.
func recordAreas() (hs []batch.Header, areas [][]byte) {
	add := func(num, last int32, logAppend bool, data []byte) {
		h := batch.Header{BaseOffset: 1000, NumRecords: num, LastOffsetDelta: last, FirstTimestamp: 5000, MaxTimestamp: 9000}
		if logAppend {
			h.Attributes = 0x08
		}
		hs, areas = append(hs, h), append(areas, data)
	}
	var plain []byte
	for i := range 40 {
		var hdrs []batch.RecordHeader
		if i%5 == 3 {
			hdrs = []batch.RecordHeader{{Key: "h", Value: []byte("1")}, {Key: "n"}, {Key: "h", Value: []byte{}}}
		}
		var key []byte
		if i%4 != 0 {
			key = fmt.Appendf(nil, "key-%d", i%3)
		}
		plain = appendTestRecord(plain, int64(i*7-30), int64(i*2), key, bytes.Repeat([]byte("v"), i*9), hdrs)
	}
	add(40, 78, false, plain)
	add(40, 78, true, plain)
	add(40, 100, false, plain)
	add(41, 78, false, plain)
	add(39, 78, false, plain)
	add(40, 77, false, plain)
	add(40, 78, false, plain[:len(plain)-3])
	add(40, 78, false, append(bytes.Clone(plain), 0))
	long := appendTestRecord(nil, 1<<40, 0, bytes.Repeat([]byte("k"), 70), bytes.Repeat([]byte("x"), 9000), nil)
	long = appendTestRecord(long, -(1 << 20), 1, nil, []byte{}, []batch.RecordHeader{{Key: strings.Repeat("h", 200), Value: bytes.Repeat([]byte("y"), 300)}})
	long = appendTestRecord(long, 3, 2, []byte("a"), []byte("b"), nil)
	add(3, 2, false, long)
	add(3, 2, false, long[:len(long)-1])
	for cut := 1; cut < 12; cut++ {
		bad := bytes.Clone(plain[:60])
		bad[cut] ^= 0x80
		add(40, 78, false, bad)
	}
	add(0, 0, false, nil)
	add(1, 0, false, nil)
	add(1, 0, false, []byte{0x02, 0x00})
	add(1, 0, false, []byte{0x0e, 0, 0, 0, 1, 1, 0x02, 0x00, 0xff})
	return hs, areas
}

// TestRecordReader: the fast reader with its fallback gives exactly what batch.RecordsData
// gives, records and errors.
func TestRecordReader(t *testing.T) {
	hs, areas := recordAreas()
	for i, data := range areas {
		got, want := readerTrace(hs[i], data), recordsDataTrace(hs[i], data)
		if got != want {
			t.Errorf("area %d:\n--- recordReader\n%s--- batch.RecordsData\n%s", i, got, want)
		}
	}
	// The ordinary records take the fast path: no fallback.
	rr := newRecordReader(&hs[0], areas[0])
	var r rawRecord
	for rr.next(&r) {
	}
	if rr.stopped || rr.count != 40 {
		t.Errorf("plain records: stopped %v after %d", rr.stopped, rr.count)
	}
}

// FuzzRecordReader: on any records area, the fast reader with its fallback gives what
// batch.RecordsData gives, and never panics.
func FuzzRecordReader(f *testing.F) {
	hs, areas := recordAreas()
	for i, data := range areas {
		h := hs[i]
		f.Add(data, h.NumRecords, h.LastOffsetDelta, h.LogAppendTime())
	}
	f.Fuzz(func(t *testing.T, data []byte, num, last int32, logAppend bool) {
		h := batch.Header{BaseOffset: 77, NumRecords: num, LastOffsetDelta: last, FirstTimestamp: -5, MaxTimestamp: 1 << 40}
		if logAppend {
			h.Attributes = 0x08
		}
		if got, want := readerTrace(h, data), recordsDataTrace(h, data); got != want {
			t.Fatalf("\n--- recordReader\n%s--- batch.RecordsData\n%s", got, want)
		}
	})
}

// TestKeyCache: header keys are interned up to a bound.
func TestKeyCache(t *testing.T) {
	var c keyCache
	for i := range 40 {
		k := fmt.Sprintf("k%d", i%20)
		if got := c.get([]byte(k)); got != k {
			t.Fatalf("got %q, want %q", got, k)
		}
	}
	if len(c.keys) != maxCachedKeys {
		t.Fatalf("%d keys cached", len(c.keys))
	}
}

// TestWriteRecordReaderCorpus writes the seeds of FuzzRecordReader to testdata/fuzz in the go
// test fuzz v1 format, so that plain `go test` replays them. Run with SAMSA_WRITE_CORPUS=1
// after changing recordAreas.
func TestWriteRecordReaderCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_CORPUS") == "" {
		t.Skip("set SAMSA_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzRecordReader")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecordReader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hs, areas := recordAreas()
	for i, data := range areas {
		h := hs[i]
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nint32(%d)\nint32(%d)\nbool(%v)\n", data, h.NumRecords, h.LastOffsetDelta, h.LogAppendTime())
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
