package groups

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// openStoreOnly reopens the store with a coordinator that replays and closes at once, so that
// topics can change while no coordinator runs (sweep and fetch never see the old topic).
func (h *harness) openStoreOnly() {
	h.t.Helper()
	h.open()
	h.c.Close()
	h.c = nil
}

// A topic deleted and re-created while the coordinator is down must not get back the offsets
// committed to the old topic, now or after later restarts; offsets committed to the new topic
// survive.
func TestRecreatedTopicOffsetsNotResurrected(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 2)
	h.commit("g", "", -1, map[string]map[int32]int64{"t": {0: 500, 1: 600}})
	h.close()
	h.openStoreOnly()
	if err := h.st.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	h.topic("t", 2)
	h.st.Close()
	h.st = nil
	h.open()
	// Partition 1 gets a commit to the new topic before anything reads the old one.
	h.commit("g", "", -1, map[string]map[int32]int64{"t": {1: 7}})
	if got := h.fetch("g", "t", 0); got != -1 {
		t.Fatalf("offset of the re-created topic after restart: %d, want -1", got)
	}
	for range 2 {
		h.restart()
		if got := h.fetch("g", "t", 0); got != -1 {
			t.Fatalf("offset of the re-created topic after another restart: %d, want -1", got)
		}
		if got := h.fetch("g", "t", 1); got != 7 {
			t.Fatalf("offset committed to the new topic after restart: %d, want 7", got)
		}
	}
}

// A leader's SyncGroup refused for its assignments' size answers every waiting member with
// the error and starts a rebalance, instead of leaving the group in CompletingRebalance.
func TestLeaderSyncRefusedRebalances(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxMemberMetadataBytes = 100; o.MaxMetadataBytes = 1000 })
	c1, id1 := h.joinNew("g")
	c2, id2 := h.joinNew("g")
	h.advanceUntil(func() bool { return c1.resp != nil && c2.resp != nil })
	expectCode(t, "join 1", c1.resp.ErrorCode, 0)
	expectCode(t, "join 2", c2.resp.ErrorCode, 0)
	leader, gen := c1.resp.LeaderID, c1.resp.Generation
	other := id1
	if leader == id1 {
		other = id2
	}
	f := h.sync("g", other, gen, nil)
	if f.resp != nil {
		t.Fatalf("follower answered before the leader synced: %+v", f.resp)
	}
	l := h.sync("g", leader, gen, map[string]string{leader: string(make([]byte, 200))})
	expectCode(t, "leader sync", l.resp.ErrorCode, kerr.InvalidRequest.Code)
	if f.resp == nil {
		t.Fatal("follower's sync still waits after the leader's was refused")
	}
	expectCode(t, "follower sync", f.resp.ErrorCode, kerr.InvalidRequest.Code)
	if st := h.describe("g").State; st != "PreparingRebalance" {
		t.Fatalf("state after a refused leader sync: %s, want PreparingRebalance", st)
	}
	expectCode(t, "leader heartbeat", h.heartbeat("g", leader, gen), kerr.RebalanceInProgress.Code)
	// Both rejoin and a leader with a fitting assignment makes the group Stable.
	j1 := h.join(joinReq(9, "g", id1, nil))
	j2 := h.join(joinReq(9, "g", id2, nil))
	h.advanceUntil(func() bool { return j1.resp != nil && j2.resp != nil })
	gen = j1.resp.Generation
	f = h.sync("g", other, gen, nil)
	l = h.sync("g", leader, gen, map[string]string{leader: "a", other: "b"})
	expectCode(t, "second leader sync", l.resp.ErrorCode, 0)
	if f.resp == nil || f.resp.ErrorCode != 0 || string(f.resp.MemberAssignment) != "b" {
		t.Fatalf("second follower sync: %+v", f.resp)
	}
}

// The metadata budget counts an assignment's growth: re-sending assignments the group
// already holds fits even when the budget is nearly spent.
func TestAssignmentBudgetCountsGrowth(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.InitialRebalanceDelay = 0
		o.MaxMemberMetadataBytes = 1000
		o.MaxMetadataBytes = 1100
	})
	c, id := h.joinNew("g")
	h.advanceUntil(func() bool { return c.resp != nil })
	big := string(make([]byte, 900))
	s := h.sync("g", id, c.resp.Generation, map[string]string{id: big})
	expectCode(t, "first sync", s.resp.ErrorCode, 0)
	// The leader rejoins (a Stable leader's rejoin rebalances) and assigns the same again.
	c = h.join(joinReq(9, "g", id, nil))
	h.advanceUntil(func() bool { return c.resp != nil })
	expectCode(t, "rejoin", c.resp.ErrorCode, 0)
	s = h.sync("g", id, c.resp.Generation, map[string]string{id: big})
	expectCode(t, "second sync", s.resp.ErrorCode, 0)
}

// A member lists at most 64 protocols, and each entry counts toward the metadata caps even
// when empty.
func TestJoinProtocolLimits(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxMemberMetadataBytes = 1000 })
	many := joinReq(9, "g", "", nil)
	many.Protocols = nil
	for i := range maxProtocols + 1 {
		many.Protocols = append(many.Protocols, kmsg.JoinGroupRequestProtocol{Name: fmt.Sprintf("p%d", i)})
	}
	expectCode(t, "join with 65 protocols", h.join(many).resp.ErrorCode, kerr.InvalidRequest.Code)
	empty := joinReq(9, "g", "", nil)
	for range 20 {
		empty.Protocols = append(empty.Protocols, kmsg.JoinGroupRequestProtocol{})
	}
	expectCode(t, "join with 20 empty protocols over a 1000 byte cap", h.join(empty).resp.ErrorCode, kerr.InvalidRequest.Code)
	if h.c.NumGroups() != 0 {
		t.Fatal("refused joins created groups")
	}
	c, _ := h.joinNew("g")
	h.advanceUntil(func() bool { return c.resp != nil })
	expectCode(t, "ordinary join", c.resp.ErrorCode, 0)
	h.c.mu.Lock()
	held := h.c.metaBytes
	h.c.mu.Unlock()
	if want := int64(protocolOverhead + len("range") + len("meta-range")); held != want {
		t.Fatalf("metadata held: %d bytes, want %d", held, want)
	}
}

// A member listing a protocol name twice counts once for it (the first entry is kept), so its
// group still finds a common protocol.
func TestDuplicateProtocolNames(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.InitialRebalanceDelay = 0 })
	first := joinReq(9, "g", "", nil, "range", "range")
	first.Protocols[1].Metadata = []byte("second")
	c := h.join(first)
	expectCode(t, "first join", c.resp.ErrorCode, kerr.MemberIDRequired.Code)
	first.MemberID = c.resp.MemberID
	c = h.join(first)
	h.advanceUntil(func() bool { return c.resp != nil })
	expectCode(t, "join listing range twice", c.resp.ErrorCode, 0)
	if p := c.resp.Protocol; p == nil || *p != "range" || len(c.resp.Members) != 1 ||
		string(c.resp.Members[0].ProtocolMetadata) != "meta-range" {
		t.Fatalf("join answer: protocol %v members %+v", p, c.resp.Members)
	}
	// Another member supporting range only can join the group.
	c2, _ := h.joinNew("g")
	c = h.join(first)
	h.advanceUntil(func() bool { return c.resp != nil && c2.resp != nil })
	expectCode(t, "leader rejoin", c.resp.ErrorCode, 0)
	expectCode(t, "second member", c2.resp.ErrorCode, 0)
	if c2.resp.Protocol == nil || *c2.resp.Protocol != "range" {
		t.Fatalf("second member's protocol: %v", c2.resp.Protocol)
	}
}

// An empty group id is INVALID_GROUP_ID; a simple commit (generation -1) naming a member or
// instance that the group does not have is UNKNOWN_MEMBER_ID, as Kafka answers.
func TestCommitGroupAndMemberChecks(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 1)
	tp := map[string]map[int32]int64{"t": {0: 1}}
	expectCode(t, "commit to group \"\"", commitCodes(h.commit("", "", -1, tp))["t/0"], kerr.InvalidGroupID.Code)
	expectCode(t, "join of group \"\"", h.join(joinReq(9, "", "", nil)).resp.ErrorCode, kerr.InvalidGroupID.Code)
	if n := h.c.NumGroups(); n != 0 {
		t.Fatalf("groups after refused calls: %d", n)
	}
	expectCode(t, "simple commit with a member id to a new group", commitCodes(h.commit("g", "someone", -1, tp))["t/0"],
		kerr.UnknownMemberID.Code)
	if n := h.c.NumGroups(); n != 0 {
		t.Fatalf("groups after refused calls: %d", n)
	}
	expectCode(t, "simple commit", commitCodes(h.commit("g", "", -1, tp))["t/0"], 0)
	expectCode(t, "simple commit with a member id to an Empty group", commitCodes(h.commit("g", "someone", -1, tp))["t/0"],
		kerr.UnknownMemberID.Code)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation, req.InstanceID = 8, "g", -1, kmsg.StringPtr("i1")
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 2, LeaderEpoch: -1}}
	req.Topics = append(req.Topics, rt)
	c := &call[*kmsg.OffsetCommitResponse]{}
	h.c.OffsetCommit(req, c.done)
	expectCode(t, "simple commit with an instance id to an Empty group", commitCodes(c.resp)["t/0"], kerr.UnknownMemberID.Code)
	if got := h.fetch("g", "t", 0); got != 1 {
		t.Fatalf("committed offset: %d, want 1", got)
	}
}
