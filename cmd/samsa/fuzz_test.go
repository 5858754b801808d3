package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/tiering"
)

// Fuzz targets of the CLI's parsers: --from positions and durations ago, the flags of produce
// and consume (any argument list), group reset-offsets' --to and --topic T:P,P, topic
// delete-records' --before, and the agent's /v1/tier/status answer. Seed corpora are in
// testdata/fuzz/<target>; TestWriteCLIFuzzCorpus rewrites them.

// fuzzNow is the clock of the parsers that count back from now.
var fuzzNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// FuzzParseFrom: --from never panics and parses into a start a partition can be read from: a
// non-negative offset, a positive tail count, or a time not after now for a duration ago.
func FuzzParseFrom(f *testing.F) {
	for _, s := range fromSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := parseFrom(s, fuzzNow)
		if err != nil {
			return
		}
		switch spec.kind {
		case fromOffset:
			if spec.n < 0 {
				t.Fatalf("%q: offset %d", s, spec.n)
			}
		case fromTail:
			if spec.n <= 0 {
				t.Fatalf("%q: the last %d records", s, spec.n)
			}
		case fromTime:
			if spec.t.IsZero() {
				t.Fatalf("%q: zero time", s)
			}
		}
		if d, err := parseAgo(s); err == nil && (d < 0 || spec.kind == fromTime && spec.t.After(fuzzNow)) {
			t.Fatalf("%q: %v ago is %v", s, d, spec.t)
		}
	})
}

var fromSeeds = []string{"beginning", "end", "42", "-10", "-9223372036854775808", "2024-05-01T12:00:00Z", "2024-05-01",
	"90s", "1w2d", "1.5h", "7d", "..h", "1e3s", "99999999999999999999w", ""}

// FuzzCommandFlags parses an argument list (NUL-separated) as produce and consume do: nothing
// may panic, and every refusal is a usage error or -h.
func FuzzCommandFlags(f *testing.F) {
	for _, s := range flagSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		if joined == "" {
			args = nil
		}
		check := func(cmd string, err error) {
			var ue *usageError
			if err != nil && !errors.As(err, &ue) && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("%s %q: %v is not a usage error", cmd, args, err)
			}
		}
		if o, err := parseProduceFlags(args, io.Discard); err == nil && (o.topic == "" || o.partition < -1) {
			t.Fatalf("produce %q parsed as %+v", args, o)
		} else {
			check("produce", err)
		}
		if o, err := parseConsumeFlags(args, io.Discard, fuzzNow); err == nil && (o.topic == "" || o.count < 0) {
			t.Fatalf("consume %q parsed as %+v", args, o)
		} else {
			check("consume", err)
		}
	})
}

var flagSeeds = []string{
	"--topic\x00t\x00--partition\x003\x00--acks\x001\x00--compression\x00zstd",
	"--topic=t\x00--from\x00-5\x00--count\x0010\x00--format\x00json\x00--follow",
	"--\x00--topic\x00t", "--topic\x00--\x00x", "-h", "--header\x00a=b\x00--header\x00a=c\x00--topic\x00t",
	"--key-separator\x00\x00--topic\x00t", "--from\x00", "",
}

// FuzzParseResetSpec: group reset-offsets' arguments parse into a spec with a group, a topic,
// partitions and offsets that are not negative; a datetime in Unix ms is kept exactly.
func FuzzParseResetSpec(f *testing.F) {
	for _, s := range resetSeeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pos, topic, to string) {
		var args []string
		if pos != "" {
			args = strings.Split(pos, "\x00")
		}
		fs := newFlagSet("group reset-offsets", "", "", io.Discard)
		spec, err := parseResetSpec(fs, args, topic, to)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("%q %q %q: %v is not a usage error", args, topic, to, err)
			}
			return
		}
		if spec.topic == "" || strings.Contains(spec.topic, ":") || spec.offset < 0 {
			t.Fatalf("%q %q %q parsed as %+v", args, topic, to, spec)
		}
		for _, p := range spec.partitions {
			if p < 0 {
				t.Fatalf("%q parsed partition %d", topic, p)
			}
		}
		switch spec.to {
		case "earliest", "latest", "offset", "datetime":
		default:
			t.Fatalf("--to %q parsed as %q", to, spec.to)
		}
	})
}

var resetSeeds = [][3]string{
	{"g", "t", "earliest"}, {"g\x00latest", "t:0,1,2", "offset=5"}, {"g\x0042", "t:", "offset"},
	{"g\x002026-01-02T15:04:05", "t:-1", "datetime"}, {"g", "t", "datetime=1700000000000"}, {"", "", ""},
	{"g\x00x\x00y", ":0", "latest=3"},
}

// FuzzParseDeleteRecords: topic delete-records' --partition and --before parse into a spec
// that deletes below an offset of one partition, or below every high watermark.
func FuzzParseDeleteRecords(f *testing.F) {
	for _, s := range []struct {
		p      int
		before string
	}{{0, "10"}, {-1, "hwm"}, {-1, "-1"}, {-1, "5"}, {-2, "1"}, {1 << 31, "1"}, {3, ""}, {3, "-2"}, {3, "+7"}} {
		f.Add(s.p, s.before)
	}
	f.Fuzz(func(t *testing.T, partition int, before string) {
		spec, err := parseDeleteRecords("topic delete-records", "t", partition, before)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("%d %q: %v is not a usage error", partition, before, err)
			}
			return
		}
		if spec.partition < -1 || spec.before < beforeHighWatermark || spec.partition == -1 && spec.before != beforeHighWatermark {
			t.Fatalf("--partition %d --before %q parsed as %+v", partition, before, spec)
		}
	})
}

// FuzzTierStatus decodes an agent's /v1/tier/status answer and prints it as tier status does:
// nothing may panic, and each partition is one line of the table.
func FuzzTierStatus(f *testing.F) {
	for _, s := range tierSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var st agent.TierStatusResponse
		if err := json.Unmarshal(body, &st); err != nil {
			return
		}
		var out strings.Builder
		printTierTable(&out, &st)
		if lines := strings.Count(out.String(), "\n"); lines != len(st.Partitions)+1 {
			t.Fatalf("%d partitions printed as %d lines:\n%s", len(st.Partitions), lines, out.String())
		}
	})
}

var tierSeeds = []string{
	`{"partitions":[{"topic":"t","partition":0,"local_start_offset":5,"local_end_offset":9,"local_bytes":1048576,` +
		`"remote_start_offset":0,"remote_end_offset":5,"remote_segments":1,"remote_bytes":9223372036854775807,` +
		`"backlog_segments":2,"backlog_bytes":-5,"manifest_loaded":true,"last_error":"put: \n timeout\t x"}]}`,
	`{"partitions":[{"topic":"a\nb","remote_start_offset":-1,"manifest_loaded":false,"local_bytes":-9223372036854775808}]}`,
	`{"partitions":[]}`, `{}`, `null`,
}

// TestWriteCLIFuzzCorpus rewrites the CLI's seed corpora when SAMSA_WRITE_FUZZ_CORPUS=1.
func TestWriteCLIFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SAMSA_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	write := func(target string, i int, lines ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := "go test fuzz v1\n" + strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	str := func(s string) string { return fmt.Sprintf("string(%q)", s) }
	for i, s := range fromSeeds {
		write("FuzzParseFrom", i, str(s))
	}
	for i, s := range flagSeeds {
		write("FuzzCommandFlags", i, str(s))
	}
	for i, s := range resetSeeds {
		write("FuzzParseResetSpec", i, str(s[0]), str(s[1]), str(s[2]))
	}
	for i, s := range []struct {
		p      int
		before string
	}{{0, "10"}, {-1, "hwm"}, {-1, "5"}, {1 << 31, "1"}, {3, "+7"}} {
		write("FuzzParseDeleteRecords", i, fmt.Sprintf("int(%d)", s.p), str(s.before))
	}
	for i, s := range tierSeeds {
		write("FuzzTierStatus", i, fmt.Sprintf("[]byte(%q)", s))
	}
}

// TestParseFromMostNegative: --from -9223372036854775808 asked for the last -2^63 records (its
// negation overflows); it is the last MaxInt64, i.e. all of them (found by FuzzParseFrom).
func TestParseFromMostNegative(t *testing.T) {
	spec, err := parseFrom("-9223372036854775808", fuzzNow)
	if err != nil || spec.kind != fromTail || spec.n != 1<<63-1 {
		t.Fatalf("parsed as %+v, %v", spec, err)
	}
}

// TestTierTableQuotesOddTopics: a topic in the HTTP answer with a newline or tab stays in its
// cell, one line per partition (found by FuzzTierStatus).
func TestTierTableQuotesOddTopics(t *testing.T) {
	st := agent.TierStatusResponse{Partitions: []tiering.PartitionStatus{{Topic: "a\nb\tc"}, {Topic: "plain-topic.1"}}}
	var out strings.Builder
	printTierTable(&out, &st)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], `"a\nb\tc" `) || !strings.HasPrefix(lines[2], "plain-topic.1 ") {
		t.Fatalf("table:\n%s", out.String())
	}
}
