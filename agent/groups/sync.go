package groups

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup handles a SyncGroup request (v0–v5). A follower's answer waits for the leader's
// SyncGroup; the leader's carries the assignments handed to everyone.
func (c *Coordinator) SyncGroup(req *kmsg.SyncGroupRequest, done func(*kmsg.SyncGroupResponse)) {
	c.mu.Lock()
	defer c.unlock()
	if resp := c.syncLocked(req, done); resp != nil {
		c.later(func() { done(resp) })
	}
}

func syncError(code int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code
	return resp
}

// syncLocked runs a sync and returns the answer, or nil when the member now waits.
func (c *Coordinator) syncLocked(req *kmsg.SyncGroupRequest, done func(*kmsg.SyncGroupResponse)) *kmsg.SyncGroupResponse {
	g, m, code := c.memberFor(req.Group, req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		return syncError(code)
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType || req.Protocol != nil && *req.Protocol != g.protocol {
		return syncError(kerr.InconsistentGroupProtocol.Code)
	}
	switch g.state {
	case statePreparing:
		return syncError(kerr.RebalanceInProgress.Code)
	case stateStable:
		c.touch(g, m)
		delete(g.pendingSync, m.id)
		return c.syncAnswer(g, m)
	case stateCompleting:
	default:
		return syncError(kerr.UnknownMemberID.Code)
	}
	c.answerSyncErrLocked(m, kerr.RebalanceInProgress.Code) // a duplicate sync replaces the first
	c.touch(g, m)
	if m.id != g.leader {
		m.syncDone = done
		delete(g.pendingSync, m.id)
		return nil
	}
	assigned := make(map[string][]byte, len(req.GroupAssignment))
	for _, a := range req.GroupAssignment {
		assigned[a.MemberID] = a.MemberAssignment
	}
	if code := c.checkAssignments(g, req, assigned); code != 0 {
		// As Kafka (resetAndPropagateAssignmentError, maybePrepareRebalance): every waiting
		// member gets the error and the group rebalances rather than wait for a leader's
		// sync that will not come.
		for _, o := range g.members {
			c.setAssignment(o, nil)
			c.answerSyncErrLocked(o, code)
		}
		c.prepareRebalanceLocked(g, "leader's assignment refused")
		return syncError(code)
	}
	m.syncDone = done
	delete(g.pendingSync, m.id)
	for _, o := range g.members {
		c.setAssignment(o, newAssignment(g, assigned, o.id))
	}
	c.persistGroupLocked(g)
	g.setState(stateStable, c.clock.Now())
	for _, o := range g.members {
		if done := o.syncDone; done != nil {
			o.syncDone = nil
			resp := c.syncAnswer(g, o)
			c.touch(g, o)
			c.later(func() { done(resp) })
		}
	}
	c.log.Info("group stable", "group", g.id, "generation", g.generation, "members", len(g.members))
	return nil
}

// newAssignment is what member id gets from the leader's assignments: a copy (the request
// may alias the connection's frame), or an empty consumer assignment when left out.
func newAssignment(g *group, assigned map[string][]byte, id string) []byte {
	a, ok := assigned[id]
	if len(a) == 0 && g.protocolType == "consumer" {
		return emptyConsumerAssignment
	}
	if ok {
		return append([]byte{}, a...)
	}
	return a
}

// checkAssignments applies the per-member cap and the metadata budget to a leader's
// assignments (assigned is them by member id). The budget counts the growth over the
// assignments g's members hold now.
func (c *Coordinator) checkAssignments(g *group, req *kmsg.SyncGroupRequest, assigned map[string][]byte) int16 {
	for _, a := range req.GroupAssignment {
		if len(a.MemberAssignment) > c.opts.MaxMemberMetadataBytes {
			c.log.Warn("refusing a group assignment: too large", "group", req.Group, "member", a.MemberID,
				"bytes", len(a.MemberAssignment), "max", c.opts.MaxMemberMetadataBytes)
			return kerr.InvalidRequest.Code
		}
	}
	var grow int64
	for _, o := range g.members {
		n := len(assigned[o.id])
		if n == 0 && g.protocolType == "consumer" {
			n = len(emptyConsumerAssignment)
		}
		grow += int64(n - len(o.assignment))
	}
	if grow > 0 && c.metaBytes+grow > c.opts.MaxMetadataBytes {
		c.log.Warn("refusing a group assignment: metadata budget spent", "group", req.Group,
			"held_bytes", c.metaBytes, "budget", c.opts.MaxMetadataBytes)
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// syncAnswer is a successful SyncGroup answer carrying m's assignment.
func (c *Coordinator) syncAnswer(g *group, m *member) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// memberFor finds the group and member of a SyncGroup or Heartbeat and applies Kafka's
// checks in Kafka's order: group, fencing, member, generation.
func (c *Coordinator) memberFor(groupID, memberID string, instanceID *string, generation int32) (*group, *member, int16) {
	if c.closed {
		return nil, nil, kerr.CoordinatorNotAvailable.Code
	}
	if groupID == "" {
		return nil, nil, kerr.InvalidGroupID.Code
	}
	g := c.groups[groupID]
	if g == nil {
		return nil, nil, kerr.UnknownMemberID.Code
	}
	if code := g.checkInstance(instanceID, memberID); code != 0 {
		return nil, nil, code
	}
	m := g.members[memberID]
	if m == nil {
		return nil, nil, kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return nil, nil, kerr.IllegalGeneration.Code
	}
	return g, m, 0
}

// Heartbeat handles a Heartbeat request (v0–v4): it keeps the member's session alive and
// tells it when a rebalance is under way.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	c.mu.Lock()
	defer c.unlock()
	g, m, code := c.memberFor(req.Group, req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	switch g.state {
	case statePreparing:
		c.touch(g, m)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	case stateCompleting, stateStable:
		c.touch(g, m)
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
	return resp
}

// LeaveGroup handles a LeaveGroup request: one member (v0–v2) or a batch by member id or
// instance id (v3+).
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	c.mu.Lock()
	defer c.unlock()
	switch {
	case c.closed:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g := c.groups[req.Group]
	for _, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		if g == nil {
			rm.ErrorCode = kerr.UnknownMemberID.Code
		} else {
			rm.MemberID, rm.ErrorCode = c.leaveLocked(g, lm)
		}
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode, resp.Members = resp.Members[0].ErrorCode, nil
	}
	return resp
}

// leaveLocked removes one leaving member and returns its member id and error code.
func (c *Coordinator) leaveLocked(g *group, lm kmsg.LeaveGroupRequestMember) (string, int16) {
	id := lm.MemberID
	if lm.InstanceID != nil {
		owner, ok := g.static[*lm.InstanceID]
		switch {
		case !ok:
			return id, kerr.UnknownMemberID.Code
		case id != "" && owner != id:
			return id, kerr.FencedInstanceID.Code
		}
		id = owner
	}
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		if g.state == statePreparing {
			c.tryCompleteJoinLocked(g)
		}
		return id, 0
	}
	m := g.members[id]
	if m == nil {
		return id, kerr.UnknownMemberID.Code
	}
	reason := ""
	if lm.Reason != nil {
		reason = truncate(*lm.Reason, 256)
	}
	c.log.Info("group member left", "group", g.id, "member", id, "reason", reason)
	c.removeMemberAndUpdateLocked(g, m)
	return id, 0
}
