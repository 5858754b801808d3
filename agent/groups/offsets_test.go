package groups

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSimpleCommitAndFetch(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 3)
	resp := h.commit("standalone", "", -1, map[string]map[int32]int64{"t": {0: 10, 2: 20, 7: 1}, "missing": {0: 1}})
	codes := commitCodes(resp)
	expectCode(t, "t/0", codes["t/0"], 0)
	expectCode(t, "t/2", codes["t/2"], 0)
	expectCode(t, "t/7 (no such partition)", codes["t/7"], kerr.UnknownTopicOrPartition.Code)
	expectCode(t, "missing/0 (no such topic)", codes["missing/0"], kerr.UnknownTopicOrPartition.Code)
	if got := h.fetch("standalone", "t", 0); got != 10 {
		t.Fatalf("fetched %d, want 10", got)
	}
	if got := h.fetch("standalone", "t", 1); got != -1 {
		t.Fatalf("uncommitted partition fetched %d, want -1", got)
	}
	if got := h.fetch("nobody", "t", 0); got != -1 {
		t.Fatalf("unknown group fetched %d, want -1", got)
	}

	// v1 (explicit topics), v2 (null topics: everything), v8 (several groups at once).
	h.commit("other", "", -1, map[string]map[int32]int64{"t": {1: 5}})
	v2 := kmsg.NewPtrOffsetFetchRequest()
	v2.Version, v2.Group = 5, "standalone"
	r2 := h.c.OffsetFetch(v2)
	if len(r2.Topics) != 1 || len(r2.Topics[0].Partitions) != 2 || r2.Topics[0].Partitions[1].Offset != 20 ||
		*r2.Topics[0].Partitions[0].Metadata != "m" {
		t.Fatalf("fetch of all offsets: %+v", r2.Topics)
	}
	v8 := kmsg.NewPtrOffsetFetchRequest()
	v8.Version = 9
	for _, g := range []string{"standalone", "other", "nobody"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		v8.Groups = append(v8.Groups, rg)
	}
	r8 := h.c.OffsetFetch(v8)
	if len(r8.Groups) != 3 || len(r8.Groups[0].Topics[0].Partitions) != 2 || r8.Groups[1].Topics[0].Partitions[0].Offset != 5 ||
		len(r8.Groups[2].Topics) != 0 {
		t.Fatalf("v9 fetch of three groups: %+v", r8.Groups)
	}
}

func TestCommitValidation(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 1)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, "g", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset, rp.Metadata = 1, kmsg.StringPtr(strings.Repeat("x", MaxOffsetMetadataBytes+1))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c := &call[*kmsg.OffsetCommitResponse]{}
	h.c.OffsetCommit(req, c.done)
	expectCode(t, "oversized commit metadata", c.resp.Topics[0].Partitions[0].ErrorCode, kerr.OffsetMetadataTooLarge.Code)
	if h.c.NumGroups() != 0 {
		t.Fatal("a commit with no valid partition created a group")
	}
}

func TestMaxGroups(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxGroups = 50; o.InitialRebalanceDelay = 0 })
	h.topic("t", 1)
	one := map[string]map[int32]int64{"t": {0: 1}}
	for i := range 50 {
		expectCode(t, "commit", commitCodes(h.commit(fmt.Sprintf("g%d", i), "", -1, one))["t/0"], 0)
	}
	// Thousands more: refused, and nothing grows.
	for i := range 3000 {
		g := fmt.Sprintf("extra%d", i)
		expectCode(t, "commit beyond max_groups", commitCodes(h.commit(g, "", -1, one))["t/0"], kerr.CoordinatorNotAvailable.Code)
		expectCode(t, "join beyond max_groups", h.join(joinReq(3, g, "", nil)).resp.ErrorCode, kerr.CoordinatorNotAvailable.Code)
		expectCode(t, "commit for an unknown topic", commitCodes(h.commit(g, "", -1, map[string]map[int32]int64{"nope": {0: 1}}))["nope/0"],
			kerr.UnknownTopicOrPartition.Code)
	}
	if n := h.c.NumGroups(); n != 50 {
		t.Fatalf("%d groups held, want the cap of 50", n)
	}
	// Existing groups still work.
	expectCode(t, "commit to an existing group", commitCodes(h.commit("g7", "", -1, one))["t/0"], 0)
	list := h.c.ListGroups(kmsg.NewPtrListGroupsRequest())
	if len(list.Groups) != 50 {
		t.Fatalf("listed %d groups", len(list.Groups))
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 2)
	ids, gen := h.stable("g", 2)
	expectCode(t, "commit", commitCodes(h.commit("g", ids[0], gen, map[string]map[int32]int64{"t": {0: 42, 1: 7}}))["t/0"], 0)
	h.commit("g", ids[0], gen, map[string]map[int32]int64{"t": {0: 43}}) // the latest wins
	h.commit("solo", "", -1, map[string]map[int32]int64{"t": {1: 99}})
	h.commit("gone", "", -1, map[string]map[int32]int64{"t": {1: 1}})
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"gone", "g", "nope"}
	dc := &call[*kmsg.DeleteGroupsResponse]{}
	h.c.DeleteGroups(del, dc.done)
	expectCode(t, "delete an Empty group", dc.resp.Groups[0].ErrorCode, 0)
	expectCode(t, "delete a live group", dc.resp.Groups[1].ErrorCode, kerr.NonEmptyGroup.Code)
	expectCode(t, "delete an unknown group", dc.resp.Groups[2].ErrorCode, kerr.GroupIDNotFound.Code)

	h.restart()
	if got := h.fetch("g", "t", 0); got != 43 {
		t.Fatalf("t/0 after restart: %d, want 43", got)
	}
	if got := h.fetch("g", "t", 1); got != 7 {
		t.Fatalf("t/1 after restart: %d, want 7", got)
	}
	if got := h.fetch("solo", "t", 1); got != 99 {
		t.Fatalf("solo t/1 after restart: %d, want 99", got)
	}
	if got := h.fetch("gone", "t", 1); got != -1 {
		t.Fatalf("deleted group's offset after restart: %d", got)
	}
	d := h.describe("g")
	if d.State != "Empty" || d.ProtocolType != "consumer" || len(d.Members) != 0 {
		t.Fatalf("group after restart: %+v", d)
	}
	// Members rejoin into the next generation; the old one is fenced.
	expectCode(t, "heartbeat from before the restart", h.heartbeat("g", ids[0], gen), kerr.UnknownMemberID.Code)
	c, _ := h.joinNew("g")
	h.advanceUntil(func() bool { return c.resp != nil })
	if c.resp.Generation != gen+1 {
		t.Fatalf("generation after restart %d, want %d", c.resp.Generation, gen+1)
	}
}

func TestOffsetsOfDeletedTopicsGo(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 1)
	h.topic("keep", 1)
	h.commit("g", "", -1, map[string]map[int32]int64{"t": {0: 5}, "keep": {0: 6}})
	if err := h.st.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	h.topic("t", 1) // re-created under the same name: the old offset must not come back
	if got := h.fetch("g", "t", 0); got != -1 {
		t.Fatalf("offset of a deleted and re-created topic: %d", got)
	}
	if err := h.st.DeleteTopic("keep"); err != nil {
		t.Fatal(err)
	}
	h.c.Sweep()
	h.restart()
	if got := h.fetch("g", "keep", 0); got != -1 {
		t.Fatalf("offset of a deleted topic after sweep and restart: %d", got)
	}
	if h.c.NumGroups() != 0 {
		t.Fatal("a group left with no offsets was not removed")
	}
}

func TestOffsetsRetention(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.OffsetsRetention = time.Hour; o.SweepInterval = time.Minute })
	h.topic("t", 1)
	h.commit("g", "", -1, map[string]map[int32]int64{"t": {0: 5}})
	h.clock.Advance(59 * time.Minute)
	if h.fetch("g", "t", 0) != 5 {
		t.Fatal("offset expired early")
	}
	h.clock.Advance(2 * time.Minute)
	if h.fetch("g", "t", 0) != -1 || h.c.NumGroups() != 0 {
		t.Fatal("offset of an Empty group not expired after the retention")
	}
	h.restart()
	if h.fetch("g", "t", 0) != -1 {
		t.Fatal("expired offset back after restart")
	}
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 1)
	h.topic("u", 1)
	ids, gen := h.stable("g", 1)
	// joinReq metadata is not a ConsumerMemberMetadata: every topic counts as subscribed.
	h.commit("g", ids[0], gen, map[string]map[int32]int64{"t": {0: 1}, "u": {0: 2}})
	od := func(group string, topic string) *kmsg.OffsetDeleteResponse {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = group
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		c := &call[*kmsg.OffsetDeleteResponse]{}
		h.c.OffsetDelete(req, c.done)
		return c.resp
	}
	expectCode(t, "offset delete, unknown group", od("nope", "t").ErrorCode, kerr.GroupIDNotFound.Code)
	expectCode(t, "offset delete, subscribed", od("g", "t").Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic.Code)

	// A real consumer subscription: only "t".
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	join := joinReq(9, "g", ids[0], nil)
	join.Protocols[0].Metadata = meta.AppendTo(nil)
	r := h.join(join)
	h.advanceUntil(func() bool { return r.resp != nil })
	h.sync("g", ids[0], r.resp.Generation, nil)
	expectCode(t, "offset delete, subscribed", od("g", "t").Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic.Code)
	expectCode(t, "offset delete, not subscribed", od("g", "u").Topics[0].Partitions[0].ErrorCode, 0)
	expectCode(t, "offset delete, unknown topic", od("g", "zz").Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
	if h.fetch("g", "u", 0) != -1 || h.fetch("g", "t", 0) != 1 {
		t.Fatal("wrong offsets after OffsetDelete")
	}
}

func TestListAndDescribe(t *testing.T) {
	h := newHarness(t, nil)
	h.topic("t", 1)
	h.stable("live", 2)
	h.commit("idle", "", -1, map[string]map[int32]int64{"t": {0: 1}})
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 4
	req.StatesFilter = []string{"stable"}
	resp := h.c.ListGroups(req)
	if len(resp.Groups) != 1 || resp.Groups[0].Group != "live" || resp.Groups[0].GroupState != "Stable" || resp.Groups[0].ProtocolType != "consumer" {
		t.Fatalf("list of Stable groups: %+v", resp.Groups)
	}
	req.StatesFilter = nil
	if n := len(h.c.ListGroups(req).Groups); n != 2 {
		t.Fatalf("listed %d groups, want 2", n)
	}
	d := h.describe("live")
	if d.State != "Stable" || len(d.Members) != 2 || d.Members[0].ClientID != "test-client" || d.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe: %+v", d)
	}
	if d := h.describe("unknown"); d.State != "Dead" || d.ErrorCode != 0 {
		t.Fatalf("describe of an unknown group: %+v", d)
	}
	var m strings.Builder
	h.c.WriteMetrics(&m)
	for _, want := range []string{`samsa_groups{state="Stable"} 1`, `samsa_groups{state="Empty"} 1`, "samsa_group_members 2",
		"samsa_group_committed_offsets 1"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, m.String())
		}
	}
}
