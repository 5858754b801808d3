package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups (key 42)
//
//	v1     same as v0
//	v2     flexible
//
// Only Empty groups can be deleted (NON_EMPTY_GROUP otherwise, GROUP_ID_NOT_FOUND for an
// unknown one); their offsets go with them. The answer waits until the deletion is durable.

// handleDeleteGroups hands a DeleteGroups to the coordinator.
func (s *Server) handleDeleteGroups(c *conn, r *request, req *kmsg.DeleteGroupsRequest) *reply {
	if s.opts.Groups == nil {
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, g := range req.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return c.kmsgReply(r, resp)
	}
	return s.groupCall(c, r, nil, func(done func(kmsg.Response)) {
		s.opts.Groups.DeleteGroups(req, func(resp *kmsg.DeleteGroupsResponse) { done(resp) })
	})
}
