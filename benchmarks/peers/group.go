package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumer group tests (samsa only: JetStream has no Kafka groups). A 6-partition topic holds
// the records; members are franz-go clients with a 500 ms heartbeat interval and a 10 s
// session timeout.
const (
	groupPartitions = 6
	groupMembers    = 3
	groupTrials     = 3
	groupHeartbeat  = 500 * time.Millisecond
)

// groupResult is what the group tests measured.
type groupResult struct {
	// Consume is n 100 B records read by three members of a fresh group (cooperative-sticky),
	// timed from the group's first assignment to the last record.
	Consume throughput `json:"consume_100b"`
	// Rebalance is, per balancer, the median over trials of the time from a third member's
	// client creation until all three members hold partitions.
	Rebalance map[string]float64 `json:"rebalance_ms"`
	// RebalanceTrials are the single trials (ms).
	RebalanceTrials map[string][]float64 `json:"rebalance_trials_ms"`
}

// holdings tracks which partitions each member holds, from the rebalance callbacks.
type holdings struct {
	mu      sync.Mutex
	held    map[string]map[int32]bool
	first   time.Time     // first assignment seen
	changed chan struct{} // signalled (non-blocking) on every change
}

func newHoldings() *holdings {
	return &holdings{held: map[string]map[int32]bool{}, changed: make(chan struct{}, 1)}
}

func (h *holdings) update(member string, m map[string][]int32, add bool) {
	h.mu.Lock()
	if h.held[member] == nil {
		h.held[member] = map[int32]bool{}
	}
	for _, ps := range m {
		for _, p := range ps {
			if add {
				h.held[member][p] = true
			} else {
				delete(h.held[member], p)
			}
		}
	}
	if add && h.first.IsZero() {
		h.first = time.Now()
	}
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// spread reports whether exactly the named members hold every partition, each at least one.
func (h *holdings) spread(members ...string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	for name, ps := range h.held {
		if len(ps) > 0 && !slices.Contains(members, name) {
			return false
		}
		total += len(ps)
	}
	for _, name := range members {
		if len(h.held[name]) == 0 {
			return false
		}
	}
	return total == groupPartitions
}

// wait blocks until cond holds (checked on every change) or ctx ends.
func (h *holdings) wait(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-h.changed:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
	return nil
}

// groupMember is one polling member.
type groupMember struct {
	cl   *kgo.Client
	done chan struct{}
}

// join starts a member of group called name; records are counted in got.
func (k *kafka) join(group, name, topic, balancer string, h *holdings, got *atomic.Int64, opts ...kgo.Opt) (*groupMember, error) {
	bal := kgo.CooperativeStickyBalancer()
	if balancer == "range" {
		bal = kgo.RangeBalancer()
	}
	all := append([]kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(bal),
		kgo.HeartbeatInterval(groupHeartbeat), kgo.SessionTimeout(10 * time.Second),
		kgo.FetchMaxBytes(k.fetchMaxBytes), kgo.FetchMaxPartitionBytes(k.fetchMaxBytes),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { h.update(name, m, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { h.update(name, m, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { h.update(name, m, false) }),
	}, opts...)
	cl, err := k.client(all...)
	if err != nil {
		return nil, err
	}
	m := &groupMember{cl: cl, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			got.Add(int64(fs.NumRecords()))
		}
	}()
	return m, nil
}

// leave closes the member (LeaveGroup) and clears what it held.
func (m *groupMember) leave(h *holdings, name string) {
	m.cl.Close()
	<-m.done
	h.mu.Lock()
	delete(h.held, name)
	h.mu.Unlock()
}

// groupBench runs the group tests on a fresh 6-partition topic of n 100 B records.
func (k *kafka) groupBench(ctx context.Context, mk func() *meter, n int) (*groupResult, error) {
	const topic = "grp"
	// One partition at a time: requests then carry one partition's batches, as in the produce
	// tests, so the server's peak memory stays comparable.
	cl, err := k.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, groupPartitions, 1, nil, topic); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", topic, err)
	}
	value := payload(smallSize)
	var failed atomic.Int64
	for p := range groupPartitions {
		for i := p; i < n; i += groupPartitions {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(p), Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			return nil, err
		}
	}
	if f := failed.Load(); f > 0 {
		return nil, fmt.Errorf("%d of %d records to %s failed", f, n, topic)
	}
	res := &groupResult{Rebalance: map[string]float64{}, RebalanceTrials: map[string][]float64{}}
	if res.Consume, err = k.groupConsume(ctx, mk(), topic, n); err != nil {
		return nil, err
	}
	for _, bal := range []string{"range", "cooperative-sticky"} {
		trials, err := k.groupRebalance(ctx, topic, bal)
		if err != nil {
			return nil, fmt.Errorf("rebalance (%s): %w", bal, err)
		}
		res.RebalanceTrials[bal] = trials
		sorted := slices.Sorted(slices.Values(trials))
		res.Rebalance[bal] = sorted[len(sorted)/2]
	}
	return res, nil
}

// groupConsume reads the topic with three members of a fresh group, from the start.
func (k *kafka) groupConsume(ctx context.Context, m *meter, topic string, n int) (throughput, error) {
	h := newHoldings()
	var got atomic.Int64
	m.begin()
	var members []*groupMember
	defer func() {
		for i, gm := range members {
			gm.leave(h, fmt.Sprint(i))
		}
	}()
	for i := range groupMembers {
		gm, err := k.join("bench-consume", fmt.Sprint(i), topic, "cooperative-sticky", h, &got,
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			return throughput{}, err
		}
		members = append(members, gm)
	}
	for got.Load() < int64(n) {
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return throughput{}, fmt.Errorf("group consumed %d of %d records: %w", got.Load(), n, err)
		}
	}
	t := newThroughput(m, n, smallSize)
	h.mu.Lock()
	formed := h.first.Sub(m.start)
	h.mu.Unlock()
	// Time the consumption from the group's first assignment: the join phase of a new group
	// waits group_initial_rebalance_delay (3 s by default) for more members.
	t.Seconds -= formed.Seconds()
	t.MsgsPerSec, t.MBPerSec = float64(n)/t.Seconds, float64(t.Bytes)/t.Seconds/1e6
	return t, nil
}

// groupRebalance forms a two-member group (consuming from the end, so no fetch load), then
// times groupTrials joins of a third member, which leaves again between trials.
func (k *kafka) groupRebalance(ctx context.Context, topic, balancer string) ([]float64, error) {
	group := "bench-rebalance-" + balancer
	h := newHoldings()
	var got atomic.Int64
	atEnd := kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd())
	var two []*groupMember
	defer func() {
		for i, gm := range two {
			gm.leave(h, fmt.Sprint(i))
		}
	}()
	for i := range 2 {
		gm, err := k.join(group, fmt.Sprint(i), topic, balancer, h, &got, atEnd)
		if err != nil {
			return nil, err
		}
		two = append(two, gm)
	}
	var trials []float64
	for range groupTrials {
		if err := h.wait(ctx, "two members holding everything", func() bool { return h.spread("0", "1") }); err != nil {
			return nil, err
		}
		start := time.Now()
		third, err := k.join(group, "2", topic, balancer, h, &got, atEnd)
		if err != nil {
			return nil, err
		}
		err = h.wait(ctx, "three members holding partitions", func() bool { return h.spread("0", "1", "2") })
		trials = append(trials, float64(time.Since(start).Microseconds())/1000)
		third.leave(h, "2")
		if err != nil {
			return nil, err
		}
	}
	return trials, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
