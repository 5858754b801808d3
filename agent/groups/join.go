package groups

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles a JoinGroup request (v0–v9). done gets the answer: at once for errors,
// MEMBER_ID_REQUIRED and rejoins that change nothing, otherwise when the join phase ends.
func (c *Coordinator) JoinGroup(req *kmsg.JoinGroupRequest, cl Client, done func(*kmsg.JoinGroupResponse)) {
	c.mu.Lock()
	defer c.unlock()
	if resp := c.joinLocked(req, cl, done); resp != nil {
		c.later(func() { done(resp) })
	}
}

// joinRequest is a validated JoinGroup request.
type joinRequest struct {
	req              *kmsg.JoinGroupRequest
	cl               Client
	protocols        []protocol // copied: the request may alias the connection's frame
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	done             func(*kmsg.JoinGroupResponse)
}

// joinError is a JoinGroup answer carrying only an error code.
func joinError(req *kmsg.JoinGroupRequest, memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

// joinLocked runs a join and returns the answer, or nil when the member now waits.
func (c *Coordinator) joinLocked(req *kmsg.JoinGroupRequest, cl Client, done func(*kmsg.JoinGroupResponse)) *kmsg.JoinGroupResponse {
	jr, code := c.checkJoin(req, cl, done)
	if code != 0 {
		return joinError(req, req.MemberID, code)
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return joinError(req, req.MemberID, kerr.UnknownMemberID.Code)
		}
		if g, code = c.groupForCreate(req.Group); code != 0 {
			return joinError(req, req.MemberID, code)
		}
	}
	if !g.supportsProtocols(req.ProtocolType, jr.protocols) {
		return joinError(req, req.MemberID, kerr.InconsistentGroupProtocol.Code)
	}
	if req.MemberID == "" {
		return c.joinNewLocked(g, jr)
	}
	return c.joinKnownLocked(g, jr)
}

// checkJoin validates what does not depend on the group's state.
func (c *Coordinator) checkJoin(req *kmsg.JoinGroupRequest, cl Client, done func(*kmsg.JoinGroupResponse)) (*joinRequest, int16) {
	if c.closed {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if req.Group == "" || len(req.Group) > maxGroupIDLen {
		return nil, kerr.InvalidGroupID.Code
	}
	if req.InstanceID != nil && (*req.InstanceID == "" || len(*req.InstanceID) > maxInstanceIDLen) {
		return nil, kerr.InvalidRequest.Code
	}
	st := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if st < c.opts.MinSessionTimeout || st > c.opts.MaxSessionTimeout {
		return nil, kerr.InvalidSessionTimeout.Code
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return nil, kerr.InconsistentGroupProtocol.Code
	}
	if len(req.Protocols) > maxProtocols {
		c.log.Warn("refusing a group member: too many protocols", "group", truncate(req.Group, 64),
			"protocols", len(req.Protocols), "max", maxProtocols, "client", truncate(cl.ID, 64))
		return nil, kerr.InvalidRequest.Code
	}
	var size int64
	for _, p := range req.Protocols {
		size += protocolOverhead + int64(len(p.Name)+len(p.Metadata))
	}
	if size > int64(c.opts.MaxMemberMetadataBytes) || len(req.ProtocolType) > maxGroupIDLen {
		c.log.Warn("refusing a group member: protocol metadata too large", "group", truncate(req.Group, 64),
			"bytes", size, "max", c.opts.MaxMemberMetadataBytes, "client", truncate(cl.ID, 64))
		return nil, kerr.InvalidRequest.Code
	}
	jr := &joinRequest{req: req, cl: cl, sessionTimeout: st, done: done}
	jr.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || jr.rebalanceTimeout <= 0 {
		jr.rebalanceTimeout = st // v0 has no rebalance timeout: Kafka uses the session timeout
	}
	// A name listed twice counts once (Kafka keeps the first): protoCount counts members.
	jr.protocols = make([]protocol, 0, len(req.Protocols))
	for _, p := range req.Protocols {
		if !slices.ContainsFunc(jr.protocols, func(q protocol) bool { return q.name == p.Name }) {
			jr.protocols = append(jr.protocols, protocol{name: p.Name, metadata: append([]byte{}, p.Metadata...)})
		}
	}
	return jr, 0
}

// reserveMeta accounts for a member's protocols growing from old to next bytes, or says no.
func (c *Coordinator) reserveMeta(m *member, next int64) bool {
	grow := next - protocolsBytes(m.protocols)
	if grow > 0 && c.metaBytes+grow > c.opts.MaxMetadataBytes {
		c.log.Warn("refusing a group member: metadata budget spent", "held_bytes", c.metaBytes, "budget", c.opts.MaxMetadataBytes)
		return false
	}
	c.metaBytes += grow
	m.metaBytes += grow
	return true
}

// joinNewLocked handles a join without a member id.
func (c *Coordinator) joinNewLocked(g *group, jr *joinRequest) *kmsg.JoinGroupResponse {
	req := jr.req
	if req.InstanceID != nil {
		if oldID, ok := g.static[*req.InstanceID]; ok {
			if old := g.members[oldID]; old != nil {
				return c.replaceStaticLocked(g, old, jr)
			}
			delete(g.static, *req.InstanceID)
		}
	}
	if g.size() >= c.opts.MaxGroupSize {
		return joinError(req, "", kerr.GroupMaxSizeReached.Code)
	}
	id := newMemberID(jr.cl.ID, req.InstanceID)
	if req.Version >= 4 && req.InstanceID == nil {
		// KIP-394: hand out the id; the member joins with it right away.
		c.addPendingLocked(g, id, jr.sessionTimeout)
		return joinError(req, id, kerr.MemberIDRequired.Code)
	}
	m := &member{id: id, instanceID: req.InstanceID, isNew: true}
	if !c.reserveMeta(m, protocolsBytes(jr.protocols)) {
		return joinError(req, "", kerr.CoordinatorNotAvailable.Code)
	}
	c.addMemberAndRebalanceLocked(g, m, jr)
	return nil
}

// addPendingLocked remembers a member id handed out with MEMBER_ID_REQUIRED for a session
// timeout.
func (c *Coordinator) addPendingLocked(g *group, id string, d time.Duration) {
	g.pending[id] = c.afterFunc(d, func() {
		if c.groups[g.id] != g || g.pending[id] == nil {
			return
		}
		delete(g.pending, id)
		if g.state == statePreparing {
			c.tryCompleteJoinLocked(g)
		}
	})
}

// joinKnownLocked handles a join with a member id.
func (c *Coordinator) joinKnownLocked(g *group, jr *joinRequest) *kmsg.JoinGroupResponse {
	req := jr.req
	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		m := &member{id: req.MemberID, isNew: true}
		if !c.reserveMeta(m, protocolsBytes(jr.protocols)) {
			return joinError(req, req.MemberID, kerr.CoordinatorNotAvailable.Code)
		}
		c.addMemberAndRebalanceLocked(g, m, jr)
		return nil
	}
	if code := g.checkInstance(req.InstanceID, req.MemberID); code != 0 {
		return joinError(req, req.MemberID, code)
	}
	m := g.members[req.MemberID]
	if m == nil {
		return joinError(req, req.MemberID, kerr.UnknownMemberID.Code)
	}
	switch g.state {
	case statePreparing:
		return c.updateMemberAndRebalanceLocked(g, m, jr)
	case stateCompleting:
		if m.sameProtocols(jr.protocols) {
			// The member lost our answer: give it again.
			c.touch(g, m)
			return c.joinAnswer(g, m)
		}
		return c.updateMemberAndRebalanceLocked(g, m, jr)
	case stateStable:
		if m.id != g.leader && m.sameProtocols(jr.protocols) {
			c.touch(g, m)
			return c.joinAnswer(g, m)
		}
		return c.updateMemberAndRebalanceLocked(g, m, jr)
	}
	return joinError(req, req.MemberID, kerr.UnknownMemberID.Code)
}

// checkInstance applies static membership fencing: an instance id owned by another member id
// is FENCED_INSTANCE_ID. An unknown instance id passes (the member id check decides).
func (g *group) checkInstance(instanceID *string, memberID string) int16 {
	if instanceID == nil {
		return 0
	}
	if owner, ok := g.static[*instanceID]; ok && owner != memberID {
		return kerr.FencedInstanceID.Code
	}
	return 0
}

// setJoin stores a join request's settings in m.
func (m *member) setJoin(jr *joinRequest) {
	m.clientID = truncate(jr.cl.ID, maxGroupIDLen)
	m.clientHost = jr.cl.Host
	m.sessionTimeout = jr.sessionTimeout
	m.rebalanceTimeout = jr.rebalanceTimeout
	m.protocols = jr.protocols
}

// addMemberAndRebalanceLocked adds a new member (its metadata already reserved) and starts or
// continues the join phase.
func (c *Coordinator) addMemberAndRebalanceLocked(g *group, m *member, jr *joinRequest) {
	if len(g.members) == 0 {
		g.protocolType = jr.req.ProtocolType
	}
	m.setJoin(jr)
	g.countProtocols(m.protocols, 1)
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	m.joinDone = jr.done
	c.touch(g, m)
	if g.state == statePreparing {
		if g.initialDelay {
			g.newMemberInDelay = true
		}
		c.tryCompleteJoinLocked(g)
		return
	}
	c.prepareRebalanceLocked(g, "member "+m.id+" joined")
}

// updateMemberAndRebalanceLocked takes a known member's new join and starts or continues the
// join phase.
func (c *Coordinator) updateMemberAndRebalanceLocked(g *group, m *member, jr *joinRequest) *kmsg.JoinGroupResponse {
	if !c.reserveMeta(m, protocolsBytes(jr.protocols)) {
		return joinError(jr.req, m.id, kerr.CoordinatorNotAvailable.Code)
	}
	g.countProtocols(m.protocols, -1)
	m.setJoin(jr)
	g.countProtocols(m.protocols, 1)
	// A member may send a second join while the first still waits (a retry on another
	// connection): the first is told to rejoin, the second takes its place.
	c.answerJoinErrLocked(m, kerr.RebalanceInProgress.Code)
	m.joinDone = jr.done
	c.touch(g, m)
	if g.state == statePreparing {
		c.tryCompleteJoinLocked(g)
	} else {
		c.prepareRebalanceLocked(g, "member "+m.id+" rejoined")
	}
	return nil
}

// replaceStaticLocked handles a static member rejoining without its member id (a restart): the
// old member id is fenced and the new one takes its place, keeping its assignment. In a
// Stable group whose selected protocol stays the same there is no rebalance.
func (c *Coordinator) replaceStaticLocked(g *group, old *member, jr *joinRequest) *kmsg.JoinGroupResponse {
	req := jr.req
	// The new member takes over the old one's bytes (counted in metaBytes) and assignment.
	m := &member{id: newMemberID(jr.cl.ID, req.InstanceID), instanceID: req.InstanceID,
		protocols: old.protocols, assignment: old.assignment, metaBytes: old.metaBytes}
	if !c.reserveMeta(m, protocolsBytes(jr.protocols)) {
		return joinError(req, "", kerr.CoordinatorNotAvailable.Code)
	}
	c.answerJoinErrLocked(old, kerr.FencedInstanceID.Code)
	c.answerSyncErrLocked(old, kerr.FencedInstanceID.Code)
	if old.timer != nil {
		old.timer.Stop()
	}
	g.countProtocols(old.protocols, -1)
	delete(g.members, old.id)
	m.setJoin(jr)
	g.countProtocols(m.protocols, 1)
	g.members[m.id] = m
	g.static[*req.InstanceID] = m.id
	if g.leader == old.id {
		g.leader = m.id
	}
	if _, ok := g.pendingSync[old.id]; ok {
		delete(g.pendingSync, old.id)
		g.pendingSync[m.id] = struct{}{}
	}
	c.log.Info("static group member replaced", "group", g.id, "instance", *req.InstanceID, "old_member", old.id,
		"member", m.id, "state", g.state.String(), "generation", g.generation)
	// As Kafka: no rebalance unless the protocol the group would select changes (a restarted
	// consumer's metadata differs in its owned partitions and generation, which is fine).
	if g.state == stateStable && g.selectProtocol() == g.protocol {
		c.touch(g, m)
		c.persistGroupLocked(g)
		resp := c.joinAnswer(g, m)
		resp.SkipAssignment = m.id == g.leader // KIP-814: the leader keeps the current assignment
		return resp
	}
	m.joinDone = jr.done
	c.touch(g, m)
	if g.state == statePreparing {
		c.tryCompleteJoinLocked(g)
	} else {
		c.prepareRebalanceLocked(g, "static member "+*req.InstanceID+" rejoined with new metadata")
	}
	return nil
}

// joinAnswer is the successful JoinGroup answer for m in g's current generation: the leader
// also gets every member's metadata for the selected protocol.
func (c *Coordinator) joinAnswer(g *group, m *member) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			md, _ := o.metadataFor(g.protocol)
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = o.id, o.instanceID, md
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp
}

// answerJoinErrLocked answers m's waiting JoinGroup, if any, with an error.
func (c *Coordinator) answerJoinErrLocked(m *member, code int16) {
	if done := m.joinDone; done != nil {
		m.joinDone = nil
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, m.id
		c.later(func() { done(resp) })
	}
}

// answerSyncErrLocked answers m's waiting SyncGroup, if any, with an error.
func (c *Coordinator) answerSyncErrLocked(m *member, code int16) {
	if done := m.syncDone; done != nil {
		m.syncDone = nil
		resp := kmsg.NewPtrSyncGroupResponse()
		resp.ErrorCode = code
		c.later(func() { done(resp) })
	}
}
