package cloud

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// scanTrace runs testScanToSink and renders everything observable: each record with all its
// fields (nulls included), the corruptions reported, stop and the error.
func scanTrace(opts QueryOptions, data []byte, idx offsetIndex, base, last int64) string {
	return scanTraceChunked(opts, data, idx, base, last, 0)
}

// scanTraceChunked is scanTrace reading data in chunks of chunkSize bytes as the ranged GETs
// deliver them (0: from a bytes.Reader).
func scanTraceChunked(opts QueryOptions, data []byte, idx offsetIndex, base, last int64, chunkSize int) string {
	var b strings.Builder
	sink := SinkFunc(func(r *Record) error {
		fmt.Fprintf(&b, "%s-%d@%d t=%d k=%q/%v v=%q/%v h=[", r.Topic, r.Partition, r.Offset, r.Timestamp,
			r.Key, r.Key == nil, r.Value, r.Value == nil)
		for _, h := range r.Headers {
			fmt.Fprintf(&b, "%s=%q/%v ", h.Key, h.Value, h.Value == nil)
		}
		b.WriteString("]\n")
		return nil
	})
	var corrupt []*CorruptError
	var stop bool
	var err error
	if chunkSize > 0 {
		corrupt, stop, err = chunkedScanPoisoned(opts, data, idx, base, last, chunkSize, sink, func(format string, a ...any) {
			fmt.Fprintf(&b, "chunks: "+format+"\n", a...)
		})
	} else {
		corrupt, stop, err = testScanToSink(opts, data, idx, base, last, sink)
	}
	for _, ce := range corrupt {
		fmt.Fprintf(&b, "corrupt: %v\n", ce)
	}
	fmt.Fprintf(&b, "stop=%v err=%v\n", stop, err)
	return b.String()
}

// withAsync sends every batch, however small, through the decoding goroutines.
func withAsync(t testing.TB) {
	old := asyncDecodeMin
	asyncDecodeMin = 0
	t.Cleanup(func() { asyncDecodeMin = old })
}

// richSegment is a segment of n batches of varied codecs, sizes, keys, values and headers
// (nulls, empties, binary, repeated header keys) from offset base.
func richSegment(t testing.TB, base int64, n int) (data []byte, idx offsetIndex, last int64) {
	t.Helper()
	off := base
	for b := range n {
		bl := batch.NewBuilder(batch.BuildOptions{Codec: batch.Codec(b % 5), ProducerID: -1, BaseOffset: off})
		for i := range 1 + (b*7)%40 {
			var key, value []byte
			switch i % 4 {
			case 0:
				key = fmt.Appendf(nil, "k%d", off%5)
			case 1:
				key = []byte{}
			case 2:
				key = []byte{0xff, byte(off)}
			}
			if i%6 != 5 {
				value = bytes.Repeat(fmt.Appendf(nil, "v%d;", off), 1+i%9)
			}
			var hs []batch.RecordHeader
			for j := range i % 3 {
				hs = append(hs, batch.RecordHeader{Key: "h", Value: fmt.Appendf(nil, "%d", j)}, batch.RecordHeader{Key: "n"})
			}
			bl.Add(5000+(off-base)*3-int64(i%4)*20, key, value, hs)
			off++
		}
		out, err := bl.Build()
		if err != nil {
			t.Fatal(err)
		}
		if b%3 == 2 {
			idx = append(idx, offsetEntry{rel: uint32(off - int64(bl.Len()) - base), pos: uint32(len(data))})
		}
		data = append(data, out...)
	}
	return data, idx, off - 1
}

// TestParallelDecodeMatchesSerial: decoding batches in goroutines (every batch, Decoders 4)
// gives exactly what the serial decoder (Decoders 1) gives — records with every field,
// corruptions, stop and errors — for filters, limits and damaged segments.
func TestParallelDecodeMatchesSerial(t *testing.T) {
	withAsync(t)
	data, idx, last := richSegment(t, 1000, 60)
	var bounds []int64
	batch.Split(data, func(b []byte) error { bounds = append(bounds, int64(len(b))); return nil })
	pos := func(i int) int64 {
		var p int64
		for _, n := range bounds[:i] {
			p += n
		}
		return p
	}
	flipped := bytes.Clone(data)
	flipped[pos(7)+batch.HeaderSize+5] ^= 1
	broken := bytes.Clone(data)
	copy(broken[pos(11)+8:], []byte{0x7f, 0, 0, 0})
	moved := bytes.Clone(data)
	batch.SetBaseOffset(moved[pos(20):], 1003)
	segments := map[string][]byte{"good": data, "flipped": flipped, "broken length": broken, "moved": moved,
		"truncated": data[:pos(30)+40]}
	optionSets := map[string]QueryOptions{
		"all":      {ToOffset: NoEnd},
		"offsets":  {FromOffset: 1100, ToOffset: 1400},
		"times":    {ToOffset: NoEnd, Since: time.UnixMilli(5300), Until: time.UnixMilli(6000)},
		"lateness": {ToOffset: NoEnd, Until: time.UnixMilli(6000), MaxLateness: 70 * time.Millisecond},
		"key":      {ToOffset: NoEnd, Key: []byte("k3")},
		"empty":    {ToOffset: NoEnd, Key: []byte{}},
		"limit":    {FromOffset: 1050, ToOffset: NoEnd, Limit: 77},
	}
	for sname, seg := range segments {
		for oname, opts := range optionSets {
			for _, skip := range []bool{false, true} {
				opts.SkipCorrupt = skip
				opts.Decoders = 1
				serial := scanTrace(opts, seg, idx, 1000, last)
				opts.Decoders = 4
				parallel := scanTrace(opts, seg, idx, 1000, last)
				if serial != parallel {
					t.Errorf("%s, %s, skip %v: parallel decoding differs:\n--- serial\n%s\n--- parallel\n%s", sname, oname, skip, serial, parallel)
				}
				// From chunks as the ranged GETs deliver them: batches decoded in the chunks'
				// buffers, and batches that span two chunks copied.
				for _, chunkSize := range []int{100, 1000, 1 << 20} {
					for _, decoders := range []int{1, 4} {
						opts.Decoders = decoders
						if chunked := scanTraceChunked(opts, seg, idx, 1000, last, chunkSize); chunked != serial {
							t.Errorf("%s, %s, skip %v, chunks of %d, %d decoders: differs:\n--- serial\n%s\n--- chunked\n%s",
								sname, oname, skip, chunkSize, decoders, serial, chunked)
						}
					}
				}
				if strings.Count(serial, "\n") < 2 && sname == "good" && oname != "empty" {
					t.Errorf("%s, %s: nothing decoded: %s", sname, oname, serial)
				}
			}
		}
	}
}

// jsonlTrace scans data into JSON lines with a writer of NewWriter as the sink (the decoders
// encode the lines) or, with perRecord, behind a SinkFunc (the writer encodes each record),
// and renders the output, the corruptions, stop and the error.
func jsonlTrace(opts QueryOptions, data []byte, idx offsetIndex, base, last int64, chunkSize int, perRecord bool) string {
	var out bytes.Buffer
	w, err := NewWriter(&out, FormatJSONL)
	if err != nil {
		return err.Error()
	}
	var sink Sink = w
	if perRecord {
		sink = SinkFunc(w.WriteRecord)
	}
	corrupt, stop, err := chunkedScan(opts, data, idx, base, last, chunkSize, sink)
	if ferr := w.Flush(); ferr != nil {
		return ferr.Error()
	}
	for _, ce := range corrupt {
		fmt.Fprintf(&out, "corrupt: %v\n", ce)
	}
	fmt.Fprintf(&out, "stop=%v err=%v\n", stop, err)
	return out.String()
}

// TestJSONLinesFromDecoders: JSON lines encoded by the decode goroutines are byte for byte
// what the writer encodes record by record, with filters, limits and damaged segments.
func TestJSONLinesFromDecoders(t *testing.T) {
	withAsync(t)
	data, idx, last := richSegment(t, 1000, 60)
	flipped := bytes.Clone(data)
	flipped[len(data)/3] ^= 1
	segments := map[string][]byte{"good": data, "flipped": flipped, "truncated": data[:len(data)*2/3]}
	optionSets := map[string]QueryOptions{
		"all":     {ToOffset: NoEnd},
		"offsets": {FromOffset: 1100, ToOffset: 1400},
		"times":   {ToOffset: NoEnd, Since: time.UnixMilli(5300), Until: time.UnixMilli(6000)},
		"key":     {ToOffset: NoEnd, Key: []byte("k3")},
		"limit":   {FromOffset: 1050, ToOffset: NoEnd, Limit: 77},
		"limit1":  {ToOffset: NoEnd, Limit: 1},
	}
	for sname, seg := range segments {
		for oname, opts := range optionSets {
			for _, skip := range []bool{false, true} {
				opts.SkipCorrupt, opts.Decoders = skip, 4
				want := jsonlTrace(opts, seg, idx, 1000, last, 1000, true)
				got := jsonlTrace(opts, seg, idx, 1000, last, 1000, false)
				if got != want {
					t.Errorf("%s, %s, skip %v: differs:\n--- per record\n%s\n--- from decoders\n%s", sname, oname, skip, want, got)
				}
				if sname == "good" && strings.Count(got, "\n") < 2 {
					t.Errorf("%s, %s: nothing written: %s", sname, oname, got)
				}
			}
		}
	}
}

// FuzzParallelDecode: on any bytes, decoding in goroutines gives what decoding serially
// gives, and never panics.
func FuzzParallelDecode(f *testing.F) {
	data, _, _ := richSegment(f, 0, 8)
	f.Add(data, int64(0), int64(1000), false)
	f.Add(data[:len(data)*2/3], int64(5), int64(60), true)
	flipped := bytes.Clone(data)
	flipped[len(data)/2] ^= 0x20
	f.Add(flipped, int64(0), int64(1000), true)
	f.Add([]byte{}, int64(0), int64(1), false)
	f.Fuzz(func(t *testing.T, b []byte, from, to int64, skip bool) {
		if from < 0 || to <= from {
			return
		}
		withAsync(t)
		var idx offsetIndex
		if len(b) > 200 {
			idx = offsetIndex{{rel: 9, pos: 200}}
		}
		opts := QueryOptions{FromOffset: from, ToOffset: to, SkipCorrupt: skip, Decoders: 1}
		serial := scanTrace(opts, b, idx, 0, 200)
		opts.Decoders = 3
		if parallel := scanTrace(opts, b, idx, 0, 200); parallel != serial {
			t.Fatalf("parallel decoding differs:\n--- serial\n%s\n--- parallel\n%s", serial, parallel)
		}
		if chunked := scanTraceChunked(opts, b, idx, 0, 200, 150); chunked != serial {
			t.Fatalf("decoding from chunks differs:\n--- serial\n%s\n--- chunked\n%s", serial, chunked)
		}
		if want, got := jsonlTrace(opts, b, idx, 0, 200, 150, true), jsonlTrace(opts, b, idx, 0, 200, 150, false); got != want {
			t.Fatalf("JSON lines from the decoders differ:\n--- per record\n%s\n--- from decoders\n%s", want, got)
		}
	})
}

// BenchmarkDecoders decodes an lz4 segment of 64 KiB batches from memory with a counting
// sink, serially and with GOMAXPROCS decoders: what parallel decoding gains when the CPUs
// are not busy serving the bytes.
func BenchmarkDecoders(b *testing.B) {
	var data []byte
	off := int64(0)
	for len(data) < 32<<20 {
		bl := batch.NewBuilder(batch.BuildOptions{Codec: batch.CodecLZ4, ProducerID: -1, BaseOffset: off})
		for bl.EstimatedSize() < 128<<10 {
			bl.Add(1767225600000+off, fmt.Appendf(nil, "device-%d", off%500),
				fmt.Appendf(nil, `{"seq":%d,"temp":%.2f,"hum":40,"id":"%016x"}`, off, float64(off%3000)/100, uint64(off)*0x9e3779b97f4a7c15), nil)
			off++
		}
		out, err := bl.Build()
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, out...)
	}
	for _, decoders := range []int{1, 0} {
		name := "serial"
		if decoders == 0 {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			n := 0
			sink := SinkFunc(func(*Record) error { n++; return nil })
			for b.Loop() {
				if _, _, err := testScanToSink(QueryOptions{ToOffset: NoEnd, Decoders: decoders}, data, nil, 0, off-1, sink); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
