package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Metadata (key 3)
//
//	v0     topics; an empty list means all topics
//	v1     null topics = all, empty = none; rack; controller id; is_internal
//	v2     cluster id
//	v3     throttle_time_ms
//	v4     allow_auto_topic_creation (always allowed before v4)
//	v5     offline replicas
//	v7     leader epoch
//	v8     authorized operations (cluster ones until v10)
//	v9     flexible
//	v10    topic ids, topics may be requested by id
//	v11    no cluster authorized operations
//	v12    topic names nullable when requested by id
//
// One broker (this node) leads every partition with leader epoch 0;
// replicas and ISR are just this node, and it is also the controller.

// Authorized-operation bits (Kafka AclOperation codes) answered when a client
// asks: samsa has no ACLs, so everything is allowed.
const (
	topicAuthorizedOps   = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	clusterAuthorizedOps = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
)

// handleMetadata answers a Metadata request.
func (s *Server) handleMetadata(_ context.Context, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Version = req.Version
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = s.opts.NodeID, s.opts.AdvertisedHost, s.opts.AdvertisedPort
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	clusterID := s.store.ClusterID()
	resp.ClusterID = &clusterID
	resp.ControllerID = s.opts.NodeID
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterAuthorizedOps
	}
	withOps := req.IncludeTopicAuthorizedOperations

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, t := range s.store.Topics() {
			resp.Topics = append(resp.Topics, s.metadataTopic(t, withOps))
		}
		return resp
	}
	create := s.opts.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	seen := make(map[string]bool, len(req.Topics))
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			resp.Topics = append(resp.Topics, s.metadataTopicByID(rt.TopicID, withOps))
			continue
		}
		name := *rt.Topic
		if seen[name] {
			continue
		}
		seen[name] = true
		t, code := s.lookupTopic(name, create)
		if code != 0 {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr(name)
			mt.ErrorCode = code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(t, withOps))
	}
	return resp
}

// metadataTopicByID describes the topic with id, or UNKNOWN_TOPIC_ID.
func (s *Server) metadataTopicByID(id [16]byte, withOps bool) kmsg.MetadataResponseTopic {
	if t := s.store.TopicByID(id); t != nil {
		return s.metadataTopic(t, withOps)
	}
	mt := kmsg.NewMetadataResponseTopic()
	mt.TopicID = id
	mt.ErrorCode = kerr.UnknownTopicID.Code
	return mt
}

// metadataTopic describes a topic: every partition led by this node.
func (s *Server) metadataTopic(t *commitlog.Topic, withOps bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.Name())
	mt.TopicID = t.ID()
	mt.IsInternal = isInternalTopic(t.Name())
	if withOps {
		mt.AuthorizedOperations = topicAuthorizedOps
	}
	n := t.NumPartitions()
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, max(n, 0))
	for p := range n {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p
		mp.Leader = s.opts.NodeID
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{s.opts.NodeID}
		mp.ISR = []int32{s.opts.NodeID}
		mp.OfflineReplicas = []int32{}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// isInternalTopic reports Kafka's internal topics.
func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// lookupTopic finds a topic by name, creating it with the default partition
// count when create is set and it does not exist. It returns a Kafka error
// code when there is no topic to use.
func (s *Server) lookupTopic(name string, create bool) (*commitlog.Topic, int16) {
	if t := s.store.Topic(name); t != nil {
		return t, 0
	}
	if !create {
		if err := commitlog.ValidateTopicName(name); err != nil {
			return nil, kerr.InvalidTopicException.Code
		}
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	t, err := s.store.CreateTopic(name, s.opts.DefaultPartitions, nil, false)
	switch {
	case err == nil:
		s.log.Info("auto-created topic", "topic", name, "partitions", s.opts.DefaultPartitions)
		return t, 0
	case errors.Is(err, commitlog.ErrTopicExists):
		if t := s.store.Topic(name); t != nil {
			return t, 0
		}
		return nil, kerr.UnknownTopicOrPartition.Code
	default:
		s.log.Warn("auto-create topic failed", "topic", name, "err", err)
		return nil, errorCode(err)
	}
}

// partitionLog returns partition p of t, or nil when p is out of range.
func partitionLog(t *commitlog.Topic, p int32) *commitlog.Log {
	if t == nil || p < 0 || p >= t.NumPartitions() {
		return nil
	}
	return t.Partition(p)
}
