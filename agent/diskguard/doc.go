// Package diskguard watches the free space of the filesystem holding the data directory and
// tells the commit log when to refuse writes, so an edge device with a small SD card runs out
// of headroom with a clear error instead of running out of disk in the middle of a write.
//
// A Guard polls the filesystem (statfs, through gopsutil's disk.Usage) every
// Options.Interval. When the space available to unprivileged writers falls below
// MinFreeBytes, or below MinFreePercent of the filesystem, the guard enters the refusing
// state: Err returns an error wrapping ErrLowDisk that names the directory, the free bytes and
// percent, and the config key and value of the limit crossed. The agent passes Err as the
// commit log's AppendGate, so produce requests fail with KAFKA_STORAGE_ERROR while retention
// and compaction, which are not gated, keep running and free space. At the first poll that
// sees enough space again, Err returns nil and writes resume by themselves.
//
// Err is an atomic load: the produce path never makes a system call for the guard. The state
// changes only at a poll, so a burst of writes can take the filesystem below the limit by at
// most what is written in one Interval; the limits are meant to be far larger than that.
//
// There is no hysteresis: the guard refuses below the limit and allows at or above it. A
// producer retrying against a filesystem that hovers at the limit sees writes alternately
// accepted and refused, which is the truth, and each accepted write moves the filesystem back
// below. Keeping it simple keeps the rule easy to state in an error message.
//
// Logging: one Warn line on each transition into refusing (free bytes, limit key and value),
// one Info line when writes resume. A poll that fails (the directory vanished, an I/O error)
// keeps the last state and is logged once, until a poll succeeds again.
//
// Metrics (Prometheus text, WriteMetrics), all labelled with the data directory as path:
// samsa_disk_free_bytes, samsa_disk_total_bytes, samsa_disk_free_ratio,
// samsa_disk_min_free_bytes, samsa_disk_min_free_ratio, samsa_disk_writes_refused (0/1),
// samsa_disk_refusals_total (transitions into refusing) and samsa_disk_check_errors_total.
package diskguard
