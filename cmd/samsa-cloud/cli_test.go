package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/internal/testminio"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// failAfter bounds every wait of these tests: a failure bound, not a timing claim.
const failAfter = 120 * time.Second

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds samsa-cloud once per test binary.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "samsa-cloud-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "samsa-cloud")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// record is what the test produced, with its offset.
type record struct {
	offset  int64
	ts      int64
	key     []byte
	value   []byte
	headers []kgo.RecordHeader
}

// fixture is a MinIO bucket holding segments a real agent uploaded (the agent stopped).
type fixture struct {
	srv      *testminio.Server
	bucket   string
	prefix   string
	topic    string
	all      []record // every produced record, by offset (partition 0)
	archived []record // those in the archive
	m        *manifest.Manifest
	gapStart time.Time // no record has a timestamp in [gapStart, gapEnd)
	gapEnd   time.Time
	env      []string // environment with the MinIO keys and no other AWS settings
}

// newRecord builds record i of n: a timestamp a minute apart ending near now (none in the
// gap around now-10h), text and binary keys and values, nulls, and headers.
func newRecord(rng *rand.Rand, i, n int, now time.Time) record {
	r := record{ts: now.Add(-time.Duration(n-i) * time.Minute).UnixMilli()}
	switch {
	case i%101 == 50:
	case i%17 == 0:
		r.key = []byte{0x00, 0xc3, 0x28, byte(i % 2)} // not UTF-8
	default:
		r.key = fmt.Appendf(nil, "k-%d", i%10)
	}
	switch {
	case i%103 == 7:
	case i%5 == 0:
		r.value = make([]byte, 10+rng.IntN(120))
		for j := range r.value {
			r.value[j] = byte(rng.Uint32())
		}
	default:
		r.value = fmt.Appendf(nil, `{"seq":%d,"v":%.3f,"s":"ä,\"x\""}`, i, rng.Float64())
	}
	if i%9 == 0 {
		r.headers = []kgo.RecordHeader{{Key: "type", Value: []byte("reading")}, {Key: "raw", Value: []byte{0xff, byte(i)}}}
	}
	return r
}

// newFixture starts MinIO and an agent, produces n records of about 150 bytes to a topic
// with 16 KiB segments, waits for the uploads, and stops the agent.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	f := &fixture{srv: testminio.Start(t), bucket: "archive", prefix: "fleet/gw-7", topic: "telemetry"}
	f.srv.CreateBucket(t, f.bucket)
	home := t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			f.env = append(f.env, kv)
		}
	}
	f.env = append(f.env, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"))
	cfg := agent.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Tiering = agent.TieringConfig{Endpoint: f.srv.Endpoint, Bucket: f.bucket, Prefix: f.prefix,
		AccessKeyID: f.srv.AccessKey, SecretAccessKey: agent.Secret(f.srv.SecretKey), CacheBytes: 16 << 20}
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()), kgo.DefaultProduceTopic(f.topic),
		kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(4096),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // package cloud's tests cover every codec
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{
		"remote.storage.enable": new("true"), "segment.bytes": new("16384"), "retention.ms": new("-1"),
		"index.interval.bytes": new("1024"),
	}, f.topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	now := time.Now()
	f.gapStart, f.gapEnd = now.Add(-10*time.Hour-30*time.Minute), now.Add(-10*time.Hour+30*time.Minute)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range n {
		r := newRecord(rng, i, n, now)
		if ts := time.UnixMilli(r.ts); !ts.Before(f.gapStart) && ts.Before(f.gapEnd) {
			continue
		}
		f.all = append(f.all, r)
	}
	for i := range f.all {
		r := &f.all[i]
		cl.Produce(ctx, &kgo.Record{Key: r.key, Value: r.value, Headers: r.headers, Timestamp: time.UnixMilli(r.ts)},
			func(kr *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
				r.offset = kr.Offset
			})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.waitUploaded(t, a.HTTPAddr())
	a.Shutdown(context.Background())

	mc := f.minio(t)
	obj, err := mc.GetObject(ctx, f.bucket, manifest.ManifestKey(f.prefix, f.topic, 0), minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	if f.m, err = manifest.Decode(data); err != nil {
		t.Fatal(err)
	}
	for i, r := range f.all {
		if r.offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, r.offset)
		}
		if r.offset < f.m.EndOffset() {
			f.archived = append(f.archived, r)
		}
	}
	t.Logf("%d of %d records archived in %d segments (%d bytes)", len(f.archived), len(f.all), len(f.m.Segments), f.m.Size())
	return f
}

func (f *fixture) waitUploaded(t *testing.T, httpAddr string) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		var st agent.TierStatusResponse
		resp, err := http.Get("http://" + httpAddr + "/v1/tier/status?topic=" + f.topic)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && len(st.Partitions) == 1 {
			p := st.Partitions[0]
			if p.LocalEnd == int64(len(f.all)) && p.BacklogSegs == 0 && p.RemoteSegments > 0 && p.ManifestLoaded {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not uploaded after %s: %v %+v", failAfter, err, st.Partitions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fixture) minio(t *testing.T) *minio.Client {
	t.Helper()
	mc, err := f.srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// run runs samsa-cloud with args and env (the fixture's, which has no keys, plus extra).
func (f *fixture) run(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(append([]string{}, f.env...), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// keys is the environment with the MinIO root keys.
func (f *fixture) keys() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + f.srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + f.srv.SecretKey}
}

// query runs "samsa-cloud query" against the archive with the keys; it must succeed.
func (f *fixture) query(t *testing.T, prefix string, args ...string) result {
	t.Helper()
	all := append([]string{"query", "--endpoint", f.srv.Endpoint, "--bucket", f.bucket, "--prefix", prefix, "--topic", f.topic}, args...)
	r := f.run(t, f.keys(), all...)
	if r.code != 0 {
		t.Fatalf("samsa-cloud %s: exit %d\n%s", strings.Join(all, " "), r.code, r.stderr)
	}
	return r
}

// filter returns the archived records keep says yes to.
func (f *fixture) filter(keep func(r record) bool) []record {
	var out []record
	for _, r := range f.archived {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}
