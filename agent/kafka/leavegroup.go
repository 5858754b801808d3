package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// LeaveGroup (key 13)
//
//	v1     throttle_time_ms
//	v2     same as v1
//	v3     a batch of members by member id or group_instance_id (KIP-345), an answer each
//	v4     flexible
//	v5     reason per member

// handleLeaveGroup hands a LeaveGroup to the coordinator.
func (s *Server) handleLeaveGroup(c *conn, r *request, req *kmsg.LeaveGroupRequest) *reply {
	if s.opts.Groups == nil {
		return noCoordinator(c, r, req.ResponseKind())
	}
	return c.kmsgReply(r, s.opts.Groups.LeaveGroup(req))
}
