package agent_test

import (
	"context"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/agent/hostmetrics"
	"github.com/samsa-io/samsa/agent/membudget"
)

// throttleSeen counts the KIP-219 throttles a franz-go client applies.
type throttleSeen struct{ n atomic.Int64 }

func (h *throttleSeen) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, after bool) {
	if after && d > 0 {
		h.n.Add(1)
	}
}

// TestMemoryBudgetThrottlesClients runs an agent with the smallest memory budget while this
// process (the agent runs in it) holds more live heap than the budget: produce responses carry
// throttle_time_ms, franz-go honours it, the records still land, and /metrics shows the budget
// and the throttles. Shutdown puts the Go memory limit back.
func TestMemoryBudgetThrottlesClients(t *testing.T) {
	before := debugMemoryLimit()
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.Memory.MaxBytes = membudget.MinBytes })
	if got := debugMemoryLimit(); got != a.MemoryBudget().GoLimit() {
		t.Fatalf("Go memory limit %d, want %d", got, a.MemoryBudget().GoLimit())
	}
	hold := make([]byte, 2*membudget.MinBytes)
	for i := range hold {
		hold[i] = 1
	}
	runtime.GC() // the live heap the budget looks at is measured by a collection

	seen := &throttleSeen{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()), kgo.WithHooks(seen), kgo.DefaultProduceTopic("budget"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure bound only
	defer cancel()
	for i := range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	runtime.KeepAlive(hold)
	if seen.n.Load() < 3 {
		t.Fatalf("franz-go applied %d throttles, want one per produce", seen.n.Load())
	}
	if v := metricValue(t, a.HTTPAddr(), "samsa_memory_budget_bytes"); v != strconv.Itoa(membudget.MinBytes) {
		t.Fatalf("samsa_memory_budget_bytes %s", v)
	}
	if v := metricValue(t, a.HTTPAddr(), `samsa_memory_share_bytes{share="requests"}`); v != strconv.Itoa(membudget.MinBytes/4) {
		t.Fatalf("requests share %s", v)
	}
	if v, _ := strconv.Atoi(metricValue(t, a.HTTPAddr(), "samsa_kafka_throttled_responses_total")); v < 3 {
		t.Fatalf("samsa_kafka_throttled_responses_total %d", v)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := debugMemoryLimit(); got != before {
		t.Fatalf("Go memory limit after shutdown %d, want %d", got, before)
	}
}

// TestHostMetricsTopic runs an agent that publishes host samples every second and reads the
// first one back with franz-go; /metrics carries the host gauges.
func TestHostMetricsTopic(t *testing.T) {
	t.Parallel()
	a := startAgent(t, t.TempDir(), func(c *agent.Config) { c.HostMetrics.Interval = agent.Duration(time.Second) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.KafkaAddr()), kgo.ConsumeTopics(hostmetrics.DefaultTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure bound only
	defer cancel()
	var rec *kgo.Record
	for rec == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no host sample on the topic")
		}
		if recs := fs.Records(); len(recs) > 0 {
			rec = recs[0]
		}
	}
	var s hostmetrics.Sample
	if err := json.Unmarshal(rec.Value, &s); err != nil {
		t.Fatalf("record value %q: %v", rec.Value, err)
	}
	if s.Hostname != string(rec.Key) || s.CPU.Count < 1 || s.Memory.TotalBytes == 0 || s.Disk.SizeBytes == 0 {
		t.Fatalf("sample %+v", s)
	}
	if v := metricValue(t, a.HTTPAddr(), "samsa_host_cpu_count"); v != strconv.Itoa(s.CPU.Count) {
		t.Fatalf("samsa_host_cpu_count %s, want %d", v, s.CPU.Count)
	}
	if v, _ := strconv.Atoi(metricValue(t, a.HTTPAddr(), "samsa_host_metrics_published_total")); v < 1 {
		t.Fatalf("samsa_host_metrics_published_total %d", v)
	}
}

// debugMemoryLimit reads the Go memory limit without changing it.
func debugMemoryLimit() int64 { return debug.SetMemoryLimit(-1) }
