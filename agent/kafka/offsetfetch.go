package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch (key 9)
//
//	v1     same as v0, offsets from the group coordinator
//	v2     null topics fetch every committed offset; top-level error code
//	v3     throttle_time_ms
//	v4     same as v3
//	v5     committed leader epoch
//	v6     flexible
//	v7     require_stable (ignored: commits are visible once appended)
//	v8     several groups per request, an error code per group
//	v9     member id and epoch (KIP-848; unused by classic groups)

// handleOffsetFetch hands an OffsetFetch to the coordinator.
func (s *Server) handleOffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	if s.opts.Groups != nil {
		return s.opts.Groups.OffsetFetch(req)
	}
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	for _, g := range req.Groups {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group, rg.ErrorCode = g.Group, kerr.CoordinatorNotAvailable.Code
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}
