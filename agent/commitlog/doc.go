// Package commitlog is samsa's storage engine: topics of partition logs, each an ordered list
// of segment files holding Kafka RecordBatch v2 bytes exactly as producers sent them (with
// base offset and leader epoch stamped, both outside the CRC), plus sparse indexes.
//
// A partition directory holds, per segment, three files named by the segment's base offset:
//
//	%020d.log        the batches, back to back
//	%020d.index      8-byte entries (offset - base uint32, position uint32), one per
//	                 index.interval.bytes of log, preallocated and mmapped (pread on 32-bit)
//	%020d.timeindex  12-byte entries (max timestamp so far int64, offset - base uint32)
//	%020d.snapshot   idempotent producer state valid at that offset (segment rolls, clean close)
//
// Appends go to the last (active) segment, which rolls on segment.bytes or segment.ms, or
// before offsets relative to its base would overflow the indexes' 32 bits. Each segment starts
// where the previous one ended, and inside a segment each batch starts where the previous one
// ended, except in segments compaction rewrote (below the cleaner checkpoint's gaps_below),
// where dropped batches leave gaps; recovery treats any other gap as damage.
//
// Retention (retention.go): every retention_check_interval a janitor deletes, oldest first,
// closed segments wholly below the high watermark whose largest timestamp is older than
// retention.ms, or while the partition stays above retention.bytes without them (so it keeps
// at most retention.bytes plus one segment), or wholly below the log start offset. An expired
// active segment is rolled so it can go. DeleteRecords moves the log start offset inside a
// segment; it is kept in the partition's log-start-offset file, written before segments go.
//
// Compaction (cleaner.go, clean.go, swap.go): for cleanup.policy=compact, a cleaner maps the
// keys of the dirty part (closed segments not compacted yet) to their latest offsets in a
// fixed-size hash table (keymap.go), then rewrites the closed segments from the log start,
// keeping the latest record per key, tombstones until delete.retention.ms after the pass that
// first compacted them (Kafka's delete horizon), and, as empty batches, each group's last batch and each producer's newest batch
// (so offsets stay aligned and idempotent state survives a replay). A rewrite is committed by
// a rename, so a crash leaves either the old segments or the new one.
// Durability follows the store's fsync mode: "always" acknowledges only fsynced data and uses
// group commit (one fdatasync covers every append waiting on it); "interval" fsyncs every
// fsync_interval; "never" leaves it to the OS; topic flush.messages and flush.ms add fsyncs.
// Whatever the mode, a sealed segment is fsynced with its indexes by the syncer, and a new
// segment's directory entry before anything in it is acknowledged. A failed fsync takes the
// partition offline (appends and waits return ErrStorage) until a restart recovers it: after a
// failure the kernel may have dropped the dirty pages, so retrying would prove nothing.
// Log end offset (LEO) and high watermark (HW) are distinct: consumers read below the HW,
// which on one node follows the durable end (fsynced with "always", written otherwise).
//
// Reads return file ranges of whole batches ([FileRange]) so the Kafka server can sendfile
// them; a ReadResult pins its segment until Release.
//
// Recovery: a clean shutdown leaves a marker (written after every index is fsynced) and the
// next start trusts the indexes after checking them against the log: the last entry must point
// at the batch it names, inside the file, with no long run of log after it unindexed. A sealed
// segment that fails the check is re-indexed from its log; the active one is scanned. After a
// crash the newest two segments are scanned, every batch CRC-32C checked, a torn or corrupt
// tail (or a gap in the offsets) truncated, everything after it removed (logged with file,
// position and bytes cut), the indexes rebuilt and the result fsynced before it is served.
// Scanning two segments is enough because a roll first makes sure the segment leaving that
// window is on disk. Sealed segments loaded from disk are CRC-checked once, on the first read
// that touches them, so corrupt data in the middle of a segment is reported (ErrCorrupt),
// never served, while reads past the damage still work.
//
// Idempotent producers: each partition tracks, per producer id, its epoch and last five
// batches' sequences and offsets, so that a retried batch is answered with its first offsets
// instead of being appended twice, and a gap or a stale epoch is refused (producerstate.go).
// The state is snapshotted at every roll and at a clean close, and rebuilt at open from the
// newest snapshot plus the batch headers after it (producersnapshot.go). The store hands out
// producer ids that never repeat across restarts (producerids.go).
//
// Lock order: Store.mu, then Topic.mu, then Log.flushMu, then Log.mu. No lock is held across
// an fsync, with one exception: a roll that finds the segment leaving the recovery window not
// yet fsynced (two rolls before the syncer ran) fsyncs it with Log.mu held.
package commitlog
