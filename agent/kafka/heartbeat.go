package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// Heartbeat (key 12)
//
//	v1     throttle_time_ms
//	v2     same as v1
//	v3     group_instance_id
//	v4     flexible

// handleHeartbeat hands a Heartbeat to the coordinator.
func (s *Server) handleHeartbeat(c *conn, r *request, req *kmsg.HeartbeatRequest) *reply {
	if s.opts.Groups == nil {
		return noCoordinator(c, r, req.ResponseKind())
	}
	return c.kmsgReply(r, s.opts.Groups.Heartbeat(req))
}
