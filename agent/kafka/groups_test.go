package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/groups"
)

// newGroupEnv is newEnv with a group coordinator (initial rebalance delay as given).
func newGroupEnv(t *testing.T, delay time.Duration, mod func(*groups.Options)) *env {
	t.Helper()
	var g *groups.Coordinator
	e := newEnv(t, func(o *Options) {
		gopts := groups.Options{Store: o.Store, Logger: slog.New(slog.DiscardHandler), InitialRebalanceDelay: delay}
		if mod != nil {
			mod(&gopts)
		}
		var err error
		if g, err = groups.New(gopts); err != nil {
			t.Fatalf("group coordinator: %v", err)
		}
		o.Groups = g
	})
	t.Cleanup(func() { g.Close() }) // runs before the server shuts down and the store closes
	return e
}

// TestConsumerGroupFranz runs two franz-go group members over a 4-partition topic: all records
// are consumed once between them, commits land, and kadm sees the group.
func TestConsumerGroupFranz(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, 200*time.Millisecond, nil)
	e.topic("gt", 4, nil)
	prod := e.client(kgo.DefaultProduceTopic("gt"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 400
	for i := range n {
		prod.Produce(ctxFor(t), &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}, nil)
	}
	if err := prod.Flush(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	members := make([]*kgo.Client, 2)
	for i := range members {
		members[i] = e.client(kgo.ConsumerGroup("franz"), kgo.ConsumeTopics("gt"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(500*time.Millisecond), kgo.DisableAutoCommit())
	}
	ctx := ctxFor(t)
	if seen := consumeInGroup(t, ctx, members, n); len(seen) != n {
		t.Fatalf("consumed %d distinct records, want %d", len(seen), n)
	}
	adm := e.admin()
	var described kadm.DescribedGroups
	for deadline := time.Now().Add(failAfter); ; {
		var err error
		if described, err = adm.DescribeGroups(ctx, "franz"); err != nil {
			t.Fatal(err)
		}
		if g := described["franz"]; g.State == "Stable" && len(g.Members) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g := described["franz"]; g.State != "Stable" || len(g.Members) != 2 || g.ProtocolType != "consumer" {
		t.Fatalf("described group: %+v", g)
	}
	offs, err := adm.FetchOffsets(ctx, "franz")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != n {
		t.Fatalf("committed offsets sum to %d, want %d", total, n)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil || !slices.Contains(listed.Groups(), "franz") {
		t.Fatalf("list groups: %v, %v", listed, err)
	}
}

// consumeInGroup polls the members until n distinct values arrived, committing as they go,
// then commits what is left; it returns how often each value was seen.
func consumeInGroup(t *testing.T, ctx context.Context, members []*kgo.Client, n int) map[string]int {
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	pollCtx, stop := context.WithCancel(ctx) // cancelled once every record is in
	defer stop()
	for _, m := range members {
		wg.Go(func() {
			for pollCtx.Err() == nil {
				fs := m.PollRecords(pollCtx, 100)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					if len(seen) >= n {
						stop()
					}
					mu.Unlock()
				})
				if err := m.CommitUncommittedOffsets(ctx); err != nil {
					t.Logf("commit (retried below): %v", err) // e.g. REBALANCE_IN_PROGRESS
				}
			}
		})
	}
	wg.Wait()
	for _, m := range members {
		for err := m.CommitUncommittedOffsets(ctx); err != nil; err = m.CommitUncommittedOffsets(ctx) {
			if ctx.Err() != nil {
				t.Fatalf("final commit: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return seen
}

// TestJoinDoesNotBlockReader sends two JoinGroups on one connection: the second is read while
// the first waits, so both land in the same join phase.
func TestJoinDoesNotBlockReader(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, time.Second, nil)
	nc := e.dial()
	join := func(corr int32) {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = "pipelined", 10_000, 10_000, "consumer"
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0}}}
		rawSend(t, nc, req, 3, corr)
	}
	join(1)
	join(2)
	first, second := kmsg.NewPtrJoinGroupResponse(), kmsg.NewPtrJoinGroupResponse()
	first.Version, second.Version = 3, 3
	rawRead(t, nc, first, 1)
	rawRead(t, nc, second, 2)
	if first.ErrorCode != 0 || second.ErrorCode != 0 || first.Generation != 1 || second.Generation != 1 {
		t.Fatalf("answers %+v / %+v", first, second)
	}
	if len(first.Members)+len(second.Members) != 2 {
		t.Fatalf("the leader got %d+%d members, want both in one generation", len(first.Members), len(second.Members))
	}
}

// TestShutdownAnswersWaitingJoin checks a JoinGroup waiting for its join phase gets
// NOT_COORDINATOR when the server drains, so shutdown is not held up.
func TestShutdownAnswersWaitingJoin(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, time.Minute, nil)
	nc := e.dial()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = "drain", 10_000, 120_000, "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	rawSend(t, nc, req, 3, 1)
	// A heartbeat behind it proves the join was read (and is now waiting).
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "drain"
	rawSend(t, nc, hb, 4, 2)
	time.Sleep(100 * time.Millisecond) // let the requests be read (no assertion on time)
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctxFor(t)) }()
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = 3
	rawRead(t, nc, resp, 1)
	if resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("waiting join at shutdown: %s", kerr.ErrorForCode(resp.ErrorCode))
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestFindCoordinator(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, 0, nil)
	nc := e.dial()
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = "g"
		resp := rawRoundTrip[*kmsg.FindCoordinatorResponse](t, nc, req, v, int32(v))
		if resp.ErrorCode != 0 || resp.Host != "127.0.0.1" || resp.NodeID != 0 || resp.Port <= 0 {
			t.Fatalf("v%d: %+v", v, resp)
		}
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKeys = []string{"a", "b"}
	resp := rawRoundTrip[*kmsg.FindCoordinatorResponse](t, nc, req, 4, 10)
	if len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "b" || resp.Coordinators[1].ErrorCode != 0 {
		t.Fatalf("v4: %+v", resp)
	}
	req.CoordinatorType = 1
	resp = rawRoundTrip[*kmsg.FindCoordinatorResponse](t, nc, req, 4, 11)
	if resp.Coordinators[0].ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("transaction key: %+v", resp.Coordinators[0])
	}
	req.CoordinatorType = 7
	resp = rawRoundTrip[*kmsg.FindCoordinatorResponse](t, nc, req, 4, 12)
	if resp.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("unknown key type: %+v", resp.Coordinators[0])
	}

	// Without a coordinator every group API says so.
	plain := newEnv(t, nil)
	pc := plain.dial()
	r := rawRoundTrip[*kmsg.FindCoordinatorResponse](t, pc, kmsg.NewPtrFindCoordinatorRequest(), 3, 1)
	if r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("no coordinator: %+v", r)
	}
	hb := rawRoundTrip[*kmsg.HeartbeatResponse](t, pc, kmsg.NewPtrHeartbeatRequest(), 4, 2)
	if hb.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("heartbeat without a coordinator: %+v", hb)
	}
}

// TestGroupAPIsEveryVersion drives one member through every version of the group APIs on the
// wire and checks the answers decode with the expected codes.
func TestGroupAPIsEveryVersion(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, 0, nil)
	e.topic("vt", 1, nil)
	nc := e.dial()
	corr := int32(0)
	next := func() int32 { corr++; return corr }
	for v := int16(0); v <= 9; v++ {
		group := fmt.Sprintf("v%d", v)
		join := kmsg.NewPtrJoinGroupRequest()
		join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = group, 10_000, 10_000, "consumer"
		join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("m")}}
		jr := rawRoundTrip[*kmsg.JoinGroupResponse](t, nc, join, v, next())
		if v >= 4 {
			if jr.ErrorCode != kerr.MemberIDRequired.Code {
				t.Fatalf("join v%d: %s", v, kerr.ErrorForCode(jr.ErrorCode))
			}
			join.MemberID = jr.MemberID
			jr = rawRoundTrip[*kmsg.JoinGroupResponse](t, nc, join, v, next())
		}
		if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 {
			t.Fatalf("join v%d: %+v", v, jr)
		}
		sv, hv, lv := min(v, 5), min(v, 4), min(v, 5)
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.Group, sync.Generation, sync.MemberID = group, 1, jr.MemberID
		sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jr.MemberID, MemberAssignment: []byte("a")}}
		sr := rawRoundTrip[*kmsg.SyncGroupResponse](t, nc, sync, sv, next())
		if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "a" {
			t.Fatalf("sync v%d: %+v", sv, sr)
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.Generation, hb.MemberID = group, 1, jr.MemberID
		if r := rawRoundTrip[*kmsg.HeartbeatResponse](t, nc, hb, hv, next()); r.ErrorCode != 0 {
			t.Fatalf("heartbeat v%d: %s", hv, kerr.ErrorForCode(r.ErrorCode))
		}
		hb.Generation = 9
		if r := rawRoundTrip[*kmsg.HeartbeatResponse](t, nc, hb, hv, next()); r.ErrorCode != kerr.IllegalGeneration.Code {
			t.Fatalf("heartbeat v%d, wrong generation: %s", hv, kerr.ErrorForCode(r.ErrorCode))
		}
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group, leave.MemberID = group, jr.MemberID
		leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: jr.MemberID}}
		lr := rawRoundTrip[*kmsg.LeaveGroupResponse](t, nc, leave, lv, next())
		if lr.ErrorCode != 0 || lv >= 3 && (len(lr.Members) != 1 || lr.Members[0].ErrorCode != 0) {
			t.Fatalf("leave v%d: %+v", lv, lr)
		}
	}
	checkOffsetAPIs(t, nc, next)
}

// checkOffsetAPIs commits and fetches at every version, then lists, describes and deletes.
func checkOffsetAPIs(t *testing.T, nc net.Conn, next func() int32) {
	for v := int16(2); v <= 9; v++ {
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Group, commit.Generation = "offsets", -1
		commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "vt", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
			{Partition: 0, Offset: int64(v), LeaderEpoch: -1}, {Partition: 3, Offset: 1}}}}
		cr := rawRoundTrip[*kmsg.OffsetCommitResponse](t, nc, commit, v, next())
		if p := cr.Topics[0].Partitions; p[0].ErrorCode != 0 || p[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("commit v%d: %+v", v, p)
		}
	}
	for v := int16(1); v <= 9; v++ {
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Group = "offsets"
		fetch.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "vt", Partitions: []int32{0}}}
		fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "offsets", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "vt", Partitions: []int32{0}}}}}
		fr := rawRoundTrip[*kmsg.OffsetFetchResponse](t, nc, fetch, v, next())
		var got int64
		if v >= 8 {
			got = fr.Groups[0].Topics[0].Partitions[0].Offset
		} else {
			got = fr.Topics[0].Partitions[0].Offset
		}
		if got != 9 {
			t.Fatalf("fetch v%d: offset %d, want 9", v, got)
		}
	}
	for v := int16(0); v <= 4; v++ {
		lr := rawRoundTrip[*kmsg.ListGroupsResponse](t, nc, kmsg.NewPtrListGroupsRequest(), v, next())
		if lr.ErrorCode != 0 || len(lr.Groups) != 11 {
			t.Fatalf("list v%d: %d groups", v, len(lr.Groups))
		}
	}
	for v := int16(0); v <= 5; v++ {
		dr := kmsg.NewPtrDescribeGroupsRequest()
		dr.Groups = []string{"offsets", "v9"}
		resp := rawRoundTrip[*kmsg.DescribeGroupsResponse](t, nc, dr, v, next())
		if len(resp.Groups) != 2 || resp.Groups[0].State != "Empty" || resp.Groups[1].State != "Empty" {
			t.Fatalf("describe v%d: %+v", v, resp.Groups)
		}
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "offsets"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "vt", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	if r := rawRoundTrip[*kmsg.OffsetDeleteResponse](t, nc, od, 0, next()); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", r)
	}
	for v := int16(0); v <= 2; v++ {
		del := kmsg.NewPtrDeleteGroupsRequest()
		del.Groups = []string{fmt.Sprintf("v%d", v), "missing"}
		r := rawRoundTrip[*kmsg.DeleteGroupsResponse](t, nc, del, v, next())
		if r.Groups[0].ErrorCode != 0 || r.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("delete groups v%d: %+v", v, r.Groups)
		}
	}
}

// TestGroupBadInput sends what a broken or hostile client might: Kafka error codes come back
// and the connection stays usable.
func TestGroupBadInput(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, 0, func(o *groups.Options) { o.MaxGroups = 20 })
	e.topic("bt", 2, nil)
	nc := e.dial()
	big := kmsg.NewPtrJoinGroupRequest()
	big.Group, big.SessionTimeoutMillis, big.ProtocolType = "big", 10_000, "consumer"
	big.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: make([]byte, 2<<20)}}
	if r := rawRoundTrip[*kmsg.JoinGroupResponse](t, nc, big, 5, 1); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("2 MiB member metadata: %s", kerr.ErrorForCode(r.ErrorCode))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID = "nope", "x"
	if r := rawRoundTrip[*kmsg.SyncGroupResponse](t, nc, sync, 5, 2); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("sync to an unknown group: %s", kerr.ErrorForCode(r.ErrorCode))
	}
	adm := e.admin()
	ctx := ctxFor(t)
	resp, err := adm.CommitOffsets(ctx, "cg", kadm.OffsetsFromRecords(
		kgo.Record{Topic: "bt", Partition: 0, Offset: 4}, kgo.Record{Topic: "bt", Partition: 9, Offset: 4},
		kgo.Record{Topic: "ghost", Partition: 0, Offset: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.Lookup("bt", 0); r.Err != nil {
		t.Fatalf("commit bt/0: %v", r.Err)
	}
	if r, _ := resp.Lookup("bt", 9); r.Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("commit bt/9: %v", r.Err)
	}
	if r, _ := resp.Lookup("ghost", 0); r.Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("commit ghost/0: %v", r.Err)
	}
	// Thousands of groups: beyond max_groups they are refused, nothing grows.
	for i := range 2000 {
		c := kmsg.NewPtrOffsetCommitRequest()
		c.Group, c.Generation = fmt.Sprintf("many-%d", i), -1
		c.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "bt", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 1}}}}
		r := rawRoundTrip[*kmsg.OffsetCommitResponse](t, nc, c, 8, int32(100+i))
		want := int16(0)
		if i >= 19 { // "cg" holds one of the 20
			want = kerr.CoordinatorNotAvailable.Code
		}
		if got := r.Topics[0].Partitions[0].ErrorCode; got != want {
			t.Fatalf("commit to group %d: %v, want %v", i, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
	}
	if n := e.srv.opts.Groups.NumGroups(); n != 20 {
		t.Fatalf("%d groups held, want 20", n)
	}
}

// TestInternalTopic checks __consumer_offsets is listed as internal and refuses client writes.
func TestInternalTopic(t *testing.T) {
	t.Parallel()
	e := newGroupEnv(t, 0, nil)
	adm := e.admin()
	ctx := ctxFor(t)
	all, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := all[groups.OffsetsTopic]; !ok || !d.IsInternal {
		t.Fatalf("%s in metadata: %+v (listed %v)", groups.OffsetsTopic, d, all.Names())
	}
	user, err := adm.ListTopics(ctx)
	if err != nil || user.Has(groups.OffsetsTopic) {
		t.Fatalf("listed without internal topics: %v, %v", user.Names(), err)
	}
	cl := e.client()
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: groups.OffsetsTopic, Value: []byte("x")}).FirstErr()
	if err != kerr.InvalidTopicException {
		t.Fatalf("produce to %s: %v, want INVALID_TOPIC_EXCEPTION", groups.OffsetsTopic, err)
	}
}

// addGroupSeeds adds group API requests to the fuzz seeds (correlation ids from 100).
func addGroupSeeds(seeds map[string][]byte) {
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.SessionTimeoutMillis, join.ProtocolType, join.InstanceID = "g", 10_000, "consumer", kmsg.StringPtr("i")
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1, 0, 0, 0, 1, 0, 1, 't'}}}
	seeds["joingroup_v9"] = frameOf(join, 9, 100)
	seeds["joingroup_v0"] = frameOf(join, 0, 101)
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", "m", 1
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "m", MemberAssignment: []byte{0, 1}}}
	seeds["syncgroup_v5"] = frameOf(sync, 5, 102)
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "g", -1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 5, Metadata: kmsg.StringPtr("x")}}}}
	seeds["offsetcommit_v8"] = frameOf(commit, 8, 103)
	seeds["offsetcommit_v2"] = frameOf(commit, 2, 104)
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Group = "g"
	fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
	seeds["offsetfetch_v9"] = frameOf(fetch, 9, 105)
	seeds["offsetfetch_v1"] = frameOf(fetch, 1, 106)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g", "h"}
	seeds["findcoordinator_v4"] = frameOf(fc, 4, 107)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.Members = "g", []kmsg.LeaveGroupRequestMember{{MemberID: "m", InstanceID: kmsg.StringPtr("i")}}
	seeds["leavegroup_v5"] = frameOf(leave, 5, 108)
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = []string{"g"}
	seeds["describegroups_v5"] = frameOf(describe, 5, 109)
	list := kmsg.NewPtrListGroupsRequest()
	list.StatesFilter = []string{"Stable"}
	seeds["listgroups_v4"] = frameOf(list, 4, 110)
}
