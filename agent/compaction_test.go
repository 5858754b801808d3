package agent_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
)

// compactState is what a compacted topic must hold once the cleaner is done: one record per
// key with its latest value, tombstones only for deleted keys (and only until
// delete.retention.ms), and the filler records once each.
type compactState struct {
	latest      map[string]string    // key -> latest value, for keys not deleted
	deleted     map[string]time.Time // deleted key -> its tombstone's timestamp
	fillers     map[string]string    // filler key -> value
	deleteAfter time.Duration        // delete.retention.ms
}

// check reads the topic from the start to the high watermark (whose last record is a filler)
// and compares. tombstonesGone says deleted keys must be absent; otherwise each may still
// have its tombstone, and must have it if it is read back before delete.retention.ms has
// passed since the tombstone's timestamp.
func (s *compactState) check(t *testing.T, addr, topic string, tombstonesGone bool) error {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	hw, err := endOffset(maintCtx(t), kadm.NewClient(cl), topic)
	cl.Close()
	if err != nil {
		return err
	}
	recs := consumeToEnd(t, addr, topic, kgo.NewOffset().AtStart(), hw)
	readAt := time.Now()
	seen := map[string]*kgo.Record{}
	prev := int64(-1)
	for _, r := range recs {
		if r.Offset <= prev {
			t.Fatalf("offsets not increasing: %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		k := string(r.Key)
		if first, dup := seen[k]; dup {
			return fmt.Errorf("key %q at offsets %d and %d: not compacted (yet)", k, first.Offset, r.Offset)
		}
		seen[k] = r
	}
	for k, want := range s.latest {
		r, ok := seen[k]
		if !ok {
			t.Fatalf("key %q is gone; its latest value %q was lost", k, want)
		}
		if string(r.Value) != want {
			t.Fatalf("key %q holds %q at offset %d, want its latest value %q", k, r.Value, r.Offset, want)
		}
	}
	for k, want := range s.fillers {
		if r, ok := seen[k]; !ok || string(r.Value) != want {
			t.Fatalf("filler %q lost or changed: %v", k, r)
		}
	}
	var tombstones int
	for k, ts := range s.deleted {
		r, ok := seen[k]
		switch {
		case ok && r.Value != nil:
			t.Fatalf("deleted key %q still holds %q at offset %d", k, r.Value, r.Offset)
		case ok:
			tombstones++
		case readAt.Before(ts.Add(s.deleteAfter)):
			t.Fatalf("tombstone of %q (timestamp %s) removed before delete.retention.ms %s passed", k, ts.Format(time.StampMilli), s.deleteAfter)
		}
	}
	if n := len(s.latest) + len(s.fillers) + len(s.deleted); len(seen) > n {
		t.Fatalf("%d keys in the topic, only %d were ever written", len(seen), n)
	}
	if tombstonesGone && tombstones > 0 {
		return fmt.Errorf("%d of %d tombstones still there", tombstones, len(s.deleted))
	}
	t.Logf("compacted: %d records up to offset %d (high watermark %d), %d tombstones", len(recs), prev, hw, tombstones)
	return nil
}

// waitCompacted polls until check passes, re-reading the topic each time the cleaner has
// completed another pass.
func (s *compactState) waitCompacted(t *testing.T, a *agent.Agent, topic string, tombstonesGone bool) {
	t.Helper()
	lastPasses := -1.0
	pollUntil(t, fmt.Sprintf("compaction of %s (tombstones gone: %v)", topic, tombstonesGone), func() error {
		passes := metric(t, a.HTTPAddr(), "samsa_cleaner_passes_total")
		if passes == lastPasses {
			return fmt.Errorf("no cleaner pass since the last check (%v passes)", passes)
		}
		lastPasses = passes
		return s.check(t, a.KafkaAddr(), topic, tombstonesGone)
	})
}

// TestCompactionLatestValuePerKeyAndTombstones writes 200k updates over 1000 keys (lz4
// batches) to a compacted topic, deletes 100 keys with tombstones, and produces unique-key
// filler records until the log rolls, so that every update and tombstone lies in a closed
// segment the cleaner may compact. Then a consumer from the start sees exactly one record per
// key, with its latest value (the deleted keys only as tombstones). Once delete.retention.ms
// (2.5s) has passed the deleted keys are gone. After a restart the same holds.
func TestCompactionLatestValuePerKeyAndTombstones(t *testing.T) {
	dataDir := t.TempDir()
	a := startAgent(t, dataDir, maintConfig)
	ctx := maintCtx(t)
	const topic, keys, updates, deletes = "compacted", 1000, 200_000, 100
	const deleteAfter = 2500 * time.Millisecond
	cl := newClient(t, a.KafkaAddr(), kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	adm := kadm.NewClient(cl)
	createTopicWith(t, adm, topic, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": strconv.Itoa(256 << 10),
		"min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": strconv.Itoa(int(deleteAfter.Milliseconds())),
	})
	st := &compactState{latest: map[string]string{}, deleted: map[string]time.Time{}, fillers: map[string]string{}, deleteAfter: deleteAfter}

	start := time.Now()
	rng := rand.New(rand.NewPCG(4, 2))
	var produceErr error
	var errMu sync.Mutex
	for i := 0; i < updates; i++ {
		k := i % keys // every key once, then at random
		if i >= keys {
			k = rng.IntN(keys)
		}
		key := fmt.Sprintf("key-%d", k)
		val := fmt.Sprintf("%s=%d", key, i)
		st.latest[key] = val
		cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte(val)}, func(_ *kgo.Record, err error) {
			if err != nil {
				errMu.Lock()
				produceErr = errors.Join(produceErr, err)
				errMu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if produceErr != nil {
		t.Fatalf("produce updates: %v", produceErr)
	}
	t.Logf("produced %d updates over %d keys in %s", updates, keys, time.Since(start).Round(time.Millisecond))

	var tombs []*kgo.Record
	for k := 0; k < keys; k += keys / deletes {
		tombs = append(tombs, &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", k))})
	}
	res := cl.ProduceSync(ctx, tombs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	var lastTombstone int64
	for _, r := range res {
		delete(st.latest, string(r.Record.Key))
		st.deleted[string(r.Record.Key)] = r.Record.Timestamp
		lastTombstone = max(lastTombstone, r.Record.Offset)
	}

	// The cleaner never touches the active segment: write unique-key fillers until the one
	// holding the tombstones is closed.
	dir := partitionDirOf(dataDir, topic)
	for i := 0; ; i++ {
		segs, err := segmentLogSizes(dir)
		if err != nil {
			t.Fatal(err)
		}
		if bases := sortedBases(segs); bases[len(bases)-1] > lastTombstone {
			break
		}
		if i == 1000 {
			t.Fatalf("no roll after %d filler records of 4 KiB with segment.bytes 256 KiB", i)
		}
		noise := make([]byte, 2048)
		for j := range noise {
			noise[j] = byte(rng.Uint32())
		}
		key, val := fmt.Sprintf("filler-%d", i), hex.EncodeToString(noise) // 4 KiB lz4 cannot shrink much
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte(val)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		st.fillers[key] = val
	}

	st.waitCompacted(t, a, topic, false)
	st.waitCompacted(t, a, topic, true)

	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	a = startAgent(t, dataDir, maintConfig)
	if err := st.check(t, a.KafkaAddr(), topic, true); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
}

// TestCompactionMetricsCountRemovedRecords compacts 20 updates of one key and a deleted key
// (delete.retention.ms=0) and checks that /metrics counts what the pass removed:
// samsa_cleaner_removed_records_total (superseded records) and
// samsa_cleaner_removed_tombstones_total.
func TestCompactionMetricsCountRemovedRecords(t *testing.T) {
	dataDir := t.TempDir()
	a := startAgent(t, dataDir, maintConfig)
	ctx := maintCtx(t)
	const topic = "counted"
	cl := newClient(t, a.KafkaAddr(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	createTopicWith(t, kadm.NewClient(cl), topic, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0",
	})
	produce := func(key string, value []byte) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		produce("a", []byte(fmt.Sprintf("a-%d-%0200d", i, 0)))
	}
	produce("b", []byte("b-0"))
	produce("b", nil)
	// Two 1 KiB fillers close the segment holding the tombstone.
	produce("filler-0", make([]byte, 1024))
	produce("filler-1", make([]byte, 1024))
	st := &compactState{latest: map[string]string{"a": fmt.Sprintf("a-%d-%0200d", 19, 0)}, deleted: map[string]time.Time{"b": {}},
		fillers: map[string]string{"filler-0": string(make([]byte, 1024)), "filler-1": string(make([]byte, 1024))}}
	st.waitCompacted(t, a, topic, true)
	m, err := scrapeMetrics(a.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	// 19 superseded values of a, b's value; b's tombstone.
	if got := m["samsa_cleaner_removed_records_total"]; got < 20 {
		t.Errorf("samsa_cleaner_removed_records_total %v after compaction removed 20 superseded records", got)
	}
	if got := m["samsa_cleaner_removed_tombstones_total"]; got < 1 {
		t.Errorf("samsa_cleaner_removed_tombstones_total %v after compaction removed a tombstone", got)
	}
}

// TestCompactionOfConsumerOffsets commits 20k offsets for one group over four partitions and
// waits until the cleaner has shrunk __consumer_offsets to a fraction of what was appended
// to it. After a restart (which replays the compacted topic) the group's offsets are the
// last ones committed. __consumer_offsets keeps its 8 MiB segment.bytes; the agent-wide
// topic default segment.ms=100 makes it roll so that the cleaner has closed segments.
func TestCompactionOfConsumerOffsets(t *testing.T) {
	dataDir := t.TempDir()
	cfg := func(c *agent.Config) {
		maintConfig(c)
		c.TopicDefaults = map[string]string{"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01"}
	}
	a := startAgent(t, dataDir, cfg)
	ctx := maintCtx(t)
	const group, topic, parts, perPart = "offsets-compaction", "tracked", 4, 5000
	adm := kadm.NewClient(newClient(t, a.KafkaAddr()))
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	final := map[int32]int64{}
	var wg sync.WaitGroup
	errs := make(chan error, parts)
	for p := int32(0); p < parts; p++ {
		final[p] = commitAt(p, perPart-1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perPart; i++ {
				var o kadm.Offsets
				o.Add(kadm.Offset{Topic: topic, Partition: p, At: commitAt(p, i), LeaderEpoch: -1, Metadata: fmt.Sprintf("commit %d", i)})
				if err := adm.CommitAllOffsets(ctx, group, o); err != nil {
					errs <- fmt.Errorf("commit %d of partition %d: %w", i, p, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	appended := metric(t, a.HTTPAddr(), "samsa_log_append_bytes_total") // only commits were appended
	t.Logf("%d commits (%v bytes appended) in %s", parts*perPart, appended, time.Since(start).Round(time.Millisecond))
	offsetsDir := partitionDirOf(dataDir, "__consumer_offsets")
	pollUntil(t, "__consumer_offsets shrinks to a tenth of what was appended", func() error {
		size := metric(t, a.HTTPAddr(), `samsa_topic_size_bytes{topic="__consumer_offsets"}`)
		segs, err := segmentLogSizes(offsetsDir)
		if err != nil {
			return err
		}
		var onDisk int64
		for _, s := range segs {
			onDisk += s
		}
		if size > appended/10 || float64(onDisk) > appended/10 {
			return fmt.Errorf("%v bytes (%d in %d segment files), %v appended", size, onDisk, len(segs), appended)
		}
		return nil
	})
	checkOffsets := func(when string) {
		t.Helper()
		got, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		for p, want := range final {
			o, ok := got.Lookup(topic, p)
			if !ok || o.Err != nil || o.At != want || o.Metadata != fmt.Sprintf("commit %d", perPart-1) {
				t.Fatalf("%s: partition %d committed %+v, want the last commit %d", when, p, o, want)
			}
		}
	}
	checkOffsets("after compaction")
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	a = startAgent(t, dataDir, cfg)
	adm = kadm.NewClient(newClient(t, a.KafkaAddr()))
	checkOffsets("after a restart")
}

// commitAt is the offset commit i of partition p.
func commitAt(p int32, i int) int64 { return int64(i)*10 + int64(p) + 1 }
