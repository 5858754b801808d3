package mqtt

import (
	"fmt"
	"io"
	"sync/atomic"
)

// metrics are a bridge's counters.
type metrics struct {
	connected       atomic.Bool
	connectAttempts atomic.Int64
	reconnects      atomic.Int64
	in              atomic.Int64 // MQTT messages received
	appended        atomic.Int64 // records appended
	batches         atomic.Int64
	acked           atomic.Int64 // messages done: acknowledged (QoS 1/2), passed (QoS 0) or dropped
	dropped         [numDropReasons]atomic.Int64
	appendRetries   atomic.Int64
	durableRetries  atomic.Int64
	out             atomic.Int64 // records published and acknowledged by the broker
	rewinds         atomic.Int64
	skipped         atomic.Int64
}

// Stats is a snapshot of a bridge's counters and gauges (what /metrics shows), for tests and
// benchmarks.
type Stats struct {
	Connected       bool
	ConnectAttempts int64 // connection attempts, the first included
	Reconnects      int64 // connections re-established after a loss
	MessagesIn      int64 // MQTT messages received (redeliveries included)
	RecordsAppended int64
	Batches         int64
	MessagesDone    int64            // acknowledged to the broker (or dropped, or QoS 0 passed)
	Dropped         map[string]int64 // by reason, only reasons that occurred
	AppendRetries   int64            // appends refused (disk guard, missing topic) and retried
	InFlightIn      int64            // messages received and not yet acknowledged
	InFlightInBytes int64
	// InFlightLimitBytes is max_in_flight_bytes (memory.max_bytes may have lowered it).
	InFlightLimitBytes int64
	MessagesOut        int64 // records published and acknowledged by the broker
	InFlightOut        int64 // publishes awaiting the broker's acknowledgement
	Rewinds            int64 // publishes redone after a failure
	SkippedOut         int64 // records retention deleted before they were published
	Lag                int64 // egress: records below the high watermark not yet acknowledged
}

// Stats returns the bridge's counters and gauges now.
func (b *Bridge) Stats() Stats {
	m := &b.m
	s := Stats{
		Connected:       m.connected.Load(),
		ConnectAttempts: m.connectAttempts.Load(),
		Reconnects:      m.reconnects.Load(),
		MessagesIn:      m.in.Load(),
		RecordsAppended: m.appended.Load(),
		Batches:         m.batches.Load(),
		MessagesDone:    m.acked.Load(),
		AppendRetries:   m.appendRetries.Load(),
		MessagesOut:     m.out.Load(),
		Rewinds:         m.rewinds.Load(),
		SkippedOut:      m.skipped.Load(),
		Dropped:         map[string]int64{},
	}
	s.InFlightIn, s.InFlightInBytes = b.ingest.lim.inFlight()
	s.InFlightLimitBytes = b.opts.MaxInFlightBytes
	for r := dropNoRule; r < numDropReasons; r++ {
		if n := m.dropped[r].Load(); n > 0 {
			s.Dropped[dropNames[r]] = n
		}
	}
	for _, ep := range b.egress.snapshot() {
		s.InFlightOut += ep.inflight.Load()
		if acked := ep.acked.Load(); acked >= 0 {
			s.Lag += max(ep.log.HighWatermark()-acked, 0)
		}
	}
	return s
}

// WriteMetrics writes the bridges' metrics in Prometheus text format, each with the label
// bridge="<name>".
func WriteMetrics(w io.Writer, bridges []*Bridge) {
	if len(bridges) == 0 {
		return
	}
	stats := make([]Stats, len(bridges))
	for i, b := range bridges {
		stats[i] = b.Stats()
	}
	family := func(name, typ, help string, value func(s *Stats) int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for i, b := range bridges {
			fmt.Fprintf(w, "%s{bridge=%q} %d\n", name, b.opts.Name, value(&stats[i]))
		}
	}
	family("samsa_mqtt_connected", "gauge", "1 while the bridge is connected to its MQTT broker.",
		func(s *Stats) int64 { return b2i(s.Connected) })
	family("samsa_mqtt_connect_attempts_total", "counter", "Connection attempts to the MQTT broker.",
		func(s *Stats) int64 { return s.ConnectAttempts })
	family("samsa_mqtt_reconnects_total", "counter", "Connections re-established after a loss.",
		func(s *Stats) int64 { return s.Reconnects })
	family("samsa_mqtt_messages_in_total", "counter", "MQTT messages received (redeliveries included).",
		func(s *Stats) int64 { return s.MessagesIn })
	family("samsa_mqtt_records_appended_total", "counter", "Records appended from MQTT messages.",
		func(s *Stats) int64 { return s.RecordsAppended })
	family("samsa_mqtt_messages_acked_total", "counter", "MQTT messages done: acknowledged once durable, or dropped.",
		func(s *Stats) int64 { return s.MessagesDone })
	family("samsa_mqtt_append_retries_total", "counter", "Appends the log refused (disk guard, missing topic) and retried; the messages stay unacknowledged meanwhile.",
		func(s *Stats) int64 { return s.AppendRetries })
	family("samsa_mqtt_in_flight_messages", "gauge", "MQTT messages received and not yet acknowledged.",
		func(s *Stats) int64 { return s.InFlightIn })
	family("samsa_mqtt_in_flight_bytes", "gauge", "Payload bytes of the MQTT messages in flight.",
		func(s *Stats) int64 { return s.InFlightInBytes })
	family("samsa_mqtt_in_flight_limit_bytes", "gauge", "max_in_flight_bytes: the payload bytes the bridge holds before it stops reading (memory.max_bytes may lower it).",
		func(s *Stats) int64 { return s.InFlightLimitBytes })
	family("samsa_mqtt_messages_out_total", "counter", "Records published to MQTT and acknowledged by the broker.",
		func(s *Stats) int64 { return s.MessagesOut })
	family("samsa_mqtt_out_in_flight_messages", "gauge", "Records published to MQTT awaiting the broker's acknowledgement.",
		func(s *Stats) int64 { return s.InFlightOut })
	family("samsa_mqtt_out_lag_records", "gauge", "Records of the publish rules' topics not yet acknowledged by the MQTT broker.",
		func(s *Stats) int64 { return s.Lag })
	family("samsa_mqtt_out_rewinds_total", "counter", "Publishes redone from the acknowledged offset after a failure.",
		func(s *Stats) int64 { return s.Rewinds })
	fmt.Fprintf(w, "# HELP samsa_mqtt_dropped_total Messages and records the bridge could not map and dropped, by reason.\n# TYPE samsa_mqtt_dropped_total counter\n")
	for _, b := range bridges {
		for r := dropNoRule; r < numDropReasons; r++ {
			fmt.Fprintf(w, "samsa_mqtt_dropped_total{bridge=%q,reason=%q} %d\n", b.opts.Name, dropNames[r], b.m.dropped[r].Load())
		}
	}
}

func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}
