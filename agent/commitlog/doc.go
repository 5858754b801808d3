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
//
// Appends go to the last (active) segment, which rolls on segment.bytes or segment.ms.
// Durability follows the store's fsync mode: "always" acknowledges only fsynced data and uses
// group commit (one fdatasync covers every append waiting on it); "interval" fsyncs every
// fsync_interval; "never" leaves it to the OS; topic flush.messages and flush.ms add fsyncs.
// Log end offset (LEO) and high watermark (HW) are distinct: consumers read below the HW,
// which on one node follows the durable end (fsynced with "always", written otherwise).
//
// Reads return file ranges of whole batches ([FileRange]) so the Kafka server can sendfile
// them; a ReadResult pins its segments until Release.
//
// Recovery: a clean shutdown leaves a marker and the next start trusts the indexes. Otherwise
// the newest two segments are scanned, every batch CRC-32C checked, a torn or corrupt tail
// truncated (and logged with file, position and bytes cut) and the indexes rebuilt. Sealed
// segments loaded from disk are CRC-checked once, on the first read that touches them, so
// corrupt data in the middle of a segment is reported (ErrCorrupt), never served.
//
// Lock order: Store.mu, then Topic.mu, then Log.mu. No lock is held across an fsync.
package commitlog
