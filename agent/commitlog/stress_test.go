package commitlog

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// TestConcurrentStress runs appends, reads (to the high watermark and to the log end, with and
// without minOne), timestamp lookups, flushes, rolls (tiny segments), config changes, partition
// creation and finally Close, all at once; run it with -race. Every read must return whole,
// valid batches below its limit, starting with the batch holding the offset. After reopening,
// every partition reads back dense.
func TestConcurrentStress(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncInterval} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) { stress(t, mode) })
	}
}

// stressRun runs workers until stop; the first error other than ErrClosed is kept.
type stressRun struct {
	stop atomic.Bool
	wg   sync.WaitGroup
	errc chan error
}

func (r *stressRun) spawn(fn func() error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for !r.stop.Load() {
			if err := fn(); err != nil {
				if !errors.Is(err, ErrClosed) {
					select {
					case r.errc <- err:
					default:
					}
				}
				return
			}
		}
	}()
}

func stress(t *testing.T, mode FsyncMode) {
	s := openTestStore(t, t.TempDir(), Options{Fsync: mode})
	topic, err := s.CreateTopic("t", 2, map[string]string{"segment.bytes": "1024", "index.interval.bytes": "128"}, false)
	if err != nil {
		t.Fatal(err)
	}
	r := &stressRun{errc: make(chan error, 1)}
	var appended atomic.Int64
	stressWriters(t, r, topic, &appended)
	for i := 0; i < 6; i++ {
		r.spawn(stressReader(topic.Partition(int32(i%2)), i < 3, ReadLimit(i%2)))
	}
	stressOthers(r, s, topic)
	for appended.Load() < 1000 {
		select {
		case err := <-r.errc:
			t.Fatal(err)
		default:
			runtime.Gosched()
		}
	}
	if err := s.Close(); err != nil { // while everything still runs
		t.Fatal(err)
	}
	r.stop.Store(true)
	r.wg.Wait()
	close(r.errc)
	for err := range r.errc {
		t.Fatal(err)
	}
	s = openTestStore(t, s.Dir(), Options{Fsync: mode})
	defer s.Close()
	for p := int32(0); p < 2; p++ {
		l := s.Topic("t").Partition(p)
		if l.NumSegments() < 3 {
			t.Fatalf("partition %d: %d segments, want rolls", p, l.NumSegments())
		}
		for i, rec := range readAll(t, l) {
			if rec.Offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d", p, i, rec.Offset)
			}
		}
	}
}

func stressWriters(t *testing.T, r *stressRun, topic *Topic, appended *atomic.Int64) {
	batches := make([][]byte, 8)
	for i := range batches {
		batches[i] = makeBatch(t, 1+i%4, fmt.Sprintf("w%d", i), int64(1000+i))
	}
	for w := 0; w < 4; w++ {
		l := topic.Partition(int32(w % 2))
		r.spawn(func() error {
			b := append([]byte(nil), batches[appended.Add(1)%int64(len(batches))]...)
			_, err := l.Append(b)
			return err
		})
	}
}

// stressReader follows a partition from offset 0, checking every read.
func stressReader(l *Log, minOne bool, limit ReadLimit) func() error {
	off := int64(0)
	return func() error {
		res, err := l.Read(off, 300, minOne, limit)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		defer res.Release()
		if len(res.Ranges) == 0 {
			return nil
		}
		end := res.HighWatermark
		if limit == ReadToLogEnd {
			end = res.LogEndOffset
		}
		rg := res.Ranges[0]
		buf := make([]byte, rg.Len)
		if _, err := rg.File.ReadAt(buf, rg.Pos); err != nil {
			return err
		}
		if !minOne && rg.Len > 300 {
			return fmt.Errorf("read at %d without minOne returned %d bytes", off, rg.Len)
		}
		first := true
		return batch.Split(buf, func(b []byte) error {
			h, err := batch.Validate(b)
			if err != nil {
				return fmt.Errorf("read at %d served a bad batch: %w", off, err)
			}
			if first && (h.BaseOffset > off || h.LastOffset() < off) {
				return fmt.Errorf("read at %d returned batch %d..%d", off, h.BaseOffset, h.LastOffset())
			}
			if h.LastOffset() >= end {
				return fmt.Errorf("read returned offset %d at or past its limit %d", h.LastOffset(), end)
			}
			first, off = false, h.LastOffset()+1
			return nil
		})
	}
}

func stressOthers(r *stressRun, s *Store, topic *Topic) {
	r.spawn(func() error {
		_, _, err := topic.Partition(0).OffsetForTimestamp(1003)
		return err
	})
	r.spawn(func() error { topic.Partition(1).MaxTimestamp(); return nil })
	r.spawn(func() error { return topic.Partition(0).Flush() })
	r.spawn(func() error {
		l := topic.Partition(1)
		_, _, _ = l.LogEndOffset(), l.Size(), l.NumSegments()
		select {
		case <-l.Changed():
		case <-time.After(10 * time.Millisecond):
		}
		return nil
	})
	n := 0
	r.spawn(func() error {
		n++
		return s.AlterTopicConfig("t", []ConfigOp{
			{Key: "segment.bytes", Op: OpSet, Value: fmt.Sprint(1024 + (n%4)*512)},
			{Key: "flush.messages", Op: OpSet, Value: fmt.Sprint(1 + n%7)},
			{Key: "flush.ms", Op: OpSet, Value: fmt.Sprint(1 + n%50)},
		}, false)
	})
	parts := int32(2)
	r.spawn(func() error {
		if parts >= 6 {
			return nil
		}
		parts++
		return s.CreatePartitions("t", parts, false)
	})
}
