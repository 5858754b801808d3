//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and unmounts it at cleanup
// (after the agents started later have stopped: cleanups run in reverse). It needs root:
// locally the test is skipped without it; in CI (CI set) it fails.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a %d-byte tmpfs on %s: %v (CI runs the tests as root)", size, dir, err)
		}
		t.Skipf("mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// freeBytes is the space an unprivileged writer has left on the filesystem of path.
func freeBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize) // Bsize is int32 on 32-bit ARM
}

// diskProducer sends one hand-made batch per request through a franz-go client, so each
// refusal is seen as the partition's error code, and keeps every acknowledged record.
type diskProducer struct {
	t     *testing.T
	cl    *kgo.Client
	ctx   context.Context
	n     int              // records sent, for unique values
	acked map[int64]string // offset -> value of every acknowledged record
	// exited, when set, reports how a subprocess agent died (nil while it runs), so that a
	// failed request says why.
	exited func() error
}

func newDiskProducer(t *testing.T, addr string) *diskProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(2)) // a local agent: a dead one fails fast
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure bound only
	t.Cleanup(cancel)
	return &diskProducer{t: t, cl: cl, ctx: ctx, acked: map[int64]string{}}
}

// send produces a batch of n records of size bytes each to partition 0 of topic with acks=all
// and returns the error code (0: acknowledged, and recorded).
func (p *diskProducer) send(topic string, n, size int) int16 {
	p.t.Helper()
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1})
	values := make([]string, n)
	for i := range values {
		prefix := fmt.Sprintf("%s-%d-", topic, p.n)
		p.n++
		values[i] = prefix + strings.Repeat(string(rune('a'+p.n%26)), max(size-len(prefix), 0))
		b.Add(time.Now().UnixMilli(), nil, []byte(values[i]), nil)
	}
	records, err := b.Build()
	if err != nil {
		p.t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = records
	tp.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	req.Topics = []kmsg.ProduceRequestTopic{tp}
	resp, err := req.RequestWith(p.ctx, p.cl)
	if err != nil && p.exited != nil {
		if exit := p.exited(); exit != nil {
			p.t.Fatalf("produce to %s: %v: the agent died: %v", topic, err, exit)
		}
	}
	if err != nil {
		p.t.Fatalf("produce to %s: %v", topic, err)
	}
	got := resp.Topics[0].Partitions[0]
	if got.ErrorCode == 0 {
		for i, v := range values {
			p.acked[got.BaseOffset+int64(i)] = v
		}
	}
	return got.ErrorCode
}

// mustSend produces a batch that has to be acknowledged.
func (p *diskProducer) mustSend(topic string, n, size int) {
	p.t.Helper()
	if code := p.send(topic, n, size); code != 0 {
		p.t.Fatalf("produce to %s: %v", topic, kerr.ErrorForCode(code))
	}
}

// fillUntilRefused sends batches until one is refused with KAFKA_STORAGE_ERROR, failing on
// any other error or if nothing is refused within limit batches.
func (p *diskProducer) fillUntilRefused(topic string, n, size, limit int) {
	p.t.Helper()
	for i := 0; i < limit; i++ {
		switch code := p.send(topic, n, size); code {
		case 0:
		case kerr.KafkaStorageError.Code:
			return
		default:
			p.t.Fatalf("batch %d to %s: %v, want success or KAFKA_STORAGE_ERROR", i, topic, kerr.ErrorForCode(code))
		}
	}
	p.t.Fatalf("%d batches of %d x %d bytes to %s all acknowledged: the disk never refused", limit, n, size, topic)
}

// sendUntilAccepted retries a batch until it is acknowledged (space was freed; the guard
// notices it at its next poll). The deadline is a failure bound.
func (p *diskProducer) sendUntilAccepted(topic string, n, size int) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code := p.send(topic, n, size)
		if code == 0 {
			return
		}
		if code != kerr.KafkaStorageError.Code {
			p.t.Fatalf("produce to %s after freeing space: %v", topic, kerr.ErrorForCode(code))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("produce to %s still refused 30s after space was freed (failure bound)", topic)
		}
		time.Sleep(5 * time.Millisecond) // between retries, as a client backs off
	}
}

// logBuffer collects an in-process agent's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// metricValue returns the value of the sample named exactly as given (with labels) on /metrics.
func metricValue(t *testing.T, httpAddr, sample string) string {
	t.Helper()
	code, body := httpGet(t, "http://"+httpAddr+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no sample %s:\n%s", sample, body)
	return ""
}

// TestDiskGuardRefusesAndResumes fills a 24 MiB filesystem with an agent whose guard trips
// at 8 MiB free: produce is refused with KAFKA_STORAGE_ERROR (raw requests and a franz-go
// producer), /metrics and the log say why, every acknowledged record stays readable, deleting
// a topic frees space and writes resume by themselves, and a restart keeps everything.
func TestDiskGuardRefusesAndResumes(t *testing.T) {
	mnt := mountTmpfs(t, 24<<20)
	dir := filepath.Join(mnt, "data")
	logs := &logBuffer{}
	start := func() (*agent.Agent, func()) {
		cfg := agent.DefaultConfig()
		cfg.DataDir, cfg.KafkaAddr, cfg.HTTPAddr = dir, "127.0.0.1:0", "127.0.0.1:0"
		cfg.Fsync = agent.FsyncModeAlways
		cfg.TopicDefaults = map[string]string{"segment.bytes": "1048576"}
		cfg.Disk = agent.DiskConfig{MinFreeBytes: 8 << 20, CheckInterval: agent.Duration(10 * time.Millisecond)}
		a, err := agent.New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		stop := func() {
			once.Do(func() {
				if err := a.Shutdown(context.Background()); err != nil {
					t.Errorf("shutdown: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return a, stop
	}
	a, stop := start()
	p := newDiskProducer(t, a.KafkaAddr())
	adm := kadm.NewClient(p.cl)
	for _, topic := range []string{"ballast", "data"} {
		if _, err := adm.CreateTopic(p.ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	for range 128 { // 8 MiB that deleting the topic frees later
		p.mustSend("ballast", 16, 4096)
	}
	ballast := len(p.acked)
	clear(p.acked)

	p.fillUntilRefused("data", 16, 4096, 400)
	refused := len(p.acked)
	if refused == 0 {
		t.Fatal("the first batch to data was refused: the ballast alone tripped the guard")
	}
	label := `{path="` + dir + `"}`
	if v := metricValue(t, a.HTTPAddr(), "samsa_disk_writes_refused"+label); v != "1" {
		t.Fatalf("samsa_disk_writes_refused = %s while produce is refused", v)
	}
	if v := metricValue(t, a.HTTPAddr(), "samsa_disk_refusals_total"+label); v != "1" {
		t.Fatalf("samsa_disk_refusals_total = %s, want 1", v)
	}
	if free, _ := strconv.ParseInt(metricValue(t, a.HTTPAddr(), "samsa_disk_free_bytes"+label), 10, 64); free >= 8<<20 || free <= 0 {
		t.Fatalf("samsa_disk_free_bytes = %d, want between 0 and 8 MiB", free)
	}
	if l := logs.String(); !strings.Contains(l, "disk space low") || !strings.Contains(l, "limit_key=disk.min_free_bytes") ||
		!strings.Contains(l, "limit=8388608") {
		t.Fatalf("no log line saying why produce is refused:\n%s", l)
	}
	// Still refused (nothing else writes), and a franz-go producer gets the error too.
	if code := p.send("data", 1, 100); code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce below the limit: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(2), kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond }),
		kgo.MetadataMinAge(10*time.Millisecond)) // a storage error makes franz-go refresh metadata before retrying
	if err != nil {
		t.Fatal(err)
	}
	err = prod.ProduceSync(p.ctx, &kgo.Record{Topic: "data", Value: []byte("refused")}).FirstErr()
	prod.Close()
	if !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("franz-go producer below the limit: %v, want KAFKA_STORAGE_ERROR", err)
	}
	verifyLog(t, a.KafkaAddr(), "data", p.acked, 0) // reads go on

	del, err := adm.DeleteTopics(p.ctx, "ballast")
	if err == nil {
		err = del.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	p.sendUntilAccepted("data", 16, 4096)
	for range 8 {
		p.mustSend("data", 16, 4096)
	}
	if v := metricValue(t, a.HTTPAddr(), "samsa_disk_writes_refused"+label); v != "0" {
		t.Fatalf("samsa_disk_writes_refused = %s after writes resumed", v)
	}
	if !strings.Contains(logs.String(), "disk space available again") {
		t.Fatalf("no log line when writes resumed:\n%s", logs)
	}
	verifyLog(t, a.KafkaAddr(), "data", p.acked, 1)

	stop()
	a, _ = start()
	verifyLog(t, a.KafkaAddr(), "data", p.acked, 2)
	t.Logf("%d ballast records, %d data records before the refusal, %d in all", ballast, refused, len(p.acked))
}

// TestDiskFullENOSPC runs a subprocess agent with the guard disabled on a 16 MiB filesystem
// and produces until the filesystem is really full (ENOSPC): to a topic with 1 MiB segments,
// where the segment write fails, and to one with 1 KiB segments, where every append rolls and
// the new segment's indexes find no room to preallocate (they open full, unindexed); then with
// ever smaller batches to squeeze out the last pages. The agent must survive (an mmapped index page without blocks would kill it
// with SIGBUS), refuse with KAFKA_STORAGE_ERROR, keep every acknowledged record readable,
// restart on the full disk, accept writes again once space is freed, and come back
// consistent after a restart.
func TestDiskFullENOSPC(t *testing.T) {
	mnt := mountTmpfs(t, 16<<20)
	dir := filepath.Join(mnt, "data")
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{'f'}, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"SAMSA_DISK_MIN_FREE_BYTES=0", "SAMSA_DISK_MIN_FREE_PERCENT=0", "SAMSA_FSYNC=always",
		"SAMSA_TOPIC_DEFAULTS=segment.bytes=1048576"}
	var proc *agentProcess
	running := false
	exited := func() error {
		select {
		case err := <-proc.exited:
			proc.exited <- err
			if err == nil {
				err = errors.New("exit status 0")
			}
			var crash []string // a Go crash: "unexpected fault address", "[signal SIGBUS ...]"
			for line := range strings.SplitSeq(proc.Logs(), "\n") {
				for _, w := range []string{"panic:", "fatal error:", "unexpected fault address", "[signal "} {
					if strings.HasPrefix(line, w) {
						crash = append(crash, line)
					}
				}
			}
			return fmt.Errorf("%w %q", err, crash)
		default:
			return nil
		}
	}
	start := func() *diskProducer {
		proc, running = startAgentProcess(t, dir, env...), true
		dp := newDiskProducer(t, proc.kafkaAddr)
		dp.exited = exited
		return dp
	}
	stop := func(when string) {
		t.Helper()
		running = false
		if err := proc.stop(t); err != nil {
			t.Fatalf("exit after SIGTERM %s: %v\n%s", when, err, proc.Logs())
		}
	}
	t.Cleanup(func() {
		if running {
			proc.kill9(t)
		}
	})
	alive := func(when string) {
		t.Helper()
		if err := exited(); err != nil {
			t.Fatalf("agent died %s: %v\n%s", when, err, proc.Logs())
		}
	}
	p := start()
	adm := kadm.NewClient(p.cl)
	if _, err := adm.CreateTopic(p.ctx, 1, 1, nil, "data"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(p.ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1024")}, "tiny"); err != nil {
		t.Fatal(err)
	}
	acked := map[string]map[int64]string{"data": {}, "tiny": {}}
	fill := func(topic string, n, size int) {
		t.Helper()
		p.acked = acked[topic]
		p.fillUntilRefused(topic, n, size, 2000)
		alive(fmt.Sprintf("filling the disk with %d x %d-byte batches to %s", n, size, topic))
	}
	fill("data", 16, 4096)
	fill("tiny", 1, 600)
	fill("data", 4, 1024)
	fill("data", 1, 200)
	fill("tiny", 1, 600)
	if free := freeBytes(t, mnt); free > 64<<10 {
		t.Fatalf("%d bytes still free after produce was refused: not a full disk", free)
	}
	logs := proc.Logs()
	if !strings.Contains(logs, ".log: no space left on device") {
		t.Fatalf("no segment write failed with ENOSPC:\n%s", logs)
	}
	if !strings.Contains(logs, "no space to grow an index") {
		t.Fatalf("no segment roll met a full disk:\n%s", logs)
	}
	verify := func(cycle int) {
		t.Helper()
		for _, topic := range []string{"data", "tiny"} {
			verifyLog(t, proc.kafkaAddr, topic, acked[topic], cycle)
		}
	}
	verify(0)
	alive("serving reads on a full disk")
	full := len(acked["data"]) + len(acked["tiny"])

	// A restart on the full disk: nothing acknowledged is lost, and produce is refused again
	// once the few pages the shutdown freed (trimmed indexes) are taken.
	stop("on a full disk")
	p = start()
	verify(1)
	fill("data", 1, 200)
	fill("tiny", 1, 600)
	verify(2)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"data", "tiny"} {
		p.acked = acked[topic]
		p.sendUntilAccepted(topic, 4, 200)
		for range 8 {
			p.mustSend(topic, 4, 200)
		}
	}
	verify(3)
	stop("after space was freed")
	start()
	verify(4)
	t.Logf("%d records acknowledged on the way to a full disk, %d in all", full, len(acked["data"])+len(acked["tiny"]))
}
