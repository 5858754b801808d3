package groups

import (
	"cmp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit handles an OffsetCommit request (v2–v9). done gets the answer once the
// accepted offsets are durable (see the package documentation).
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest, done func(*kmsg.OffsetCommitResponse)) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.mu.Lock()
	defer c.unlock()
	g, code := c.checkCommitLocked(req)
	if code != 0 {
		setCommitErrors(resp, nil, code)
		c.later(func() { done(resp) })
		return
	}
	accepted, recs, offs := c.commitEntries(req, resp)
	if len(accepted) == 0 {
		c.later(func() { done(resp) })
		return
	}
	if g == nil {
		if g, code = c.groupForCreate(req.Group); code != 0 {
			setCommitErrors(resp, accepted, code)
			c.later(func() { done(resp) })
			return
		}
	}
	for i := range recs {
		recs[i] = offsetRecord(g.id, offs[i].tp, offs[i].o)
	}
	target, err := c.appendLocked(recs)
	if err != nil {
		c.log.Warn("offset commit failed", "group", g.id, "err", err)
		setCommitErrors(resp, accepted, writeErrorCode(err))
		c.later(func() { done(resp) })
		return
	}
	// Visible from now on; if the wait fails, the next start rebuilds the state from disk.
	for _, e := range offs {
		g.offsets[e.tp] = e.o
	}
	c.awaitLocked(target, func(err error) {
		if err != nil {
			c.log.Warn("offset commit not acknowledged", "group", g.id, "err", err)
			setCommitErrors(resp, accepted, writeErrorCode(err))
		}
		done(resp)
	})
}

// commitEntry is an accepted partition of a commit.
type commitEntry struct {
	tp topicPartition
	o  *committed
}

// commitEntries checks each partition of a commit: the partition must exist and the metadata
// fit. It marks refused partitions in resp and returns the accepted ones (as pointers into
// resp, records to fill and entries).
func (c *Coordinator) commitEntries(req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse) ([]*kmsg.OffsetCommitResponseTopicPartition, []record, []commitEntry) {
	var accepted []*kmsg.OffsetCommitResponseTopicPartition
	var offs []commitEntry
	now := c.clock.Now()
	for ti, t := range req.Topics {
		topic := c.store.Topic(t.Topic)
		for pi, p := range t.Partitions {
			rp := &resp.Topics[ti].Partitions[pi]
			switch {
			case topic == nil || p.Partition < 0 || p.Partition >= topic.NumPartitions():
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.Metadata != nil && len(*p.Metadata) > MaxOffsetMetadataBytes:
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := &committed{offset: p.Offset, leaderEpoch: -1, commitTime: now, topicID: topic.ID()}
				if req.Version >= 6 {
					o.leaderEpoch = p.LeaderEpoch
				}
				if p.Metadata != nil {
					o.metadata = strings.Clone(*p.Metadata)
				}
				accepted = append(accepted, rp)
				offs = append(offs, commitEntry{tp: topicPartition{topic: strings.Clone(t.Topic), partition: p.Partition}, o: o})
			}
		}
	}
	return accepted, make([]record, len(offs)), offs
}

// setCommitErrors sets code on the given partitions, or on all of resp when parts is nil.
func setCommitErrors(resp *kmsg.OffsetCommitResponse, parts []*kmsg.OffsetCommitResponseTopicPartition, code int16) {
	if parts != nil {
		for _, p := range parts {
			p.ErrorCode = code
		}
		return
	}
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			resp.Topics[ti].Partitions[pi].ErrorCode = code
		}
	}
}

// checkCommitLocked applies Kafka's group checks to a commit. It returns the group (nil for a
// simple commit to a group that does not exist yet) or an error code.
func (c *Coordinator) checkCommitLocked(req *kmsg.OffsetCommitRequest) (*group, int16) {
	if c.closed {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if req.Group == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	// A simple commit (generation -1, no member) is accepted while the group has no members;
	// one naming a member must be from a member (Kafka's validateOffsetCommit).
	simple := req.Generation < 0 && req.MemberID == "" && req.InstanceID == nil
	g := c.groups[req.Group]
	if g == nil {
		switch {
		case simple:
			return nil, 0 // the group is created if any partition is valid
		case req.Generation < 0:
			return nil, kerr.UnknownMemberID.Code
		}
		return nil, kerr.IllegalGeneration.Code
	}
	if code := g.checkInstance(req.InstanceID, req.MemberID); code != 0 {
		return nil, code
	}
	if simple && g.state == stateEmpty {
		return g, 0
	}
	m := g.members[req.MemberID]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if req.Generation != g.generation {
		return nil, kerr.IllegalGeneration.Code
	}
	c.touch(g, m)
	switch g.state {
	case stateStable, statePreparing:
		return g, 0
	case stateCompleting:
		return nil, kerr.RebalanceInProgress.Code
	}
	return nil, kerr.UnknownMemberID.Code
}

// OffsetFetch handles an OffsetFetch request (v1–v9; several groups from v8). Partitions
// without a committed offset get offset -1. require_stable is ignored: commits are visible
// once appended.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	c.mu.Lock()
	defer c.unlock()
	var tombs []record
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			resp.Groups = append(resp.Groups, c.fetchGroupLocked(rg.Group, rg.Topics, &tombs))
		}
	} else {
		var topics []kmsg.OffsetFetchRequestGroupTopic
		if req.Topics != nil || req.Version < 2 {
			topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
			for _, t := range req.Topics {
				topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		rg := c.fetchGroupLocked(req.Group, topics, &tombs)
		resp.ErrorCode = rg.ErrorCode
		resp.Topics = oldFetchTopics(rg, req.Version)
	}
	if len(tombs) > 0 {
		if _, err := c.appendLocked(tombs); err != nil {
			c.log.Warn("tombstones for offsets of deleted topics not written", "err", err)
		}
	}
	return resp
}

// oldFetchTopics converts a group's answer to the v0–v7 layout; before v2 there is no
// top-level error, so a group error goes on every partition.
func oldFetchTopics(rg kmsg.OffsetFetchResponseGroup, version int16) []kmsg.OffsetFetchResponseTopic {
	out := make([]kmsg.OffsetFetchResponseTopic, 0, len(rg.Topics))
	for _, t := range rg.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			if version < 2 && rg.ErrorCode != 0 {
				rp.ErrorCode = rg.ErrorCode
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out
}

// fetchGroupLocked answers one group of an OffsetFetch: the requested partitions, or every
// committed one when topics is nil. Offsets of deleted topics are dropped (tombstones added).
func (c *Coordinator) fetchGroupLocked(id string, topics []kmsg.OffsetFetchRequestGroupTopic, tombs *[]record) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = id
	if c.closed {
		out.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return out
	}
	g := c.groups[id]
	if topics == nil {
		if g == nil {
			return out
		}
		topics = g.committedTopics()
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, -1, -1, kmsg.StringPtr("")
			if g != nil {
				tp := topicPartition{topic: t.Topic, partition: p}
				if o := g.offsets[tp]; o != nil && c.liveLocked(g, tp, o, tombs) {
					rp.Offset, rp.LeaderEpoch, rp.Metadata = o.offset, o.leaderEpoch, kmsg.StringPtr(o.metadata)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out
}

// committedTopics lists g's committed partitions by topic, sorted.
func (g *group) committedTopics() []kmsg.OffsetFetchRequestGroupTopic {
	byTopic := map[string][]int32{}
	for tp := range g.offsets {
		byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
	}
	out := make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(byTopic))
	for topic, parts := range byTopic {
		slices.Sort(parts)
		out = append(out, kmsg.OffsetFetchRequestGroupTopic{Topic: topic, Partitions: parts})
	}
	slices.SortFunc(out, func(a, b kmsg.OffsetFetchRequestGroupTopic) int { return cmp.Compare(a.Topic, b.Topic) })
	return out
}

// liveLocked reports whether an offset's partition still exists (the same topic, not a
// re-created one); if not, it drops the offset and adds a tombstone.
func (c *Coordinator) liveLocked(g *group, tp topicPartition, o *committed, tombs *[]record) bool {
	t := c.store.Topic(tp.topic)
	if t != nil && t.ID() == o.topicID && tp.partition < t.NumPartitions() {
		return true
	}
	delete(g.offsets, tp)
	*tombs = append(*tombs, record{key: offsetKey(g.id, tp)})
	return false
}

// OffsetDelete handles an OffsetDelete request (v0): it removes committed offsets of a group,
// refusing the topics a live consumer group is subscribed to.
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest, done func(*kmsg.OffsetDeleteResponse)) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	c.mu.Lock()
	defer c.unlock()
	g := c.groups[req.Group]
	switch {
	case c.closed:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	case g == nil:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case g.state != stateEmpty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		c.later(func() { done(resp) })
		return
	}
	subscribed, all := g.subscribedTopics()
	var tombs []record
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		topic := c.store.Topic(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			tp := topicPartition{topic: t.Topic, partition: p.Partition}
			switch {
			case topic == nil || p.Partition < 0 || p.Partition >= topic.NumPartitions():
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case all || subscribed[t.Topic]:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case g.offsets[tp] != nil:
				delete(g.offsets, tp)
				tombs = append(tombs, record{key: offsetKey(g.id, tp)})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	c.writeLocked(tombs, func(err error) {
		if err != nil {
			c.log.Warn("offset delete failed", "group", g.id, "err", err)
			resp.ErrorCode = writeErrorCode(err)
		}
		done(resp)
	})
}

// subscribedTopics returns the topics the members of a live consumer group subscribe to,
// read from their metadata for the selected protocol. all is true when some member's
// metadata cannot be read (every topic then counts as subscribed).
func (g *group) subscribedTopics() (topics map[string]bool, all bool) {
	topics = map[string]bool{}
	if g.state == stateEmpty || g.protocolType != "consumer" {
		return topics, false
	}
	for _, m := range g.members {
		md, ok := m.metadataFor(g.protocol)
		if !ok {
			continue
		}
		var cm kmsg.ConsumerMemberMetadata
		if err := cm.ReadFrom(md); err != nil {
			return topics, true
		}
		for _, t := range cm.Topics {
			topics[t] = true
		}
	}
	return topics, false
}
