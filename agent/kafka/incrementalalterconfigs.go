package kafka

// IncrementalAlterConfigs (API key 44), versions 0–1.
//
// Version notes: v1 is flexible. Topic configs are changed in the store (SET, DELETE, APPEND,
// SUBTRACT, with Kafka's operation values). Broker configs are read-only here: they come from
// the agent config file. As in Kafka, a resource given twice, a key given twice in one
// resource, an unknown operation and a null value for anything but DELETE are INVALID_REQUEST.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// adminResourceKey identifies a config resource within one request.
type adminResourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

// handleIncrementalAlterConfigs alters topic configs.
func (s *Server) handleIncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	resp.Version = req.Version
	counts := adminCount(len(req.Resources), func(i int) adminResourceKey {
		return adminResourceKey{req.Resources[i].ResourceType, req.Resources[i].ResourceName}
	})
	for i := range req.Resources {
		r := &req.Resources[i]
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType = r.ResourceType
		res.ResourceName = r.ResourceName
		key := adminResourceKey{r.ResourceType, r.ResourceName}
		if n := counts[key]; n != 1 {
			if n < 0 {
				continue // duplicate already answered
			}
			counts[key] = -1
			adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.InvalidRequest, "Each resource must appear at most once.")
			resp.Resources = append(resp.Resources, res)
			continue
		}
		if code, msg := s.adminAlterResource(ctx, r, req.ValidateOnly); code != nil {
			adminSetErr(&res.ErrorCode, &res.ErrorMessage, code, msg)
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp
}

// adminAlterResource applies one resource's changes; it returns nil or the error to answer with.
func (s *Server) adminAlterResource(ctx context.Context, r *kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) (*kerr.Error, string) {
	switch r.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		return kerr.InvalidRequest, "broker configs are read-only; edit the agent config file"
	default:
		return kerr.InvalidRequest, fmt.Sprintf(
			"unsupported config resource type %d; only topic (2) configs can be altered", r.ResourceType)
	}
	if err := ctx.Err(); err != nil {
		return kerr.RequestTimedOut, fmt.Sprintf("request cancelled before configs of %q were altered: %v", r.ResourceName, err)
	}
	if err := commitlog.ValidateTopicName(r.ResourceName); err != nil {
		return kerr.InvalidTopicException, err.Error()
	}
	if s.store.Topic(r.ResourceName) == nil {
		return kerr.UnknownTopicOrPartition, fmt.Sprintf("topic %q does not exist", r.ResourceName)
	}
	ops, msg := adminConfigOps(r.Configs)
	if msg != "" {
		return kerr.InvalidRequest, msg
	}
	if err := s.store.AlterTopicConfig(r.ResourceName, ops, validateOnly); err != nil {
		return s.adminErr("alter topic config", r.ResourceName, err), err.Error()
	}
	return nil, ""
}

// adminConfigOps converts the request's changes into store operations, or explains what is
// malformed about them.
func adminConfigOps(in []kmsg.IncrementalAlterConfigsRequestResourceConfig) ([]commitlog.ConfigOp, string) {
	seen := make(map[string]bool, len(in))
	ops := make([]commitlog.ConfigOp, 0, len(in))
	for _, c := range in {
		if seen[c.Name] {
			return nil, fmt.Sprintf("config %q is given more than once", c.Name)
		}
		seen[c.Name] = true
		op := commitlog.ConfigOpType(c.Op)
		switch op {
		case commitlog.OpSet, commitlog.OpDelete, commitlog.OpAppend, commitlog.OpSubtract:
		default:
			return nil, fmt.Sprintf("unknown alter config operation %d for %q", c.Op, c.Name)
		}
		value := ""
		if c.Value != nil {
			value = *c.Value
		} else if op != commitlog.OpDelete {
			return nil, fmt.Sprintf("null value not supported for config %q: only DELETE may omit the value", c.Name)
		}
		ops = append(ops, commitlog.ConfigOp{Key: c.Name, Op: op, Value: value})
	}
	return ops, ""
}
