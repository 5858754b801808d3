package groups

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupAuthorizedOps are the group operations (Kafka AclOperation bits READ, DELETE, DESCRIBE)
// DescribeGroups reports when asked: samsa has no ACLs.
const groupAuthorizedOps = 1<<3 | 1<<6 | 1<<8

// ListGroups handles a ListGroups request (v0–v4): every group, filtered by state from v4.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	var states []groupState
	for _, name := range req.StatesFilter {
		if s, ok := parseState(name); ok {
			states = append(states, s)
		} else {
			states = append(states, -1) // matches nothing, as Kafka does for unknown names
		}
	}
	c.mu.Lock()
	defer c.unlock()
	if c.closed {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	for _, g := range c.groups {
		if len(states) > 0 && !slices.Contains(states, g.state) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState = g.id, g.protocolType, g.state.String()
		lg.GroupType = "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return cmp.Compare(a.Group, b.Group) })
	return resp
}

// DescribeGroups handles a DescribeGroups request (v0–v5). An unknown group is described as
// Dead with no error, as Kafka does. Member metadata and assignments are shown only for a
// Stable group.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	c.mu.Lock()
	defer c.unlock()
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		dg.AuthorizedOperations = math.MinInt32
		if req.IncludeAuthorizedOperations {
			dg.AuthorizedOperations = groupAuthorizedOps
		}
		g := c.groups[id]
		switch {
		case c.closed:
			dg.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case g == nil:
			dg.State = stateDead.String()
		default:
			c.describeLocked(g, &dg)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// describeLocked fills a DescribeGroups answer for g.
func (c *Coordinator) describeLocked(g *group, dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State, dg.ProtocolType = g.state.String(), g.protocolType
	stable := g.state == stateStable
	if stable {
		dg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable {
			if md, ok := m.metadataFor(g.protocol); ok {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		dg.Members = append(dg.Members, dm)
	}
}

// DeleteGroups handles a DeleteGroups request (v0–v2): Empty groups are deleted with their
// offsets (tombstones); a group with members gets NON_EMPTY_GROUP, an unknown one
// GROUP_ID_NOT_FOUND. done gets the answer once the tombstones are durable.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest, done func(*kmsg.DeleteGroupsResponse)) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	c.mu.Lock()
	defer c.unlock()
	var tombs []record
	var deleted []int // indexes in resp.Groups
	for _, id := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		g := c.groups[id]
		switch {
		case c.closed:
			dg.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case g == nil:
			dg.ErrorCode = kerr.GroupIDNotFound.Code
		case g.state != stateEmpty:
			dg.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			tombs = append(tombs, groupTombstones(g)...)
			c.removeGroupLocked(g)
			deleted = append(deleted, len(resp.Groups))
			c.log.Info("group deleted", "group", id)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	c.writeLocked(tombs, func(err error) {
		if err != nil {
			c.log.Warn("group delete not written", "err", err)
			for _, i := range deleted {
				resp.Groups[i].ErrorCode = writeErrorCode(err)
			}
		}
		done(resp)
	})
}

// groupTombstones deletes g's offsets and metadata in __consumer_offsets.
func groupTombstones(g *group) []record {
	recs := make([]record, 0, len(g.offsets)+1)
	for tp := range g.offsets {
		recs = append(recs, record{key: offsetKey(g.id, tp)})
	}
	return append(recs, record{key: groupKey(g.id)})
}

// sweepLocked drops offsets of deleted topics and expired offsets of Empty groups, and deletes
// Empty groups with nothing left, writing tombstones for all of it.
func (c *Coordinator) sweepLocked() {
	now := c.clock.Now()
	var tombs []record
	var expired, dropped, removed int
	for _, g := range c.groups {
		for tp, o := range g.offsets {
			if !c.liveLocked(g, tp, o, &tombs) {
				dropped++
				continue
			}
			if g.state == stateEmpty && now.Sub(laterOf(o.commitTime, g.stateSince)) >= c.opts.OffsetsRetention {
				delete(g.offsets, tp)
				tombs = append(tombs, record{key: offsetKey(g.id, tp)})
				expired++
			}
		}
		if g.state == stateEmpty && len(g.offsets) == 0 && len(g.pending) == 0 {
			if g.protocolType != "" || g.generation > 0 {
				tombs = append(tombs, record{key: groupKey(g.id)})
			}
			c.removeGroupLocked(g)
			removed++
		}
	}
	if len(tombs) > 0 {
		if _, err := c.appendLocked(tombs); err != nil {
			c.log.Warn("sweep tombstones not written", "err", err)
		}
	}
	if expired+dropped+removed > 0 {
		c.log.Info("group sweep", "offsets_of_deleted_topics", dropped, "offsets_expired", expired, "groups_removed", removed)
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
