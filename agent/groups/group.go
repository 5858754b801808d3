package groups

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is a classic group's state; String gives Kafka's names.
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparing
	stateCompleting
	stateStable
	stateDead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s groupState) String() string { return stateNames[s] }

// parseState maps a Kafka state name (any case) to a state.
func parseState(name string) (groupState, bool) {
	for i, n := range stateNames {
		if strings.EqualFold(n, name) {
			return groupState(i), true
		}
	}
	return 0, false
}

// newMemberJoinTimeout is how long a new member may wait in JoinGroup before it is dropped
// (Kafka's GroupCoordinator.NewMemberJoinTimeoutMs).
const newMemberJoinTimeout = 5 * time.Minute

// protocol is one protocol a member supports, in its order of preference.
type protocol struct {
	name     string
	metadata []byte
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string // static membership (KIP-345)
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []protocol
	assignment       []byte
	metaBytes        int64 // protocols plus assignment, counted in Coordinator.metaBytes

	joinDone func(*kmsg.JoinGroupResponse) // set while waiting in JoinGroup
	syncDone func(*kmsg.SyncGroupResponse) // set while waiting in SyncGroup
	isNew    bool                          // joined in the current join phase
	lastSeen time.Time
	timer    Timer  // session expiry check
	timerSeq uint64 // identifies the live timer
}

// Limits on a member's protocols: how many it may list, and the memory counted for each
// besides its name and metadata, so that many empty entries cannot bypass the metadata caps.
const (
	maxProtocols     = 64
	protocolOverhead = 64
)

// protocolsBytes is the memory a set of protocols takes.
func protocolsBytes(ps []protocol) int64 {
	var n int64
	for _, p := range ps {
		n += protocolOverhead + int64(len(p.name)+len(p.metadata))
	}
	return n
}

// sameProtocols reports whether a join request carries exactly m's protocols.
func (m *member) sameProtocols(ps []protocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b protocol) bool {
		return a.name == b.name && bytes.Equal(a.metadata, b.metadata)
	})
}

// metadataFor returns m's metadata for the named protocol.
func (m *member) metadataFor(name string) ([]byte, bool) {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata, true
		}
	}
	return nil, false
}

// waiting reports whether m waits in JoinGroup or SyncGroup.
func (m *member) waiting() bool { return m.joinDone != nil || m.syncDone != nil }

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// committed is a committed offset.
type committed struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  time.Time
	topicID     [16]byte // the topic's id when committed: a re-created topic drops the offset
}

// group is one consumer group. Every field is guarded by Coordinator.mu.
type group struct {
	id           string
	state        groupState
	stateSince   time.Time
	protocolType string
	protocol     string // selected for the current generation
	generation   int32
	leader       string

	members    map[string]*member
	pending    map[string]Timer  // KIP-394 member ids handed out, not yet joined
	static     map[string]string // instance id -> member id
	protoCount map[string]int    // protocol name -> members supporting it

	offsets map[topicPartition]*committed

	// The join phase: joinTimer ends it; joinSeq tells a fired timer whether it is current.
	joinTimer        Timer
	joinSeq          uint64
	initialDelay     bool          // the current join phase is the initial delay
	delayRemaining   time.Duration // how much longer the initial delay may still be extended
	newMemberInDelay bool          // a member joined during the current delay period

	// The sync phase: members that got a JoinGroup answer and have not sent SyncGroup.
	pendingSync map[string]struct{}
	syncTimer   Timer
}

func newGroup(id string, now time.Time) *group {
	return &group{
		id:         id,
		state:      stateEmpty,
		stateSince: now,
		members:    map[string]*member{},
		pending:    map[string]Timer{},
		static:     map[string]string{},
		protoCount: map[string]int{},
		offsets:    map[topicPartition]*committed{},
	}
}

// size is the members and pending member ids, what group.max.size caps.
func (g *group) size() int { return len(g.members) + len(g.pending) }

// setState changes the state and notes when.
func (g *group) setState(s groupState, now time.Time) {
	if g.state != s {
		g.state, g.stateSince = s, now
	}
}

// sortedMembers returns the members ordered by id, for deterministic answers.
func (g *group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int { return strings.Compare(a.id, b.id) })
	return out
}

// supportsProtocols is Kafka's check that a joining member can be in the group: any protocol
// for an Empty group, else the same protocol type and one protocol every member supports.
func (g *group) supportsProtocols(protocolType string, ps []protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.protoCount[p.name] == len(g.members) {
			return true
		}
	}
	return false
}

// countProtocols adds (delta 1) or removes (delta -1) a member's protocols from protoCount.
func (g *group) countProtocols(ps []protocol, delta int) {
	for _, p := range ps {
		if n := g.protoCount[p.name] + delta; n > 0 {
			g.protoCount[p.name] = n
		} else {
			delete(g.protoCount, p.name)
		}
	}
}

// selectProtocol picks the protocol for the next generation: among the protocols every member
// supports, each member votes for the first one in its preference order; the most votes win,
// ties going to the name first in byte order. "" if there is no common protocol.
func (g *group) selectProtocol() string {
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.protoCount[p.name] == len(g.members) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for name, v := range votes {
		if v > bestVotes || v == bestVotes && name < best {
			best, bestVotes = name, v
		}
	}
	return best
}

// allJoined reports whether the join phase may end early: every member waits in JoinGroup
// and no member id handed out by MEMBER_ID_REQUIRED is still outstanding.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinDone == nil {
			return false
		}
	}
	return true
}

// maxRebalanceTimeout is the largest rebalance timeout of the members.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// emptyConsumerAssignment is an encoded ConsumerMemberAssignment with nothing assigned: what a
// consumer-protocol member the leader left out gets, so that every client can decode it.
var emptyConsumerAssignment = func() []byte {
	a := kmsg.NewConsumerMemberAssignment()
	return a.AppendTo(nil)
}()
