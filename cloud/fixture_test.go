package cloud_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/cloud"
	"github.com/samsa-io/samsa/internal/testminio"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// failAfter bounds every wait of these tests: a failure bound, not a timing claim.
const failAfter = 120 * time.Second

// produced is a record as the test produced it, with the offset the agent gave it.
type produced struct {
	partition int32
	offset    int64
	ts        int64 // milliseconds
	key       []byte
	value     []byte
	headers   []kgo.RecordHeader
}

// archive is a bucket with segments a real agent uploaded, and what was produced to them.
type archive struct {
	srv      *testminio.Server
	bucket   string
	prefix   string
	topic    string
	records  []produced                   // archived records, by partition then offset
	all      []produced                   // every produced record, archived or not
	manifest map[int32]*manifest.Manifest // per partition, after the agent stopped
}

// archiveSpec says what to produce.
type archiveSpec struct {
	partitions   int32
	perPartition int
	segmentBytes int
	base         time.Time     // timestamp of the first record
	step         time.Duration // between consecutive records of a partition
	lateEvery    int           // every lateEvery-th record is `late` older than its place (0: never)
	late         time.Duration
	seed         uint64
}

// makeRecord builds record i of a partition: text and binary keys and values, nulls, headers
// (text, binary, repeated), timestamps rising by step with some late ones.
func makeRecord(spec archiveSpec, rng *rand.Rand, p int32, i int) produced {
	r := produced{partition: p, ts: spec.base.Add(time.Duration(i) * spec.step).UnixMilli()}
	if spec.lateEvery > 0 && i%spec.lateEvery == spec.lateEvery-1 {
		r.ts -= spec.late.Milliseconds()
	}
	switch {
	case i%89 == 5:
		r.key = nil
	case i%11 == 3:
		r.key = []byte{0xff, 0x00, byte(i % 3), 0xfe} // not UTF-8; three distinct binary keys
	case i%23 == 0:
		r.key = []byte{} // empty, not null
	default:
		r.key = fmt.Appendf(nil, "device-%d", i%13)
	}
	switch {
	case i%97 == 7:
		r.value = nil
	case i%5 == 0:
		r.value = make([]byte, 20+rng.IntN(200))
		for j := range r.value {
			r.value[j] = byte(rng.Uint32())
		}
	default:
		r.value = fmt.Appendf(nil, `{"n":%d,"temp":%.2f,"note":"line\nbreak \"q\" ü"}`, i, rng.Float64()*40)
	}
	if i%7 == 0 {
		r.headers = append(r.headers, kgo.RecordHeader{Key: "source", Value: []byte("sensor")})
	}
	if i%14 == 0 {
		r.headers = append(r.headers, kgo.RecordHeader{Key: "sig", Value: []byte{0x80, 0x81, byte(i)}})
	}
	if i%21 == 0 {
		r.headers = append(r.headers, kgo.RecordHeader{Key: "source", Value: nil})
	}
	return r
}

// codecs are the producer compressions, one per phase of produced records.
var codecs = []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(),
	kgo.Lz4Compression(), kgo.ZstdCompression()}

// startArchive runs MinIO and an agent that tiers a topic to it, produces the records of
// spec, waits until every closed segment is uploaded, and stops the agent: the queries of a
// test run with no agent running.
func startArchive(t *testing.T, spec archiveSpec) *archive {
	t.Helper()
	ar := &archive{srv: testminio.Start(t), bucket: "archive", prefix: "site-a/gw-1", topic: "sensors",
		manifest: map[int32]*manifest.Manifest{}}
	ar.srv.CreateBucket(t, ar.bucket)
	cfg := agent.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Tiering = agent.TieringConfig{Endpoint: ar.srv.Endpoint, Bucket: ar.bucket, Prefix: ar.prefix,
		AccessKeyID: ar.srv.AccessKey, SecretAccessKey: agent.Secret(ar.srv.SecretKey), CacheBytes: 16 << 20}
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			a.Shutdown(context.Background())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	configs := map[string]*string{
		"remote.storage.enable": new("true"),
		"segment.bytes":         new(fmt.Sprint(spec.segmentBytes)),
		"index.interval.bytes":  new("1024"),
		"retention.ms":          new("-1"),
	}
	resp, err := kadm.NewClient(admin).CreateTopic(ctx, spec.partitions, 1, configs, ar.topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	ar.all = produceAll(t, ctx, a.KafkaAddr(), ar.topic, spec)
	waitUploaded(t, a.HTTPAddr(), ar.topic, spec)
	a.Shutdown(context.Background())
	stopped = true

	// What the archive holds: the manifests, read straight from MinIO.
	mc, err := ar.srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	for p := range spec.partitions {
		obj, err := mc.GetObject(ctx, ar.bucket, manifest.ManifestKey(ar.prefix, ar.topic, p), minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		ar.manifest[p] = m
	}
	codecsSeen := map[string]bool{}
	for _, m := range ar.manifest {
		for _, s := range m.Segments {
			for _, c := range strings.Split(s.Codecs, ",") {
				codecsSeen[c] = true
			}
		}
	}
	if len(codecsSeen) != len(codecs) {
		t.Fatalf("archived codecs %v, want all %d", codecsSeen, len(codecs))
	}
	for _, r := range ar.all {
		m := ar.manifest[r.partition]
		if r.offset >= m.StartOffset() && r.offset < m.EndOffset() {
			ar.records = append(ar.records, r)
		}
	}
	t.Logf("archive: %d of %d records archived in %d partitions", len(ar.records), len(ar.all), spec.partitions)
	return ar
}

// produceAll produces spec's records in phases, one compression codec per phase, and returns
// them by partition and offset.
func produceAll(t *testing.T, ctx context.Context, addr, topic string, spec archiveSpec) []produced {
	t.Helper()
	rng := rand.New(rand.NewPCG(spec.seed, spec.seed^0x5eed))
	recs := make([][]produced, spec.partitions)
	for p := range spec.partitions {
		for i := range spec.perPartition {
			recs[p] = append(recs[p], makeRecord(spec, rng, p, i))
		}
	}
	const phase = 150
	for start := 0; start < spec.perPartition; start += phase {
		codec := codecs[(start/phase)%len(codecs)]
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
			kgo.ProducerBatchMaxBytes(2048), kgo.ProducerBatchCompression(codec))
		if err != nil {
			t.Fatal(err)
		}
		for p := range spec.partitions {
			for i := start; i < min(start+phase, spec.perPartition); i++ {
				r := &recs[p][i]
				kr := &kgo.Record{Partition: p, Key: r.key, Value: r.value, Headers: r.headers, Timestamp: time.UnixMilli(r.ts)}
				cl.Produce(ctx, kr, func(kr *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce: %v", err)
						return
					}
					r.offset = kr.Offset
				})
			}
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	var out []produced
	for p := range spec.partitions {
		for i, r := range recs[p] {
			if i > 0 && r.offset != recs[p][i-1].offset+1 {
				t.Fatalf("partition %d: record %d at offset %d after %d", p, i, r.offset, recs[p][i-1].offset)
			}
			out = append(out, r)
		}
	}
	return out
}

// waitUploaded polls the agent's tier status until every partition has every record and no
// closed segment waits for upload.
func waitUploaded(t *testing.T, httpAddr, topic string, spec archiveSpec) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		var st agent.TierStatusResponse
		resp, err := http.Get("http://" + httpAddr + "/v1/tier/status?topic=" + topic)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		done := err == nil && len(st.Partitions) == int(spec.partitions)
		for _, p := range st.Partitions {
			done = done && p.LocalEnd == int64(spec.perPartition) && p.BacklogSegs == 0 && p.RemoteSegments > 0 &&
				p.ManifestLoaded && p.LastError == ""
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("segments not uploaded after %s: %v %+v", failAfter, err, st.Partitions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// open opens the archive with cloud.Open and the server's keys.
func (ar *archive) open(t *testing.T, prefix string) *cloud.Archive {
	t.Helper()
	a, err := cloud.Open(context.Background(), cloud.Config{Endpoint: ar.srv.Endpoint, Bucket: ar.bucket, Prefix: prefix,
		AccessKeyID: ar.srv.AccessKey, SecretAccessKey: ar.srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// got is a record a query returned, copied out of the sink call.
type got struct {
	topic     string
	partition int32
	offset    int64
	ts        int64
	key       []byte
	value     []byte
	headers   []kgo.RecordHeader
}

// collect returns a sink that keeps copies of the records.
func collect(out *[]got) cloud.Sink {
	return cloud.SinkFunc(func(r *cloud.Record) error {
		g := got{topic: r.Topic, partition: r.Partition, offset: r.Offset, ts: r.Timestamp,
			key: clone(r.Key), value: clone(r.Value)}
		for _, h := range r.Headers {
			g.headers = append(g.headers, kgo.RecordHeader{Key: h.Key, Value: clone(h.Value)})
		}
		*out = append(*out, g)
		return nil
	})
}

// clone copies b, keeping nil nil and empty empty.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// sameBytes compares byte slices including null-ness.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// compare checks that the query returned exactly want, in order, field by field.
func compare(t *testing.T, topic string, gotRecs []got, want []produced) {
	t.Helper()
	if len(gotRecs) != len(want) {
		t.Errorf("got %d records, want %d", len(gotRecs), len(want))
	}
	for i := range min(len(gotRecs), len(want)) {
		g, w := gotRecs[i], want[i]
		if g.topic != topic || g.partition != w.partition || g.offset != w.offset {
			t.Fatalf("record %d: %s-%d@%d, want %s-%d@%d", i, g.topic, g.partition, g.offset, topic, w.partition, w.offset)
		}
		if g.ts != w.ts || !sameBytes(g.key, w.key) || !sameBytes(g.value, w.value) || len(g.headers) != len(w.headers) {
			t.Fatalf("record %d (%d@%d): ts %d key %q value %q headers %d; want ts %d key %q value %q headers %d", i,
				w.partition, w.offset, g.ts, g.key, g.value, len(g.headers), w.ts, w.key, w.value, len(w.headers))
		}
		for j, h := range g.headers {
			if h.Key != w.headers[j].Key || !sameBytes(h.Value, w.headers[j].Value) {
				t.Fatalf("record %d (%d@%d): header %d %q=%q, want %q=%q", i, w.partition, w.offset, j, h.Key, h.Value,
					w.headers[j].Key, w.headers[j].Value)
			}
		}
	}
}

// filter returns the archived records that keep says yes to.
func (ar *archive) filter(keep func(r produced) bool) []produced {
	var out []produced
	for _, r := range ar.records {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}
