package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/internal/testminio"
	"github.com/samsa-io/samsa/tiering"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// Fault and scale tests of tiered storage against a real MinIO server (issue 5, "Show it"):
// 200k records round trip, MinIO stopped in the middle of a run, kill -9 during uploads,
// retention across tiers and the tiered ListOffsets answers. Every wait polls a condition
// with the failure bound tierFailAfter; nothing is timed.

const (
	faultBucket = "samsa-archive"
	faultPrefix = "site-a/gw-1"
)

// tierMinIO is a MinIO server with the bucket the agent tiers to, and a client to look at it.
type tierMinIO struct {
	srv *testminio.Server
	cl  *minio.Client
}

func startTierMinIO(t *testing.T) *tierMinIO {
	t.Helper()
	srv := testminio.Start(t)
	srv.CreateBucket(t, faultBucket)
	cl, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return &tierMinIO{srv: srv, cl: cl}
}

// tiering is the agent's tiering: block for this server.
func (m *tierMinIO) tiering() agent.TieringConfig {
	return agent.TieringConfig{Endpoint: m.srv.Endpoint, Bucket: faultBucket, Prefix: faultPrefix, Region: "us-east-1",
		AccessKeyID: m.srv.AccessKey, SecretAccessKey: agent.Secret(m.srv.SecretKey), CacheBytes: 16 << 20}
}

// agentConfig tiers to this server, runs retention every 100ms and turns the disk guard off (a
// full shared disk must not fail these tests).
func (m *tierMinIO) agentConfig(c *agent.Config) {
	c.Tiering = m.tiering()
	c.RetentionCheckInterval = agent.Duration(100 * time.Millisecond)
	c.Disk.MinFreeBytes, c.Disk.MinFreePercent = 0, 0
}

// yamlConfig is the same as a YAML file for a subprocess agent.
func (m *tierMinIO) yamlConfig(t *testing.T) string {
	t.Helper()
	text := fmt.Sprintf(`retention_check_interval: 100ms
disk:
  min_free_bytes: 0
  min_free_percent: 0
tiering:
  endpoint: %s
  bucket: %s
  prefix: %s
  region: us-east-1
  access_key_id: %s
  secret_access_key: %s
  cache_bytes: 16777216
`, m.srv.Endpoint, faultBucket, faultPrefix, m.srv.AccessKey, m.srv.SecretKey)
	path := filepath.Join(t.TempDir(), "samsa.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// stampedRecord is a produced record with its timestamp, compared byte for byte with what
// comes back from a consumer or from the bucket.
type stampedRecord struct {
	key, value []byte
	headers    []kgo.RecordHeader
	ts         int64 // Unix ms
}

// recordGen makes deterministic records: keys (some null, some empty), values (some null,
// some compressible text, the rest random bytes), headers on some (with null and empty
// values), timestamps from ts.
type recordGen struct {
	rng   *rand.Rand
	bytes *rand.ChaCha8
	n     int
	ts    func(i int) int64
}

func newRecordGen(seed uint64, ts func(i int) int64) *recordGen {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return &recordGen{rng: rand.New(rand.NewPCG(seed, seed^0x7ea5)), bytes: rand.NewChaCha8(s), ts: ts}
}

func (g *recordGen) blob(maxLen int) []byte {
	b := make([]byte, g.rng.IntN(maxLen+1))
	g.bytes.Read(b)
	return b
}

// take returns the next n records.
func (g *recordGen) take(n int) []stampedRecord {
	out := make([]stampedRecord, n)
	for j := range out {
		i := g.n
		g.n++
		r := stampedRecord{key: fmt.Appendf(nil, "dev-%03d/%07d", i%211, i), ts: g.ts(i)}
		switch i % 13 {
		case 0:
			r.key = nil
		case 1:
			r.key = []byte{}
		}
		switch {
		case i%101 == 0:
			r.value = nil
		case i%3 == 0:
			r.value = bytes.Repeat(fmt.Appendf(nil, "temperature=%d;", i%37), 1+g.rng.IntN(12))
		default:
			r.value = g.blob(220)
		}
		switch {
		case i%17 == 0:
			r.headers = []kgo.RecordHeader{{Key: "a", Value: nil}, {Key: "b", Value: []byte{}}, {Key: "c", Value: g.blob(8)}}
		case i%5 == 0:
			r.headers = []kgo.RecordHeader{{Key: "trace", Value: g.blob(16)}}
		}
		out[j] = r
	}
	return out
}

// newStampedProducer is a producer to partition 0 of topic with one compression codec, in
// batches well below the test segments' size, closed at the end of the test.
func newStampedProducer(t *testing.T, addr, topic string, codec kgo.CompressionCodec) *kgo.Client {
	t.Helper()
	return newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(2*time.Millisecond), kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerBatchCompression(codec))
}

// produceStamped produces recs and checks every ack: they must land at offsets first, first+1, ...
func produceStamped(t *testing.T, cl *kgo.Client, recs []stampedRecord, first int64) {
	t.Helper()
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: r.key, Value: r.value, Headers: r.headers, Timestamp: time.UnixMilli(r.ts)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	for i, res := range cl.ProduceSync(ctx, krs...) {
		if res.Err != nil {
			t.Fatalf("produce record %d: %v", first+int64(i), res.Err)
		}
		if res.Record.Offset != first+int64(i) {
			t.Fatalf("record %d acknowledged at offset %d", first+int64(i), res.Record.Offset)
		}
	}
}

// sameRecord compares a record read back with the one produced, byte for byte (null and empty
// are different).
func sameRecord(off int64, key, value []byte, headers []kgo.RecordHeader, ts int64, w stampedRecord) error {
	eq := func(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }
	if !eq(key, w.key) {
		return fmt.Errorf("offset %d: key %q (nil %v), want %q (nil %v)", off, key, key == nil, w.key, w.key == nil)
	}
	if !eq(value, w.value) {
		return fmt.Errorf("offset %d: value of %d bytes (nil %v), want %d bytes (nil %v)", off, len(value), value == nil, len(w.value), w.value == nil)
	}
	if ts != w.ts {
		return fmt.Errorf("offset %d: timestamp %d, want %d", off, ts, w.ts)
	}
	if len(headers) != len(w.headers) {
		return fmt.Errorf("offset %d: %d headers, want %d", off, len(headers), len(w.headers))
	}
	for i, h := range headers {
		if h.Key != w.headers[i].Key || !eq(h.Value, w.headers[i].Value) {
			return fmt.Errorf("offset %d: header %d is %q=%q (nil %v), want %q=%q (nil %v)", off, i,
				h.Key, h.Value, h.Value == nil, w.headers[i].Key, w.headers[i].Value, w.headers[i].Value == nil)
		}
	}
	return nil
}

// readStamped consumes partition 0 of topic starting at start (which must resolve to offset
// first) and compares every record up to the end of want (indexed by offset) byte for byte.
func readStamped(t *testing.T, addr, topic string, start kgo.Offset, first int64, want []stampedRecord) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: start}}),
		kgo.FetchMaxBytes(1<<20), kgo.FetchMaxPartitionBytes(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	next := first
	for next < int64(len(want)) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read up to offset %d of %d before the failure bound", next, len(want))
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d at %d: %v", tp, p, next, err) })
		for _, r := range fs.Records() {
			if r.Offset != next {
				t.Fatalf("got offset %d, want %d", r.Offset, next)
			}
			if err := sameRecord(r.Offset, r.Key, r.Value, r.Headers, r.Timestamp.UnixMilli(), want[next]); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
}

// metricInt reads an integer sample of /metrics.
func metricInt(t *testing.T, httpAddr, sample string) int64 {
	t.Helper()
	v, err := strconv.ParseFloat(metricValue(t, httpAddr, sample), 64)
	if err != nil {
		t.Fatalf("%s: %v", sample, err)
	}
	return int64(v)
}

// allUploadedLocalActiveOnly: every sealed segment is in the bucket from offset 0 (or from
// remoteStart when it is >= 0) and the local log holds only what is not uploaded: the active
// segment. hw is the high watermark.
func allUploadedLocalActiveOnly(hw, remoteStart int64) func(agent.TierStatusResponse) bool {
	return func(st agent.TierStatusResponse) bool {
		if len(st.Partitions) != 1 {
			return false
		}
		p := st.Partitions[0]
		return p.ManifestLoaded && p.RemoteSegments > 0 && p.BacklogSegs == 0 && p.LocalEnd == hw &&
			p.LocalStart == p.RemoteEnd && (remoteStart < 0 || p.RemoteStart == remoteStart)
	}
}

// bucketContents is what one partition's prefix in the bucket holds.
type bucketContents struct {
	manifest *manifest.Manifest
	orphans  []string      // objects that look like segment files but no manifest lists
	counts   map[int64]int // offset -> how many .log objects hold a record at it
	sizes    map[string]int64
}

// exactlyOnce checks that the .log objects hold every offset in [start, end) exactly once and
// nothing else.
func (b bucketContents) exactlyOnce(start, end int64) error {
	for o := start; o < end; o++ {
		if n := b.counts[o]; n != 1 {
			return fmt.Errorf("offset %d is in %d objects of the bucket", o, n)
		}
	}
	if extra := int64(len(b.counts)) - (end - start); extra != 0 {
		return fmt.Errorf("%d offsets outside [%d, %d) in the bucket", extra, start, end)
	}
	return nil
}

// inspectBucket lists partition 0 of topic in the bucket, reads its manifest, checks that every
// object the manifest lists is there with the size and CRC-32C the manifest gives, and parses
// every .log object (listed or not): each batch's CRC is checked and each record compared byte
// for byte with want (indexed by offset).
func (m *tierMinIO) inspectBucket(t *testing.T, topic string, want []stampedRecord) bucketContents {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	prefix := manifest.PartitionPrefix(faultPrefix, topic, 0) + "/"
	b := bucketContents{counts: map[int64]int{}, sizes: map[string]int64{}}
	for o := range m.cl.ListObjectsIter(ctx, faultBucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s: %v", prefix, o.Err)
		}
		b.sizes[o.Key] = o.Size
	}
	mkey := manifest.ManifestKey(faultPrefix, topic, 0)
	man, err := manifest.Decode(m.getObject(ctx, t, mkey))
	if err != nil {
		t.Fatalf("%s: %v", mkey, err)
	}
	b.manifest = man
	listed := map[string]manifest.SegmentMeta{}
	for _, s := range man.Segments {
		for _, ext := range []string{".log", ".index", ".timeindex"} {
			key := s.Key(faultPrefix, topic, 0, ext)
			listed[key] = s
			size, ok := b.sizes[key]
			wantSize := map[string]int64{".log": s.Size, ".index": s.IndexSize, ".timeindex": s.TimeIndexSize}[ext]
			switch {
			case !ok:
				t.Errorf("the manifest lists %s, which the bucket does not hold", key)
			case size != wantSize:
				t.Errorf("%s has %d bytes, the manifest says %d", key, size, wantSize)
			}
		}
	}
	keys := make([]string, 0, len(b.sizes))
	for k := range b.sizes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if key == mkey {
			continue
		}
		meta, isListed := listed[key]
		if !isListed {
			b.orphans = append(b.orphans, key)
		}
		if !strings.HasSuffix(key, ".log") {
			continue
		}
		data := m.getObject(ctx, t, key)
		if isListed && crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != meta.CRC32C {
			t.Errorf("%s: CRC-32C differs from the manifest's", key)
		}
		first, last, n := m.parseLogObject(t, key, data, want, b.counts)
		if isListed && (first != meta.BaseOffset || last != meta.LastOffset || n != meta.Records) {
			t.Errorf("%s holds offsets %d..%d (%d records); the manifest says %d..%d (%d)", key, first, last, n,
				meta.BaseOffset, meta.LastOffset, meta.Records)
		}
	}
	return b
}

// parseLogObject checks and decodes every batch of an uploaded .log object, counts its offsets
// and returns the first and last offset and the number of records.
func (m *tierMinIO) parseLogObject(t *testing.T, key string, data []byte, want []stampedRecord, counts map[int64]int) (first, last, n int64) {
	t.Helper()
	first, last = -1, -1
	err := batch.Split(data, func(b []byte) error {
		if _, err := batch.Validate(b); err != nil {
			return err
		}
		return batch.Records(b, func(r *batch.Record) error {
			if r.Offset < 0 || r.Offset >= int64(len(want)) {
				return fmt.Errorf("offset %d was never produced", r.Offset)
			}
			hs := make([]kgo.RecordHeader, len(r.Headers))
			for i, h := range r.Headers {
				hs[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
			}
			if err := sameRecord(r.Offset, r.Key, r.Value, hs, r.Timestamp, want[r.Offset]); err != nil {
				return err
			}
			if first < 0 {
				first = r.Offset
			}
			last = r.Offset
			n++
			counts[r.Offset]++
			return nil
		})
	})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return first, last, n
}

func (m *tierMinIO) getObject(ctx context.Context, t *testing.T, key string) []byte {
	t.Helper()
	obj, err := m.cl.GetObject(ctx, faultBucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return data
}

func hasKey(m map[string]int64, key string) bool {
	_, ok := m[key]
	return ok
}

// waitLocalSegments polls until the partition directory holds exactly n segments.
func waitLocalSegments(t *testing.T, dataDir, topic string, n int) {
	t.Helper()
	deadline := time.Now().Add(tierFailAfter)
	for {
		segs, err := segmentLogSizes(partitionDirOf(dataDir, topic))
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d local segments, want %d, after %s: %v", len(segs), n, tierFailAfter, sortedBases(segs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTieringTwoHundredThousandRecords is the case: 200k records (keys, headers, every
// codec, explicit timestamps) to a tiered topic with 256 KiB segments and a tiny
// local.retention.bytes; once everything sealed is uploaded only the active segment stays
// local; the bucket holds each record once, byte for byte; a consumer from offset 0 gets every
// record byte for byte, also after an agent restart.
func TestTieringTwoHundredThousandRecords(t *testing.T) {
	const (
		topic   = "cold200k"
		total   = 200_000
		perTurn = 2_500
	)
	mc := startTierMinIO(t)
	dir := t.TempDir()
	a := startAgent(t, dir, mc.agentConfig)
	createTieredTopic(t, a.KafkaAddr(), topic, map[string]string{"segment.bytes": "262144", "local.retention.bytes": "1"})

	base := time.Now().Add(-time.Hour).UnixMilli()
	gen := newRecordGen(200, func(i int) int64 { return base + int64(i)/4 + int64(i%7) - 3 }) // not monotonic
	// Every codec; gzip, lz4 and zstd (several times slower than the others under -race) in a
	// third of the turns.
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.SnappyCompression(), kgo.GzipCompression(),
		kgo.Lz4Compression(), kgo.ZstdCompression()}
	turns := []int{0, 1, 2, 0, 1, 3, 0, 1, 4}
	producers := make([]*kgo.Client, len(codecs))
	for i, c := range codecs {
		producers[i] = newStampedProducer(t, a.KafkaAddr(), topic, c)
	}
	want := make([]stampedRecord, 0, total)
	for turn := 0; len(want) < total; turn++ {
		recs := gen.take(perTurn)
		produceStamped(t, producers[turns[turn%len(turns)]], recs, int64(len(want)))
		want = append(want, recs...)
	}
	for _, p := range producers {
		p.Close()
	}

	st := waitTier(t, a.HTTPAddr(), topic, "all sealed segments uploaded, only the active one local",
		allUploadedLocalActiveOnly(total, 0))
	p := st.Partitions[0]
	t.Logf("tier status: local %d..%d (%d bytes), remote %d..%d in %d segments (%d bytes)",
		p.LocalStart, p.LocalEnd, p.LocalBytes, p.RemoteStart, p.RemoteEnd, p.RemoteSegments, p.RemoteBytes)
	waitLocalSegments(t, dir, topic, 1)

	b := mc.inspectBucket(t, topic, want)
	if len(b.orphans) > 0 {
		t.Errorf("objects no manifest lists: %v", b.orphans)
	}
	if err := b.exactlyOnce(0, p.RemoteEnd); err != nil {
		t.Error(err)
	}
	codecsSeen := map[string]bool{}
	for _, s := range b.manifest.Segments {
		for c := range strings.SplitSeq(s.Codecs, ",") {
			codecsSeen[c] = true
		}
	}
	t.Logf("bucket: %d objects, codecs in the manifest: %v", len(b.sizes), codecsSeen)

	readStamped(t, a.KafkaAddr(), topic, kgo.NewOffset().At(0), 0, want)
	if n := metricInt(t, a.HTTPAddr(), "samsa_tier_remote_reads_total"); n == 0 {
		t.Error("samsa_tier_remote_reads_total is 0 after reading from offset 0")
	}

	a.Shutdown(context.Background())
	a = startAgent(t, dir, mc.agentConfig)
	waitTier(t, a.HTTPAddr(), topic, "manifest read back after the restart", allUploadedLocalActiveOnly(total, 0))
	readStamped(t, a.KafkaAddr(), topic, kgo.NewOffset().At(0), 0, want)
}

// outageSample checks one tier status taken while MinIO is down: nothing local is dropped
// before it is uploaded.
func outageSample(t *testing.T, p tiering.PartitionStatus, uploadedBefore int64) {
	t.Helper()
	if p.LocalStart > p.RemoteEnd || uploadedBefore >= 0 && (p.LocalStart > uploadedBefore || p.RemoteEnd != uploadedBefore) {
		t.Fatalf("MinIO down: local %d..%d, remote end %d, uploaded before the outage %d: local data dropped before upload",
			p.LocalStart, p.LocalEnd, p.RemoteEnd, uploadedBefore)
	}
}

// TestTieringSurvivesMinIOOutage: MinIO is killed in the middle of a run. Producing carries
// on; the status shows a growing backlog and the error; the local log keeps everything not
// uploaded. MinIO comes back: the backlog drains, every record is in the bucket exactly once
// (no object the manifest does not list), and a consumer from offset 0 reads everything.
func TestTieringSurvivesMinIOOutage(t *testing.T) {
	const topic = "outage"
	mc := startTierMinIO(t)
	dir := t.TempDir()
	a := startAgent(t, dir, mc.agentConfig)
	createTieredTopic(t, a.KafkaAddr(), topic, map[string]string{"segment.bytes": "16384", "local.retention.bytes": "1"})
	prod := newStampedProducer(t, a.KafkaAddr(), topic, kgo.Lz4Compression())
	gen := newRecordGen(5, func(i int) int64 { return time.Now().UnixMilli() })
	var want []stampedRecord
	round := func() {
		recs := gen.take(300)
		produceStamped(t, prod, recs, int64(len(want)))
		want = append(want, recs...)
	}

	for range 3 {
		round()
	}
	waitTier(t, a.HTTPAddr(), topic, "uploaded before the outage", allUploadedLocalActiveOnly(int64(len(want)), 0))
	errs0 := metricInt(t, a.HTTPAddr(), "samsa_tier_errors_total")

	mc.srv.Stop()
	uploadedBefore, firstBacklog, rounds := int64(-1), 0, 0
	deadline := time.Now().Add(tierFailAfter)
	for {
		round() // acks keep coming while the bucket is gone
		rounds++
		p := tierStatus(t, a.HTTPAddr(), topic).Partitions[0]
		outageSample(t, p, uploadedBefore)
		if p.LastError != "" && uploadedBefore < 0 {
			uploadedBefore = p.RemoteEnd // no upload can succeed from here on
			t.Logf("first error after %d rounds: %s", rounds, p.LastError)
		}
		if uploadedBefore >= 0 && p.BacklogSegs > 0 && firstBacklog == 0 {
			firstBacklog = p.BacklogSegs
		}
		// Wait for a retry to fail too, and for the backlog to grow meanwhile.
		grown := firstBacklog > 0 && p.BacklogSegs > firstBacklog
		if grown && metricInt(t, a.HTTPAddr(), "samsa_tier_errors_total") >= errs0+2 {
			t.Logf("MinIO down: %d rounds produced; backlog %d segments (%d bytes), local %d..%d, remote end %d",
				rounds, p.BacklogSegs, p.BacklogBytes, p.LocalStart, p.LocalEnd, p.RemoteEnd)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO down: no error and growing backlog after %s: %+v", tierFailAfter, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := metricInt(t, a.HTTPAddr(), "samsa_tier_upload_lag_segments"); v == 0 {
		t.Error("samsa_tier_upload_lag_segments is 0 while MinIO is down")
	}
	// Nothing local was lost meanwhile: everything not uploaded reads back from the local log.
	p := tierStatus(t, a.HTTPAddr(), topic).Partitions[0]
	outageSample(t, p, uploadedBefore)
	readStamped(t, a.KafkaAddr(), topic, kgo.NewOffset().At(p.LocalStart), p.LocalStart, want)

	mc.srv.Restart(t)
	round()
	st := waitTier(t, a.HTTPAddr(), topic, "backlog drained after MinIO came back", allUploadedLocalActiveOnly(int64(len(want)), 0))
	if p := st.Partitions[0]; p.LastError != "" {
		t.Errorf("last_error %q after the backlog drained", p.LastError)
	}
	end := st.Partitions[0].RemoteEnd
	b := mc.inspectBucket(t, topic, want)
	if len(b.orphans) > 0 {
		// Leftovers of an interrupted upload are removed at the next start.
		t.Logf("objects no manifest lists (removed at the next start): %v", b.orphans)
		a.Shutdown(context.Background())
		a = startAgent(t, dir, mc.agentConfig)
		waitTier(t, a.HTTPAddr(), topic, "manifest read back", allUploadedLocalActiveOnly(int64(len(want)), 0))
		b = mc.inspectBucket(t, topic, want)
		if len(b.orphans) > 0 {
			t.Errorf("objects no manifest lists after a restart: %v", b.orphans)
		}
	}
	if err := b.exactlyOnce(0, end); err != nil {
		t.Error(err)
	}
	readStamped(t, a.KafkaAddr(), topic, kgo.NewOffset().At(0), 0, want)
}

// TestTieringCrashDuringUploads: a subprocess agent is killed with SIGKILL while it uploads,
// several times; after each restart uploads resume, leftovers are removed, and in the end the
// bucket holds every record exactly once and a consumer from offset 0 reads everything.
func TestTieringCrashDuringUploads(t *testing.T) {
	const topic = "crashy"
	mc := startTierMinIO(t)
	cfgFile, dir := mc.yamlConfig(t), t.TempDir()
	start := func() *agentProcess {
		cmd := exec.Command(samsaBinary(t), "agent", "--config", cfgFile, "--data-dir", dir,
			"--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
		p := startProcess(t, cmd)
		t.Cleanup(func() { p.cmd.Process.Kill() })
		return p
	}
	p := start()
	createTieredTopic(t, p.kafkaAddr, topic, map[string]string{"segment.bytes": "16384", "local.retention.bytes": "1"})
	gen := newRecordGen(9, func(i int) int64 { return time.Now().UnixMilli() })
	var want []stampedRecord
	midUpload, removed := 0, 0
	for cycle := range 4 {
		prod := newStampedProducer(t, p.kafkaAddr, topic, kgo.SnappyCompression())
		recs := gen.take(3000)
		produceStamped(t, prod, recs, int64(len(want)))
		want = append(want, recs...)
		prod.Close()
		// Kill as soon as uploads are under way and some are still to do.
		before := tierStatus(t, p.httpAddr, topic).Partitions[0].RemoteSegments
		deadline := time.Now().Add(tierFailAfter)
		for {
			st := tierStatus(t, p.httpAddr, topic).Partitions[0]
			if st.RemoteSegments > before && st.BacklogSegs > 0 {
				midUpload++
				break
			}
			if st.BacklogSegs == 0 && st.RemoteSegments > 0 {
				break // all uploaded before the kill came
			}
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: no upload after %s: %+v", cycle, tierFailAfter, st)
			}
			time.Sleep(5 * time.Millisecond)
		}
		p.kill9(t)
		removed += countLines(p.Logs(), "removed an object no manifest lists")
		p = start()
		waitTier(t, p.httpAddr, topic, "manifest read back after kill -9", func(st agent.TierStatusResponse) bool {
			return len(st.Partitions) == 1 && st.Partitions[0].ManifestLoaded
		})
	}
	st := waitTier(t, p.httpAddr, topic, "everything uploaded", allUploadedLocalActiveOnly(int64(len(want)), 0))
	removed += countLines(p.Logs(), "removed an object no manifest lists")
	t.Logf("%d of 4 kills came while uploads were under way; %d leftover objects removed at restarts", midUpload, removed)
	b := mc.inspectBucket(t, topic, want)
	if len(b.orphans) > 0 {
		t.Errorf("objects no manifest lists after the restart: %v", b.orphans)
	}
	if err := b.exactlyOnce(0, st.Partitions[0].RemoteEnd); err != nil {
		t.Error(err)
	}
	readStamped(t, p.kafkaAddr, topic, kgo.NewOffset().At(0), 0, want)
	if err := p.stop(t); err != nil {
		t.Errorf("agent exit: %v\n%s", err, p.Logs())
	}
}

// countLines counts the lines of logs that contain s.
func countLines(logs, s string) int {
	n := 0
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// TestTieringRestartWhileMinIODown: the agent restarts while the bucket cannot be reached, so
// it cannot read the manifest. It must not answer as if the partition started at the local
// log start: a Fetch below it must not be OFFSET_OUT_OF_RANGE and ListOffsets earliest must not
// be the local start (either makes a consumer with auto.offset.reset=earliest, or a group whose
// committed offset is in the bucket, skip every record that is only in the bucket). A
// retriable error is fine. Once MinIO is back, a consumer from offset 0 reads everything.
func TestTieringRestartWhileMinIODown(t *testing.T) {
	const topic = "restart-down"
	mc := startTierMinIO(t)
	dir := t.TempDir()
	a := startAgent(t, dir, mc.agentConfig)
	createTieredTopic(t, a.KafkaAddr(), topic, map[string]string{"segment.bytes": "16384", "local.retention.bytes": "1"})
	want := newRecordGen(21, func(int) int64 { return time.Now().UnixMilli() }).take(2000)
	produceStamped(t, newStampedProducer(t, a.KafkaAddr(), topic, kgo.NoCompression()), want, 0)
	st := waitTier(t, a.HTTPAddr(), topic, "uploaded", allUploadedLocalActiveOnly(int64(len(want)), 0))
	localStart := st.Partitions[0].LocalStart
	a.Shutdown(context.Background())

	mc.srv.Stop()
	a = startAgent(t, dir, mc.agentConfig)
	waitTier(t, a.HTTPAddr(), topic, "the manifest read failed", func(st agent.TierStatusResponse) bool {
		return len(st.Partitions) == 1 && st.Partitions[0].LastError != ""
	})
	retriable := func(code int16) bool {
		var ke *kerr.Error
		return errors.As(kerr.ErrorForCode(code), &ke) && ke.Retriable
	}
	cl := newClient(t, a.KafkaAddr())
	if got, _ := listOffsetRaw(t, cl, topic, -2); !(got.ErrorCode == 0 && got.Offset == 0 || retriable(got.ErrorCode)) {
		t.Errorf("MinIO down after a restart: ListOffsets earliest = offset %d (error %d; the local start is %d), "+
			"want 0 or a retriable error", got.Offset, got.ErrorCode, localStart)
	}
	tds, err := adminOf(t, a.KafkaAddr()).ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	if got := rawFetch(t, ctx, cl, topic, tds[topic].ID, 0); got.ErrorCode == kerr.OffsetOutOfRange.Code {
		t.Errorf("MinIO down after a restart: Fetch at offset 0 = OFFSET_OUT_OF_RANGE (log start %d), "+
			"though offsets 0..%d are in the bucket", got.LogStartOffset, localStart-1)
	}

	mc.srv.Restart(t)
	waitTier(t, a.HTTPAddr(), topic, "manifest read once MinIO is back", allUploadedLocalActiveOnly(int64(len(want)), 0))
	readStamped(t, a.KafkaAddr(), topic, kgo.NewOffset().At(0), 0, want)
}

// startOffsetOf is ListOffsets earliest (-2) of partition 0 through kadm.
func startOffsetOf(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	o, err := startOffset(ctx, adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestTieringRetentionAcrossTiers: retention.ms and retention.bytes delete uploaded segments
// from the manifest and the bucket; ListOffsets earliest moves past them and a consumer from
// the earliest offset gets exactly the records kept.
func TestTieringRetentionAcrossTiers(t *testing.T) {
	mc := startTierMinIO(t)
	dir := t.TempDir()
	a := startAgent(t, dir, mc.agentConfig)
	adm := adminOf(t, a.KafkaAddr())

	t.Run("retention.ms", func(t *testing.T) {
		const topic = "expiring"
		// Nothing expires until everything is uploaded; then retention.ms drops to a day and
		// the records from two days ago, only in the bucket by now, expire.
		createTieredTopic(t, a.KafkaAddr(), topic, map[string]string{"segment.bytes": "16384",
			"local.retention.bytes": "1", "retention.ms": "-1"})
		now := time.Now()
		old, recent := now.Add(-48*time.Hour).UnixMilli(), now.Add(-time.Minute).UnixMilli()
		const nOld, nNew = 2000, 2000
		gen := newRecordGen(11, func(i int) int64 {
			if i < nOld {
				return old + int64(i)
			}
			return recent + int64(i)
		})
		want := gen.take(nOld + nNew)
		produceStamped(t, newStampedProducer(t, a.KafkaAddr(), topic, kgo.ZstdCompression()), want, 0)
		waitTier(t, a.HTTPAddr(), topic, "uploaded", allUploadedLocalActiveOnly(nOld+nNew, 0))

		cutoff := now.Add(-24 * time.Hour).UnixMilli()
		before := mc.inspectBucket(t, topic, want).manifest
		keep := int64(-1) // base of the first segment with a record newer than the cutoff
		var expired []manifest.SegmentMeta
		for _, s := range before.Segments {
			if s.MaxTimestamp >= cutoff {
				keep = s.BaseOffset
				break
			}
			expired = append(expired, s)
		}
		if keep <= 0 || keep > nOld {
			t.Fatalf("first unexpired segment at %d, want in (0, %d]: %+v", keep, nOld, before.Segments)
		}
		deleted0 := metricInt(t, a.HTTPAddr(), "samsa_tier_remote_deleted_segments_total")
		ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
		defer cancel()
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("86400000")}}, topic)
		if err == nil {
			_, err = rs.On(topic, nil)
		}
		if err != nil {
			t.Fatalf("alter retention.ms: %v", err)
		}

		waitTier(t, a.HTTPAddr(), topic, "expired segments gone from the manifest", allUploadedLocalActiveOnly(nOld+nNew, keep))
		b := mc.inspectBucket(t, topic, want)
		if s := b.manifest.Segments[0]; s.BaseOffset != keep || b.manifest.StartOffset() != keep {
			t.Errorf("manifest starts at segment %d (start offset %d), want %d", s.BaseOffset, b.manifest.StartOffset(), keep)
		}
		for _, s := range expired {
			for _, ext := range []string{".log", ".index", ".timeindex"} {
				if key := s.Key(faultPrefix, topic, 0, ext); hasKey(b.sizes, key) {
					t.Errorf("expired %s is still in the bucket", key)
				}
			}
		}
		if len(b.orphans) > 0 {
			t.Errorf("objects no manifest lists: %v", b.orphans)
		}
		if err := b.exactlyOnce(keep, b.manifest.EndOffset()); err != nil {
			t.Error(err)
		}
		if got := metricInt(t, a.HTTPAddr(), "samsa_tier_remote_deleted_segments_total") - deleted0; got != int64(len(expired)) {
			t.Errorf("samsa_tier_remote_deleted_segments_total grew by %d, want %d", got, len(expired))
		}
		if got := startOffsetOf(t, adm, topic); got != keep {
			t.Errorf("ListOffsets earliest %d, want %d", got, keep)
		}
		readStamped(t, a.KafkaAddr(), topic, kgo.NewOffset().AtStart(), keep, want)
	})

	t.Run("retention.bytes", func(t *testing.T) {
		const (
			topic     = "bounded"
			retention = 256 << 10
			maxSeg    = 16384 + 16<<10 // segment.bytes plus one batch
		)
		createTieredTopic(t, a.KafkaAddr(), topic, map[string]string{"segment.bytes": "16384",
			"local.retention.bytes": "1", "retention.bytes": strconv.Itoa(retention)})
		gen := newRecordGen(12, func(i int) int64 { return time.Now().UnixMilli() })
		prod := newStampedProducer(t, a.KafkaAddr(), topic, kgo.NoCompression())
		var want []stampedRecord
		for range 8 {
			recs := gen.take(1000)
			produceStamped(t, prod, recs, int64(len(want)))
			want = append(want, recs...)
		}
		// Once everything is uploaded, remote plus local (only the active segment) is within
		// retention.bytes plus one segment. (While uploads and local deletes are under way the
		// status counts a segment both uploaded and not yet dropped locally twice.)
		st := waitTier(t, a.HTTPAddr(), topic, "within retention.bytes", func(st agent.TierStatusResponse) bool {
			p := st.Partitions[0]
			return allUploadedLocalActiveOnly(int64(len(want)), -1)(st) && p.RemoteStart > 0 &&
				p.RemoteBytes+p.LocalBytes <= retention+maxSeg
		})
		p := st.Partitions[0]
		t.Logf("remote %d..%d (%d bytes in %d segments), local %d..%d (%d bytes)", p.RemoteStart, p.RemoteEnd,
			p.RemoteBytes, p.RemoteSegments, p.LocalStart, p.LocalEnd, p.LocalBytes)
		if p.RemoteBytes+p.LocalBytes < retention {
			t.Errorf("%d bytes kept, below retention.bytes %d", p.RemoteBytes+p.LocalBytes, retention)
		}
		b := mc.inspectBucket(t, topic, want)
		if len(b.orphans) > 0 {
			t.Errorf("objects of deleted segments still in the bucket: %v", b.orphans)
		}
		if err := b.exactlyOnce(p.RemoteStart, p.RemoteEnd); err != nil {
			t.Error(err)
		}
		if got := startOffsetOf(t, adm, topic); got != p.RemoteStart {
			t.Errorf("ListOffsets earliest %d, want the remote start %d", got, p.RemoteStart)
		}
		readStamped(t, a.KafkaAddr(), topic, kgo.NewOffset().AtStart(), p.RemoteStart, want)
	})
}

// listOffsetRaw sends one ListOffsets request for partition 0 of topic with the special or
// real timestamp ts and returns the partition's answer and the version it went at.
func listOffsetRaw(t *testing.T, cl *kgo.Client, topic string, ts int64) (kmsg.ListOffsetsResponseTopicPartition, int16) {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ListOffsets %d: %v", ts, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets %d: %+v", ts, resp)
	}
	return resp.Topics[0].Partitions[0], resp.Version
}

// firstAtOrAfter is what a timestamp lookup must answer: the first offset whose timestamp is at
// or after ts, and that timestamp; len(want), -1 when there is none.
func firstAtOrAfter(want []stampedRecord, ts int64) (int64, int64) {
	for i, r := range want {
		if r.ts >= ts {
			return int64(i), r.ts
		}
	}
	return int64(len(want)), -1
}

// TestTieringListOffsets: against a tiered topic whose older segments are only in the bucket,
// ListOffsets answers -2 (earliest: the remote start), -4 (earliest local, KIP-405), -5 (latest
// tiered, KIP-1005) and -1 at v9, and finds by timestamp offsets that only remote segments
// hold. Timestamps are not monotonic (some records are early, some late), so a lookup must
// find an early record before the time index's entries reach its time.
func TestTieringListOffsets(t *testing.T) {
	const (
		topic = "listed"
		n     = 4000
	)
	mc := startTierMinIO(t)
	a := startAgent(t, t.TempDir(), mc.agentConfig)
	createTieredTopic(t, a.KafkaAddr(), topic, map[string]string{"segment.bytes": "16384", "local.retention.bytes": "1"})
	base := time.Now().Add(-time.Hour).UnixMilli()
	gen := newRecordGen(4, func(i int) int64 {
		ts := base + int64(i/2)*10 // pairs of records share a timestamp
		switch i % 10 {
		case 3:
			ts += 700 // early: ahead of the next 140 records
		case 7:
			ts -= 700 // late
		}
		return ts
	})
	want := gen.take(n)
	produceStamped(t, newStampedProducer(t, a.KafkaAddr(), topic, kgo.GzipCompression()), want, 0)
	st := waitTier(t, a.HTTPAddr(), topic, "uploaded", allUploadedLocalActiveOnly(n, 0))
	p := st.Partitions[0]
	if p.LocalStart < n/2 || p.LocalStart >= n {
		t.Fatalf("local start %d: want most of the log only in the bucket", p.LocalStart)
	}
	t.Logf("remote %d..%d in %d segments, local %d..%d", p.RemoteStart, p.RemoteEnd, p.RemoteSegments, p.LocalStart, p.LocalEnd)

	cl := newClient(t, a.KafkaAddr())
	for _, c := range []struct {
		name string
		ts   int64
		want int64
	}{
		{"earliest (-2): the remote start", -2, 0},
		{"earliest local (-4)", -4, p.LocalStart},
		{"latest tiered (-5)", -5, p.RemoteEnd - 1},
		{"latest (-1)", -1, n},
	} {
		got, version := listOffsetRaw(t, cl, topic, c.ts)
		if version != 9 {
			t.Errorf("ListOffsets went at v%d, want v9", version)
		}
		if got.ErrorCode != 0 || got.Offset != c.want {
			t.Errorf("%s: offset %d (error %d), want %d", c.name, got.Offset, got.ErrorCode, c.want)
		}
	}

	// Timestamp lookups over the whole log, most of them answered from the bucket.
	var probes []int64
	for j := int64(0); j < n; j += 37 {
		probes = append(probes, j)
	}
	probes = append(probes, p.LocalStart-2, p.LocalStart-1, p.LocalStart, p.LocalStart+1, n-1)
	remoteAnswers := 0
	for _, j := range probes {
		for _, ts := range []int64{want[j].ts - 1, want[j].ts, want[j].ts + 1} {
			wantOff, wantTs := firstAtOrAfter(want, ts)
			if wantOff == n {
				wantOff = -1 // the raw answer when no record is at or after ts
			}
			got, _ := listOffsetRaw(t, cl, topic, ts)
			if got.ErrorCode != 0 || got.Offset != wantOff || got.Timestamp != wantTs {
				t.Errorf("ListOffsets(%d): offset %d timestamp %d (error %d), want offset %d timestamp %d",
					ts, got.Offset, got.Timestamp, got.ErrorCode, wantOff, wantTs)
			}
			if wantOff >= 0 && wantOff < p.LocalStart {
				remoteAnswers++
			}
		}
	}
	if remoteAnswers < len(probes) {
		t.Errorf("only %d lookups were answered from the bucket", remoteAnswers)
	}

	adm := adminOf(t, a.KafkaAddr())
	early := int64(13) // i%10 == 3: early
	for _, c := range []struct {
		name string
		ts   int64
	}{
		{"before every record", base - 5000},
		{"an early record's time, only in the bucket", want[early].ts},
		{"a time only remote segments cover", want[p.LocalStart/2].ts},
		{"the last remote record's time", want[p.LocalStart-1].ts},
		{"a time after every record", want[n-1].ts + 5000},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
		offs, err := adm.ListOffsetsAfterMilli(ctx, c.ts, topic)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		o, ok := offs.Lookup(topic, 0)
		if wantOff, wantTs := firstAtOrAfter(want, c.ts); !ok || o.Err != nil || o.Offset != wantOff || wantTs >= 0 && o.Timestamp != wantTs {
			t.Errorf("%s: ListOffsetsAfterMilli(%d) = %+v, want offset %d timestamp %d", c.name, c.ts, o, wantOff, wantTs)
		}
	}
}
