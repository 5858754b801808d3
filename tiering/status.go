package tiering

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// metrics are the Tierer's counters.
type metrics struct {
	uploads          atomic.Int64
	uploadBytes      atomic.Int64
	errors           atomic.Int64
	lastSuccess      atomic.Int64 // Unix ms of the last upload
	remoteDeleted    atomic.Int64
	orphansRemoved   atomic.Int64
	remoteReads      atomic.Int64
	remoteReadBytes  atomic.Int64
	remoteReadErrors atomic.Int64
	remoteGetBytes   atomic.Int64
	cacheHits        atomic.Int64
	cacheMisses      atomic.Int64
	reachable        atomic.Int64 // 1 when the last bucket check succeeded
}

// PartitionStatus is one partition's local and remote ranges and upload backlog.
type PartitionStatus struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	LocalStart     int64  `json:"local_start_offset"`
	LocalEnd       int64  `json:"local_end_offset"` // the high watermark
	LocalBytes     int64  `json:"local_bytes"`
	RemoteStart    int64  `json:"remote_start_offset"` // -1: nothing uploaded (or not known yet)
	RemoteEnd      int64  `json:"remote_end_offset"`   // offset after the last uploaded one, -1 likewise
	RemoteSegments int    `json:"remote_segments"`
	RemoteBytes    int64  `json:"remote_bytes"`
	BacklogSegs    int    `json:"backlog_segments"` // closed segments not uploaded yet
	BacklogBytes   int64  `json:"backlog_bytes"`
	ManifestLoaded bool   `json:"manifest_loaded"`
	LastError      string `json:"last_error,omitempty"`
}

// Status reports every tiered partition (of topic, or of all topics when topic is empty).
func (t *Tierer) Status(topic string) []PartitionStatus {
	var out []PartitionStatus
	for _, top := range t.logs.Topics() {
		if !top.Config().RemoteStorageEnable || topic != "" && top.Name() != topic {
			continue
		}
		for p := int32(0); p < top.NumPartitions(); p++ {
			if l := top.Partition(p); l != nil {
				out = append(out, t.partitionStatus(top.Name(), l))
			}
		}
	}
	return out
}

func (t *Tierer) partitionStatus(topic string, l *commitlog.Log) PartitionStatus {
	st := PartitionStatus{Topic: topic, Partition: l.Partition(), LocalStart: l.LogStartOffset(), LocalEnd: l.HighWatermark(),
		LocalBytes: l.Size(), RemoteStart: -1, RemoteEnd: -1}
	from := int64(0)
	if m := t.lookup(topic, l.Partition()); m != nil {
		st.ManifestLoaded = true
		st.RemoteSegments, st.RemoteBytes = len(m.Segments), m.Size()
		if len(m.Segments) > 0 {
			st.RemoteStart, st.RemoteEnd = m.StartOffset(), m.EndOffset()
		}
		from = m.EndOffset()
	}
	t.mu.Lock()
	ps := t.parts[partKey{topic, l.Partition()}]
	t.mu.Unlock()
	if ps != nil {
		if e := ps.lastErr.Load(); e != nil {
			st.LastError = *e
		}
	}
	for _, s := range l.SealedSegments(from) {
		st.BacklogSegs++
		st.BacklogBytes += s.Size
	}
	return st
}

// SetReachable records the outcome of a bucket check (the agent checks at start).
func (t *Tierer) SetReachable(ok bool) {
	v := int64(0)
	if ok {
		v = 1
	}
	t.m.reachable.Store(v)
}

// WriteMetrics writes the tiering metrics in Prometheus text format.
func (t *Tierer) WriteMetrics(w io.Writer) {
	m := &t.m
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	counter("samsa_tier_uploads_total", "Segments uploaded to object storage.", m.uploads.Load())
	counter("samsa_tier_upload_bytes_total", "Bytes uploaded (segments and indexes).", m.uploadBytes.Load())
	counter("samsa_tier_errors_total", "Failed tiering attempts (retried with backoff).", m.errors.Load())
	counter("samsa_tier_remote_deleted_segments_total", "Remote segments deleted by retention.", m.remoteDeleted.Load())
	counter("samsa_tier_orphans_removed_total", "Objects of interrupted uploads or deletes removed.", m.orphansRemoved.Load())
	counter("samsa_tier_remote_reads_total", "Fetches served from object storage.", m.remoteReads.Load())
	counter("samsa_tier_remote_read_bytes_total", "Bytes served from object storage.", m.remoteReadBytes.Load())
	counter("samsa_tier_remote_read_errors_total", "Fetches from object storage that failed.", m.remoteReadErrors.Load())
	counter("samsa_tier_remote_get_bytes_total", "Bytes fetched from object storage by ranged GETs.", m.remoteGetBytes.Load())
	counter("samsa_tier_cache_hits_total", "Chunk cache hits.", m.cacheHits.Load())
	counter("samsa_tier_cache_misses_total", "Chunk cache misses (a ranged GET each).", m.cacheMisses.Load())
	gauge("samsa_tier_cache_bytes", "Bytes in the chunk cache.", float64(t.cache.bytes()))
	counter("samsa_tier_cache_writes_total", "Chunks written to the on-disk chunk cache.", t.cache.writes.Load())
	gauge("samsa_tier_read_ahead_bytes", "Bytes of remote chunks held in memory.", float64(t.mem.bytes()))
	counter("samsa_tier_read_ahead_spills_total", "Chunks written to the disk cache when they left memory not read whole.", t.mem.spills.Load())
	gauge("samsa_tier_store_reachable", "1 when the bucket was reachable at the last check.", float64(m.reachable.Load()))
	last := 0.0
	if ms := m.lastSuccess.Load(); ms > 0 {
		last = float64(ms) / 1000
	}
	gauge("samsa_tier_last_upload_timestamp_seconds", "Unix time of the last successful upload (0: none yet).", last)
	var segs, bytes int64
	for _, st := range t.Status("") {
		segs += int64(st.BacklogSegs)
		bytes += st.BacklogBytes
	}
	gauge("samsa_tier_upload_lag_segments", "Closed segments not uploaded yet.", float64(segs))
	gauge("samsa_tier_upload_lag_bytes", "Bytes of closed segments not uploaded yet.", float64(bytes))
	if age := time.Since(time.UnixMilli(m.lastSuccess.Load())); m.lastSuccess.Load() > 0 && segs > 0 {
		gauge("samsa_tier_upload_lag_seconds", "Time since the last upload while a backlog waits.", age.Seconds())
	}
}
