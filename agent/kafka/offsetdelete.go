package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// OffsetDelete (key 47)
//
//	v0     the only version (KIP-496)
//
// Deletes committed offsets of a group; the topics a live consumer group subscribes to are
// refused with GROUP_SUBSCRIBED_TO_TOPIC. The answer waits until the deletion is durable.

// handleOffsetDelete hands an OffsetDelete to the coordinator.
func (s *Server) handleOffsetDelete(c *conn, r *request, req *kmsg.OffsetDeleteRequest) *reply {
	if s.opts.Groups == nil {
		return noCoordinator(c, r, req.ResponseKind())
	}
	return s.groupCall(c, r, nil, func(done func(kmsg.Response)) {
		s.opts.Groups.OffsetDelete(req, func(resp *kmsg.OffsetDeleteResponse) { done(resp) })
	})
}
