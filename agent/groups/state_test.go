package groups

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinSyncOneMember(t *testing.T) {
	h := newHarness(t, nil)
	c, id := h.joinNew("g")
	if c.resp != nil {
		t.Fatalf("join answered before the initial rebalance delay: %+v", c.resp)
	}
	if st := h.describe("g").State; st != "PreparingRebalance" {
		t.Fatalf("state %s during the join phase", st)
	}
	h.clock.Advance(2 * time.Second)
	if c.resp != nil {
		t.Fatal("join answered 2s into a 3s initial delay")
	}
	h.clock.Advance(time.Second)
	if c.resp == nil {
		t.Fatal("join not answered after the initial delay")
	}
	r := c.resp
	expectCode(t, "join", r.ErrorCode, 0)
	if r.Generation != 1 || r.LeaderID != id || r.MemberID != id || *r.Protocol != "range" || len(r.Members) != 1 ||
		string(r.Members[0].ProtocolMetadata) != "meta-range" {
		t.Fatalf("join answer %+v", r)
	}
	s := h.sync("g", id, 1, map[string]string{id: "mine"})
	if s.resp == nil || s.resp.ErrorCode != 0 || string(s.resp.MemberAssignment) != "mine" || *s.resp.Protocol != "range" {
		t.Fatalf("sync answer %+v", s.resp)
	}
	d := h.describe("g")
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "mine" {
		t.Fatalf("describe %+v", d)
	}
	expectCode(t, "heartbeat", h.heartbeat("g", id, 1), 0)
}

func TestInitialDelayExtendsWhileMembersArrive(t *testing.T) {
	h := newHarness(t, nil)
	a, _ := h.joinNew("g")
	h.clock.Advance(2 * time.Second)
	b, _ := h.joinNew("g")
	h.clock.Advance(1500 * time.Millisecond) // 3.5s: the first delay ended with a new member in it
	if a.resp != nil || b.resp != nil {
		t.Fatal("join phase ended although a member arrived during the delay")
	}
	h.clock.Advance(3 * time.Second) // 6.5s: a quiet delay period ended
	if a.resp == nil || b.resp == nil || a.resp.Generation != 1 || b.resp.Generation != 1 {
		t.Fatalf("answers after a quiet delay: %+v / %+v", a.resp, b.resp)
	}
	if len(a.resp.Members)+len(b.resp.Members) != 2 {
		t.Fatal("the leader did not get both members")
	}
}

func TestOldJoinVersionJoinsAtOnce(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.InitialRebalanceDelay = 0 })
	c := h.join(joinReq(3, "g", "", nil))
	if c.resp == nil || c.resp.ErrorCode != 0 || c.resp.Generation != 1 || c.resp.MemberID == "" {
		t.Fatalf("v3 join (no member id round): %+v", c.resp)
	}
	v0 := joinReq(0, "g0", "", nil)
	v0.RebalanceTimeoutMillis = 0
	c0 := h.join(v0)
	if c0.resp == nil || c0.resp.ErrorCode != 0 {
		t.Fatalf("v0 join: %+v", c0.resp)
	}
}

func TestNewMemberTriggersRebalance(t *testing.T) {
	h := newHarness(t, nil)
	ids, gen := h.stable("g", 2)
	c, newID := h.joinNew("g")
	if c.resp != nil {
		t.Fatal("new member answered before the others rejoined")
	}
	for _, id := range ids {
		expectCode(t, "heartbeat during rebalance", h.heartbeat("g", id, gen), kerr.RebalanceInProgress.Code)
	}
	expectCode(t, "sync during rebalance", h.sync("g", ids[0], gen, nil).resp.ErrorCode, kerr.RebalanceInProgress.Code)
	var rejoins []*call[*kmsg.JoinGroupResponse]
	for _, id := range ids {
		rejoins = append(rejoins, h.join(joinReq(9, "g", id, nil)))
	}
	for i, r := range append(rejoins, c) {
		if r.resp == nil || r.resp.ErrorCode != 0 || r.resp.Generation != gen+1 || r.resp.LeaderID != ids[0] {
			t.Fatalf("answer %d after everyone rejoined: %+v", i, r.resp)
		}
	}
	if len(rejoins[0].resp.Members) != 3 || len(c.resp.Members) != 0 {
		t.Fatal("only the leader gets the member list")
	}
	expectCode(t, "heartbeat with the old generation", h.heartbeat("g", newID, gen), kerr.IllegalGeneration.Code)
}

func TestRebalanceTimeoutRemovesLaggards(t *testing.T) {
	h := newHarness(t, nil)
	ids, gen := h.stable("g", 2)
	c, newID := h.joinNew("g")
	a := h.join(joinReq(9, "g", ids[0], nil)) // ids[1] heartbeats but never rejoins
	for range 29 {
		h.clock.Advance(time.Second)
		expectCode(t, "heartbeat", h.heartbeat("g", ids[1], gen), kerr.RebalanceInProgress.Code)
	}
	if a.resp != nil || c.resp != nil {
		t.Fatal("join phase ended before the rebalance timeout")
	}
	h.clock.Advance(time.Second)
	if a.resp == nil || c.resp == nil || a.resp.Generation != gen+1 || len(a.resp.Members) != 2 {
		t.Fatalf("after the rebalance timeout: %+v / %+v", a.resp, c.resp)
	}
	expectCode(t, "heartbeat of the removed member", h.heartbeat("g", ids[1], gen+1), kerr.UnknownMemberID.Code)
	_ = newID
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, nil)
	ids, gen := h.stable("g", 2)
	for range 9 {
		h.clock.Advance(time.Second)
		expectCode(t, "heartbeat", h.heartbeat("g", ids[0], gen), 0)
	}
	if st := h.describe("g").State; st != "Stable" {
		t.Fatalf("state %s before the session timeout", st)
	}
	h.clock.Advance(1100 * time.Millisecond) // ids[1] silent for over 10s
	if st := h.describe("g").State; st != "PreparingRebalance" {
		t.Fatalf("state %s after a member's session timed out", st)
	}
	expectCode(t, "heartbeat", h.heartbeat("g", ids[0], gen), kerr.RebalanceInProgress.Code)
	expectCode(t, "heartbeat of the expired member", h.heartbeat("g", ids[1], gen), kerr.UnknownMemberID.Code)
	r := h.join(joinReq(9, "g", ids[0], nil))
	if r.resp == nil || r.resp.Generation != gen+1 || len(r.resp.Members) != 1 {
		t.Fatalf("rejoin of the survivor: %+v", r.resp)
	}
	// Alone and silent, the last member expires too and the group empties.
	h.clock.Advance(11 * time.Second)
	if d := h.describe("g"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("after the last member expired: %+v", d)
	}
}

func TestFencing(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 2)
	ids, gen := h.stable("g", 2)
	expectCode(t, "heartbeat, wrong generation", h.heartbeat("g", ids[0], gen+5), kerr.IllegalGeneration.Code)
	expectCode(t, "heartbeat, unknown member", h.heartbeat("g", "nobody", gen), kerr.UnknownMemberID.Code)
	expectCode(t, "heartbeat, unknown group", h.heartbeat("nope", ids[0], gen), kerr.UnknownMemberID.Code)
	expectCode(t, "heartbeat, empty group id", h.heartbeat("", ids[0], gen), kerr.InvalidGroupID.Code)
	expectCode(t, "sync, wrong generation", h.sync("g", ids[0], gen-1, nil).resp.ErrorCode, kerr.IllegalGeneration.Code)
	one := map[string]map[int32]int64{"t": {0: 5}}
	expectCode(t, "commit, wrong generation", commitCodes(h.commit("g", ids[0], gen+1, one))["t/0"], kerr.IllegalGeneration.Code)
	expectCode(t, "commit, unknown member", commitCodes(h.commit("g", "x", gen, one))["t/0"], kerr.UnknownMemberID.Code)
	expectCode(t, "simple commit to a live group", commitCodes(h.commit("g", "", -1, one))["t/0"], kerr.UnknownMemberID.Code)
	expectCode(t, "commit, no group, generation 3", commitCodes(h.commit("other", "m", 3, one))["t/0"], kerr.IllegalGeneration.Code)
	expectCode(t, "member commit", commitCodes(h.commit("g", ids[1], gen, one))["t/0"], 0)

	// In CompletingRebalance a commit is told to wait for the rebalance.
	c, _ := h.joinNew("g")
	r0 := h.join(joinReq(9, "g", ids[0], nil))
	r1 := h.join(joinReq(9, "g", ids[1], nil))
	if c.resp == nil || r0.resp == nil || r1.resp == nil {
		t.Fatal("join phase did not end with everyone in")
	}
	expectCode(t, "commit while completing", commitCodes(h.commit("g", ids[1], gen+1, one))["t/0"], kerr.RebalanceInProgress.Code)
	expectCode(t, "heartbeat while completing", h.heartbeat("g", ids[1], gen+1), 0)
}

func TestProtocolSelection(t *testing.T) {
	h := newHarness(t, nil)
	a := h.join(joinReq(3, "g", "", nil, "range", "sticky", "roundrobin"))
	b := h.join(joinReq(3, "g", "", nil, "sticky", "roundrobin"))
	c := h.join(joinReq(3, "g", "", nil, "roundrobin", "sticky"))
	h.advanceUntil(func() bool { return a.resp != nil && b.resp != nil && c.resp != nil })
	// Common: roundrobin, sticky. Votes: a sticky (range is not common), b sticky, c roundrobin.
	if *a.resp.Protocol != "sticky" {
		t.Fatalf("selected %q, want sticky", *a.resp.Protocol)
	}
	bad := h.join(joinReq(3, "g", "", nil, "range"))
	expectCode(t, "join without a common protocol", bad.resp.ErrorCode, kerr.InconsistentGroupProtocol.Code)
	other := joinReq(3, "g", "", nil, "sticky")
	other.ProtocolType = "connect"
	expectCode(t, "join with another protocol type", h.join(other).resp.ErrorCode, kerr.InconsistentGroupProtocol.Code)
	none := joinReq(3, "g2", "", nil)
	none.Protocols = nil
	expectCode(t, "join without protocols", h.join(none).resp.ErrorCode, kerr.InconsistentGroupProtocol.Code)
	wrong := kmsg.NewPtrSyncGroupRequest()
	wrong.Version, wrong.Group, wrong.MemberID, wrong.Generation = 5, "g", b.resp.MemberID, b.resp.Generation
	wrong.Protocol = kmsg.StringPtr("range")
	cw := &call[*kmsg.SyncGroupResponse]{}
	h.c.SyncGroup(wrong, cw.done)
	expectCode(t, "sync naming another protocol", cw.resp.ErrorCode, kerr.InconsistentGroupProtocol.Code)
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxGroupSize = 2; o.MaxMemberMetadataBytes = 1000; o.MaxMetadataBytes = 2500 })
	short := joinReq(9, "g", "", nil)
	short.SessionTimeoutMillis = 1000
	expectCode(t, "session timeout below the minimum", h.join(short).resp.ErrorCode, kerr.InvalidSessionTimeout.Code)
	long := joinReq(9, "g", "", nil)
	long.SessionTimeoutMillis = int32(time.Hour / time.Millisecond)
	expectCode(t, "session timeout above the maximum", h.join(long).resp.ErrorCode, kerr.InvalidSessionTimeout.Code)
	expectCode(t, "empty group id", h.join(joinReq(9, "", "", nil)).resp.ErrorCode, kerr.InvalidGroupID.Code)
	expectCode(t, "unknown member id", h.join(joinReq(9, "g", "ghost", nil)).resp.ErrorCode, kerr.UnknownMemberID.Code)
	big := joinReq(9, "g", "", nil)
	big.Protocols[0].Metadata = make([]byte, 2000)
	expectCode(t, "oversized member metadata", h.join(big).resp.ErrorCode, kerr.InvalidRequest.Code)
	if h.c.NumGroups() != 0 {
		t.Fatal("refused joins created groups")
	}
	h.joinNew("g")
	h.joinNew("g")
	expectCode(t, "third member of a group of max 2", h.join(joinReq(9, "g", "", nil)).resp.ErrorCode, kerr.GroupMaxSizeReached.Code)

	// The metadata budget (2500 bytes) holds two members of 900 bytes, not three.
	for i, g := range []string{"b1", "b2", "b3"} {
		req := joinReq(3, g, "", nil)
		req.Protocols[0].Metadata = make([]byte, 900)
		want := int16(0)
		if i == 2 {
			want = kerr.CoordinatorNotAvailable.Code
		}
		r := h.join(req)
		h.advanceUntil(func() bool { return r.resp != nil })
		expectCode(t, "join of "+g+" under the metadata budget", r.resp.ErrorCode, want)
	}
}

func TestPendingMemberIDsExpire(t *testing.T) {
	h := newHarness(t, nil)
	ids, gen := h.stable("g", 1)
	first := h.join(joinReq(9, "g", "", nil)) // gets an id, never comes back
	expectCode(t, "first join", first.resp.ErrorCode, kerr.MemberIDRequired.Code)
	// Another member's join starts a rebalance that waits for the pending id too.
	c, _ := h.joinNew("g")
	r := h.join(joinReq(9, "g", ids[0], nil))
	if r.resp != nil {
		t.Fatal("join phase ended with a pending member id outstanding")
	}
	h.clock.Advance(10 * time.Second) // the pending id's session timeout
	if r.resp == nil || c.resp == nil || r.resp.Generation != gen+1 || len(r.resp.Members) != 2 {
		t.Fatalf("after the pending id expired: %+v / %+v", r.resp, c.resp)
	}
	expectCode(t, "join with the expired id", h.join(joinReq(9, "g", first.resp.MemberID, nil)).resp.ErrorCode, kerr.UnknownMemberID.Code)
}

func TestSyncTimeoutRemovesSilentMembers(t *testing.T) {
	h := newHarness(t, nil)
	a, aid := h.joinNew("g")
	b, bid := h.joinNew("g")
	h.advanceUntil(func() bool { return a.resp != nil && b.resp != nil })
	leader, follower := aid, bid
	if a.resp.LeaderID == bid {
		leader, follower = bid, aid
	}
	s := h.sync("g", leader, 1, map[string]string{leader: "L", follower: "F"})
	expectCode(t, "leader sync", s.resp.ErrorCode, 0)
	for range 29 { // both heartbeat; the follower never syncs
		h.clock.Advance(time.Second)
		expectCode(t, "leader heartbeat", h.heartbeat("g", leader, 1), 0)
		expectCode(t, "follower heartbeat", h.heartbeat("g", follower, 1), 0)
	}
	if st := h.describe("g").State; st != "Stable" {
		t.Fatalf("state %s before the sync deadline", st)
	}
	h.clock.Advance(time.Second)
	if d := h.describe("g"); d.State != "PreparingRebalance" || len(d.Members) != 1 {
		t.Fatalf("after the follower never synced: %+v", d)
	}
}

func TestLeaveGroup(t *testing.T) {
	h := newHarness(t, nil)
	inst := "static-1"
	s := h.join(joinReq(9, "g", "", &inst))
	d, did := h.joinNew("g")
	h.advanceUntil(func() bool { return s.resp != nil && d.resp != nil })
	sid := s.resp.MemberID

	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = "g"
	req.Members = []kmsg.LeaveGroupRequestMember{
		{InstanceID: &inst},
		{MemberID: did},
		{MemberID: "ghost"},
		{MemberID: "wrong", InstanceID: kmsg.StringPtr("static-2")},
	}
	resp := h.c.LeaveGroup(req)
	want := []int16{0, 0, kerr.UnknownMemberID.Code, kerr.UnknownMemberID.Code}
	for i, m := range resp.Members {
		expectCode(t, "leave of member "+m.MemberID, m.ErrorCode, want[i])
	}
	if resp.Members[0].MemberID != sid {
		t.Fatalf("leave by instance id answered member %q, want %q", resp.Members[0].MemberID, sid)
	}
	if st := h.describe("g"); st.State != "Empty" {
		t.Fatalf("state after everyone left: %+v", st)
	}
	v0 := kmsg.NewPtrLeaveGroupRequest()
	v0.Group, v0.MemberID = "g", "ghost"
	expectCode(t, "v0 leave of an unknown member", h.c.LeaveGroup(v0).ErrorCode, kerr.UnknownMemberID.Code)
	v0.Group = "nope"
	expectCode(t, "v0 leave of an unknown group", h.c.LeaveGroup(v0).ErrorCode, kerr.UnknownMemberID.Code)
}

func TestCloseAnswersWaiters(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.joinNew("g")
	h.c.Close()
	if c.resp == nil || c.resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("waiting join after Close: %+v", c.resp)
	}
	expectCode(t, "join after Close", h.join(joinReq(9, "g", "", nil)).resp.ErrorCode, kerr.CoordinatorNotAvailable.Code)
	if n := h.clock.pending(); n != 0 {
		t.Fatalf("%d timers still armed after Close", n)
	}
}
