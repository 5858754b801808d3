package kafka

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId (key 22)
//
//	v0     transactional id, transaction timeout
//	v1     same as v0
//	v2     flexible
//	v3     the producer id and epoch the client has (KIP-360: recover by bumping the epoch)
//	v4     PRODUCER_FENCED for fenced transactional producers (KIP-588)
//	v5     TRANSACTION_ABORTABLE for transactional producers (KIP-890)
//
// Only idempotent producers are served for now; transactions are a later step.
//
//   - transactional id null, no producer id: a fresh producer id with epoch 0 from the
//     store's allocator, which never hands an id out twice, across restarts too.
//   - v3+ with the producer id and epoch the client has (KIP-360): the same id with the
//     next epoch; the client restarts its sequences at 0, which every partition accepts
//     for a newer epoch, and batches of the old epoch are fenced (INVALID_PRODUCER_EPOCH).
//     When the epoch is exhausted (Kafka's rule: at MaxInt16-1), or the id was never handed
//     out by this data directory, the answer is a fresh id with epoch 0 instead. Only one
//     of id and epoch set is INVALID_REQUEST, as in Kafka.
//   - transactional id "": INVALID_REQUEST, as in Kafka.
//   - any other transactional id: UNSUPPORTED_VERSION. No Kafka code says "this broker has
//     no transactions"; UNSUPPORTED_VERSION is the one clients treat as "the broker cannot do
//     this" and surface as a fatal, non-retried error (franz-go, librdkafka and the Java
//     client alike), rather than NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE, which they
//     would retry forever. Clients only send a transactional id when configured to.
//
// A failure to persist the allocator's next block answers COORDINATOR_NOT_AVAILABLE, which
// clients retry.

// handleInitProducerID answers an InitProducerId request.
func (s *Server) handleInitProducerID(_ context.Context, req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.Version = req.Version
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		if *req.TransactionalID == "" {
			resp.ErrorCode = kerr.InvalidRequest.Code
		} else {
			s.log.Info("refusing a transactional producer: transactions are not supported yet",
				"transactional_id", *req.TransactionalID)
			resp.ErrorCode = kerr.UnsupportedVersion.Code
		}
		return resp
	}
	id, epoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		id, epoch = req.ProducerID, req.ProducerEpoch
	}
	if (id < 0) != (epoch < 0) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	if id >= 0 && epoch < math.MaxInt16-1 && s.store.ProducerIDAllocated(id) {
		resp.ProducerID, resp.ProducerEpoch = id, epoch+1
		s.log.Debug("producer epoch bumped", "producer_id", id, "epoch", epoch+1)
		return resp
	}
	newID, err := s.store.AllocateProducerID()
	if err != nil {
		s.log.Error("cannot allocate a producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = newID, 0
	s.log.Debug("producer id allocated", "producer_id", newID, "previous_id", id)
	return resp
}
