package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups (key 16)
//
//	v1     throttle_time_ms
//	v2     same as v1
//	v3     flexible
//	v4     states filter (KIP-518) and each group's state

// handleListGroups hands a ListGroups to the coordinator.
func (s *Server) handleListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	if s.opts.Groups != nil {
		return s.opts.Groups.ListGroups(req)
	}
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	return resp
}
