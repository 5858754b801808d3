package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
)

// groupFailAfter bounds every wait of the group tests: a failure bound, never a timing
// assertion.
const groupFailAfter = 2 * time.Minute

// balancers are the four client-side assignors the coordinator must pass through.
var balancers = map[string]func() kgo.GroupBalancer{
	"range":              kgo.RangeBalancer,
	"roundrobin":         kgo.RoundRobinBalancer,
	"sticky":             kgo.StickyBalancer,
	"cooperative-sticky": kgo.CooperativeStickyBalancer,
}

// groupAgentConfig shortens the initial rebalance delay so that members starting together
// still land in one generation, without waiting Kafka's 3s.
func groupAgentConfig(c *agent.Config) {
	c.GroupInitialRebalanceDelay = agent.Duration(500 * time.Millisecond)
}

// memberOpts are the settings of every test member: a 6s session (Kafka's minimum) so a
// member that dies is noticed quickly.
func memberOpts(addr, group, topic, balancer string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(balancers[balancer]()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second), kgo.AutoCommitInterval(500 * time.Millisecond),
	}
}

// tracker collects what every member consumed and holds, in this process or another.
type tracker struct {
	mu       sync.Mutex
	seen     map[string]int
	assigned map[string][]int32 // member -> partitions held
}

func newTracker() *tracker {
	return &tracker{seen: map[string]int{}, assigned: map[string][]int32{}}
}

func (tr *tracker) record(v string) {
	tr.mu.Lock()
	tr.seen[v]++
	tr.mu.Unlock()
}

func (tr *tracker) assign(member string, parts []int32) {
	tr.mu.Lock()
	tr.assigned[member] = slices.Sorted(slices.Values(parts))
	tr.mu.Unlock()
}

// wait polls cond (under the tracker's lock) until it holds.
func (tr *tracker) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(groupFailAfter)
	for {
		tr.mu.Lock()
		ok := cond()
		state := fmt.Sprintf("%d records seen, assignments %v", len(tr.seen), tr.assigned)
		tr.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s (%s)", what, groupFailAfter, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// heldBy lists the partitions the named members hold (call with the lock held).
func (tr *tracker) heldBy(members ...string) []int32 {
	var out []int32
	for _, m := range members {
		out = append(out, tr.assigned[m]...)
	}
	slices.Sort(out)
	return out
}

// partitionSet follows OnPartitionsAssigned/Revoked/Lost for one topic: eager balancers
// revoke everything and assign everything, cooperative ones only the difference.
type partitionSet struct {
	mu    sync.Mutex
	held  map[int32]bool
	onSet func([]int32)
}

func (ps *partitionSet) change(m map[string][]int32, add bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.held == nil {
		ps.held = map[int32]bool{}
	}
	for _, parts := range m {
		for _, p := range parts {
			if add {
				ps.held[p] = true
			} else {
				delete(ps.held, p)
			}
		}
	}
	var out []int32
	for p := range ps.held {
		out = append(out, p)
	}
	ps.onSet(out)
}

func (ps *partitionSet) opts() []kgo.Opt {
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { ps.change(m, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { ps.change(m, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { ps.change(m, false) }),
	}
}

// member is an in-process group member polling in its own goroutine.
type member struct {
	cl   *kgo.Client
	stop context.CancelFunc
	done chan struct{}
}

func startMember(t *testing.T, tr *tracker, name string, opts []kgo.Opt) *member {
	t.Helper()
	ps := &partitionSet{onSet: func(p []int32) { tr.assign(name, p) }}
	cl, err := kgo.NewClient(append(opts, ps.opts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{cl: cl, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { tr.record(string(r.Value)) })
		}
	}()
	t.Cleanup(func() { m.close(t) })
	return m
}

// close stops polling, commits what was consumed and leaves the group (idempotent).
func (m *member) close(t *testing.T) {
	t.Helper()
	if m.stop == nil {
		return
	}
	m.stop()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), groupFailAfter)
	defer cancel()
	if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Logf("final commit: %v", err)
	}
	m.cl.Close()
	m.stop = nil
}

// TestGroupMemberProcess is no test of its own: it is the group member TestGroupBalancers
// runs as a separate process, to kill it with SIGKILL (no LeaveGroup, connections cut). It
// prints "assigned P,P" when its partitions change and "record VALUE" per record.
func TestGroupMemberProcess(t *testing.T) {
	broker := os.Getenv("GROUPTEST_BROKER")
	if broker == "" {
		t.Skip("helper process of TestGroupBalancers")
	}
	ps := &partitionSet{onSet: func(p []int32) {
		slices.Sort(p)
		parts := make([]string, len(p))
		for i, x := range p {
			parts[i] = strconv.Itoa(int(x))
		}
		fmt.Printf("assigned %s\n", strings.Join(parts, ","))
	}}
	opts := memberOpts(broker, os.Getenv("GROUPTEST_GROUP"), os.Getenv("GROUPTEST_TOPIC"), os.Getenv("GROUPTEST_BALANCER"))
	cl, err := kgo.NewClient(append(opts, ps.opts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	for {
		cl.PollFetches(context.Background()).EachRecord(func(r *kgo.Record) { fmt.Printf("record %s\n", r.Value) })
	}
}

// startMemberProcess runs TestGroupMemberProcess in a child process feeding tr.
func startMemberProcess(t *testing.T, tr *tracker, name, addr, group, topic, balancer string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupMemberProcess$")
	cmd.Env = append(os.Environ(), "GROUPTEST_BROKER="+addr, "GROUPTEST_GROUP="+group,
		"GROUPTEST_TOPIC="+topic, "GROUPTEST_BALANCER="+balancer)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "record "); ok {
				tr.record(v)
			} else if v, ok := strings.CutPrefix(line, "assigned "); ok {
				var parts []int32
				for _, s := range strings.Split(v, ",") {
					if p, err := strconv.Atoi(s); err == nil {
						parts = append(parts, int32(p))
					}
				}
				tr.assign(name, parts)
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd
}

// produceValues produces values "v<from>".."v<to-1>" spread over the topic's partitions.
func produceValues(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), groupFailAfter)
	defer cancel()
	for i := from; i < to; i++ {
		cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: fmt.Appendf(nil, "v%d", i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// adminOf returns an admin client of addr, closed at the end of the test.
func adminOf(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// TestGroupBalancers runs, for each balancer, three members over a 6-partition topic. One of
// them, a separate process, is killed with SIGKILL: its partitions move to the others once its
// session times out, and every record is consumed at least once. The offsets committed
// survive an agent restart and a new member resumes from them.
func TestGroupBalancers(t *testing.T) {
	for name := range balancers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testBalancer(t, name)
		})
	}
}

func testBalancer(t *testing.T, balancer string) {
	dir := t.TempDir()
	a := startAgent(t, dir, groupAgentConfig)
	addr, group, topic := a.KafkaAddr(), "g-"+balancer, "orders"
	ctx, cancel := context.WithTimeout(context.Background(), groupFailAfter)
	defer cancel()
	if _, err := adminOf(t, addr).CreateTopic(ctx, 6, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceValues(t, addr, topic, 0, 600)
	tr := newTracker()
	opts := memberOpts(addr, group, topic, balancer)
	ma := startMember(t, tr, "a", opts)
	mb := startMember(t, tr, "b", opts)
	victim := startMemberProcess(t, tr, "c", addr, group, topic, balancer)
	tr.wait(t, "three members with two partitions each and every record consumed", func() bool {
		return len(tr.seen) == 600 && len(tr.assigned["a"]) == 2 && len(tr.assigned["b"]) == 2 && len(tr.assigned["c"]) == 2
	})
	victimParts := tr.assigned["c"]
	victim.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	produceValues(t, addr, topic, 600, 1200)
	tr.wait(t, "the killed member's partitions moved and every record consumed", func() bool {
		return len(tr.seen) == 1200 && slices.Equal(tr.heldBy("a", "b"), []int32{0, 1, 2, 3, 4, 5})
	})
	t.Logf("%s: partitions %v of the killed member moved %s after SIGKILL (session timeout 6s)",
		balancer, victimParts, time.Since(killed).Round(100*time.Millisecond))
	ma.close(t)
	mb.close(t)
	committed := checkCommittedAtEnd(t, addr, group, topic)

	// A fresh bound for the restart phase: the waits above may have used most of ctx's.
	ctx, cancel = context.WithTimeout(context.Background(), groupFailAfter)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	a = startAgent(t, dir, groupAgentConfig)
	addr = a.KafkaAddr()
	after, err := adminOf(t, addr).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range committed {
		if got, ok := after.Lookup(topic, p); !ok || got.At != want {
			t.Fatalf("partition %d: committed %d before the restart, %+v after", p, want, got)
		}
	}
	produceValues(t, addr, topic, 1200, 1500)
	tr2 := newTracker()
	startMember(t, tr2, "d", memberOpts(addr, group, topic, balancer))
	// Records committed before the restart would come back first in their partitions, ahead
	// of the new ones: once 300 are seen, any of them re-delivered is among them.
	tr2.wait(t, "the new records consumed after the restart", func() bool { return len(tr2.seen) >= 300 })
	tr2.mu.Lock()
	defer tr2.mu.Unlock()
	for v := range tr2.seen {
		if n, _ := strconv.Atoi(strings.TrimPrefix(v, "v")); n < 1200 {
			t.Fatalf("record %s, committed before the restart, was consumed again", v)
		}
	}
}

// checkCommittedAtEnd waits until the group's committed offsets reach the end of every
// partition and returns them.
func checkCommittedAtEnd(t *testing.T, addr, group, topic string) map[int32]int64 {
	t.Helper()
	adm := adminOf(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), groupFailAfter)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		behind := 0
		ends.Each(func(e kadm.ListedOffset) {
			o, _ := offs.Lookup(topic, e.Partition)
			out[e.Partition] = o.At
			if o.At != e.Offset {
				behind++
			}
		})
		if behind == 0 {
			return out
		}
		if ctx.Err() != nil {
			t.Fatalf("committed offsets %v never reached the end offsets", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
