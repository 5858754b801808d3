package groups

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// harness is a coordinator over a real store in a temp dir, driven by a fake clock.
type harness struct {
	t     *testing.T
	dir   string
	st    *commitlog.Store
	c     *Coordinator
	clock *fakeClock
	opts  Options
}

// newHarness opens a store and a coordinator; mod may change the options.
func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: newFakeClock()}
	h.opts = Options{Clock: h.clock, Logger: slog.New(slog.DiscardHandler), InitialRebalanceDelay: 3 * time.Second}
	if mod != nil {
		mod(&h.opts)
	}
	h.open()
	t.Cleanup(h.close)
	return h
}

// open opens the store and the coordinator.
func (h *harness) open() {
	h.t.Helper()
	st, err := commitlog.Open(commitlog.Options{Dir: h.dir, Logger: slog.New(slog.DiscardHandler), Now: h.clock.Now})
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	opts := h.opts
	opts.Store = st
	c, err := New(opts)
	if err != nil {
		st.Close()
		h.t.Fatalf("new coordinator: %v", err)
	}
	h.st, h.c = st, c
}

// close closes the coordinator and the store (idempotent).
func (h *harness) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
	if h.st != nil {
		if err := h.st.Close(); err != nil {
			h.t.Errorf("close store: %v", err)
		}
		h.st = nil
	}
}

// restart closes and reopens everything on the same directory.
func (h *harness) restart() {
	h.t.Helper()
	h.close()
	h.open()
}

func (h *harness) topic(name string, partitions int32) {
	h.t.Helper()
	if _, err := h.st.CreateTopic(name, partitions, nil, false); err != nil {
		h.t.Fatal(err)
	}
}

// call holds a callback's answer once it came.
type call[R any] struct{ resp R }

func (c *call[R]) done(r R) { c.resp = r }

// joinReq builds a JoinGroup request of version v.
func joinReq(v int16, group, memberID string, instance *string, protocols ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = v
	req.Group, req.MemberID, req.InstanceID = group, memberID, instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 30_000
	req.ProtocolType = "consumer"
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	for _, p := range protocols {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte("meta-" + p)})
	}
	return req
}

func (h *harness) join(req *kmsg.JoinGroupRequest) *call[*kmsg.JoinGroupResponse] {
	c := &call[*kmsg.JoinGroupResponse]{}
	h.c.JoinGroup(req, Client{ID: "test-client", Host: "/127.0.0.1"}, c.done)
	return c
}

// joinNew joins a dynamic member with v9 (the MEMBER_ID_REQUIRED round included) and returns
// the waiting call and its member id.
func (h *harness) joinNew(group string, protocols ...string) (*call[*kmsg.JoinGroupResponse], string) {
	h.t.Helper()
	first := h.join(joinReq(9, group, "", nil, protocols...))
	if first.resp == nil || first.resp.ErrorCode != kerr.MemberIDRequired.Code || first.resp.MemberID == "" {
		h.t.Fatalf("first join: %+v, want MEMBER_ID_REQUIRED with an id", first.resp)
	}
	return h.join(joinReq(9, group, first.resp.MemberID, nil, protocols...)), first.resp.MemberID
}

func (h *harness) sync(group, member string, gen int32, assign map[string]string) *call[*kmsg.SyncGroupResponse] {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, gen
	for m, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	c := &call[*kmsg.SyncGroupResponse]{}
	h.c.SyncGroup(req, c.done)
	return c
}

func (h *harness) heartbeat(group, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, member, gen
	return h.c.Heartbeat(req).ErrorCode
}

// commit commits offsets (topic -> partition -> offset) and returns the answer.
func (h *harness) commit(group, member string, gen int32, offsets map[string]map[int32]int64) *kmsg.OffsetCommitResponse {
	h.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = group, member, gen
	for topic, parts := range offsets {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		for p, o := range parts {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.Metadata = p, o, kmsg.StringPtr("m")
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	c := &call[*kmsg.OffsetCommitResponse]{}
	h.c.OffsetCommit(req, c.done)
	if c.resp == nil {
		h.t.Fatal("commit not answered synchronously")
	}
	return c.resp
}

// commitCodes flattens a commit answer to "topic/partition" -> code.
func commitCodes(resp *kmsg.OffsetCommitResponse) map[string]int16 {
	out := map[string]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[tpKey(t.Topic, p.Partition)] = p.ErrorCode
		}
	}
	return out
}

func tpKey(topic string, p int32) string { return fmt.Sprintf("%s/%d", topic, p) }

// fetch returns the committed offset of one partition (v8), or -1.
func (h *harness) fetch(group, topic string, p int32) int64 {
	h.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{p}}}
	req.Groups = append(req.Groups, rg)
	resp := h.c.OffsetFetch(req)
	g := resp.Groups[0]
	if g.ErrorCode != 0 || g.Topics[0].Partitions[0].ErrorCode != 0 {
		h.t.Fatalf("offset fetch: %+v", g)
	}
	return g.Topics[0].Partitions[0].Offset
}

// describe returns a group's state and member ids.
func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	return h.c.DescribeGroups(req).Groups[0]
}

// expectCode fails unless got is want, naming both.
func expectCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: error %s, want %s", what, codeName(got), codeName(want))
	}
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}

// stable brings a new group of n dynamic members to Stable and returns their ids (leader
// first) and the generation.
func (h *harness) stable(group string, n int) ([]string, int32) {
	h.t.Helper()
	var calls []*call[*kmsg.JoinGroupResponse]
	var ids []string
	for range n {
		c, id := h.joinNew(group)
		calls, ids = append(calls, c), append(ids, id)
	}
	h.advanceUntil(func() bool {
		for _, c := range calls {
			if c.resp == nil {
				return false
			}
		}
		return true
	})
	var leader string
	var gen int32
	for i, c := range calls {
		if c.resp == nil {
			h.t.Fatalf("member %d not answered after the join phase", i)
		}
		expectCode(h.t, "join", c.resp.ErrorCode, 0)
		leader, gen = c.resp.LeaderID, c.resp.Generation
	}
	assign := map[string]string{}
	for _, id := range ids {
		assign[id] = "assignment-of-" + id
	}
	var syncs []*call[*kmsg.SyncGroupResponse]
	for _, id := range ids {
		a := assign
		if id != leader {
			a = nil
		}
		syncs = append(syncs, h.sync(group, id, gen, a))
	}
	for i, s := range syncs {
		if s.resp == nil || s.resp.ErrorCode != 0 || string(s.resp.MemberAssignment) != assign[ids[i]] {
			h.t.Fatalf("sync of member %d: %+v", i, s.resp)
		}
	}
	out := []string{leader}
	for _, id := range ids {
		if id != leader {
			out = append(out, id)
		}
	}
	return out, gen
}

// advanceUntil moves the fake clock in 100 ms steps until cond holds (at most 2 minutes).
func (h *harness) advanceUntil(cond func() bool) {
	h.t.Helper()
	for range 1200 {
		if cond() {
			return
		}
		h.clock.Advance(100 * time.Millisecond)
	}
	h.t.Fatal("condition not met after 2 minutes of fake time")
}
