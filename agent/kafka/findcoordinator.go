package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator (key 10)
//
//	v0     group key only
//	v1     key type (0 group, 1 transaction); throttle_time_ms, error message
//	v2     same as v1
//	v3     flexible
//	v4     several keys per request (KIP-699), one answer per key
//
// This node coordinates every group. There is no transaction coordinator yet: transaction
// keys get COORDINATOR_NOT_AVAILABLE; other key types INVALID_REQUEST.

// Coordinator key types.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

// handleFindCoordinator answers a FindCoordinator request.
func (s *Server) handleFindCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version < 4 {
		co := s.coordinatorFor(req.CoordinatorKey, req.CoordinatorType)
		resp.ErrorCode, resp.ErrorMessage = co.ErrorCode, co.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = co.NodeID, co.Host, co.Port
		return resp
	}
	resp.Coordinators = make([]kmsg.FindCoordinatorResponseCoordinator, 0, len(req.CoordinatorKeys))
	for _, key := range req.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, s.coordinatorFor(key, req.CoordinatorType))
	}
	return resp
}

// coordinatorFor answers one key.
func (s *Server) coordinatorFor(key string, keyType int8) kmsg.FindCoordinatorResponseCoordinator {
	co := kmsg.NewFindCoordinatorResponseCoordinator()
	co.Key = key
	var msg string
	switch {
	case keyType == coordinatorGroup && s.opts.Groups != nil:
		co.NodeID, co.Host, co.Port = s.opts.NodeID, s.opts.AdvertisedHost, s.opts.AdvertisedPort
		return co
	case keyType == coordinatorGroup:
		co.ErrorCode, msg = kerr.CoordinatorNotAvailable.Code, "this broker runs no group coordinator"
	case keyType == coordinatorTransaction:
		co.ErrorCode, msg = kerr.CoordinatorNotAvailable.Code, "transactions are not supported yet"
	default:
		co.ErrorCode, msg = kerr.InvalidRequest.Code, "unknown coordinator key type"
	}
	co.NodeID, co.Host, co.Port, co.ErrorMessage = -1, "", -1, &msg
	return co
}
