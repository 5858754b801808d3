package groups

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// staticGroup makes a Stable group of a static member (instance "a", the leader) and a dynamic
// one, and returns their member ids and the generation.
func staticGroup(t *testing.T, h *harness) (aid, bid string, gen int32) {
	t.Helper()
	inst := "a"
	a := h.join(joinReq(9, "g", "", &inst))
	if a.resp != nil {
		t.Fatalf("a static member's first join answered at once: %+v", a.resp)
	}
	b, bid := h.joinNew("g")
	h.advanceUntil(func() bool { return a.resp != nil && b.resp != nil })
	aid, gen = a.resp.MemberID, a.resp.Generation
	if a.resp.LeaderID != aid {
		t.Fatalf("leader %q, want the first member %q", a.resp.LeaderID, aid)
	}
	h.sync("g", bid, gen, nil)
	s := h.sync("g", aid, gen, map[string]string{aid: "A", bid: "B"})
	expectCode(t, "leader sync", s.resp.ErrorCode, 0)
	return aid, bid, gen
}

func TestStaticMemberRestartKeepsAssignment(t *testing.T) {
	h := newHarness(t, nil)
	aid, bid, gen := staticGroup(t, h)
	inst := "a"
	r := h.join(joinReq(9, "g", "", &inst))
	if r.resp == nil {
		t.Fatal("a static member rejoining a Stable group with the same metadata had to wait")
	}
	resp := r.resp
	expectCode(t, "static rejoin", resp.ErrorCode, 0)
	if resp.Generation != gen || resp.MemberID == aid || resp.LeaderID != resp.MemberID || !resp.SkipAssignment {
		t.Fatalf("static rejoin answer %+v (old id %s, generation %d)", resp, aid, gen)
	}
	newID := resp.MemberID
	if st := h.describe("g").State; st != "Stable" {
		t.Fatalf("state %s after a static rejoin, want Stable (no rebalance)", st)
	}
	s := h.sync("g", newID, gen, map[string]string{newID: "ignored"})
	if s.resp.ErrorCode != 0 || string(s.resp.MemberAssignment) != "A" {
		t.Fatalf("sync of the restarted member: %+v, want its old assignment", s.resp)
	}
	expectCode(t, "the other member's heartbeat", h.heartbeat("g", bid, gen), 0)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = 4, "g", aid, gen, &inst
	expectCode(t, "heartbeat of the fenced old member id", h.c.Heartbeat(hb).ErrorCode, kerr.FencedInstanceID.Code)
	expectCode(t, "heartbeat of the old member id", h.heartbeat("g", aid, gen), kerr.UnknownMemberID.Code)
	old := joinReq(9, "g", aid, &inst)
	expectCode(t, "join of the fenced old member id", h.join(old).resp.ErrorCode, kerr.FencedInstanceID.Code)
}

func TestStaticMemberRejoinWithNewMetadata(t *testing.T) {
	h := newHarness(t, nil)
	inst := "a"
	a := h.join(joinReq(9, "g", "", &inst, "x", "y"))
	b, bid := h.joinNew("g", "y", "x")
	h.advanceUntil(func() bool { return a.resp != nil && b.resp != nil })
	gen := a.resp.Generation
	if *a.resp.Protocol != "x" { // one vote each: the tie goes to "x"
		t.Fatalf("selected %q, want x", *a.resp.Protocol)
	}
	h.sync("g", bid, gen, nil)
	h.sync("g", a.resp.MemberID, gen, map[string]string{a.resp.MemberID: "A", bid: "B"})

	// New metadata that keeps the selected protocol: no rebalance (Kafka's rule).
	r := h.join(joinReq(9, "g", "", &inst, "x", "y"))
	if r.resp == nil || r.resp.Generation != gen {
		t.Fatalf("static rejoin keeping the protocol: %+v", r.resp)
	}
	// Preferring "y" now makes "y" win the vote: the group rebalances.
	r = h.join(joinReq(9, "g", "", &inst, "y", "x"))
	if r.resp != nil {
		t.Fatalf("static rejoin changing the selected protocol answered at once: %+v", r.resp)
	}
	if st := h.describe("g").State; st != "PreparingRebalance" {
		t.Fatalf("state %s, want PreparingRebalance", st)
	}
	b = h.join(joinReq(9, "g", bid, nil, "y", "x"))
	if r.resp == nil || b.resp == nil || r.resp.Generation != gen+1 || *r.resp.Protocol != "y" {
		t.Fatalf("after both rejoined: %+v / %+v", r.resp, b.resp)
	}
}

func TestStaticMemberWaitedForDuringRebalance(t *testing.T) {
	h := newHarness(t, nil)
	aid, bid, gen := staticGroup(t, h)
	inst := "a"
	hb := func(id string, inst *string) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.Generation, req.InstanceID = 4, "g", id, gen, inst
		return h.c.Heartbeat(req).ErrorCode
	}
	c, _ := h.joinNew("g")
	b := h.join(joinReq(9, "g", bid, nil))
	for range 29 { // the static member heartbeats but does not rejoin (a slow restart)
		h.clock.Advance(time.Second)
		expectCode(t, "static heartbeat", hb(aid, &inst), kerr.RebalanceInProgress.Code)
	}
	if b.resp != nil {
		t.Fatal("join phase ended while a static member was still expected")
	}
	h.clock.Advance(time.Second)
	if b.resp == nil || c.resp == nil || b.resp.Generation != gen+1 {
		t.Fatalf("after the rebalance timeout: %+v / %+v", b.resp, c.resp)
	}
	if d := h.describe("g"); len(d.Members) != 3 {
		t.Fatalf("the static member was dropped at the end of the join phase: %+v", d.Members)
	}
}

func TestInstanceIDValidation(t *testing.T) {
	h := newHarness(t, nil)
	empty := ""
	expectCode(t, "empty instance id", h.join(joinReq(9, "g", "", &empty)).resp.ErrorCode, kerr.InvalidRequest.Code)
	long := string(make([]byte, 300))
	expectCode(t, "300-byte instance id", h.join(joinReq(9, "g", "", &long)).resp.ErrorCode, kerr.InvalidRequest.Code)
}
