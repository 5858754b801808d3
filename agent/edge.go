package agent

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/samsa-io/samsa/agent/hostmetrics"
	"github.com/samsa-io/samsa/agent/membudget"
)

// Edge features: the memory budget (memory:) and host metrics (host_metrics:).

// prepareEdge builds the memory budget and the host metrics collector, and lowers the buffer
// limits of a.cfg to the budget's shares before anything uses them. Nothing changes in the
// process until startEdge.
func (a *Agent) prepareEdge() error {
	b, err := membudget.New(membudget.Options{MaxBytes: a.cfg.Memory.MaxBytes, ThrottlePercent: a.cfg.Memory.ThrottlePercent})
	if err != nil {
		return fmt.Errorf("config key \"memory.max_bytes\": %w", err)
	}
	a.budget = b
	a.host = hostmetrics.New(hostmetrics.Options{Path: a.cfg.DataDir, NodeID: a.cfg.NodeID})
	if !b.Enabled() {
		return nil
	}
	lower := func(key string, configured int64, s membudget.Share) int64 {
		v := b.Limit(s, configured)
		if v < configured {
			a.log.Info("memory budget lowers a limit", "component", "memory", "key", key, "configured", configured, "now", v)
		}
		return v
	}
	a.cfg.QueuedMaxRequestBytes = int(lower("queued_max_request_bytes", int64(a.cfg.QueuedMaxRequestBytes), membudget.Requests))
	a.cfg.SocketRequestMaxBytes = int32(lower("socket_request_max_bytes", int64(a.cfg.SocketRequestMaxBytes), membudget.Requests))
	a.cfg.Cleaner.DedupeBufferBytes = lower("cleaner.dedupe_buffer_bytes", a.cfg.Cleaner.DedupeBufferBytes, membudget.Cleaner)
	a.cfg.Tiering.ReadAheadBytes = lower("tiering.read_ahead_bytes", a.cfg.Tiering.ReadAheadBytes, membudget.TieredReads)
	return nil
}

// startEdge sets the Go memory limit and starts appending host samples when
// host_metrics.interval is set; called once the rest of the agent is up.
func (a *Agent) startEdge() error {
	if b := a.budget; b.Enabled() {
		b.Apply()
		a.log.Info("memory budget", "component", "memory", "max_bytes", b.MaxBytes(), "go_memory_limit", b.GoLimit(),
			"throttle_from", b.Threshold(), "requests", b.Share(membudget.Requests), "cleaner", b.Share(membudget.Cleaner),
			"mqtt", b.MQTTBytes(), "tiered_reads", b.Share(membudget.TieredReads))
	}
	hc := a.cfg.HostMetrics
	if hc.Interval == 0 {
		return nil
	}
	p, err := hostmetrics.StartPublisher(a.host, hostmetrics.PublisherOptions{
		Store:    a.store,
		Topic:    hc.Topic,
		Interval: hc.Interval.Duration(),
		Logger:   a.log.With("component", "hostmetrics"),
	})
	if err != nil {
		a.budget.Restore()
		return fmt.Errorf("config key \"host_metrics.topic\": %w", err)
	}
	a.hostPub = p
	a.log.Info("host metrics published", "component", "hostmetrics", "topic", hc.Topic, "interval", hc.Interval)
	return nil
}

// stopEdge stops the host metrics publisher and puts back the Go memory limit. Safe to call
// whatever was started.
func (a *Agent) stopEdge() {
	if a.hostPub != nil {
		a.hostPub.Close()
	}
	if a.budget != nil {
		a.budget.Restore()
	}
}

// kafkaThrottle is the Kafka server's throttle: the budget's, or nil without a budget.
func (a *Agent) kafkaThrottle() func() time.Duration {
	if a.budget == nil || !a.budget.Enabled() {
		return nil
	}
	return a.budget.Throttle
}

// MemoryBudget is the agent's memory budget (never nil once Start has begun); the MQTT bridge
// bounds its batching by MemoryBudget().MQTTBytes().
func (a *Agent) MemoryBudget() *membudget.Budget { return a.budget }

// writeEdgeMetrics writes the memory budget's and the host's metrics; ready says whether the
// publisher may be looked at.
func (a *Agent) writeEdgeMetrics(w io.Writer, ready bool) {
	if a.budget != nil {
		a.budget.WriteMetrics(w)
	}
	if a.host != nil {
		a.host.WriteMetrics(context.Background(), w)
	}
	if ready && a.hostPub != nil {
		a.hostPub.WriteMetrics(w)
	}
}
