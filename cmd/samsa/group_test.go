package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestGroupCommands(t *testing.T) {
	brokers := startAgent(t)
	b := []string{"--brokers", brokers}
	mustCLI(t, "", append([]string{"topic", "create", "gt", "--partitions", "2"}, b...)...)
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	from, _ := produceLines(t, brokers, "gt", keys)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	produceLines(t, brokers, "gt", keys[:4])

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, "gt")
	if err != nil {
		t.Fatal(err)
	}
	end0, _ := ends.Lookup("gt", 0)
	if err := adm.CommitAllOffsets(ctx, "offline", kadm.Offsets{"gt": {0: {Topic: "gt", Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}

	out := mustCLI(t, "", append([]string{"group", "list"}, b...)...)
	if !hasRow(out, "offline", "Empty", "-") {
		t.Fatalf("group list:\n%s", out)
	}
	out = mustCLI(t, "", append([]string{"group", "describe", "offline"}, b...)...)
	if !strings.Contains(out, "State: Empty") || !hasRow(out, "gt", "0", "3", fmt.Sprint(end0.Offset), fmt.Sprint(end0.Offset-3), "-") {
		t.Fatalf("group describe:\n%s", out)
	}

	// Dry run: shows the plan, commits nothing.
	out = mustCLI(t, "", append([]string{"group", "reset-offsets", "offline", "--topic", "gt", "--to", "latest"}, b...)...)
	if !hasRow(out, "offline", "gt", "0", "3", fmt.Sprint(end0.Offset)) || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run:\n%s", out)
	}
	checkCommitted(t, adm, "offline", 0, 3)
	mustCLI(t, "", append([]string{"group", "reset-offsets", "offline", "--topic", "gt:0", "--to", "offset", "5", "--execute"}, b...)...)
	checkCommitted(t, adm, "offline", 0, 5)
	mustCLI(t, "", append([]string{"group", "reset-offsets", "offline", "--topic", "gt:0", "--to", "offset", "999999", "--execute"}, b...)...)
	checkCommitted(t, adm, "offline", 0, end0.Offset) // clamped to the end
	mustCLI(t, "", append([]string{"group", "reset-offsets", "offline", "--topic", "gt", "--to", "earliest", "--execute"}, b...)...)
	checkCommitted(t, adm, "offline", 1, 0)
	mustCLI(t, "", append([]string{"group", "reset-offsets", "offline", "--topic", "gt", "--to",
		"datetime=" + from.Add(-time.Hour).UTC().Format(time.RFC3339), "--execute"}, b...)...)
	checkCommitted(t, adm, "offline", 0, 0)
	mustCLI(t, "", append([]string{"group", "reset-offsets", "offline", "--topic", "gt", "--to",
		"datetime", fmt.Sprint(mid.UnixMilli()), "--execute"}, b...)...)
	if o := committed(t, adm, "offline", 0) + committed(t, adm, "offline", 1); o != 20 {
		t.Fatalf("reset to a datetime between the two batches: offsets sum to %d, want 20", o)
	}

	checkLiveGroupRefused(t, ctx, adm, brokers)

	out = mustCLI(t, "", append([]string{"group", "delete", "offline"}, b...)...)
	if out != "deleted group offline\n" {
		t.Fatalf("delete: %q", out)
	}
	code, _, stderr := cli(t, "", append([]string{"group", "describe", "offline"}, b...)...)
	if code != exitError || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("describe of a deleted group: exit %d, %s", code, stderr)
	}
}

// checkLiveGroupRefused checks that a group with a live member can be neither reset nor
// deleted, and that describe shows its member.
func checkLiveGroupRefused(t *testing.T, ctx context.Context, adm *kadm.Client, brokers string) {
	t.Helper()
	b := []string{"--brokers", brokers}
	live, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("gt"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for {
		d, err := adm.DescribeGroups(ctx, "live")
		if err == nil && d["live"].State == "Stable" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the live group never became Stable")
		}
		live.PollFetches(ctx) // joins; returns once there is something or ctx ends
		time.Sleep(50 * time.Millisecond)
	}
	code, _, stderr := cli(t, "", append([]string{"group", "reset-offsets", "live", "--topic", "gt", "--to", "earliest"}, b...)...)
	if code != exitError || !strings.Contains(stderr, "Stable with 1 members") {
		t.Fatalf("reset of a live group: exit %d, %s", code, stderr)
	}
	code, _, stderr = cli(t, "", append([]string{"group", "delete", "live"}, b...)...)
	if code != exitError || !strings.Contains(stderr, "active members") {
		t.Fatalf("delete of a live group: exit %d, %s", code, stderr)
	}
	out := mustCLI(t, "", append([]string{"group", "describe", "live"}, b...)...)
	if !strings.Contains(out, "State: Stable") || !strings.Contains(out, "gt[0,1]") {
		t.Fatalf("describe of the live group:\n%s", out)
	}
}

func TestGroupUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"group"},
		{"group", "frobnicate"},
		{"group", "describe"},
		{"group", "delete", "a", "b"},
		{"group", "reset-offsets", "g", "--topic", "t"},
		{"group", "reset-offsets", "g", "--to", "earliest"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to", "offset"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to", "offset", "-3"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to", "datetime", "yesterday"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to", "sideways"},
		{"group", "reset-offsets", "g", "--topic", "t:x", "--to", "latest"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to", "latest", "extra"},
	} {
		if code, _, stderr := cli(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, stderr)
		}
	}
}

func committed(t *testing.T, adm *kadm.Client, group string, p int32) int64 {
	t.Helper()
	offs, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup("gt", p)
	if !ok {
		return -1
	}
	return o.At
}

func checkCommitted(t *testing.T, adm *kadm.Client, group string, p int32, want int64) {
	t.Helper()
	if got := committed(t, adm, group, p); got != want {
		t.Fatalf("group %s partition %d: committed %d, want %d", group, p, got, want)
	}
}
