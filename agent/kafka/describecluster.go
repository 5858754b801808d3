package kafka

// DescribeCluster (API key 60), versions 0–1.
//
// Version notes: v0 is flexible; v1 added EndpointType (1 brokers, 2 controllers). An agent
// is a broker endpoint; asking it for controllers is UNSUPPORTED_ENDPOINT_TYPE, as in Kafka.
// A single agent is a cluster of one and its own controller.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminBrokerEndpoint is DescribeCluster's EndpointType for brokers.
const adminBrokerEndpoint int8 = 1

// adminClusterOperations is the authorized-operations bit field of the cluster resource with
// no authorizer: every operation Kafka defines on it (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE).
const adminClusterOperations int32 = 1<<kmsg.ACLOperationCreate |
	1<<kmsg.ACLOperationAlter |
	1<<kmsg.ACLOperationDescribe |
	1<<kmsg.ACLOperationClusterAction |
	1<<kmsg.ACLOperationDescribeConfigs |
	1<<kmsg.ACLOperationAlterConfigs |
	1<<kmsg.ACLOperationIdempotentWrite

// handleDescribeCluster describes the cluster: its id, controller and brokers.
func (s *Server) handleDescribeCluster(_ context.Context, req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	resp := kmsg.NewPtrDescribeClusterResponse()
	resp.Version = req.Version
	resp.EndpointType = adminBrokerEndpoint
	if req.Version >= 1 && req.EndpointType != adminBrokerEndpoint {
		adminSetErr(&resp.ErrorCode, &resp.ErrorMessage, kerr.UnsupportedEndpointType, fmt.Sprintf(
			"the request was sent to a broker endpoint (type 1), but asked for endpoint type %d", req.EndpointType))
		return resp
	}
	resp.ClusterID = s.store.ClusterID()
	resp.ControllerID = s.opts.NodeID
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID = s.opts.NodeID
	b.Host = s.opts.AdvertisedHost
	b.Port = s.opts.AdvertisedPort
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = adminClusterOperations
	}
	return resp
}
