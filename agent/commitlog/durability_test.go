package commitlog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Two Flushes must not overlap: the second one used to skip the directory fsync the first
// had taken charge of and advance the high watermark over a segment whose directory entry
// was not yet durable (and the first one, finishing later, moved the high watermark back).
func TestFlushesDoNotOverlap(t *testing.T) {
	spy := spyFsync(t)
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncAlways})
	defer s.Close()
	topic, err := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "1024"}, false)
	if err != nil {
		t.Fatal(err)
	}
	l := topic.Partition(0)
	fillUntilSegments(t, l, 2, 1)
	if err := l.WaitHighWatermark(context.Background(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	// Roll to a third segment with the log locked, then block the first fsync of the new
	// segment's file: that Flush took its snapshot after the roll, so it owes the directory
	// fsync.
	entered, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	l.mu.Lock()
	for len(l.segments) < 3 {
		b := makeBatch(t, 1, "r", 1)
		if _, err := l.appendLocked(b, mustHeaders(t, b), l.config()); err != nil {
			l.mu.Unlock()
			t.Fatal(err)
		}
	}
	newest := l.active().base
	spy.set(func(path string) {
		if filepath.Base(path) == segName(newest, ".log") {
			if armed.CompareAndSwap(true, false) {
				close(entered)
				<-release
			}
		}
	}, nil)
	l.mu.Unlock()
	<-entered
	before := spy.dirSyncs(l.Dir())
	if _, err := l.Append(makeBatch(t, 1, "x", 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Flush() }()
	select {
	case err := <-done:
		// Finished while the first Flush still owes the directory fsync.
		if hw := l.HighWatermark(); hw > newest && spy.dirSyncs(l.Dir()) == before {
			close(release)
			t.Fatalf("high watermark %d covers segment %d before its directory entry was fsynced (err %v)", hw, newest, err)
		}
		close(release)
	case <-time.After(500 * time.Millisecond):
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if hw, leo := l.HighWatermark(), l.LogEndOffset(); hw != leo {
		t.Fatalf("after both flushes hw %d, leo %d", hw, leo)
	}
}

// The high watermark never moves back, whatever order flushes finish in.
func TestHighWatermarkNeverMovesBack(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncAlways})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "1024"}, false)
	l := topic.Partition(0)
	fillUntilSegments(t, l, 2, 1)
	if err := l.WaitHighWatermark(context.Background(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	hw := l.hw
	first := l.segments[0]
	l.setHWLocked(1, first, 0) // a late flush of the first segment
	got := l.hw
	l.mu.Unlock()
	if got != hw {
		t.Fatalf("high watermark moved back from %d to %d", hw, got)
	}
}

// After a failed fsync, Linux may have dropped the dirty pages: a later fsync that succeeds
// says nothing about them. The records must never be acknowledged.
func TestFailedFsyncIsNotRetriedIntoAnAck(t *testing.T) {
	spy := spyFsync(t)
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncAlways})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, nil, false)
	l := topic.Partition(0)
	var failed sync.Once
	spy.set(nil, func(path string) error {
		var err error
		if strings.HasSuffix(path, ".log") {
			failed.Do(func() { err = syscall.EIO })
		}
		return err
	})
	res, err := l.Append(makeBatch(t, 1, "x", 1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = l.WaitHighWatermark(ctx, res.LastOffset+1)
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("wait after a failed fsync: %v (hw %d), want ErrStorage", err, l.HighWatermark())
	}
	if _, err := l.Append(makeBatch(t, 1, "y", 1)); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after a failed fsync: %v, want ErrStorage", err)
	}
	if l.HighWatermark() != 0 {
		t.Fatalf("hw %d after a failed fsync", l.HighWatermark())
	}
}

// Recovery scans only the newest two segments, so a third may appear only once the oldest
// of those is on disk, even when the syncer has not run between two rolls.
func TestRollSyncsTheSegmentLeavingTheRecoveryWindow(t *testing.T) {
	spy := spyFsync(t)
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncNever})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "1024"}, false)
	l := topic.Partition(0)
	l.mu.Lock() // the syncer cannot flush while we hold the log
	for len(l.segments) < 3 {
		b := makeBatch(t, 1, "r", 1)
		if _, err := l.appendLocked(b, mustHeaders(t, b), l.config()); err != nil {
			l.mu.Unlock()
			t.Fatal(err)
		}
	}
	first := l.segments[0].base
	l.mu.Unlock()
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		if !spy.synced(segName(first, ext)) {
			t.Errorf("%s not fsynced before a third segment was created (%v)", segName(first, ext), spy)
		}
	}
	if spy.dirSyncs(l.Dir()) == 0 {
		t.Errorf("partition dir not fsynced before a third segment was created")
	}
}

// A sealed segment's indexes are trusted after a restart, so they must reach the disk too: on
// seal (by the syncer) and, for the active segment, on a clean Close.
func TestIndexesAreFsynced(t *testing.T) {
	spy := spyFsync(t)
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncAlways})
	topic, _ := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "1024", "index.interval.bytes": "100"}, false)
	l := topic.Partition(0)
	fillUntilSegments(t, l, 2, 1)
	if err := l.WaitHighWatermark(context.Background(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	bases := segmentBases(l)
	for _, ext := range []string{".index", ".timeindex"} {
		if !spy.synced(segName(bases[0], ext)) {
			t.Errorf("sealed %s not fsynced (%v)", segName(bases[0], ext), spy)
		}
	}
	spy.reset()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".index", ".timeindex"} {
		if !spy.synced(segName(bases[1], ext)) {
			t.Errorf("active %s not fsynced on Close (%v)", segName(bases[1], ext), spy)
		}
	}
}

// A new partition's first segment file must have a durable directory entry before its
// records are acknowledged.
func TestNewPartitionDirIsFsyncedBeforeAck(t *testing.T) {
	spy := spyFsync(t)
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncAlways})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, nil, false)
	l := topic.Partition(0)
	res, err := l.Append(makeBatch(t, 1, "x", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitHighWatermark(context.Background(), res.LastOffset+1); err != nil {
		t.Fatal(err)
	}
	if spy.dirSyncs(l.Dir()) == 0 {
		t.Fatalf("acknowledged a record in %s without fsyncing the partition dir (%v)", segName(0, ".log"), spy)
	}
}

// After a crash, what recovery found may still be only in the page cache; it becomes visible
// to consumers (the high watermark) only once fsynced.
func TestUncleanOpenFsyncsRecoveredSegments(t *testing.T) {
	spy := spyFsync(t)
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{Fsync: FsyncInterval})
	topic, _ := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "1024"}, false)
	fillUntilSegments(t, topic.Partition(0), 3, 1)
	bases := segmentBases(topic.Partition(0))
	crash(t, s)
	spy.reset()
	s = openTestStore(t, dir, Options{Fsync: FsyncInterval})
	defer s.Close()
	for _, b := range bases[1:] {
		if !spy.synced(segName(b, ".log")) {
			t.Errorf("recovered %s not fsynced at open (%v)", segName(b, ".log"), spy)
		}
	}
	if spy.dirSyncs(filepath.Join(dir, topicsDir, "t", "0")) == 0 {
		t.Errorf("partition dir not fsynced after recovery")
	}
}

// MaxTimestamp looks below the high watermark only, even when the largest timestamp of the
// active segment is above it.
func TestMaxTimestampWithUnflushedMax(t *testing.T) {
	spy := spyFsync(t)
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncAlways})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, nil, false)
	l := topic.Partition(0)
	if _, err := l.Append(makeBatch(t, 2, "a", 100)); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitHighWatermark(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	spy.set(func(string) { <-release }, nil) // no more fsyncs complete: the hw stays at 2
	if _, err := l.Append(makeBatch(t, 1, "b", 500)); err != nil {
		t.Fatal(err)
	}
	if off, ts := l.MaxTimestamp(); off != 1 || ts != 101 {
		t.Fatalf("max timestamp below hw: offset %d ts %d, want 1 and 101", off, ts)
	}
}

var _ = os.Remove

// A roll's own fsync that fails while a flush is running takes the log offline: that flush
// must not advance the high watermark when it finishes.
func TestFailedRollFsyncStopsARunningFlush(t *testing.T) {
	spy := spyFsync(t)
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncAlways})
	defer s.Close()
	topic, _ := s.CreateTopic("t", 1, map[string]string{"segment.bytes": "1024"}, false)
	l := topic.Partition(0)
	fillUntilSegments(t, l, 2, 1)
	if err := l.WaitHighWatermark(context.Background(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	hw := l.HighWatermark()
	appendLocked := func(n int) {
		for len(l.segments) < n {
			b := makeBatch(t, 1, "r", 1)
			if _, err := l.appendLocked(b, mustHeaders(t, b), l.config()); err != nil && len(l.segments) < n {
				t.Error(err)
				return
			}
		}
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var armed, failOnce atomic.Bool
	armed.Store(true)
	l.mu.Lock()
	appendLocked(3)
	bases := []int64{l.segments[1].base, l.segments[2].base}
	spy.set(func(path string) {
		if filepath.Base(path) == segName(bases[1], ".log") && armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
	}, func(path string) error {
		if filepath.Base(path) == segName(bases[0], ".log") && failOnce.CompareAndSwap(false, true) {
			return syscall.EIO
		}
		return nil
	})
	l.mu.Unlock()
	<-entered // the syncer's flush took its snapshot and is fsyncing
	l.mu.Lock()
	for len(l.segments) < 4 && l.failed == nil { // the roll fsyncs the unsynced segment: it fails
		b := makeBatch(t, 1, "r", 1)
		l.appendLocked(b, mustHeaders(t, b), l.config())
	}
	failed := l.failed
	l.mu.Unlock()
	close(release)
	if failed == nil {
		t.Fatal("the roll's fsync did not fail the log")
	}
	if err := l.Flush(); !errors.Is(err, ErrStorage) { // runs after the running flush finished
		t.Fatalf("flush of a failed log: %v", err)
	}
	if got := l.HighWatermark(); got != hw {
		t.Fatalf("high watermark moved from %d to %d after a failed fsync", hw, got)
	}
}
