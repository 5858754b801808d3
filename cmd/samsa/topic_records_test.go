package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 12_900_000: "12.3 MiB",
		1<<20 - 1: "1.0 MiB", 5 << 30: "5.0 GiB", 1<<63 - 1: "8.0 EiB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestDeleteRecordsArgumentErrors: mistakes are exit 2 with one line naming the flag and value,
// before any connection is attempted.
func TestDeleteRecordsArgumentErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "samsa topic delete-records: missing topic NAME"},
		{[]string{"t"}, "samsa topic delete-records: missing --before OFFSET (an offset, or -1 or hwm for the high watermark)"},
		{[]string{"t", "--partition", "0", "--before", "abc"}, `--before: invalid value "abc" (allowed: an offset of 0 or more, -1 or hwm`},
		{[]string{"t", "--partition", "0", "--before", "-5"}, `--before: invalid value "-5"`},
		{[]string{"t", "--partition", "0", "--before", "1.5"}, `--before: invalid value "1.5"`},
		{[]string{"t", "--before", "10"}, "--before 10 needs --partition"},
		{[]string{"t", "--partition", "-2", "--before", "hwm"}, "--partition must be -1 (all partitions) or a partition number, got -2"},
		{[]string{"t", "--partition", "x", "--before", "1"}, `invalid value "x" for flag -partition`},
		{[]string{"t", "u", "--before", "hwm"}, "want one topic NAME, got 2 arguments: t u"},
		{[]string{"t", "--before", "hwm", "--timeout", "0s"}, "--timeout must be positive, got 0s"},
	}
	for _, tt := range tests {
		args := append([]string{"topic", "delete-records"}, tt.args...)
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := cli(t, "", args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) || stdout != "" {
				t.Errorf("exit %d stdout %q stderr %q; want %d and stderr containing %q", code, stdout, stderr, exitUsage, tt.want)
			}
		})
	}
	code, stdout, _ := cli(t, "", "help", "topic", "delete-records")
	if code != exitOK || !strings.Contains(stdout, "--before OFFSET") || !strings.Contains(stdout, "--partition P") {
		t.Errorf("topic delete-records help: exit %d\n%s", code, stdout)
	}
	_, stdout, _ = cli(t, "", "help")
	if !strings.Contains(stdout, "samsa topic delete-records NAME") {
		t.Errorf("usage lacks delete-records:\n%s", stdout)
	}
	_, stdout, _ = cli(t, "", "topic", "-h")
	if !strings.Contains(stdout, "samsa topic delete-records NAME [--partition P] --before OFFSET|-1|hwm") {
		t.Errorf("topic usage lacks delete-records:\n%s", stdout)
	}
}

// partitionRow returns the describe row of a partition: partition, leader, start, end,
// records, size (the size's number and unit joined again).
func partitionRow(t *testing.T, out string, p int) []string {
	t.Helper()
	for _, r := range rows(out) {
		if len(r) == 7 && r[0] == fmt.Sprint(p) && r[1] == "0" {
			return append(r[:5:5], r[5]+" "+r[6])
		}
	}
	t.Fatalf("no row for partition %d:\n%s", p, out)
	return nil
}

// TestTopicDeleteRecordsEndToEnd runs describe and delete-records against a real agent.
func TestTopicDeleteRecordsEndToEnd(t *testing.T) {
	a := startTestAgent(t)
	b := a.KafkaAddr()
	mustCLI(t, "", "topic", "create", "dr", "--partitions", "1", "--config", "segment.bytes=1024", "--brokers", b)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%03d", i)
	}
	produceLines(t, b, "dr", keys)

	out := mustCLI(t, "", "topic", "describe", "dr", "--brokers", b)
	size := humanBytes(a.Store().Topic("dr").Partition(0).Size())
	if got, want := partitionRow(t, out, 0), []string{"0", "0", "0", "100", "100", size}; !slices.Equal(got, want) {
		t.Errorf("describe before deleting: %q, want %q\n%s", got, want, out)
	}
	if !hasRow(out, "PARTITION", "LEADER", "START", "END", "RECORDS", "SIZE") {
		t.Errorf("describe header:\n%s", out)
	}

	out = mustCLI(t, "", "topic", "delete-records", "dr", "--partition", "0", "--before", "40", "--brokers", b)
	if rs := rows(out); len(rs) != 2 || !slices.Equal(rs[0], []string{"PARTITION", "LOW-WATERMARK"}) ||
		!slices.Equal(rs[1], []string{"0", "40"}) {
		t.Errorf("delete-records output:\n%s", out)
	}
	out = mustCLI(t, "", "topic", "describe", "dr", "--brokers", b)
	if got := partitionRow(t, out, 0); !slices.Equal(got[:5], []string{"0", "0", "40", "100", "60"}) {
		t.Errorf("describe after deleting before 40: %q\n%s", got, out)
	}
	recs := consumeJSON(t, "--topic", "dr", "--from", "beginning", "--count", "60", "--brokers", b)
	if len(recs) != 60 || recs[0].Offset != 40 || *recs[0].Key != "key-040" || recs[59].Offset != 99 {
		t.Errorf("consumed %d records after deleting before 40, first %+v", len(recs), recs[0])
	}

	// Offsets past the high watermark, unknown partitions and topics, compact-only topics.
	mustCLI(t, "", "topic", "create", "cmp", "--partitions", "1", "--config", "cleanup.policy=compact", "--brokers", b)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"dr", "--partition", "0", "--before", "1000"},
			`samsa: delete records of "dr" before 1000: partition 0: OFFSET_OUT_OF_RANGE: ` +
				"The requested offset is not within the range of offsets maintained by the server. " +
				"(--before must be at most the high watermark 100)\n"},
		{[]string{"dr", "--partition", "5", "--before", "1"},
			`samsa: delete records of "dr": --partition 5: the topic has partitions 0..0: UNKNOWN_TOPIC_OR_PARTITION`},
		{[]string{"nope", "--before", "hwm"}, `samsa: delete records of "nope": UNKNOWN_TOPIC_OR_PARTITION`},
		{[]string{"cmp", "--before", "-1"},
			`samsa: delete records of "cmp" up to the high watermark: partition 0: POLICY_VIOLATION`},
	} {
		args := append([]string{"topic", "delete-records", "--brokers", b}, tt.args...)
		code, stdout, stderr := cli(t, "", args...)
		if code != exitError || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
			t.Errorf("%s: exit %d stdout %q stderr %q; want exit 1 and one line starting %q",
				strings.Join(tt.args, " "), code, stdout, stderr, tt.want)
		}
	}

	// Without --partition: every partition up to its high watermark.
	mustCLI(t, "", "topic", "create", "multi", "--partitions", "3", "--brokers", b)
	produceLines(t, b, "multi", keys[:30])
	ends := map[string]string{}
	out = mustCLI(t, "", "topic", "describe", "multi", "--brokers", b)
	total := 0
	for p := range 3 {
		r := partitionRow(t, out, p)
		ends[r[0]] = r[3]
		var n int
		fmt.Sscan(r[3], &n)
		total += n
	}
	if total != 30 {
		t.Fatalf("end offsets %v do not sum to 30:\n%s", ends, out)
	}
	out = mustCLI(t, "", "topic", "delete-records", "multi", "--before", "hwm", "--brokers", b)
	want := [][]string{{"PARTITION", "LOW-WATERMARK"}, {"0", ends["0"]}, {"1", ends["1"]}, {"2", ends["2"]}}
	if rs := rows(out); !slices.EqualFunc(rs, want, slices.Equal) {
		t.Errorf("delete-records --before hwm: %q, want %q", rs, want)
	}
	out = mustCLI(t, "", "topic", "describe", "multi", "--brokers", b)
	for p := range 3 {
		r := partitionRow(t, out, p)
		if r[2] != r[3] || r[4] != "0" {
			t.Errorf("partition %d after deleting everything: %q\n%s", p, r, out)
		}
	}
}
