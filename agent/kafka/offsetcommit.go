package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit (key 8)
//
//	v2     retention_time_ms (ignored, as Kafka does since 2.1)
//	v3     throttle_time_ms
//	v4     same as v3
//	v5     no retention_time_ms
//	v6     committed leader epoch per partition
//	v7     group_instance_id
//	v8     flexible
//	v9     same as v8 (KIP-848 member epochs are for the new protocol)
//
// Generation -1 with an empty member id is a "simple" commit (standalone consumers, admin
// tools). The answer waits until the offsets are durable.

// handleOffsetCommit hands an OffsetCommit to the coordinator.
func (s *Server) handleOffsetCommit(c *conn, r *request, req *kmsg.OffsetCommitRequest) *reply {
	if s.opts.Groups == nil {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.CoordinatorNotAvailable.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return c.kmsgReply(r, resp)
	}
	return s.groupCall(c, r, nil, func(done func(kmsg.Response)) {
		s.opts.Groups.OffsetCommit(req, func(resp *kmsg.OffsetCommitResponse) { done(resp) })
	})
}
