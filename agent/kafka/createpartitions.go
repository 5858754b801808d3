package kafka

// CreatePartitions (API key 37), versions 0–3.
//
// Version notes: v1 is v0 with throttling after the response, v2 is flexible, v3 changes
// nothing on the wire. Partitions can only be added; manual assignments of the new
// partitions are refused (a single agent hosts every replica).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleCreatePartitions raises topics' partition counts.
func (s *Server) handleCreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	resp := kmsg.NewPtrCreatePartitionsResponse()
	resp.Version = req.Version
	counts := adminCount(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	for i := range req.Topics {
		t := &req.Topics[i]
		if n := counts[t.Topic]; n != 1 {
			if n > 1 { // answer a duplicated name once, and change nothing for it
				counts[t.Topic] = -1
				res := kmsg.NewCreatePartitionsResponseTopic()
				res.Topic = t.Topic
				adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.InvalidRequest, adminDuplicateMsg)
				resp.Topics = append(resp.Topics, res)
			}
			continue
		}
		resp.Topics = append(resp.Topics, s.adminCreatePartitions(ctx, req.ValidateOnly, t))
	}
	return resp
}

// adminCreatePartitions checks and applies one topic's new partition count.
func (s *Server) adminCreatePartitions(ctx context.Context, validateOnly bool, t *kmsg.CreatePartitionsRequestTopic) kmsg.CreatePartitionsResponseTopic {
	res := kmsg.NewCreatePartitionsResponseTopic()
	res.Topic = t.Topic
	fail := func(code *kerr.Error, msg string) kmsg.CreatePartitionsResponseTopic {
		adminSetErr(&res.ErrorCode, &res.ErrorMessage, code, msg)
		return res
	}
	if err := ctx.Err(); err != nil {
		return fail(kerr.RequestTimedOut, fmt.Sprintf("request cancelled before partitions of %q were created: %v", t.Topic, err))
	}
	topic := s.store.Topic(t.Topic)
	if topic == nil {
		return fail(kerr.UnknownTopicOrPartition, fmt.Sprintf("topic %q does not exist", t.Topic))
	}
	current := topic.NumPartitions()
	switch {
	case t.Count < current:
		return fail(kerr.InvalidPartitions, fmt.Sprintf(
			"topic %q has %d partitions, more than the requested %d; partitions cannot be removed",
			t.Topic, current, t.Count))
	case t.Count == current:
		return fail(kerr.InvalidPartitions, fmt.Sprintf("topic %q already has %d partitions", t.Topic, current))
	}
	if len(t.Assignment) > 0 {
		return fail(kerr.InvalidRequest, "manual assignment of new partitions is not supported; omit the assignment")
	}
	if err := s.store.CreatePartitions(t.Topic, t.Count, validateOnly); err != nil {
		return fail(s.adminErr("create partitions", t.Topic, err), err.Error())
	}
	if !validateOnly {
		s.log.Info("partitions created", "topic", t.Topic, "from", current, "to", t.Count)
	}
	return res
}
