package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// errorCode maps an error from the commit log, the batch package or a
// context to the Kafka error code a client should see. nil maps to 0. The
// order matters: batch errors are checked before the store's wrappers so a
// legacy message set is reported as such, not as a generic corrupt batch.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, batch.ErrLegacyMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, batch.ErrUnsupportedCodec):
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, commitlog.ErrMessageTooLarge), errors.Is(err, batch.ErrTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, batch.ErrCorrupt), errors.Is(err, batch.ErrTruncated),
		errors.Is(err, batch.ErrUnknownMagic), errors.Is(err, batch.ErrEmpty),
		errors.Is(err, commitlog.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, commitlog.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, commitlog.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, commitlog.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, commitlog.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, commitlog.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, commitlog.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, commitlog.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, commitlog.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, commitlog.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, commitlog.ErrInvalidProducerEpoch):
		// Produce answers a stale epoch with INVALID_PRODUCER_EPOCH in every version (since
		// Kafka 2.7, KIP-588, PRODUCER_FENCED is for the transaction coordinator's APIs).
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, commitlog.ErrTransactionalBatch):
		// No transaction can be open (InitProducerId refuses transactional ids), which is
		// what Kafka answers a transactional batch outside a transaction with.
		return kerr.InvalidTxnState.Code
	case errors.Is(err, commitlog.ErrClosed):
		// The partition went away under us (topic deleted, agent stopping):
		// a retriable error that makes the client refresh its metadata.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}
