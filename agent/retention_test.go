package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent"
)

// Helpers shared by the retention, compaction and compaction crash tests.

// maintFailAfter bounds every wait of the retention and compaction tests: a failure bound,
// never a timing assertion.
const maintFailAfter = 45 * time.Second

// maintConfig runs the retention janitor every 200ms and lets the cleaner look for work every
// 100ms; the disk guard is off so that a full shared disk does not fail these tests.
func maintConfig(c *agent.Config) {
	c.RetentionCheckInterval = agent.Duration(200 * time.Millisecond)
	c.Cleaner.Backoff = agent.Duration(100 * time.Millisecond)
	c.Disk.MinFreeBytes, c.Disk.MinFreePercent = 0, 0
}

// maintCtx is a context bounded by maintFailAfter.
func maintCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), maintFailAfter)
	t.Cleanup(cancel)
	return ctx
}

// newClient is a franz-go client of addr, closed at the end of the test.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopicWith creates a one-partition topic with configs and returns its id.
func createTopicWith(t *testing.T, adm *kadm.Client, topic string, configs map[string]string) [16]byte {
	t.Helper()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	resp, err := adm.CreateTopic(maintCtx(t), 1, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s %v: %v", topic, configs, err)
	}
	return resp.ID
}

// scrapeMetrics reads the agent's /metrics: sample (name with labels) -> value.
func scrapeMetrics(httpAddr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// metric reads one sample of /metrics, failing the test if it is missing.
func metric(t *testing.T, httpAddr, sample string) float64 {
	t.Helper()
	m, err := scrapeMetrics(httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := m[sample]
	if !ok {
		t.Fatalf("/metrics has no sample %s", sample)
	}
	return v
}

// pollUntil calls check every 50ms until it returns nil; after maintFailAfter the test fails
// with what the last check said.
func pollUntil(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(maintFailAfter)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s (failure bound): %v", what, maintFailAfter, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// segmentLogSizes lists a partition directory's segments: base offset -> size of its .log
// file. Files deleted while it looks are skipped.
func segmentLogSizes(dir string) (map[int64]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[int64]int64{}
	for _, e := range entries {
		digits, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || len(digits) != 20 {
			continue
		}
		base, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[base] = info.Size()
	}
	return out, nil
}

// sortedBases returns the keys of a segmentLogSizes result in order.
func sortedBases(segs map[int64]int64) []int64 {
	bases := make([]int64, 0, len(segs))
	for b := range segs {
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases
}

// partitionDirOf is partition 0 of topic in an agent's data directory.
func partitionDirOf(dataDir, topic string) string {
	return filepath.Join(dataDir, "topics", topic, "0")
}

// startOffset is ListOffsets(earliest) of partition 0.
func startOffset(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	offs, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok {
		return 0, fmt.Errorf("no start offset for %s-0", topic)
	}
	return o.Offset, o.Err
}

// endOffset is ListOffsets(latest), the high watermark, of partition 0.
func endOffset(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	offs, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok {
		return 0, fmt.Errorf("no end offset for %s-0", topic)
	}
	return o.Offset, o.Err
}

// consumeToEnd consumes partition 0 of topic from `from` (with reset policy AtStart) until it
// has seen the record at hw-1, and returns the records in order. The caller knows a record is
// stored at hw-1.
func consumeToEnd(t *testing.T, addr, topic string, from kgo.Offset, hw int64) []*kgo.Record {
	t.Helper()
	ctx := maintCtx(t)
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: from}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(4<<20))
	defer cl.Close()
	var out []*kgo.Record
	for len(out) == 0 || out[len(out)-1].Offset < hw-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records of %s, not up to the high watermark %d: %v", len(out), topic, hw, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consume %s: %v", topic, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// TestRetentionTimeDeletesExactlyTheExpiredSegments fills whole segments with records
// stamped two minutes ago (CreateTime), then writes fresh records into new segments, then
// sets retention.ms to one minute. The janitor (every 200ms) must delete exactly the old
// segments: the log start becomes the first fresh offset, a consumer from the start sees
// exactly the fresh records, and a fetch at offset 0 gets OFFSET_OUT_OF_RANGE (raw) or is
// reset by the consumer's policy.
//
// retention.ms is set once both kinds of segment are on disk, so that retention must tell
// them apart; segment.ms (300ms, waited out once) makes the first fresh record start a
// segment, so the boundary between expired and live segments is an exact offset.
func TestRetentionTimeDeletesExactlyTheExpiredSegments(t *testing.T) {
	dataDir := t.TempDir()
	a := startAgent(t, dataDir, maintConfig)
	ctx := maintCtx(t)
	cl := newClient(t, a.KafkaAddr(), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	const topic = "timed"
	const segmentAge = 300 * time.Millisecond
	id := createTopicWith(t, adm, topic, map[string]string{
		"segment.bytes": "16384", "segment.ms": strconv.Itoa(int(segmentAge.Milliseconds())),
	})

	old := time.Now().Add(-2 * time.Minute)
	produceChunks(t, ctx, cl, topic, "old", 0, 400, 200, old)
	lastOld := time.Now()
	dir := partitionDirOf(dataDir, topic)

	// Wait out segment.ms once: the next append finds the active segment too old and rolls,
	// so the fresh records start a segment of their own.
	time.Sleep(time.Until(lastOld.Add(segmentAge + 100*time.Millisecond)))
	firstNew := produceChunks(t, ctx, cl, topic, "new", 0, 200, 200, time.Time{})

	segs, err := segmentLogSizes(dir)
	if err != nil {
		t.Fatal(err)
	}
	var expired int
	for base := range segs {
		if base < firstNew {
			expired++
		}
	}
	if _, ok := segs[firstNew]; !ok || expired < 4 {
		t.Fatalf("setup: want >= 4 segments of old records and a segment starting at the first fresh offset %d; segments %v", firstNew, sortedBases(segs))
	}
	deletedBefore := metric(t, a.HTTPAddr(), "samsa_retention_deleted_segments_total")
	if start, err := startOffset(ctx, adm, topic); err != nil || start != 0 {
		t.Fatalf("log start %d before retention.ms is set (err %v), want 0", start, err)
	}

	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("60000")}}
	if resps, err := adm.AlterTopicConfigs(ctx, alter, topic); err != nil || resps[0].Err != nil {
		t.Fatalf("set retention.ms: %v %v", err, resps)
	}
	var start int64
	pollUntil(t, "the log start moves after retention.ms=60000", func() error {
		var err error
		start, err = startOffset(ctx, adm, topic)
		if err == nil && start == 0 {
			err = errors.New("log start still 0")
		}
		return err
	})
	if start != firstNew {
		t.Fatalf("log start %d after time retention, want exactly %d (the first record not expired)", start, firstNew)
	}
	// The pass moves the start first, then deletes the files and counts them.
	var deleted float64
	pollUntil(t, "the retention pass counts its deleted segments", func() error {
		deleted = metric(t, a.HTTPAddr(), "samsa_retention_deleted_segments_total") - deletedBefore
		if int(deleted) < expired {
			return fmt.Errorf("%v of %d expired segments counted", deleted, expired)
		}
		return nil
	})
	if int(deleted) != expired {
		t.Fatalf("retention deleted %v segments, want exactly the %d expired ones", deleted, expired)
	}
	segs, err = segmentLogSizes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if bases := sortedBases(segs); bases[0] != firstNew {
		t.Fatalf("segments on disk after retention %v: want the first at %d, none below", bases, firstNew)
	}

	hw, err := endOffset(ctx, adm, topic)
	if err != nil || hw != firstNew+200 {
		t.Fatalf("high watermark %d (err %v), want %d", hw, err, firstNew+200)
	}
	recs := consumeToEnd(t, a.KafkaAddr(), topic, kgo.NewOffset().AtStart(), hw)
	checkChunkRecords(t, recs, "new", firstNew, 0, 200)

	// A consumer asking for offset 0 is reset by its policy (here: the start)...
	recs = consumeToEnd(t, a.KafkaAddr(), topic, kgo.NewOffset().At(0), hw)
	checkChunkRecords(t, recs, "new", firstNew, 0, 200)
	// ...or, with no reset policy, gets the error.
	noReset := newClient(t, a.KafkaAddr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	var fetchErr error
	for fetchErr == nil {
		fs := noReset.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no error for a consumer without reset policy fetching offset 0")
		}
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if n := fs.NumRecords(); n > 0 {
			t.Fatalf("a fetch at offset 0 below the log start %d returned %d records", firstNew, n)
		}
	}
	if !errors.Is(fetchErr, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch at 0 without reset policy: %v, want OFFSET_OUT_OF_RANGE", fetchErr)
	}
	// And the raw Fetch says OFFSET_OUT_OF_RANGE with the new log start.
	rp := rawFetch(t, ctx, cl, topic, id, 0)
	if rp.ErrorCode != kerr.OffsetOutOfRange.Code || len(rp.RecordBatches) != 0 {
		t.Fatalf("raw fetch at 0: error %v with %d bytes, want OFFSET_OUT_OF_RANGE", kerr.ErrorForCode(rp.ErrorCode), len(rp.RecordBatches))
	}
	if rp.LogStartOffset != -1 && rp.LogStartOffset != firstNew {
		t.Fatalf("raw fetch at 0: log start offset %d, want %d", rp.LogStartOffset, firstNew)
	}
	rp = rawFetch(t, ctx, cl, topic, id, firstNew)
	if rp.ErrorCode != 0 || len(rp.RecordBatches) == 0 {
		t.Fatalf("raw fetch at the log start %d: %v, %d bytes", firstNew, kerr.ErrorForCode(rp.ErrorCode), len(rp.RecordBatches))
	}
}

// TestRetentionBytesKeepsTheLimitPlusOneSegment writes 2 MiB, in two rounds, to a topic with
// retention.bytes=256 KiB and segment.bytes=32 KiB. After each round, once retention has done
// what it may (dropping the first segment would go below the limit), the partition holds at
// least retention.bytes and at most retention.bytes plus one segment, on disk and as
// DescribeLogDirs reports, and a consumer from the earliest offset reads a contiguous suffix
// ending at the high watermark.
func TestRetentionBytesKeepsTheLimitPlusOneSegment(t *testing.T) {
	dataDir := t.TempDir()
	a := startAgent(t, dataDir, maintConfig)
	ctx := maintCtx(t)
	cl := newClient(t, a.KafkaAddr(), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	const topic = "sized"
	const limit, segBytes = 256 << 10, 32 << 10
	createTopicWith(t, adm, topic, map[string]string{"retention.bytes": strconv.Itoa(limit), "segment.bytes": strconv.Itoa(segBytes)})
	dir := partitionDirOf(dataDir, topic)
	const perRound = 1024 // 1 KiB records: 1 MiB a round
	for round := 0; round < 2; round++ {
		produceChunks(t, ctx, cl, topic, "sz", round*perRound, perRound, 1024, time.Time{})
		var segs map[int64]int64
		var total int64
		pollUntil(t, fmt.Sprintf("round %d: retention down to retention.bytes", round), func() error {
			var err error
			if segs, err = segmentLogSizes(dir); err != nil {
				return err
			}
			bases := sortedBases(segs)
			total = 0
			for _, s := range segs {
				total += s
			}
			if len(bases) > 1 && total-segs[bases[0]] >= limit {
				return fmt.Errorf("%d bytes in %d segments; the first (%d bytes) could go", total, len(bases), segs[bases[0]])
			}
			return nil
		})
		bases := sortedBases(segs)
		t.Logf("round %d: %d bytes in %d segments %v after retention", round, total, len(bases), bases)
		if total < limit {
			t.Fatalf("round %d: %d bytes kept, below retention.bytes %d", round, total, limit)
		}
		if total > limit+segBytes {
			t.Fatalf("round %d: %d bytes kept, more than retention.bytes %d plus one segment %d", round, total, limit, segBytes)
		}
		start, err := startOffset(ctx, adm, topic)
		if err != nil || start != bases[0] {
			t.Fatalf("round %d: log start %d (err %v), want the first segment's base %d", round, start, err, bases[0])
		}
		dirs, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var described int64 = -1
		dirs.Each(func(d kadm.DescribedLogDir) {
			if p, ok := d.Topics[topic][0]; ok {
				described = p.Size
			}
		})
		if described != total {
			t.Fatalf("round %d: DescribeLogDirs says %d bytes, the segment files hold %d", round, described, total)
		}
		hw, err := endOffset(ctx, adm, topic)
		if err != nil || hw != int64((round+1)*perRound) {
			t.Fatalf("round %d: high watermark %d (err %v), want %d", round, hw, err, (round+1)*perRound)
		}
		recs := consumeToEnd(t, a.KafkaAddr(), topic, kgo.NewOffset().AtStart(), hw)
		checkChunkRecords(t, recs, "sz", start, int(start), int(hw-start))
	}
}

// produceChunks produces n records "<prefix>-<i>" (i from first) padded to size bytes, 20
// records per synchronous produce, with timestamp ts (zero: now). It returns the offset of
// the first record.
func produceChunks(t *testing.T, ctx context.Context, cl *kgo.Client, topic, prefix string, first, n, size int, ts time.Time) int64 {
	t.Helper()
	firstOffset := int64(-1)
	for i := 0; i < n; i += 20 {
		var recs []*kgo.Record
		for j := i; j < i+20 && j < n; j++ {
			recs = append(recs, &kgo.Record{Topic: topic, Value: chunkValue(prefix, first+j, size), Timestamp: ts})
		}
		res := cl.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce %s-%d..: %v", prefix, first+i, err)
		}
		if firstOffset < 0 {
			firstOffset = res[0].Record.Offset
		}
	}
	return firstOffset
}

// chunkValue is record i of produceChunks: "<prefix>-<i>-" padded with 'x' to size bytes.
func chunkValue(prefix string, i, size int) []byte {
	v := fmt.Sprintf("%s-%d-", prefix, i)
	if len(v) < size {
		v += strings.Repeat("x", size-len(v))
	}
	return []byte(v)
}

// checkChunkRecords checks that recs are exactly n records at offsets from, from+1, ..., and
// that record i holds produceChunks' value "<prefix>-<k0+i>".
func checkChunkRecords(t *testing.T, recs []*kgo.Record, prefix string, from int64, k0, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("read %d records, want %d from offset %d", len(recs), n, from)
	}
	for i, r := range recs {
		if r.Offset != from+int64(i) {
			t.Fatalf("record %d at offset %d, want %d: offsets must be contiguous from the log start", i, r.Offset, from+int64(i))
		}
		parts := strings.SplitN(string(r.Value), "-", 3)
		if len(parts) != 3 || parts[0] != prefix {
			t.Fatalf("offset %d holds %.40q, want a %q record", r.Offset, r.Value, prefix)
		}
		k, err := strconv.Atoi(parts[1])
		if err != nil {
			t.Fatalf("offset %d holds %.40q", r.Offset, r.Value)
		}
		if want := chunkValue(prefix, k0+i, len(r.Value)); k != k0+i || string(r.Value) != string(want) {
			t.Fatalf("offset %d holds %.40q, want %.40q", r.Offset, r.Value, want)
		}
	}
}

// rawFetch sends one Fetch request for partition 0 of topic at offset and returns the
// partition's answer.
func rawFetch(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, id [16]byte, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 0, 1<<20
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, offset, 1<<20
	fp.CurrentLeaderEpoch, fp.LogStartOffset = -1, -1
	ft.Partitions = []kmsg.FetchRequestTopicPartition{fp}
	req.Topics = []kmsg.FetchRequestTopic{ft}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("fetch %s-0 at %d: %v", topic, offset, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("fetch %s-0 at %d: %v", topic, offset, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s-0 at %d: unexpected answer shape %+v", topic, offset, resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}
