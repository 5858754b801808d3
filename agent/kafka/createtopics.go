package kafka

// CreateTopics (API key 19), versions 2–7.
//
// Version notes: v1 added ValidateOnly and ErrorMessage, v2 ThrottleMillis, v4 lets
// NumPartitions and ReplicationFactor be -1 for the broker defaults (accepted here at every
// version), v5 (flexible) answers with the created topic's NumPartitions, ReplicationFactor
// and Configs, v7 with its TopicID.
//
// The helpers shared by the admin APIs (error mapping, duplicate detection) live here too.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// adminDuplicateMsg is Kafka's message for a topic named more than once in one admin request.
const adminDuplicateMsg = "Duplicate topic name."

// handleCreateTopics creates topics in the store. A single agent is a cluster of one, so the
// replication factor is always 1 and manual replica assignments are refused.
func (s *Server) handleCreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := kmsg.NewPtrCreateTopicsResponse()
	resp.Version = req.Version
	counts := adminCount(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	for i := range req.Topics {
		t := &req.Topics[i]
		if n := counts[t.Topic]; n != 1 {
			if n > 1 { // answer a duplicated name once, and create nothing for it
				counts[t.Topic] = -1
				res := kmsg.NewCreateTopicsResponseTopic()
				res.Topic = t.Topic
				adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.InvalidRequest, adminDuplicateMsg)
				resp.Topics = append(resp.Topics, res)
			}
			continue
		}
		resp.Topics = append(resp.Topics, s.adminCreateTopic(ctx, req.Version, req.ValidateOnly, t))
	}
	return resp
}

// adminCreateTopic validates and creates one topic and builds its response entry.
func (s *Server) adminCreateTopic(ctx context.Context, version int16, validateOnly bool, t *kmsg.CreateTopicsRequestTopic) kmsg.CreateTopicsResponseTopic {
	res := kmsg.NewCreateTopicsResponseTopic()
	res.Topic = t.Topic
	fail := func(code *kerr.Error, msg string) kmsg.CreateTopicsResponseTopic {
		adminSetErr(&res.ErrorCode, &res.ErrorMessage, code, msg)
		return res
	}
	if err := ctx.Err(); err != nil {
		return fail(kerr.RequestTimedOut, fmt.Sprintf("request cancelled before topic %q was created: %v", t.Topic, err))
	}
	if err := commitlog.ValidateTopicName(t.Topic); err != nil {
		return fail(kerr.InvalidTopicException, err.Error())
	}
	if len(t.ReplicaAssignment) > 0 {
		return fail(kerr.InvalidRequest, "manual replica assignment is not supported; "+
			"set NumPartitions and ReplicationFactor instead (-1 for the defaults)")
	}
	partitions := t.NumPartitions
	if partitions == -1 {
		partitions = s.opts.DefaultPartitions
	} else if partitions <= 0 {
		return fail(kerr.InvalidPartitions, fmt.Sprintf(
			"number of partitions must be larger than 0, or -1 to use the default (%d); got %d",
			s.opts.DefaultPartitions, partitions))
	}
	switch rf := t.ReplicationFactor; {
	case rf == -1 || rf == 1:
	case rf > 1:
		return fail(kerr.InvalidReplicationFactor, fmt.Sprintf(
			"replication factor %d cannot be reached: only 1 agent is available", rf))
	default:
		return fail(kerr.InvalidReplicationFactor, fmt.Sprintf(
			"replication factor must be larger than 0, or -1 to use the default (1); got %d", rf))
	}
	configs, err := adminCreateConfigs(t.Configs)
	if err != nil {
		return fail(kerr.InvalidConfig, err.Error())
	}
	topic, err := s.store.CreateTopic(t.Topic, partitions, configs, validateOnly)
	if err != nil {
		return fail(s.adminErr("create topic", t.Topic, err), err.Error())
	}
	if version >= 5 {
		res.NumPartitions = partitions
		res.ReplicationFactor = 1
		if topic != nil {
			res.Configs = adminCreatedConfigs(topic.DescribeConfigs())
		}
	}
	// A validate-only topic is never stored: its id would name nothing, so none is returned.
	if version >= 7 && topic != nil && !validateOnly {
		res.TopicID = topic.ID()
	}
	return res
}

// adminCreateConfigs turns the request's configs into the map the store takes. As in Kafka,
// a null value is refused and a repeated key keeps its last value. The map is never nil.
func adminCreateConfigs(in []kmsg.CreateTopicsRequestTopicConfig) (map[string]string, error) {
	out := make(map[string]string, len(in))
	var nulls []string
	for _, c := range in {
		if c.Value == nil {
			nulls = append(nulls, c.Name)
			continue
		}
		out[c.Name] = *c.Value
	}
	if len(nulls) > 0 {
		sort.Strings(nulls)
		return nil, fmt.Errorf("null value not supported for topic configs: %s", strings.Join(nulls, ","))
	}
	return out, nil
}

// adminCreatedConfigs converts a topic's described configs for a v5+ CreateTopics response.
func adminCreatedConfigs(entries []commitlog.ConfigEntry) []kmsg.CreateTopicsResponseTopicConfig {
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(entries))
	for _, e := range entries {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = e.Name
		if !e.Sensitive {
			c.Value = kmsg.StringPtr(e.Value)
		}
		c.ReadOnly = e.ReadOnly
		c.Source = int8(e.Source)
		c.IsSensitive = e.Sensitive
		out = append(out, c)
	}
	return out
}

// adminErr maps a store error to a Kafka error code. Errors that are not the client's fault
// (I/O, closed store) become UNKNOWN_SERVER_ERROR and are logged.
func (s *Server) adminErr(op, topic string, err error) *kerr.Error {
	switch {
	case errors.Is(err, commitlog.ErrTopicExists):
		return kerr.TopicAlreadyExists
	case errors.Is(err, commitlog.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition
	case errors.Is(err, commitlog.ErrInvalidTopic):
		return kerr.InvalidTopicException
	case errors.Is(err, commitlog.ErrInvalidConfig):
		return kerr.InvalidConfig
	case errors.Is(err, commitlog.ErrInvalidPartitions):
		return kerr.InvalidPartitions
	default:
		s.log.Warn("admin request failed", "op", op, "topic", topic, "err", err)
		return kerr.UnknownServerError
	}
}

// adminSetErr fills a response entry's error code and message.
func adminSetErr(code *int16, msg **string, err *kerr.Error, text string) {
	*code = err.Code
	*msg = kmsg.StringPtr(text)
}

// adminCount counts how often each key occurs among n request entries. The map lives for one
// request only, so its size is bounded by the request size limit.
func adminCount[K comparable](n int, key func(i int) K) map[K]int {
	counts := make(map[K]int, n)
	for i := 0; i < n; i++ {
		counts[key(i)]++
	}
	return counts
}
