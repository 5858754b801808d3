package commitlog

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// storeMetrics are the store's counters, exported in Prometheus text by WriteMetrics.
type storeMetrics struct {
	fsyncs        atomic.Int64
	fsyncNanos    atomic.Int64
	appendBatches atomic.Int64
	appendRecords atomic.Int64
	appendBytes   atomic.Int64
	recoveryCuts  atomic.Int64
	recoveryBytes atomic.Int64
	corruptReads  atomic.Int64

	retentionSegments       atomic.Int64
	retentionBytes          atomic.Int64
	recordsDeletedByRequest atomic.Int64

	producerDuplicates atomic.Int64
	producersExpired   atomic.Int64
	producersEvicted   atomic.Int64
}

func (m *storeMetrics) observeFsync(start time.Time) {
	m.fsyncs.Add(1)
	m.fsyncNanos.Add(int64(time.Since(start)))
}

// Fsyncs is the number of fdatasync calls made so far (group commit makes it smaller than the
// number of acknowledged appends).
func (s *Store) Fsyncs() int64 { return s.metrics.fsyncs.Load() }

// WriteMetrics writes the store's metrics in Prometheus text format.
func (s *Store) WriteMetrics(w io.Writer) {
	m := &s.metrics
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("samsa_log_fsyncs_total", "fdatasync calls.", m.fsyncs.Load())
	fmt.Fprintf(w, "# HELP samsa_log_fsync_seconds_total Time spent in fdatasync.\n# TYPE samsa_log_fsync_seconds_total counter\nsamsa_log_fsync_seconds_total %.6f\n", time.Duration(m.fsyncNanos.Load()).Seconds())
	counter("samsa_log_append_batches_total", "Record batches appended.", m.appendBatches.Load())
	counter("samsa_log_append_records_total", "Records appended.", m.appendRecords.Load())
	counter("samsa_log_append_bytes_total", "Bytes appended.", m.appendBytes.Load())
	counter("samsa_log_recovery_truncations_total", "Torn or corrupt tails cut by recovery.", m.recoveryCuts.Load())
	counter("samsa_log_recovery_truncated_bytes_total", "Bytes cut by recovery.", m.recoveryBytes.Load())
	counter("samsa_log_corrupt_reads_total", "Reads refused because stored data failed its CRC.", m.corruptReads.Load())
	counter("samsa_log_producer_duplicates_total", "Retried idempotent batches answered with their first offsets, not appended.", m.producerDuplicates.Load())
	counter("samsa_log_producers_expired_total", "Idempotent producer ids forgotten after producer_id_expiration idle.", m.producersExpired.Load())
	counter("samsa_log_producers_evicted_total", "Idempotent producer ids forgotten because a partition reached its cap.", m.producersEvicted.Load())
	counter("samsa_retention_deleted_segments_total", "Segments deleted by retention.ms, retention.bytes or DeleteRecords.", m.retentionSegments.Load())
	counter("samsa_retention_deleted_bytes_total", "Bytes of segments deleted by retention.", m.retentionBytes.Load())
	counter("samsa_delete_records_total", "Log start offsets moved by DeleteRecords.", m.recordsDeletedByRequest.Load())
	if s.cleaner != nil {
		s.cleaner.writeMetrics(w)
	}
	gauges := []struct {
		name, help string
		get        func(l *Log) int64
	}{
		{"samsa_partition_log_end_offset", "Next offset to be assigned.", (*Log).LogEndOffset},
		{"samsa_partition_high_watermark", "End of what consumers may read.", (*Log).HighWatermark},
		{"samsa_partition_log_start_offset", "First offset stored.", (*Log).LogStartOffset},
		{"samsa_partition_size_bytes", "Bytes of segment files.", (*Log).Size},
		{"samsa_partition_segments", "Segment files.", func(l *Log) int64 { return int64(l.NumSegments()) }},
		{"samsa_partition_producers", "Idempotent producer ids tracked.", func(l *Log) int64 { return int64(l.NumProducers()) }},
	}
	topics := s.Topics()
	fmt.Fprintf(w, "# HELP samsa_topic_size_bytes Bytes of segment files over all partitions.\n# TYPE samsa_topic_size_bytes gauge\n")
	for _, t := range topics {
		var n int64
		for p := int32(0); p < t.NumPartitions(); p++ {
			if l := t.Partition(p); l != nil {
				n += l.Size()
			}
		}
		fmt.Fprintf(w, "samsa_topic_size_bytes{topic=%q} %d\n", t.Name(), n)
	}
	for _, g := range gauges {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", g.name, g.help, g.name)
		for _, t := range topics {
			for p := int32(0); p < t.NumPartitions(); p++ {
				if l := t.Partition(p); l != nil {
					fmt.Fprintf(w, "%s{topic=%q,partition=\"%d\"} %d\n", g.name, t.Name(), p, g.get(l))
				}
			}
		}
	}
}
