package kafka

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Throttling (KIP-219)
//
// Options.Throttle, when set, is asked once for every Produce and Fetch request (the memory
// budget, agent/membudget, answers while the process is over its budget). A non-zero answer
// is written into the response's throttle_time_ms, the response goes out as usual, and the
// connection's reader then stops reading for that long: the channel is muted, as KIP-219 has
// the broker do, so a client that ignores throttle_time_ms is slowed down all the same and
// the requests it sends meanwhile wait in the socket buffers, not in the agent's memory.
// Clients that know KIP-219 (Produce v6+, Fetch v8+: franz-go, librdkafka, the Java client)
// hold their next request to this broker back by themselves. An acks=0 produce has no
// response; its connection is muted all the same.
//
// A mute ends early when the connection is torn down or the server shuts down (Shutdown then
// stops the reader anyway). Other requests (Metadata, group heartbeats, ...) are never
// throttled themselves but wait behind a mute like any request of that connection.

// maxThrottle caps a throttle whatever Options.Throttle answers.
const maxThrottle = 30 * time.Second

// throttleStats are the throttle's counters.
type throttleStats struct {
	throttled atomic.Uint64 // responses that carried a throttle
	muted     atomic.Int64  // connections muted now
	mutedMs   atomic.Uint64 // milliseconds connections spent muted
}

// throttleMillis asks Options.Throttle and returns the throttle in milliseconds for
// throttle_time_ms (0: none), counting throttled responses.
func (s *Server) throttleMillis() int32 {
	if s.opts.Throttle == nil {
		return 0
	}
	d := min(s.opts.Throttle(), maxThrottle)
	if d <= 0 {
		return 0
	}
	s.th.throttled.Add(1)
	return int32(max(d.Milliseconds(), 1))
}

// mute stops the reader for ms milliseconds after a throttled request. It returns false when
// the connection is being torn down.
func (c *conn) mute(ms int32) bool {
	c.s.th.muted.Add(1)
	defer c.s.th.muted.Add(-1)
	start := time.Now()
	defer func() { c.s.th.mutedMs.Add(uint64(time.Since(start).Milliseconds())) }()
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.s.draining:
		return true // Shutdown: the reader stops at its next read
	case <-c.ctx.Done():
		return false
	}
}

// writeThrottleMetrics writes the throttle's metrics in Prometheus text format.
func (s *Server) writeThrottleMetrics(w io.Writer) {
	fmt.Fprintf(w, "# HELP samsa_kafka_throttled_responses_total Produce and Fetch responses that carried throttle_time_ms (memory budget).\n"+
		"# TYPE samsa_kafka_throttled_responses_total counter\nsamsa_kafka_throttled_responses_total %d\n", s.th.throttled.Load())
	fmt.Fprintf(w, "# HELP samsa_kafka_connections_muted Connections not read while their client is throttled.\n"+
		"# TYPE samsa_kafka_connections_muted gauge\nsamsa_kafka_connections_muted %d\n", s.th.muted.Load())
	fmt.Fprintf(w, "# HELP samsa_kafka_muted_seconds_total Time connections spent muted by throttles.\n"+
		"# TYPE samsa_kafka_muted_seconds_total counter\nsamsa_kafka_muted_seconds_total %.3f\n", float64(s.th.mutedMs.Load())/1000)
}
