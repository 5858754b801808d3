// Package membudget turns one number, the agent's memory budget (the config key
// memory.max_bytes), into the limits of the agent's buffers, the Go memory limit, and the
// throttle the Kafka server applies to clients while the process is over the budget.
//
// # Shares
//
// A Budget of M bytes is split once, at start:
//
//	requests   M/4   bytes of Kafka requests held in memory at once, over all connections
//	                 (queued_max_request_bytes is lowered to it), and the largest request
//	                 accepted (socket_request_max_bytes is lowered to it)
//	cleaner    M/8   the log cleaner's key map (cleaner.dedupe_buffer_bytes is lowered to it);
//	                 it lives in anonymous mmapped memory outside the Go heap
//	mqtt       M/8   reserved for the MQTT bridge's batching: MQTTBytes returns it so the bridge
//	                 can bound its buffers by it (not wired yet: the bridge is being written)
//	tiered_reads M/16 chunks of tiered segments held in memory for reads below the local log
//	                 start (tiering.read_ahead_bytes is lowered to it); memory files outside
//	                 the Go heap
//	the rest         everything else the Go heap holds: produce purgatory entries (small: a
//	                 produce's record bytes are appended before it waits), pending fetch
//	                 responses (file ranges, not bytes), consumer groups, index caches, the
//	                 runtime itself
//
// A share only ever lowers a configured limit, never raises it. Fetch sessions hold no memory
// (every fetch is a full fetch) and the tiering chunk cache is on disk (tiering.cache_bytes),
// so neither takes a share.
//
// # The Go memory limit
//
// Apply sets the runtime's soft memory limit (debug.SetMemoryLimit, what GOMEMLIMIT sets) to M
// minus the cleaner's and the tiered reads' shares, the memory the Go runtime does not manage;
// Restore puts back the limit that was there before. Near the limit the garbage collector runs more often instead of
// letting the heap grow.
//
// # Throttling
//
// Throttle reports how long a client should wait before its next request. It samples the
// runtime (runtime/metrics: the live heap as of the last collection plus goroutine stacks) at
// most every SampleEvery; while that use is at or above ThrottlePercent of the Go memory
// limit, the answer grows linearly from MinThrottle (at the threshold) to MaxThrottle (at the
// limit and above), else it is 0. The live heap is used rather than all heap bytes so that
// garbage waiting for the next collection, which the memory limit makes the collector reclaim,
// does not throttle anyone: only memory the process really holds does.
//
// The Kafka server (agent/kafka, throttle.go) calls Throttle for every Produce and Fetch and,
// as KIP-219 describes, answers at once with throttle_time_ms set and then stops reading that
// connection for that long. Clients that know KIP-219 (franz-go, librdkafka, the Java client)
// also hold their next request back by themselves.
//
// # Metrics
//
// WriteMetrics writes samsa_memory_budget_bytes, samsa_memory_go_limit_bytes,
// samsa_memory_used_bytes (the last sample), samsa_memory_throttle_threshold_bytes,
// samsa_memory_throttled (0/1 at the last sample) and samsa_memory_share_bytes{share=...}.
package membudget
