package commitlog

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A closed segment whose batches carry no timestamp (-1, NO_TIMESTAMP: allowed by the v2
// format and sent by minimal clients) has maxTs -1. retainLocked neither deletes it by time
// nor skips it: it stops at it, so with cleanup.policy=delete and no retention.bytes nothing
// after it is ever deleted by retention.ms and the disk fills. Kafka falls back to the
// segment file's last-modified time when a segment has no timestamp.
func TestReviewRetentionMsWithUntimestampedSegment(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	s := openTestStore(t, t.TempDir(), Options{Now: clock.Now})
	defer s.Close()
	l := oneTopic(t, s, map[string]string{"segment.bytes": "1024", "retention.ms": "60000"})
	appendAt(t, l, 5, -1) // no timestamps
	l.mu.Lock()
	if err := l.rollLocked(l.config()); err != nil {
		t.Fatal(err)
	}
	l.mu.Unlock()
	appendAt(t, l, 40, clock.Now().UnixMilli()) // ordinary records, several segments
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	before := l.NumSegments()
	clock.advance(24 * time.Hour) // everything, files included, is a day older than retention.ms
	s.RunRetention()
	if l.NumSegments() >= before || l.LogStartOffset() == 0 {
		t.Fatalf("a day past retention.ms nothing was deleted (%d segments, log start %d): "+
			"the segment without timestamps blocks time retention for the whole partition", l.NumSegments(), l.LogStartOffset())
	}
}

// With fsync=always, a flush that captured the active segment (seg) finishes after retention
// rolled that segment and deleted it: setHWLocked(hw, seg, pos) sees the same high watermark
// from a different segment and moves hwSeg back to the deleted segment. hwSeg then names no
// segment of the log until another flush completes, and readers that stop at hwSeg walk past
// the high watermark: MaxTimestamp (ListOffsets -3) returns a record that is not durable.
// The same happens when a flush that captured a segment completes after the cleaner replaced
// it (publishCleaned moved hwSeg to the rewritten segment).
func TestReviewHighWatermarkSegmentSurvivesRetentionRollDuringFlush(t *testing.T) {
	spy := spyFsync(t)
	clock := &fakeClock{now: time.Now()}
	s := openTestStore(t, t.TempDir(), Options{Now: clock.Now, Fsync: FsyncAlways})
	defer s.Close()
	l := oneTopic(t, s, map[string]string{"retention.ms": "60000"})
	appendAt(t, l, 1, clock.Now().Add(-2*time.Minute).UnixMilli())
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{}, 1)
	release0, release1 := make(chan struct{}), make(chan struct{})
	spy.set(func(path string) {
		switch filepath.Base(path) {
		case segName(0, ".log"):
			select {
			case held <- struct{}{}:
			default:
			}
			<-release0
		case segName(1, ".log"):
			<-release1
		}
	}, nil)
	defer close(release1) // before s.Close
	spy.reset()
	// A flush with nothing new (the syncer's, kicked by the earlier append, or this one)
	// captures (hw 1, segment 0) and blocks in its fsync.
	go l.Flush()
	<-held
	s.RunRetention() // rolls segment 0 (expired), deletes it, hwSeg = segment 1
	close(release0)
	for !spy.synced(segName(0, ".log")) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let that flush publish its high watermark
	// The syncer's next flush (kicked by the roll) blocks on segment 1: nothing repairs hwSeg.
	l.mu.RLock()
	found := false
	for _, sg := range l.segments {
		found = found || sg == l.hwSeg
	}
	l.mu.RUnlock()
	if _, err := l.Append(makeBatch(t, 1, "late", clock.Now().UnixMilli())); err != nil {
		t.Fatal(err)
	}
	off, ts := l.MaxTimestamp()
	hw := l.HighWatermark()
	if !found || off >= hw {
		t.Fatalf("hwSeg is a segment of the log: %v; MaxTimestamp = (%d, %d) with high watermark %d (want an offset below it, or -1)",
			found, off, ts, hw)
	}
}

// DeleteRecordsBefore (or retention) saves a log start up to the high watermark, which with
// fsync=interval/never is the written, not the durable, end. After a power loss recovery cuts
// the log below the saved start and loadLogStart clamps the start down to the new log end:
// the log start a client saw moves back and the offsets in between are handed out again to
// new records (consumers that committed the old start now point past the log end, or at other
// data). Kafka's loader instead deletes the segments and restarts the log at the saved start.
func TestReviewLogStartDoesNotMoveBackAfterPowerLoss(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{Fsync: FsyncNever})
	l := oneTopic(t, s, nil)
	appendAt(t, l, 10, time.Now().UnixMilli())
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	path := segmentPath(l.Dir(), 0, ".log")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	durable := st.Size()
	appendAt(t, l, 10, time.Now().UnixMilli()) // written, acknowledged, not yet fsynced
	// Inside the active segment, so that no retention pass deletes it meanwhile.
	start, err := l.DeleteRecordsBefore(15)
	if err != nil || start != 15 {
		t.Fatalf("DeleteRecordsBefore(15) = %d, %v", start, err)
	}
	crash(t, s)
	// Power loss: the unfsynced tail of the segment is gone.
	if err := os.Truncate(path, durable); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, Options{Fsync: FsyncNever})
	defer s.Close()
	l = s.Topic("t").Partition(0)
	if got := l.LogStartOffset(); got < start {
		t.Fatalf("log start %d after the restart, below the %d DeleteRecords returned and saved", got, start)
	}
	res, err := l.Append(makeBatch(t, 1, "new", time.Now().UnixMilli()))
	if err != nil {
		t.Fatal(err)
	}
	if res.BaseOffset < start {
		t.Fatalf("a new record got offset %d, below the log start %d clients saw before the crash", res.BaseOffset, start)
	}
}
