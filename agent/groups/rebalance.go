package groups

import (
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// prepareRebalanceLocked starts a join phase: waiting syncs are told to rejoin, and the phase
// ends when every member has rejoined or at the largest rebalance timeout. On an Empty group
// the phase first waits the initial rebalance delay.
func (c *Coordinator) prepareRebalanceLocked(g *group, reason string) {
	if g.state == stateCompleting {
		for _, m := range g.members {
			c.setAssignment(m, nil)
			c.answerSyncErrLocked(m, kerr.RebalanceInProgress.Code)
		}
	}
	c.stopSyncTimerLocked(g)
	empty := g.state == stateEmpty
	g.setState(statePreparing, c.clock.Now())
	c.log.Debug("group rebalancing", "group", g.id, "generation", g.generation, "members", len(g.members), "reason", reason)
	timeout := g.maxRebalanceTimeout()
	if empty && c.opts.InitialRebalanceDelay > 0 {
		delay := min(c.opts.InitialRebalanceDelay, timeout)
		g.initialDelay, g.newMemberInDelay, g.delayRemaining = true, false, timeout-delay
		c.armJoinTimerLocked(g, delay)
		return
	}
	g.initialDelay = false
	c.armJoinTimerLocked(g, timeout)
	c.tryCompleteJoinLocked(g)
}

// armJoinTimerLocked (re)starts the join phase's deadline.
func (c *Coordinator) armJoinTimerLocked(g *group, d time.Duration) {
	c.stopJoinTimerLocked(g)
	seq := c.nextSeq()
	g.joinSeq = seq
	g.joinTimer = c.afterFunc(d, func() {
		if c.groups[g.id] != g || g.joinSeq != seq || g.state != statePreparing {
			return
		}
		g.joinTimer = nil
		if g.initialDelay && g.newMemberInDelay && g.delayRemaining > 0 {
			// Members keep arriving: wait another delay period, within the rebalance timeout.
			delay := min(c.opts.InitialRebalanceDelay, g.delayRemaining)
			g.delayRemaining -= delay
			g.newMemberInDelay = false
			c.armJoinTimerLocked(g, delay)
			return
		}
		g.initialDelay = false
		c.completeJoinLocked(g)
	})
}

// stopJoinTimerLocked cancels the join phase's deadline.
func (c *Coordinator) stopJoinTimerLocked(g *group) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.joinSeq = 0
}

// stopSyncTimerLocked ends the sync phase's bookkeeping.
func (c *Coordinator) stopSyncTimerLocked(g *group) {
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
	g.pendingSync = nil
}

// tryCompleteJoinLocked ends the join phase early when everyone is in (not during the
// initial delay, which always runs its course).
func (c *Coordinator) tryCompleteJoinLocked(g *group) {
	if g.state == statePreparing && !g.initialDelay && g.allJoined() {
		c.completeJoinLocked(g)
	}
}

// completeJoinLocked ends the join phase: dynamic members that did not rejoin are removed, the
// generation advances, a protocol is selected and every waiting member gets its answer (the
// leader with all members' metadata). With no members left the group becomes Empty.
func (c *Coordinator) completeJoinLocked(g *group) {
	if g.state != statePreparing {
		return
	}
	c.stopJoinTimerLocked(g)
	for _, m := range g.sortedMembers() {
		if m.joinDone == nil && m.instanceID == nil {
			c.log.Info("group member removed: did not rejoin in time", "group", g.id, "member", m.id)
			c.removeMemberLocked(g, m)
		}
	}
	if len(g.members) == 0 {
		c.nextGenerationLocked(g)
		g.protocol, g.leader = "", ""
		g.setState(stateEmpty, c.clock.Now())
		c.persistGroupLocked(g)
		return
	}
	if !c.electJoinedLeaderLocked(g) {
		// Only static members that have not rejoined are left: wait for them (or for their
		// sessions to end) another rebalance timeout.
		c.armJoinTimerLocked(g, g.maxRebalanceTimeout())
		return
	}
	protocol := g.selectProtocol()
	if protocol == "" {
		c.log.Error("group has no protocol every member supports; dropping the joining members", "group", g.id)
		for _, m := range g.sortedMembers() {
			c.answerJoinErrLocked(m, kerr.InconsistentGroupProtocol.Code)
			c.removeMemberLocked(g, m)
		}
		c.completeJoinLocked(g)
		return
	}
	c.nextGenerationLocked(g)
	g.protocol = protocol
	g.setState(stateCompleting, c.clock.Now())
	g.pendingSync = map[string]struct{}{}
	for _, m := range g.sortedMembers() {
		done := m.joinDone
		if done == nil {
			continue
		}
		m.joinDone, m.isNew = nil, false
		resp := c.joinAnswer(g, m)
		g.pendingSync[m.id] = struct{}{}
		c.touch(g, m)
		c.later(func() { done(resp) })
	}
	c.log.Info("group generation started", "group", g.id, "generation", g.generation, "protocol", protocol,
		"members", len(g.members), "leader", g.leader)
	c.armSyncTimerLocked(g)
}

// nextGenerationLocked advances the generation, wrapping to 1 like Kafka would never need to.
func (c *Coordinator) nextGenerationLocked(g *group) {
	g.generation++
	if g.generation <= 0 {
		g.generation = 1
	}
}

// electJoinedLeaderLocked keeps the leader if it rejoined, else picks the first rejoined
// member by id. It reports false when no member rejoined.
func (c *Coordinator) electJoinedLeaderLocked(g *group) bool {
	if m := g.members[g.leader]; m != nil && m.joinDone != nil {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.joinDone != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// armSyncTimerLocked removes, after the rebalance timeout, the members that got a JoinGroup
// answer but never sent SyncGroup, and rebalances.
func (c *Coordinator) armSyncTimerLocked(g *group) {
	gen := g.generation
	g.syncTimer = c.afterFunc(g.maxRebalanceTimeout(), func() {
		if c.groups[g.id] != g || g.generation != gen || g.state != stateCompleting && g.state != stateStable {
			return
		}
		g.syncTimer = nil
		if len(g.pendingSync) == 0 {
			return
		}
		var gone []string
		for id := range g.pendingSync {
			if m := g.members[id]; m != nil {
				gone = append(gone, id)
				c.removeMemberLocked(g, m)
			}
		}
		g.pendingSync = nil
		c.log.Info("group members removed: no SyncGroup within the rebalance timeout", "group", g.id,
			"generation", gen, "members", strings.Join(gone, ","))
		if g.state == stateStable || g.state == stateCompleting {
			c.prepareRebalanceLocked(g, "members did not sync")
		}
	})
}

// removeMemberLocked drops m from g without starting a rebalance. Its waiting calls are
// answered UNKNOWN_MEMBER_ID.
func (c *Coordinator) removeMemberLocked(g *group, m *member) {
	c.answerJoinErrLocked(m, kerr.UnknownMemberID.Code)
	c.answerSyncErrLocked(m, kerr.UnknownMemberID.Code)
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	m.timerSeq = 0
	g.countProtocols(m.protocols, -1)
	c.metaBytes -= m.metaBytes
	m.metaBytes = 0
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeMemberAndUpdateLocked drops m (it left or expired) and moves the group on: a Stable
// or CompletingRebalance group rebalances; a join phase may now be complete.
func (c *Coordinator) removeMemberAndUpdateLocked(g *group, m *member) {
	c.removeMemberLocked(g, m)
	switch g.state {
	case stateStable, stateCompleting:
		c.prepareRebalanceLocked(g, "member "+m.id+" left")
	case statePreparing:
		c.tryCompleteJoinLocked(g)
	}
}

// setAssignment changes m's assignment, keeping the metadata accounting right.
func (c *Coordinator) setAssignment(m *member, a []byte) {
	delta := int64(len(a) - len(m.assignment))
	c.metaBytes += delta
	m.metaBytes += delta
	m.assignment = a
}
