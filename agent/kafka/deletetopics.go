package kafka

// DeleteTopics (API key 20), versions 0–6.
//
// Version notes: v1 added ThrottleMillis, v3 the TOPIC_DELETION_DISABLED error code, v4 is
// flexible, v5 added ErrorMessage, v6 names topics by name or by topic id (Topics instead of
// TopicNames) and answers with the topic id.
//
// As in Kafka's controller, an entry naming neither or both of name and id, a name or id given
// twice, and a name whose id is also given are refused with INVALID_REQUEST; the other entries
// of the request are carried out.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminOffsetsTopic is the group coordinator's internal topic: deleting it would lose every
// committed offset, so DeleteTopics refuses it. Other "__" topics may be deleted.
const adminOffsetsTopic = "__consumer_offsets"

// handleDeleteTopics deletes topics by name (all versions) or by topic id (v6+).
func (s *Server) handleDeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	resp := kmsg.NewPtrDeleteTopicsResponse()
	resp.Version = req.Version
	entries := req.Topics
	if req.Version < 6 {
		entries = make([]kmsg.DeleteTopicsRequestTopic, len(req.TopicNames))
		for i := range req.TopicNames {
			entries[i].Topic = &req.TopicNames[i]
		}
	}
	p := s.adminPlanDelete(entries)
	var zero [16]byte
	for _, e := range entries {
		res := kmsg.NewDeleteTopicsResponseTopic()
		res.Topic = e.Topic
		if req.Version >= 6 {
			res.TopicID = e.TopicID
		}
		switch {
		case e.Topic == nil && e.TopicID == zero:
			adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.InvalidRequest, "Neither topic name nor id were specified.")
		case e.Topic != nil && e.TopicID != zero:
			adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.InvalidRequest, "You may not specify both topic name and topic id.")
		case e.Topic != nil:
			if n := p.names[*e.Topic]; n != 1 {
				if n < 0 {
					continue // duplicate already answered
				}
				p.names[*e.Topic] = -1
				adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.InvalidRequest, adminDuplicateMsg)
				break
			}
			if id, ok := p.idNames[*e.Topic]; ok {
				if req.Version >= 6 {
					res.TopicID = id
				}
				adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.InvalidRequest,
					"The provided topic name maps to an ID that was already supplied.")
				break
			}
			s.adminDeleteByName(ctx, req.Version, *e.Topic, &res)
		default:
			if n := p.ids[e.TopicID]; n != 1 {
				if n < 0 {
					continue
				}
				p.ids[e.TopicID] = -1
				adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.InvalidRequest, "Duplicate topic id.")
				break
			}
			s.adminDeleteByID(ctx, req.Version, e.TopicID, &res)
		}
		resp.Topics = append(resp.Topics, res)
	}
	return resp
}

// adminDeletePlan is what DeleteTopics learns about a request before deleting anything. Its maps
// live for one request, so their size is bounded by the request size limit.
type adminDeletePlan struct {
	names   map[string]int      // how often each topic is named by name only
	ids     map[[16]byte]int    // how often each topic id is given alone
	idNames map[string][16]byte // names of the existing topics given once by id
}

// adminPlanDelete counts the names and ids of a request and resolves the ids, so that a
// topic named both ways is refused whatever the order of the entries.
func (s *Server) adminPlanDelete(entries []kmsg.DeleteTopicsRequestTopic) adminDeletePlan {
	var zero [16]byte
	p := adminDeletePlan{names: make(map[string]int), ids: make(map[[16]byte]int), idNames: make(map[string][16]byte)}
	for _, e := range entries {
		switch {
		case e.Topic != nil && e.TopicID == zero:
			p.names[*e.Topic]++
		case e.Topic == nil && e.TopicID != zero:
			p.ids[e.TopicID]++
		}
	}
	for id, n := range p.ids {
		if t := s.store.TopicByID(id); n == 1 && t != nil {
			p.idNames[t.Name()] = id
		}
	}
	return p
}

// adminDeleteByName deletes a topic named in the request.
func (s *Server) adminDeleteByName(ctx context.Context, version int16, name string, res *kmsg.DeleteTopicsResponseTopic) {
	t := s.store.Topic(name)
	if t == nil {
		adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.UnknownTopicOrPartition,
			fmt.Sprintf("topic %q does not exist", name))
		return
	}
	if version >= 6 {
		res.TopicID = t.ID()
	}
	s.adminDeleteTopic(ctx, version, name, kerr.UnknownTopicOrPartition, res)
}

// adminDeleteByID resolves a topic id (v6+) and deletes that topic.
func (s *Server) adminDeleteByID(ctx context.Context, version int16, id [16]byte, res *kmsg.DeleteTopicsResponseTopic) {
	t := s.store.TopicByID(id)
	if t == nil {
		adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.UnknownTopicID,
			fmt.Sprintf("no topic has id %x", id))
		return
	}
	name := t.Name()
	res.Topic = &name
	s.adminDeleteTopic(ctx, version, name, kerr.UnknownTopicID, res)
}

// adminDeleteTopic deletes a resolved topic; unknown is the code for a topic that went away meanwhile.
func (s *Server) adminDeleteTopic(ctx context.Context, version int16, name string, unknown *kerr.Error, res *kmsg.DeleteTopicsResponseTopic) {
	if err := ctx.Err(); err != nil {
		adminSetErr(&res.ErrorCode, &res.ErrorMessage, kerr.RequestTimedOut,
			fmt.Sprintf("request cancelled before topic %q was deleted: %v", name, err))
		return
	}
	if name == adminOffsetsTopic {
		// TOPIC_DELETION_DISABLED exists from v3; older clients get INVALID_REQUEST, as from Kafka.
		code := kerr.TopicDeletionDisabled
		if version < 3 {
			code = kerr.InvalidRequest
		}
		adminSetErr(&res.ErrorCode, &res.ErrorMessage, code,
			fmt.Sprintf("topic %q is internal (committed group offsets) and cannot be deleted", name))
		return
	}
	if err := s.store.DeleteTopic(name); err != nil {
		code := s.adminErr("delete topic", name, err)
		if code == kerr.UnknownTopicOrPartition {
			code = unknown
		}
		adminSetErr(&res.ErrorCode, &res.ErrorMessage, code, err.Error())
	}
}
