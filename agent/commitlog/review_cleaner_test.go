package commitlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Kafka keeps a tombstone for at least delete.retention.ms after the pass that first cleans
// it (KIP-534 delete horizon; before it, the last-modified time of the clean segments), so a
// consumer that started from offset 0 before that pass and already read the old value still
// sees the delete. Here the horizon is the tombstone's own timestamp: a tombstone the cleaner
// reaches late (dirty ratio not reached, backoff, a producer clock behind) is dropped in the
// very pass that first looks at it, together with nothing left to tell readers the key is gone.
func TestReviewTombstoneKeptDeleteRetentionAfterFirstCleaning(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := openTestStore(t, t.TempDir(), Options{Now: clock.Now})
	defer s.Close()
	l := compactTopic(t, s, map[string]string{"delete.retention.ms": "60000"})
	now := clock.Now().UnixMilli()
	if _, err := l.Append(kvBatch(t, batch.CodecNone, now, noProducer, kv{"k", []byte("v1")}, kv{"other", []byte("x")})); err != nil {
		t.Fatal(err)
	}
	sealAll(t, l)
	if err := s.RunCleaner(); err != nil {
		t.Fatal(err)
	}
	// k=v1 is now in the clean part; a consumer reading from 0 has seen it.
	if _, err := l.Append(kvBatch(t, batch.CodecNone, now, noProducer, kv{"k", nil})); err != nil {
		t.Fatal(err)
	}
	sealAll(t, l)
	clock.advance(2 * time.Minute) // the cleaner gets to the new dirty data late
	if err := s.RunCleaner(); err != nil {
		t.Fatal(err)
	}
	if v, ok := latestByKey(t, l)["k"]; !ok || v != nil {
		t.Fatalf("tombstone of k dropped by the first pass that cleaned it (present %v, value %q); "+
			"Kafka keeps it delete.retention.ms after that pass", ok, v)
	}
}

// A pass that keeps failing on one partition (an I/O error on a bad SD card sector, ENOSPC
// writing its output, a checkpoint that can't be written) is retried forever, and because
// cleanOne always picks the same, dirtiest partition, no other compacted partition is ever
// cleaned. Kafka marks a partition whose pass throws as uncleanable and moves on.
func TestReviewCleanerFailureOnOnePartitionStarvesTheOthers(t *testing.T) {
	prev := writeFileAtomic
	writeFileAtomic = func(path string, data []byte, perm os.FileMode) error {
		if filepath.Base(path) == cleanerCheckpointName && filepath.Base(filepath.Dir(filepath.Dir(path))) == "a" {
			return errors.New("simulated EIO")
		}
		return prev(path, data, perm)
	}
	t.Cleanup(func() { writeFileAtomic = prev })
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	cfg := map[string]string{"cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0.01"}
	logs := map[string]*Log{}
	for _, name := range []string{"a", "b"} {
		topic, err := s.CreateTopic(name, 1, cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		l := topic.Partition(0)
		produceUpdates(t, l, 2000, 20, time.Now().UnixMilli())
		sealAll(t, l)
		logs[name] = l
	}
	before := logs["b"].Size()
	for i := 0; i < 5; i++ {
		s.RunCleaner() // a's pass fails every time
	}
	if after := logs["b"].Size(); after >= before {
		t.Fatalf("partition b never compacted (%d bytes, was %d): the failing partition a is picked on every pass", after, before)
	}
}

// max.compaction.lag.ms is measured from the first dirty batch's FirstTimestamp, the
// producer's create time, even with message.timestamp.type=LogAppendTime, where the record
// time is the broker's append time (Kafka uses the first batch's max timestamp, which is the
// append time then). An edge producer without a real-time clock (timestamps near 1970) makes
// every bit of dirty data "overdue", so compaction ignores min.cleanable.dirty.ratio and
// rewrites the log after every segment: write amplification on flash.
func TestReviewMaxCompactionLagUsesAppendTimeWithLogAppendTime(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := compactTopic(t, s, map[string]string{"message.timestamp.type": "LogAppendTime",
		"max.compaction.lag.ms": "3600000", "min.cleanable.dirty.ratio": "0.9"})
	produceUpdates(t, l, 2000, 100, 1000) // create times near 1970: no RTC
	sealAll(t, l)
	if err := s.RunCleaner(); err != nil { // all dirty: due by ratio
		t.Fatal(err)
	}
	if _, err := l.Append(kvBatch(t, batch.CodecNone, 1000, noProducer, kv{"key-1", []byte("new")})); err != nil {
		t.Fatal(err)
	}
	sealAll(t, l)
	l.maintMu.Lock()
	p, err := l.planClean(time.Now())
	l.maintMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if p.due {
		t.Fatalf("partition due (score %v, dirty %d of %d bytes) though its only dirty record was appended "+
			"just now and max.compaction.lag.ms is an hour", p.score, p.dirtyBytes, p.totalBytes)
	}
}

// The cleaner's I/O throttle sleeps on c.stop only, not on the log's abort flag: closing or
// deleting a topic whose pass is throttled waits for the whole sleep (here, forever).
func TestReviewDeleteTopicDoesNotWaitForThrottledCleaner(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{CleanerIOBytesPerSecond: 1})
	defer s.Close()
	l := compactTopic(t, s, nil)
	produceUpdates(t, l, 200, 20, time.Now().UnixMilli())
	sealAll(t, l)
	go s.RunCleaner()
	deadline := time.Now().Add(5 * time.Second)
	for s.cleaner.progressDone.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("cleaner pass did not start")
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- s.DeleteTopic("t") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("DeleteTopic still blocked after 3s behind a throttled cleaner pass")
	}
}
