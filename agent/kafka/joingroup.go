package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup (key 11)
//
//	v1     rebalance_timeout_ms (v0 uses the session timeout)
//	v2     throttle_time_ms
//	v3     same as v2
//	v4     a first join without a member id gets MEMBER_ID_REQUIRED and an id (KIP-394)
//	v5     group_instance_id: static membership (KIP-345)
//	v6     flexible
//	v7     protocol_type in the response
//	v8     reason
//	v9     skip_assignment in the response (KIP-814)
//
// The answer usually waits for the join phase to end (see groupreply.go and agent/groups).

// handleJoinGroup hands a JoinGroup to the coordinator.
func (s *Server) handleJoinGroup(c *conn, r *request, req *kmsg.JoinGroupRequest) *reply {
	if s.opts.Groups == nil {
		return noCoordinator(c, r, req.ResponseKind())
	}
	cl := c.groupClient(r)
	drain := func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = kerr.NotCoordinator.Code, -1, req.MemberID
		return resp
	}
	return s.groupCall(c, r, drain, func(done func(kmsg.Response)) {
		s.opts.Groups.JoinGroup(req, cl, func(resp *kmsg.JoinGroupResponse) { done(resp) })
	})
}
