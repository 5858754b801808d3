package cloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// testSegment builds a segment of nBatches batches of 5 records each from offset base, one
// codec after another, record i stamped 1000+i*10 ms (every 7th 100 ms late), and the offset
// index entries of every second batch.
func testSegment(t testing.TB, base int64, nBatches int) (data []byte, idx offsetIndex, last int64) {
	t.Helper()
	off := base
	for b := range nBatches {
		bl := batch.NewBuilder(batch.BuildOptions{Codec: batch.Codec(b % 5), ProducerID: -1, BaseOffset: off})
		for range 5 {
			ts := 1000 + (off-base)*10
			if (off-base)%7 == 6 {
				ts -= 100
			}
			bl.Add(ts, fmt.Appendf(nil, "k%d", off%3), fmt.Appendf(nil, "v%d", off), nil)
			off++
		}
		out, err := bl.Build()
		if err != nil {
			t.Fatal(err)
		}
		if b%2 == 1 {
			idx = append(idx, offsetEntry{rel: uint32(off - 5 - base), pos: uint32(len(data))})
		}
		data = append(data, out...)
	}
	return data, idx, off - 1
}

// testScan runs a scanner over data as the whole range of a segment and returns the offsets
// it writes, the corruptions it skips, and its error.
func testScan(opts QueryOptions, data []byte, idx offsetIndex, base, last int64) (offsets []int64, corrupt []*CorruptError, stop bool, err error) {
	sink := SinkFunc(func(r *Record) error {
		offsets = append(offsets, r.Offset)
		return nil
	})
	corrupt, stop, err = testScanToSink(opts, data, idx, base, last, sink)
	return offsets, corrupt, stop, err
}

// testScanTo is testScan writing to sink.
func testScanTo(opts QueryOptions, data []byte, idx offsetIndex, base, last int64, sink Sink) ([]int64, []*CorruptError, bool, error) {
	corrupt, stop, err := testScanToSink(opts, data, idx, base, last, sink)
	return nil, corrupt, stop, err
}

func testScanToSink(opts QueryOptions, data []byte, idx offsetIndex, base, last int64, sink Sink) (corrupt []*CorruptError, stop bool, err error) {
	opts.Topic = "t"
	opts.OnCorrupt = func(ce *CorruptError) { corrupt = append(corrupt, ce) }
	q, err := (&Archive{}).NewQuery(opts)
	if err != nil {
		return nil, false, err
	}
	meta := manifest.SegmentMeta{BaseOffset: base, LastOffset: last, Size: int64(len(data))}
	p := &partPlan{m: &manifest.Manifest{Topic: "t"}, from: opts.FromOffset}
	job := &segJob{part: p, seg: segPlan{meta: meta, runMax: -1}, url: "mem://segment", end: int64(len(data)), oidx: idx, oidxTried: true}
	sc := q.newScanner(context.Background(), job, sink)
	stop, err = sc.run(bytes.NewReader(data))
	return corrupt, stop, err
}

func TestScanFilters(t *testing.T) {
	data, idx, last := testSegment(t, 100, 10)
	for name, tc := range map[string]struct {
		opts QueryOptions
		keep func(off int64) bool
		stop bool
	}{
		"all":     {QueryOptions{ToOffset: NoEnd}, func(int64) bool { return true }, false},
		"offsets": {QueryOptions{FromOffset: 107, ToOffset: 121}, func(o int64) bool { return o >= 107 && o < 121 }, true},
		"since": {QueryOptions{ToOffset: NoEnd, Since: time.UnixMilli(1200)},
			func(o int64) bool { return tsOf(o-100) >= 1200 }, false},
		"until": {QueryOptions{ToOffset: NoEnd, Until: time.UnixMilli(1200)},
			func(o int64) bool { return tsOf(o-100) < 1200 }, false},
		"until with lateness": {QueryOptions{ToOffset: NoEnd, Until: time.UnixMilli(1200), MaxLateness: 100 * time.Millisecond},
			func(o int64) bool { return tsOf(o-100) < 1200 }, true},
		"key": {QueryOptions{ToOffset: NoEnd, Key: []byte("k1")}, func(o int64) bool { return o%3 == 1 }, false},
		"limit": {QueryOptions{ToOffset: NoEnd, Limit: 3, FromOffset: 110},
			func(o int64) bool { return o >= 110 && o < 113 }, false},
	} {
		got, corrupt, stop, err := testScan(tc.opts, data, idx, 100, last)
		if errors.Is(err, errStopQuery) {
			err = nil
		}
		var want []int64
		for o := int64(100); o <= last; o++ {
			if tc.keep(o) {
				want = append(want, o)
			}
		}
		if err != nil || len(corrupt) > 0 || fmt.Sprint(got) != fmt.Sprint(want) || stop != tc.stop {
			t.Errorf("%s: %v (stop %v) %v %v; want %v (stop %v)", name, got, stop, corrupt, err, want, tc.stop)
		}
	}
}

// tsOf is the timestamp testSegment gives the record at relative offset rel.
func tsOf(rel int64) int64 {
	if rel%7 == 6 {
		return 1000 + rel*10 - 100
	}
	return 1000 + rel*10
}

func TestScanCorruption(t *testing.T) {
	data, idx, last := testSegment(t, 0, 10)
	var bounds []int64
	batch.Split(data, func(b []byte) error { bounds = append(bounds, int64(len(b))); return nil })
	pos := func(i int) int64 {
		var p int64
		for _, n := range bounds[:i] {
			p += n
		}
		return p
	}
	all := QueryOptions{ToOffset: NoEnd}
	skip := QueryOptions{ToOffset: NoEnd, SkipCorrupt: true}

	// A flipped byte in batch 2: an error naming it, or the batch skipped.
	flipped := bytes.Clone(data)
	flipped[pos(2)+batch.HeaderSize+2] ^= 1
	_, _, _, err := testScan(all, flipped, idx, 0, last)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Pos != pos(2) || ce.Offset != 10 || ce.After != 9 || ce.Key != "mem://segment" {
		t.Fatalf("flipped byte: %v %+v", err, ce)
	}
	got, corrupt, _, err := testScan(skip, flipped, idx, 0, last)
	if err != nil || len(corrupt) != 1 || len(got) != 45 || got[9] != 9 || got[10] != 15 {
		t.Fatalf("flipped byte skipped: %v %v %v", got, corrupt, err)
	}

	// A broken length in batch 2: decoding resumes at the next indexed batch (3).
	broken := bytes.Clone(data)
	copy(broken[pos(2)+8:], []byte{0, 0, 0, 1})
	got, corrupt, _, err = testScan(skip, broken, idx, 0, last)
	if err != nil || len(corrupt) != 1 || len(got) != 45 || got[10] != 15 {
		t.Fatalf("broken length: %v %v %v", got, corrupt, err)
	}
	// Without an index, the rest of the segment is lost.
	got, corrupt, _, err = testScan(skip, broken, nil, 0, last)
	if err != nil || len(corrupt) != 1 || len(got) != 10 {
		t.Fatalf("broken length, no index: %v %v %v", got, corrupt, err)
	}

	// A truncated segment: the records before the cut, then a report.
	got, corrupt, _, err = testScan(skip, data[:pos(4)+20], idx, 0, last)
	if err != nil || len(corrupt) != 1 || len(got) != 20 {
		t.Fatalf("truncated: %v %v %v", got, corrupt, err)
	}

	// A batch whose base offset went back (outside the CRC).
	moved := bytes.Clone(data)
	batch.SetBaseOffset(moved[pos(5):], 3)
	got, corrupt, _, err = testScan(skip, moved, idx, 0, last)
	if err != nil || len(corrupt) != 1 || len(got) != 45 {
		t.Fatalf("offset out of place: %v %v %v", got, corrupt, err)
	}
}

// FuzzScanSegment: the segment decoder never panics on any bytes; without SkipCorrupt it
// fails only with a *CorruptError, with it never; the offsets it writes rise strictly and lie
// within the segment and the query's range.
func FuzzScanSegment(f *testing.F) {
	data, _, _ := testSegment(f, 0, 6)
	f.Add(data, int64(0), int64(1000))
	f.Add(data[:len(data)/2], int64(3), int64(20))
	flipped := bytes.Clone(data)
	flipped[70] ^= 0x10
	f.Add(flipped, int64(0), int64(30))
	f.Add([]byte{}, int64(0), int64(1))
	f.Fuzz(func(t *testing.T, b []byte, from, to int64) {
		if from < 0 || to <= from {
			return
		}
		var idx offsetIndex
		if len(b) > 100 {
			idx = offsetIndex{{rel: 5, pos: 100}}
		}
		checkOffsets := func(got []int64) {
			for i, o := range got {
				if o < from || o >= to || o > 29 || i > 0 && o <= got[i-1] {
					t.Fatalf("offsets %v", got)
				}
			}
		}
		opts := QueryOptions{FromOffset: from, ToOffset: to}
		got, _, _, err := testScan(opts, b, idx, 0, 29)
		var ce *CorruptError
		if err != nil && !errors.As(err, &ce) && !errors.Is(err, errStopQuery) {
			t.Fatalf("error that is not a CorruptError: %v", err)
		}
		checkOffsets(got)
		opts.SkipCorrupt = true
		got, _, _, err = testScan(opts, b, idx, 0, 29)
		if err != nil {
			t.Fatalf("SkipCorrupt failed: %v", err)
		}
		checkOffsets(got)
	})
}

// BenchmarkScanJSONL measures decoding a segment and writing JSON lines, per codec (bytes are
// the segment's, as fetched).
func BenchmarkScanJSONL(b *testing.B) {
	for _, codec := range []batch.Codec{batch.CodecNone, batch.CodecLZ4, batch.CodecZstd} {
		var data []byte
		off := int64(0)
		for range 200 {
			bl := batch.NewBuilder(batch.BuildOptions{Codec: codec, ProducerID: -1, BaseOffset: off})
			for range 100 {
				bl.Add(1767225600000+off, fmt.Appendf(nil, "device-%d", off%50),
					fmt.Appendf(nil, `{"seq":%d,"temp":21.5,"hum":40,"note":"some text to pad the value"}`, off), nil)
				off++
			}
			out, err := bl.Build()
			if err != nil {
				b.Fatal(err)
			}
			data = append(data, out...)
		}
		b.Run(codec.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				w, err := NewWriter(io.Discard, FormatJSONL)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, _, err := testScanTo(QueryOptions{ToOffset: NoEnd}, data, nil, 0, off-1, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
