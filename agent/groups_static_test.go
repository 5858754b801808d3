package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStaticMemberRestart restarts a member of a two-member group with the same
// group.instance.id within the session timeout: it gets its partitions back in the same
// generation and the other member (the leader) sees no rebalance. (A restarted static leader
// using a sticky balancer rebalances with Kafka too: franz-go recomputes the plan from the
// members' stored metadata and rejoins when it differs, see KIP-814.)
func TestStaticMemberRestart(t *testing.T) {
	t.Parallel()
	a := startAgent(t, t.TempDir(), groupAgentConfig)
	addr, group, topic := a.KafkaAddr(), "static", "readings"
	ctx, cancel := context.WithTimeout(context.Background(), groupFailAfter)
	defer cancel()
	if _, err := adminOf(t, addr).CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceValues(t, addr, topic, 0, 100)
	tr := newTracker()
	var dynChanges atomic.Int32
	dynOpts := append(memberOpts(addr, group, topic, "cooperative-sticky"),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { dynChanges.Add(1) }),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { dynChanges.Add(1) }))
	d := startMember(t, tr, "d", dynOpts) // first in: the leader
	tr.wait(t, "the first member holds every partition", func() bool { return len(tr.assigned["d"]) == 4 })
	staticOpts := append(memberOpts(addr, group, topic, "cooperative-sticky"), kgo.InstanceID("gateway-1"))
	s := startMember(t, tr, "s", staticOpts)
	tr.wait(t, "two members with two partitions each", func() bool {
		return len(tr.assigned["s"]) == 2 && len(tr.assigned["d"]) == 2
	})
	tr.mu.Lock()
	before := slices.Clone(tr.assigned["s"])
	tr.mu.Unlock()
	_, gen := d.cl.GroupMetadata()
	changes := dynChanges.Load()

	// Restart: a static member's Close does not leave the group.
	s.stop()
	<-s.done
	s.cl.Close()
	s.stop = nil
	tr.assign("s", nil)
	s2 := startMember(t, tr, "s", staticOpts)
	tr.wait(t, "the restarted static member holds partitions again", func() bool { return len(tr.assigned["s"]) > 0 })
	tr.mu.Lock()
	after := slices.Clone(tr.assigned["s"])
	tr.mu.Unlock()
	if !slices.Equal(before, after) {
		t.Fatalf("partitions before the restart %v, after %v", before, after)
	}
	if _, g2 := s2.cl.GroupMetadata(); g2 != gen {
		t.Fatalf("the restarted member joined generation %d, want %d (no rebalance)", g2, gen)
	}
	time.Sleep(1500 * time.Millisecond) // three heartbeat intervals: a rebalance would show by now
	if _, g := d.cl.GroupMetadata(); g != gen || dynChanges.Load() != changes {
		t.Fatalf("the other member saw a rebalance: generation %d (was %d), %d assignment changes (was %d)",
			g, gen, dynChanges.Load(), changes)
	}
}

// TestKcatBalancedConsumer consumes a topic with librdkafka's balanced consumer (kcat -G) and
// checks that a second run resumes from the offsets the first committed.
func TestKcatBalancedConsumer(t *testing.T) {
	kcat := requireTool(t, "kcat")
	t.Parallel()
	a := startAgent(t, t.TempDir(), groupAgentConfig)
	addr := a.KafkaAddr()
	ctx, cancel := context.WithTimeout(context.Background(), groupFailAfter)
	defer cancel()
	if _, err := adminOf(t, addr).CreateTopic(ctx, 3, 1, nil, "kg"); err != nil {
		t.Fatal(err)
	}
	consume := func() []string {
		t.Helper()
		cmd := exec.CommandContext(ctx, kcat, "-b", addr, "-G", "kcat-group", "-e", "-q",
			"-X", "auto.offset.reset=earliest", "-f", "%s\n", "kg")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat -G: %v\nstderr: %s", err, errb.String())
		}
		lines := strings.Fields(out.String())
		slices.Sort(lines)
		return lines
	}
	produceValues(t, addr, "kg", 0, 300)
	first := consume()
	if len(first) != 300 || len(slices.Compact(slices.Clone(first))) != 300 {
		t.Fatalf("first kcat -G run consumed %d records (%d distinct), want 300", len(first), len(slices.Compact(slices.Clone(first))))
	}
	produceValues(t, addr, "kg", 300, 350)
	second := consume()
	var want []string
	for i := 300; i < 350; i++ {
		want = append(want, fmt.Sprintf("v%d", i))
	}
	slices.Sort(want)
	if !slices.Equal(second, want) {
		t.Fatalf("second kcat -G run consumed %d records %v..., want the 50 new ones", len(second), second[:min(5, len(second))])
	}
	offs, err := adminOf(t, addr).FetchOffsets(ctx, "kcat-group")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, ps := range offs {
		for _, o := range ps {
			total += o.At
		}
	}
	if total != 350 {
		t.Fatalf("kcat committed offsets summing to %d, want 350", total)
	}
}
