package cloud

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// recompressLZ4 rewrites an uncompressed batch as franz-go writes lz4 batches: one frame with
// the lz4 package's defaults (4 MiB blocks, content checksum).
func recompressLZ4(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if _, err := w.Write(b[batch.HeaderSize:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := append(bytes.Clone(b[:batch.HeaderSize]), buf.Bytes()...)
	binary.BigEndian.PutUint32(out[batch.LengthPos:], uint32(len(out)-12))
	attrs := binary.BigEndian.Uint16(out[batch.AttributesPos:])
	binary.BigEndian.PutUint16(out[batch.AttributesPos:], attrs|uint16(batch.CodecLZ4))
	binary.BigEndian.PutUint32(out[batch.CRCPos:], batch.CRC(out))
	return out
}

// readingsSegment is a segment of about size bytes shaped like benchmarks/cloudscan's: JSON
// readings of ~200 bytes padded with random letters, keyed by device, about 100 KiB of
// records per batch, compressed as franz-go does. It returns the segment and its last offset.
func readingsSegment(t testing.TB, size int, compress bool) ([]byte, int64) {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	rng := rand.New(rand.NewPCG(1, 2))
	pad := make([]byte, 50)
	var data []byte
	off := int64(0)
	for len(data) < size {
		bl := batch.NewBuilder(batch.BuildOptions{Codec: batch.CodecNone, ProducerID: -1, BaseOffset: off})
		for bl.EstimatedSize() < 100<<10 {
			for i := range pad {
				pad[i] = letters[rng.IntN(len(letters))]
			}
			dev := rng.IntN(1000)
			key := fmt.Appendf(nil, "gw-1/device-%04d", dev)
			value := fmt.Appendf(nil, `{"device":"device-%04d","seq":%d,"temp":%.2f,"hum":%.1f,"volt":%.3f,"rssi":%d,"status":"ok","id":"%016x","pad":"%s"}`,
				dev, off, 15+rng.Float64()*20, 20+rng.Float64()*60, 3+rng.Float64()*0.4, -40-rng.IntN(60), rng.Uint64(), pad)
			bl.Add(1767225600000+off/10, key, value, nil)
			off++
		}
		out, err := bl.Build()
		if err != nil {
			t.Fatal(err)
		}
		if compress {
			out = recompressLZ4(t, out)
		}
		data = append(data, out...)
	}
	return data, off - 1
}

// chunkedScan scans data as one segment read in ranged GETs of chunkSize bytes (already
// fetched), as Query.scan hands them to the scanner.
func chunkedScan(opts QueryOptions, data []byte, idx offsetIndex, base, last int64, chunkSize int, sink Sink) (corrupt []*CorruptError, stop bool, err error) {
	return chunkedScanPoisoned(opts, data, idx, base, last, chunkSize, sink, nil)
}

// chunkedScanPoisoned is chunkedScan with a fetcher that takes the chunks back as Query.scan
// does: each chunk holds a copy of its bytes, which is overwritten as soon as the scanner
// releases it (a batch still decoded from it then differs; -race sees the overlap). It
// reports to fail when a chunk is released twice or never.
func chunkedScanPoisoned(opts QueryOptions, data []byte, idx offsetIndex, base, last int64, chunkSize int, sink Sink,
	fail func(string, ...any)) (corrupt []*CorruptError, stop bool, err error) {
	opts.Topic = "t"
	opts.OnCorrupt = func(ce *CorruptError) { corrupt = append(corrupt, ce) }
	q, err := (&Archive{}).NewQuery(opts)
	if err != nil {
		return nil, false, err
	}
	meta := manifest.SegmentMeta{BaseOffset: base, LastOffset: last, Size: int64(len(data))}
	p := &partPlan{m: &manifest.Manifest{Topic: "t"}, from: opts.FromOffset}
	job := &segJob{part: p, seg: segPlan{meta: meta, runMax: -1}, url: "mem://segment", end: int64(len(data)), oidx: idx, oidxTried: true}
	nChunks := len(data)/chunkSize + 1
	out := make(chan *chunk, nChunks)
	done := make(chan struct{})
	close(done)
	var f *fetcher
	poisoned := make(chan struct{})
	if fail != nil {
		f = &fetcher{sem: make(chan struct{}, nChunks), bufs: make(chan []byte, nChunks)}
		go func() {
			defer close(poisoned)
			for b := range f.bufs {
				for i := range b[:cap(b)] {
					b[:cap(b)][i] = 0xa5
				}
			}
		}()
	}
	for off := 0; off < len(data) || off == 0; off += chunkSize {
		n := min(chunkSize, len(data)-off)
		c := &chunk{job: job, off: int64(off), length: int64(n), last: off+n >= len(data), done: done,
			data: data[off : off+n : off+n], total: int64(len(data))}
		if f != nil {
			c.data, c.holdSem, c.f = bytes.Clone(c.data), true, f
			f.sem <- struct{}{}
		}
		out <- c
	}
	close(out)
	ctx := context.Background()
	cs := &chunkStream{ctx: ctx, f: f, out: out}
	sc := q.newScanner(ctx, job, sink)
	stop, err = sc.run(cs.begin(<-out))
	if f != nil {
		if derr := cs.drain(); derr != nil {
			fail("drain: %v", derr)
		}
		close(f.bufs)
		<-poisoned
		if len(f.sem) != 0 {
			fail("%d of %d chunks not released", len(f.sem), nChunks)
		}
	}
	return corrupt, stop, err
}

// BenchmarkScan decodes a segment like benchmarks/cloudscan's (lz4 as franz-go writes it)
// from 4 MiB chunks in memory, with a counting sink and into JSON lines, serially and with
// GOMAXPROCS decoders.
func BenchmarkScan(b *testing.B) {
	data, last := readingsSegment(b, 16<<20, true)
	for _, sinkName := range []string{"count", "jsonl"} {
		for _, decoders := range []int{1, 0} {
			name := sinkName + "/serial"
			if decoders == 0 {
				name = sinkName + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				n := 0
				var sink Sink = SinkFunc(func(*Record) error { n++; return nil })
				cpu0 := processCPU()
				for b.Loop() {
					var w RecordWriter
					if sinkName == "jsonl" {
						w, _ = NewWriter(io.Discard, FormatJSONL)
						sink = w
					}
					if _, _, err := chunkedScan(QueryOptions{ToOffset: NoEnd, Decoders: decoders}, data, nil, 0, last, 4<<20, sink); err != nil {
						b.Fatal(err)
					}
					if w != nil {
						if err := w.Flush(); err != nil {
							b.Fatal(err)
						}
					}
				}
				// CPU time is steadier than wall time on a shared machine.
				b.ReportMetric(float64(len(data))/1e6/((processCPU()-cpu0).Seconds()/float64(b.N)), "MB/cpu-s")
			})
		}
	}
}

// processCPU is the process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
