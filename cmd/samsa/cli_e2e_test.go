package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent"
)

// startAgent runs a real agent on loopback ports chosen by the OS and returns its Kafka address.
func startAgent(t *testing.T) string {
	t.Helper()
	return startTestAgent(t).KafkaAddr()
}

// startTestAgent runs a real agent on loopback ports chosen by the OS until the test ends.
func startTestAgent(t *testing.T) *agent.Agent {
	t.Helper()
	cfg := agent.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := agent.New(cfg, log)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("agent Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("agent Shutdown: %v", err)
		}
	})
	return a
}

// mustCLI runs a command that must succeed and returns its stdout.
func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, stdout, stderr := cli(t, stdin, args...)
	if code != exitOK {
		t.Fatalf("samsa %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// rows splits tabular output into whitespace-separated fields per line.
func rows(out string) [][]string {
	var rs [][]string
	for line := range strings.Lines(out) {
		rs = append(rs, strings.Fields(line))
	}
	return rs
}

func hasRow(out string, fields ...string) bool {
	return slices.ContainsFunc(rows(out), func(r []string) bool { return slices.Equal(r, fields) })
}

// consumed is one line of `consume --format json`, kept with its raw text.
type consumed struct {
	jsonRecord
	line string
}

func consumeJSON(t *testing.T, args ...string) []consumed {
	t.Helper()
	out := mustCLI(t, "", append([]string{"consume", "--format", "json"}, args...)...)
	var recs []consumed
	for line := range strings.Lines(out) {
		var c consumed
		if err := json.Unmarshal([]byte(line), &c.jsonRecord); err != nil {
			t.Fatalf("consume output line %q: %v", line, err)
		}
		c.line = strings.TrimSuffix(line, "\n")
		recs = append(recs, c)
	}
	return recs
}

// checkRecords checks consumed records against what was produced, exactly: every line's text,
// each key once, per partition contiguous offsets from first[p] in production order.
func checkRecords(t *testing.T, recs []consumed, topic string, keys []string, first map[int32]int64,
	from, to time.Time) {
	t.Helper()
	if len(recs) != len(keys) {
		t.Fatalf("consumed %d records, want %d", len(recs), len(keys))
	}
	index := map[string]int{}
	for i, k := range keys {
		index[k] = i
	}
	byPartition := map[int32][]consumed{}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Key == nil || seen[*r.Key] {
			t.Fatalf("missing or repeated key in %s", r.line)
		}
		seen[*r.Key] = true
		if _, ok := index[*r.Key]; !ok {
			t.Fatalf("unexpected record %s", r.line)
		}
		ts, err := time.Parse(time.RFC3339Nano, r.Timestamp)
		if err != nil || ts.Before(from.Truncate(time.Millisecond)) || ts.After(to) {
			t.Errorf("timestamp %s not within [%s, %s] (%v)", r.Timestamp, from, to, err)
		}
		want := fmt.Sprintf(`{"topic":%q,"partition":%d,"offset":%d,"timestamp":%q,"key":%q,"value":%q,"headers":{"src":"e2e"}}`,
			topic, r.Partition, r.Offset, r.Timestamp, *r.Key, "value-of-"+*r.Key)
		if r.line != want {
			t.Errorf("line\n got %s\nwant %s", r.line, want)
		}
		byPartition[r.Partition] = append(byPartition[r.Partition], r)
	}
	for p, rs := range byPartition {
		for i, r := range rs {
			if r.Offset != first[p]+int64(i) {
				t.Errorf("partition %d: record %d has offset %d, want %d", p, i, r.Offset, first[p]+int64(i))
			}
			if i > 0 && index[*r.Key] < index[*rs[i-1].Key] {
				t.Errorf("partition %d: %s before %s, out of production order", p, *rs[i-1].Key, *r.Key)
			}
		}
	}
}

func produceLines(t *testing.T, brokers, topic string, keys []string) (from, to time.Time) {
	t.Helper()
	var in strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&in, "%s:value-of-%s\n", k, k)
	}
	from = time.Now()
	code, _, stderr := cli(t, in.String(), "produce", "--brokers", brokers, "--topic", topic,
		"--key-separator", ":", "--header", "src=e2e")
	to = time.Now()
	if want := fmt.Sprintf("produced %d records to %s\n", len(keys), topic); code != exitOK || stderr != want {
		t.Fatalf("produce: exit %d, stderr %q, want %q", code, stderr, want)
	}
	return from, to
}

func TestCLIEndToEnd(t *testing.T) {
	b := startAgent(t)
	const topic = "events"

	out := mustCLI(t, "", "topic", "create", topic, "--partitions", "3", "--config", "retention.ms=3600000", "--brokers", b)
	if !strings.Contains(out, "created topic events") {
		t.Errorf("create output %q", out)
	}
	mustCLI(t, "", "topic", "create", topic, "--if-not-exists", "--brokers", b)
	code, _, stderr := cli(t, "", "topic", "create", topic, "--brokers", b)
	if code != exitError || !strings.Contains(stderr, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("create twice: exit %d stderr %q", code, stderr)
	}
	mustCLI(t, "", "topic", "create", "another", "--partitions", "1", "--brokers", b)

	out = mustCLI(t, "", "topic", "list", "--brokers", b)
	if rs := rows(out); len(rs) != 3 || !slices.Equal(rs[0], []string{"NAME", "PARTITIONS"}) ||
		!slices.Equal(rs[1], []string{"another", "1"}) || !slices.Equal(rs[2], []string{"events", "3"}) {
		t.Errorf("topic list:\n%s", out)
	}

	out = mustCLI(t, "", "topic", "describe", topic, "--brokers", b)
	for _, want := range [][]string{
		{"Topic:", topic}, {"Partitions:", "3"}, {"PARTITION", "LEADER", "START", "END", "RECORDS", "SIZE"},
		{"0", "0", "0", "0", "0", "0", "B"}, {"1", "0", "0", "0", "0", "0", "B"}, {"2", "0", "0", "0", "0", "0", "B"},
		{"CONFIG", "VALUE", "SOURCE"}, {"*", "retention.ms", "3600000", "topic"},
	} {
		if !hasRow(out, want...) {
			t.Errorf("describe lacks row %q:\n%s", want, out)
		}
	}

	mustCLI(t, "", "topic", "alter", topic, "--set", "segment.bytes=1048576", "--delete", "retention.ms", "--brokers", b)
	mustCLI(t, "", "topic", "alter", topic, "--partitions", "4", "--brokers", b)
	out = mustCLI(t, "", "topic", "describe", topic, "--brokers", b)
	if !hasRow(out, "*", "segment.bytes", "1048576", "topic") || !hasRow(out, "Partitions:", "4") ||
		!hasRow(out, "3", "0", "0", "0", "0", "0", "B") {
		t.Errorf("describe after alter:\n%s", out)
	}
	for _, r := range rows(out) {
		if len(r) > 1 && r[0] == "*" && r[1] == "retention.ms" {
			t.Errorf("retention.ms still set on the topic after --delete:\n%s", out)
		}
	}

	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
	}
	from, to := produceLines(t, b, topic, keys)
	zero := map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0}
	checkRecords(t, consumeJSON(t, "--topic", topic, "--from", "beginning", "--brokers", b), topic, keys, zero, from, to)

	// End offsets now sum to 100.
	out = mustCLI(t, "", "topic", "describe", topic, "--brokers", b)
	total := int64(0)
	ends := map[int32]int64{}
	for _, r := range rows(out) {
		if len(r) == 7 && r[1] == "0" && r[2] == "0" {
			p, err1 := strconv.Atoi(r[0])
			end, err2 := strconv.ParseInt(r[3], 10, 64)
			if err1 == nil && err2 == nil {
				ends[int32(p)] = end
				total += end
			}
		}
	}
	if total != 100 || len(ends) != 4 {
		t.Errorf("end offsets %v sum to %d, want 100 over 4 partitions:\n%s", ends, total, out)
	}

	// --from TIME: only records produced after the cut.
	time.Sleep(20 * time.Millisecond)
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	late := []string{"late-0", "late-1", "late-2", "late-3", "late-4", "late-5", "late-6", "late-7", "late-8", "late-9"}
	from2, to2 := produceLines(t, b, topic, late)
	checkRecords(t, consumeJSON(t, "--topic", topic, "--from", cut.Format(time.RFC3339Nano), "--brokers", b),
		topic, late, ends, from2, to2)
	if recs := consumeJSON(t, "--topic", topic, "--from", "1h", "--brokers", b); len(recs) != 110 {
		t.Errorf("--from 1h: %d records, want 110", len(recs))
	}
	if recs := consumeJSON(t, "--topic", topic, "--from", "end", "--brokers", b); len(recs) != 0 {
		t.Errorf("--from end: %d records, want 0", len(recs))
	}
	if recs := consumeJSON(t, "--topic", topic, "--count", "7", "--brokers", b); len(recs) != 7 {
		t.Errorf("--count 7: %d records", len(recs))
	}
	out = mustCLI(t, "", "consume", "--topic", topic, "--partition", "0", "--from", "-1", "--format", "kv",
		"--key-separator", "=", "--brokers", b)
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "=value-of-") {
		t.Errorf("last record of partition 0 as kv: %q", out)
	}

	mustCLI(t, "", "topic", "delete", topic, "--brokers", b)
	out = mustCLI(t, "", "topic", "list", "--brokers", b)
	if strings.Contains(out, topic) {
		t.Errorf("topic still listed after delete:\n%s", out)
	}
	code, _, stderr = cli(t, "", "topic", "describe", topic, "--brokers", b)
	if code != exitError || !strings.Contains(stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("describe deleted topic: exit %d stderr %q", code, stderr)
	}
	mustCLI(t, "", "topic", "delete", topic, "--if-exists", "--brokers", b)
}

// TestAgentCommandEndToEnd runs "samsa agent --config FILE" in-process, waits until it
// answers, then cancels it as SIGTERM would and expects exit 0.
func TestAgentCommandEndToEnd(t *testing.T) {
	defaultLogger := slog.Default() // runAgent installs its logger as the default
	t.Cleanup(func() { slog.SetDefault(defaultLogger) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "samsa.yaml")
	text := fmt.Sprintf("data_dir: %s\nkafka_addr: 127.0.0.1:1\nhttp_addr: 127.0.0.1:0\nfsync: always\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(cfgFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs strings.Builder
	done := make(chan int, 1)
	go func() {
		// The flag overrides kafka_addr from the file.
		done <- run(ctx, []string{"agent", "--config", cfgFile, "--kafka-addr", addr}, strings.NewReader(""), &logs, &logs)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case code := <-done:
			t.Fatalf("agent exited early with %d:\n%s", code, logs.String())
		default:
		}
		if code, _, _ := cli(t, "", "topic", "list", "--brokers", addr, "--timeout", "1s"); code == exitOK {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("agent did not answer on %s (exit %d)", addr, <-done)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("agent exit %d after cancel:\n%s", code, logs.String())
	}
}
