package commitlog

import (
	"errors"
	"os"
)

// Sentinel errors returned by the store and partition logs. They are wrapped with context;
// test with errors.Is. The Kafka server maps them to Kafka error codes.
var (
	// ErrOffsetOutOfRange: the requested offset is below the log start or above the log end.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrUnknownTopic: no such topic or partition.
	ErrUnknownTopic = errors.New("unknown topic or partition")
	// ErrTopicExists: CreateTopic of a name already in use.
	ErrTopicExists = errors.New("topic already exists")
	// ErrInvalidTopic: the topic name breaks Kafka's naming rules.
	ErrInvalidTopic = errors.New("invalid topic name")
	// ErrInvalidConfig: a topic config key or value is not accepted.
	ErrInvalidConfig = errors.New("invalid topic config")
	// ErrInvalidPartitions: a partition count that is not allowed.
	ErrInvalidPartitions = errors.New("invalid partition count")
	// ErrMessageTooLarge: a batch exceeds the topic's max.message.bytes.
	ErrMessageTooLarge = errors.New("batch larger than max.message.bytes")
	// ErrCorrupt: a batch failed validation (CRC, framing) on append, or stored data is corrupt.
	ErrCorrupt = errors.New("corrupt record batch")
	// ErrStorage: the disk failed us (I/O error); the partition may be offline.
	ErrStorage = errors.New("storage error")
	// ErrClosed: the log or store is closed.
	ErrClosed = errors.New("log closed")
	// ErrOutOfOrderSequence: an idempotent producer's batch does not continue its sequence
	// (a gap, a reordering, or a new epoch that does not start at sequence 0).
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrInvalidProducerEpoch: an idempotent producer's batch has an epoch older than the
	// partition has seen for its producer id (a fenced, stale producer).
	ErrInvalidProducerEpoch = errors.New("producer epoch is older than the current one")
	// ErrAppendRefused: Options.AppendGate refused the append (the disk guard); it comes
	// wrapped together with ErrStorage and the gate's own error.
	ErrAppendRefused = errors.New("append refused")
	// ErrInvalidRecord: a record the topic cannot take, such as one without a key on a
	// compacted topic (Kafka's INVALID_RECORD).
	ErrInvalidRecord = errors.New("invalid record")
	// ErrTransactionalBatch: a batch marked transactional (or a control batch); transactions
	// are not supported yet.
	ErrTransactionalBatch = errors.New("transactional batches are not supported")
)

// FileRange is a byte range of a segment file: what a fetch sends with sendfile.
type FileRange struct {
	File *os.File
	Pos  int64
	Len  int64
}

// ReadResult is the answer to Log.Read: file ranges (never copies) of whole batches, plus the
// partition's offsets at the time of the read. Call Release when the bytes have been sent.
type ReadResult struct {
	Ranges         []FileRange
	Bytes          int64 // sum of the ranges' lengths
	HighWatermark  int64
	LogStartOffset int64
	LogEndOffset   int64
	release        func()
}

// RangesResult makes a ReadResult from file ranges read elsewhere (object storage through a
// local cache); release runs once on Release.
func RangesResult(ranges []FileRange, release func()) ReadResult {
	r := ReadResult{Ranges: ranges, release: release}
	for _, fr := range ranges {
		r.Bytes += fr.Len
	}
	return r
}

// Release lets the segment files go (they stay open while a read holds them).
func (r *ReadResult) Release() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// AppendResult says where an appended set of batches landed. For a retried idempotent batch
// (Duplicate), nothing was appended: the offsets are the ones the batch got the first time.
type AppendResult struct {
	BaseOffset     int64 // offset of the first record appended
	LastOffset     int64 // offset of the last record appended
	LogAppendTime  int64 // ms; -1 unless the topic uses message.timestamp.type=LogAppendTime
	LogStartOffset int64
	Duplicate      bool // the batch was appended before (same producer id, epoch and sequences)
}

// ReadLimit says how far a read may go.
type ReadLimit int

const (
	// ReadToHighWatermark is what consumers see.
	ReadToHighWatermark ReadLimit = iota
	// ReadToLogEnd is what followers see (replication, later).
	ReadToLogEnd
)
