// Package batch reads, checks and writes Kafka RecordBatch v2, the unit that
// samsa stores on disk, replicates and ships to S3 unchanged.
//
// # Layout
//
// A v2 batch is a 61-byte fixed header followed by the records area:
//
//	off  size  field
//	  0     8  baseOffset            (outside the CRC; stamped by the broker)
//	  8     4  length                (bytes after this field)
//	 12     4  partitionLeaderEpoch  (outside the CRC; stamped by the broker)
//	 16     1  magic                 (2)
//	 17     4  crc                   (CRC-32C of bytes 21..end)
//	 21     2  attributes            (bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control)
//	 23     4  lastOffsetDelta
//	 27     8  firstTimestamp
//	 35     8  maxTimestamp
//	 43     8  producerId
//	 51     2  producerEpoch
//	 53     4  baseSequence
//	 57     4  numRecords
//	 61     -  records, compressed as one blob when the codec is not none
//
// Each record is framed with zigzag varints: length, attributes (int8),
// timestampDelta (varlong), offsetDelta, keyLen (-1 = null), key, valueLen
// (-1 = null), value, headerCount, then per header keyLen, key, valueLen
// (-1 = null), value.
//
// # Paths
//
// The produce path calls [Split] on the request's records field and
// [Validate] on each batch, then stamps the broker-owned fields with
// [SetBaseOffset] and [SetPartitionLeaderEpoch]. Neither copies, allocates,
// nor decompresses, and both stamped fields sit outside the CRC, so the
// client's bytes go to disk as they are. Segment recovery walks a file with
// [PeekSize] on 12-byte reads and re-checks each batch with [Validate].
//
// Readers that need the records themselves (compaction, the MQTT bridge, the
// cloud query engine) use [Records], which decompresses into pooled buffers
// and hands out records that alias those buffers for the duration of a
// callback. [Filter] rewrites a batch keeping only some of its records, for
// log compaction. [Builder] writes new batches; [Compress] and [Decompress]
// expose the codecs, with pooled gzip and lz4 state and one shared zstd
// encoder and decoder.
//
// # Limits
//
// No function panics on any input: malformed bytes come back as errors that
// wrap one of the package's sentinel errors ([ErrTruncated], [ErrCorrupt],
// [ErrLegacyMagic], [ErrUnknownMagic], [ErrUnsupportedCodec], [ErrTooLarge],
// [ErrEmpty]). Decompression never produces more than [MaxDecompressedSize]
// bytes, so a small malicious batch cannot exhaust a gateway's memory.
//
// Validate accepts the batches compaction leaves behind: offset gaps (record
// offset deltas strictly increasing, none above lastOffsetDelta, the last one
// possibly below it when the tail was dropped) and empty batches (no records,
// an empty records area, any codec), which [Filter] writes. A produce
// handler that wants Kafka's stricter rule for fresh batches (deltas exactly
// 0..n-1) checks h.LastOffsetDelta == h.NumRecords-1 on the header Validate
// returns.
package batch
