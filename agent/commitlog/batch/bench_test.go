package batch

import (
	"bytes"
	"testing"
)

// benchBatch builds a batch of about size bytes of 100-byte records.
func benchBatch(tb testing.TB, codec Codec, size int) []byte {
	bld := NewBuilder(BuildOptions{Codec: codec, ProducerID: -1})
	key := []byte("sensor-0001")
	value := bytes.Repeat([]byte("t=21.5;h=40"), 8)[:80]
	for bld.EstimatedSize() < size {
		bld.Add(1_700_000_000_000+int64(bld.Len()), key, value, nil)
	}
	b, err := bld.Build()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestHotPathAllocations(t *testing.T) {
	b := benchBatch(t, CodecNone, 64<<10)
	if n := testing.AllocsPerRun(20, func() {
		if _, err := Validate(b); err != nil {
			t.Fatal(err)
		}
		if _, _, err := PeekSize(b); err != nil {
			t.Fatal(err)
		}
		SetBaseOffset(b, 5)
		SetPartitionLeaderEpoch(b, 1)
		if err := Split(b, func([]byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Validate/PeekSize/Set*/Split allocate %.1f times per call", n)
	}
	if raceEnabled {
		t.Log("skipping the pooled-codec allocation counts: the race detector drops sync.Pool items")
		return
	}
	count := 0
	fn := func(*Record) error { count++; return nil }
	for _, codec := range allCodecs {
		cb := benchBatch(t, codec, 64<<10)
		if err := Records(cb, fn); err != nil { // warm the pools
			t.Fatal(err)
		}
		// Records allocates nothing per record: a handful per call at most
		// (pool churn, codec internals), against ~600 records.
		if n := testing.AllocsPerRun(20, func() {
			if err := Records(cb, fn); err != nil {
				t.Fatal(err)
			}
		}); n > 8 {
			t.Errorf("%v: Records allocates %.1f times per batch", codec, n)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	batch := benchBatch(b, CodecNone, 1<<20)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	key := []byte("sensor-0001")
	value := bytes.Repeat([]byte("t=21.5;h=40"), 8)[:80]
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			bld := NewBuilder(BuildOptions{Codec: codec, ProducerID: -1})
			b.SetBytes(1000 * 100)
			b.ReportAllocs()
			for b.Loop() {
				for i := range 1000 {
					bld.Add(1_700_000_000_000+int64(i), key, value, nil)
				}
				if _, err := bld.Build(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRecords(b *testing.B) {
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			batch := benchBatch(b, codec, 1<<20)
			h, _ := ParseHeader(batch)
			b.SetBytes(int64(HeaderSize) + int64(h.NumRecords)*100)
			b.ReportAllocs()
			fn := func(*Record) error { return nil }
			for b.Loop() {
				if err := Records(batch, fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
