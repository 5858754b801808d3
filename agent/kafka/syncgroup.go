package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup (key 14)
//
//	v1     throttle_time_ms
//	v2     same as v1
//	v3     group_instance_id
//	v4     flexible
//	v5     protocol_type and protocol_name in request and response
//
// A follower's answer waits for the leader's SyncGroup.

// handleSyncGroup hands a SyncGroup to the coordinator.
func (s *Server) handleSyncGroup(c *conn, r *request, req *kmsg.SyncGroupRequest) *reply {
	if s.opts.Groups == nil {
		return noCoordinator(c, r, req.ResponseKind())
	}
	drain := func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	return s.groupCall(c, r, drain, func(done func(kmsg.Response)) {
		s.opts.Groups.SyncGroup(req, func(resp *kmsg.SyncGroupResponse) { done(resp) })
	})
}
