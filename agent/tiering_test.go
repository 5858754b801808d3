package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/internal/testminio"
)

// tierFailAfter bounds every wait of the tiering tests: a failure bound, not a timing claim.
const tierFailAfter = 90 * time.Second

// tierStatus reads GET /v1/tier/status?topic=topic (200 expected).
func tierStatus(t *testing.T, httpAddr, topic string) agent.TierStatusResponse {
	t.Helper()
	code, body := httpGet(t, "http://"+httpAddr+"/v1/tier/status?topic="+topic)
	if code != 200 {
		t.Fatalf("GET /v1/tier/status: %d %s", code, body)
	}
	var st agent.TierStatusResponse
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return st
}

// waitTier polls the tier status of topic until every partition satisfies ok.
func waitTier(t *testing.T, httpAddr, topic, what string, ok func(p agent.TierStatusResponse) bool) agent.TierStatusResponse {
	t.Helper()
	deadline := time.Now().Add(tierFailAfter)
	for {
		st := tierStatus(t, httpAddr, topic)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %+v", what, tierFailAfter, st.Partitions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// uploadedAndTrimmed: something is in object storage from offset 0, nothing waits for upload,
// and the local log no longer starts at 0 and holds at most localMax bytes.
func uploadedAndTrimmed(hw, localMax int64) func(agent.TierStatusResponse) bool {
	return func(st agent.TierStatusResponse) bool {
		if len(st.Partitions) == 0 {
			return false
		}
		for _, p := range st.Partitions {
			if p.RemoteSegments == 0 || p.RemoteStart != 0 || p.BacklogSegs != 0 || p.LocalStart == 0 ||
				p.RemoteEnd < p.LocalStart || p.LocalEnd != hw || p.LocalBytes > localMax {
				return false
			}
		}
		return true
	}
}

// tierRecord is what a test produced, to compare byte for byte with what it reads back.
type tierRecord struct {
	key, value []byte
	headers    []kgo.RecordHeader
}

// produceTierRecords produces n records of random binary content (sizes vary, some keys and
// values null) to partition 0 of topic and returns them in offset order.
func produceTierRecords(t *testing.T, addr, topic string, n int, seed uint64) []tierRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(16<<10), // batches well below segment.bytes
		kgo.ProducerBatchCompression(kgo.SnappyCompression(), kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	blob := func(max int) []byte {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	recs := make([]tierRecord, n)
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	for i := range recs {
		r := tierRecord{key: fmt.Appendf(nil, "key-%06d", i), value: blob(300)}
		if i%97 == 0 {
			r.key = nil
		}
		if i%89 == 0 {
			r.value = nil
		}
		if i%7 == 0 {
			r.headers = []kgo.RecordHeader{{Key: "h", Value: blob(20)}}
		}
		recs[i] = r
		cl.Produce(ctx, &kgo.Record{Key: r.key, Value: r.value, Headers: r.headers}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return recs
}

// readAllFromZero consumes partition 0 of topic from offset 0 and compares every record with
// want, byte for byte, at its offset.
func readAllFromZero(t *testing.T, addr, topic string, want []tierRecord) {
	t.Helper()
	readAllFrom(t, addr, topic, want, 0)
}

// readAllFrom consumes partition 0 of topic from offset from (without a reset policy, so a
// start that is out of range fails the test) and compares every record with want[from:].
func readAllFrom(t *testing.T, addr, topic string, want []tierRecord, from int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(int64(from))}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxBytes(1<<20), kgo.FetchMaxPartitionBytes(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), tierFailAfter)
	defer cancel()
	next := from
	for next < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records before the failure bound", next, len(want))
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d at %d: %v", tp, p, next, err) })
		for _, r := range fs.Records() {
			if r.Offset != int64(next) {
				t.Fatalf("got offset %d, want %d", r.Offset, next)
			}
			w := want[next]
			if !bytes.Equal(r.Key, w.key) || (r.Key == nil) != (w.key == nil) ||
				!bytes.Equal(r.Value, w.value) || (r.Value == nil) != (w.value == nil) || len(r.Headers) != len(w.headers) {
				t.Fatalf("offset %d: key %q value %d bytes (nil %v), want key %q value %d bytes (nil %v)",
					next, r.Key, len(r.Value), r.Value == nil, w.key, len(w.value), w.value == nil)
			}
			for i, h := range r.Headers {
				if h.Key != w.headers[i].Key || !bytes.Equal(h.Value, w.headers[i].Value) {
					t.Fatalf("offset %d: header %d differs", next, i)
				}
			}
			next++
		}
	}
}

// createTieredTopic creates a one-partition topic with remote.storage.enable=true and the
// extra configs.
func createTieredTopic(t *testing.T, addr, topic string, configs map[string]string) {
	t.Helper()
	cfg := map[string]*string{"remote.storage.enable": new("true")}
	for k, v := range configs {
		cfg[k] = &v
	}
	resp, err := adminOf(t, addr).CreateTopic(context.Background(), 1, 1, cfg, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
}

// testTieredRoundTrip: records of a tiered topic with small segments and a small
// local.retention.bytes are uploaded and dropped locally; a consumer from offset 0 gets every
// one byte for byte, also after an agent restart (which reads the manifest back).
func testTieredRoundTrip(t *testing.T, tiering agent.TieringConfig, records int, inBucket func() []string) {
	dir := t.TempDir()
	mutate := func(c *agent.Config) {
		c.Tiering = tiering
		c.RetentionCheckInterval = agent.Duration(100 * time.Millisecond)
	}
	a := startAgent(t, dir, mutate)
	const topic = "cold"
	createTieredTopic(t, a.KafkaAddr(), topic, map[string]string{"segment.bytes": "65536", "local.retention.bytes": "131072"})
	want := produceTierRecords(t, a.KafkaAddr(), topic, records, 1)
	// Locally: at most local.retention.bytes, plus the segment that would cross it, plus the
	// active one (a segment may pass segment.bytes by a batch of at most 16 KiB).
	hw, localMax := int64(len(want)), int64(131072+2*(65536+16384))
	st := waitTier(t, a.HTTPAddr(), topic, "uploaded and trimmed locally", uploadedAndTrimmed(hw, localMax))
	p := st.Partitions[0]
	t.Logf("tier status: local %d..%d (%d bytes), remote %d..%d in %d segments (%d bytes)",
		p.LocalStart, p.LocalEnd, p.LocalBytes, p.RemoteStart, p.RemoteEnd, p.RemoteSegments, p.RemoteBytes)
	keys := inBucket()
	if !containsSuffix(keys, "cold/0/manifest.json") || len(keys) < 3*p.RemoteSegments+1 {
		t.Errorf("objects in the store: %d (%v...), want a manifest and 3 per segment", len(keys), keys[:min(len(keys), 5)])
	}
	if v := metricValue(t, a.HTTPAddr(), "samsa_tier_upload_lag_segments"); v != "0" {
		t.Errorf("upload lag %s", v)
	}
	readAllFromZero(t, a.KafkaAddr(), topic, want)

	a.Shutdown(context.Background())
	a = startAgent(t, dir, mutate)
	readAllFromZero(t, a.KafkaAddr(), topic, want)
	waitTier(t, a.HTTPAddr(), topic, "manifest read back after the restart", uploadedAndTrimmed(hw, localMax))
	if v := metricValue(t, a.HTTPAddr(), "samsa_tier_store_reachable"); v != "1" {
		t.Errorf("samsa_tier_store_reachable %s", v)
	}
}

func containsSuffix(keys []string, suffix string) bool {
	for _, k := range keys {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// TestTieredRoundTripMinIO runs the round trip against a real MinIO server.
func TestTieredRoundTripMinIO(t *testing.T) {
	srv := testminio.Start(t)
	srv.CreateBucket(t, "samsa-archive")
	testTieredRoundTrip(t, agent.TieringConfig{
		Endpoint:        srv.Endpoint,
		Bucket:          "samsa-archive",
		Prefix:          "site-a/gw-1",
		Region:          "us-east-1",
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: agent.Secret(srv.SecretKey),
		CacheBytes:      16 << 20,
	}, 30000, func() []string {
		c, err := srv.Client()
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for o := range c.ListObjectsIter(context.Background(), "samsa-archive", minio.ListObjectsOptions{Prefix: "site-a/gw-1/", Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			keys = append(keys, o.Key)
		}
		return keys
	})
}

// TestTieredRoundTripDirectory runs the round trip against a file:// endpoint.
func TestTieredRoundTripDirectory(t *testing.T) {
	archive := t.TempDir()
	testTieredRoundTrip(t, agent.TieringConfig{Endpoint: "file://" + archive, Bucket: "bkt", CacheBytes: 16 << 20}, 10000,
		func() []string { return filesUnder(t, filepath.Join(archive, "bkt")) })
}

func filesUnder(t *testing.T, root string) []string {
	t.Helper()
	var keys []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestTieringUnreachableBucket: an endpoint nobody answers on is a warning and a metric, not
// a refusal to start; produce goes on, the backlog and the error show in the status, and the
// secret appears nowhere.
func TestTieringUnreachableBucket(t *testing.T) {
	const secret = "very-secret-key-0123456789"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close()
	var logs logBuffer
	cfg := agent.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Tiering = agent.TieringConfig{Endpoint: endpoint, Bucket: "nowhere", AccessKeyID: "id", SecretAccessKey: secret,
		CacheBytes: 16 << 20}
	a, err := agent.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("the agent refused to start: %v", err)
	}
	defer a.Shutdown(context.Background())
	createTieredTopic(t, a.KafkaAddr(), "q", map[string]string{"segment.bytes": "4096"})
	want := produceTierRecords(t, a.KafkaAddr(), "q", 500, 2)

	st := waitTier(t, a.HTTPAddr(), "q", "backlog and last error", func(st agent.TierStatusResponse) bool {
		return len(st.Partitions) == 1 && st.Partitions[0].BacklogSegs > 0 && st.Partitions[0].LastError != ""
	})
	if p := st.Partitions[0]; p.LocalStart != 0 || p.LocalEnd != 500 || p.RemoteSegments != 0 {
		t.Errorf("status %+v", p)
	}
	deadline := time.Now().Add(tierFailAfter)
	for !strings.Contains(logs.String(), "the bucket cannot be reached") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the bucket:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := metricValue(t, a.HTTPAddr(), "samsa_tier_store_reachable"); v != "0" {
		t.Errorf("samsa_tier_store_reachable %s", v)
	}
	if v := metricValue(t, a.HTTPAddr(), "samsa_tier_upload_lag_segments"); v == "0" {
		t.Errorf("samsa_tier_upload_lag_segments %s", v)
	}
	_, body := httpGet(t, "http://"+a.HTTPAddr()+"/v1/tier/status")
	if strings.Contains(logs.String(), secret) || strings.Contains(body, secret) {
		t.Fatal("the secret access key was logged or served")
	}
	readAllFromZero(t, a.KafkaAddr(), "q", want) // nothing was dropped locally
}

// TestTieringDiskPressureDropsUploadedSegments: while the disk guard refuses writes, a tiered
// topic drops its local copies of uploaded segments (beyond its local retention), and
// everything stays readable from offset 0.
func TestTieringDiskPressureDropsUploadedSegments(t *testing.T) {
	dir, archive := t.TempDir(), t.TempDir()
	tiering := func(c *agent.Config) {
		c.Tiering = agent.TieringConfig{Endpoint: "file://" + archive, CacheBytes: 16 << 20}
		c.RetentionCheckInterval = agent.Duration(time.Hour) // only the guard's kicks run retention
		c.Disk.CheckInterval = agent.Duration(50 * time.Millisecond)
	}
	a := startAgent(t, dir, tiering)
	createTieredTopic(t, a.KafkaAddr(), "p", map[string]string{"segment.bytes": "16384"})
	want := produceTierRecords(t, a.KafkaAddr(), "p", 3000, 3)
	waitTier(t, a.HTTPAddr(), "p", "uploaded", func(st agent.TierStatusResponse) bool {
		p := st.Partitions[0]
		return p.RemoteSegments > 0 && p.BacklogSegs == 0
	})
	if p := tierStatus(t, a.HTTPAddr(), "p").Partitions[0]; p.LocalStart != 0 {
		t.Fatalf("local copies dropped without pressure: %+v", p)
	}
	a.Shutdown(context.Background())

	// The same agent on a "full" disk: the guard refuses from the start.
	a = startAgent(t, dir, func(c *agent.Config) {
		tiering(c)
		c.Disk.MinFreeBytes = 1 << 50
	})
	if v := metricValue(t, a.HTTPAddr(), `samsa_disk_writes_refused{path="`+dir+`"}`); v != "1" {
		t.Fatalf("samsa_disk_writes_refused %s: the guard does not refuse", v)
	}
	st := waitTier(t, a.HTTPAddr(), "p", "local copies dropped under pressure", func(st agent.TierStatusResponse) bool {
		p := st.Partitions[0]
		return p.LocalStart > 0 && p.RemoteEnd >= p.LocalStart
	})
	t.Logf("under pressure: %+v", st.Partitions[0])
	readAllFromZero(t, a.KafkaAddr(), "p", want)
}

// waitMetric polls /metrics until the sample has the value.
func waitMetric(t *testing.T, httpAddr, sample, want string) {
	t.Helper()
	deadline := time.Now().Add(tierFailAfter)
	for {
		v := metricValue(t, httpAddr, sample)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s, not %s after %s", sample, v, want, tierFailAfter)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTieringCredentials: without keys in the config the standard AWS_* variables are used;
// wrong keys are a warning and a metric, not a refusal to start; no keys at all is a
// configuration error.
func TestTieringCredentials(t *testing.T) {
	srv := testminio.Start(t)
	srv.CreateBucket(t, "creds")
	tc := agent.TieringConfig{Endpoint: srv.Endpoint, Bucket: "creds", CacheBytes: 16 << 20}

	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Tiering = tc })
	waitMetric(t, a.HTTPAddr(), "samsa_tier_store_reachable", "1")
	a.Shutdown(context.Background())

	const wrong = "not-the-secret-key-42"
	t.Setenv("AWS_SECRET_ACCESS_KEY", wrong)
	var logs logBuffer
	cfg := agent.DefaultConfig()
	cfg.DataDir, cfg.KafkaAddr, cfg.HTTPAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.Tiering = tc
	a, err := agent.New(cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("wrong keys refused the start: %v", err)
	}
	defer a.Shutdown(context.Background())
	deadline := time.Now().Add(tierFailAfter)
	for !strings.Contains(logs.String(), "the bucket cannot be reached") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := metricValue(t, a.HTTPAddr(), "samsa_tier_store_reachable"); v != "0" {
		t.Errorf("samsa_tier_store_reachable %s with wrong keys", v)
	}
	if strings.Contains(logs.String(), wrong) {
		t.Errorf("the secret is in the log:\n%s", logs.String())
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	cfg.DataDir = t.TempDir()
	b, err := agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start()
	if err == nil {
		b.Shutdown(context.Background())
		t.Fatal("no credentials anywhere, yet the agent started")
	}
	if !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") || !strings.Contains(err.Error(), "tiering.access_key_id") {
		t.Errorf("error %q does not say where keys come from", err)
	}
}
