package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups (key 15)
//
//	v1     throttle_time_ms
//	v2     same as v1
//	v3     authorized operations on request
//	v4     members' group_instance_id
//	v5     flexible
//
// An unknown group is described as Dead, without an error, as Kafka does.

// handleDescribeGroups hands a DescribeGroups to the coordinator.
func (s *Server) handleDescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	if s.opts.Groups != nil {
		return s.opts.Groups.DescribeGroups(req)
	}
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, g := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.ErrorCode = g, kerr.CoordinatorNotAvailable.Code
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}
