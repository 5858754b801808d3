package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cli runs the program in-process and returns its exit code and output.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageAndVersion(t *testing.T) {
	code, _, stderr := cli(t, "")
	if code != exitUsage || !strings.Contains(stderr, "samsa topic create NAME") {
		t.Errorf("no args: code %d stderr %q", code, stderr)
	}
	for _, help := range []string{"help", "-h", "--help"} {
		code, stdout, _ := cli(t, "", help)
		for _, sub := range []string{"agent", "topic create", "topic list", "topic describe", "topic alter",
			"topic delete", "produce", "consume", "version", "help"} {
			if !strings.Contains(stdout, "samsa "+sub) {
				t.Errorf("%s: usage lacks %q", help, sub)
			}
		}
		if code != exitOK {
			t.Errorf("%s: code %d", help, code)
		}
	}
	code, _, stderr = cli(t, "", "frobnicate")
	if code != exitUsage || !strings.HasPrefix(stderr, `samsa: unknown command "frobnicate"`) {
		t.Errorf("unknown command: code %d stderr %q", code, stderr)
	}
	code, stdout, _ := cli(t, "", "version")
	if code != exitOK || !strings.HasPrefix(stdout, "samsa ") {
		t.Errorf("version: code %d stdout %q", code, stdout)
	}
}

func TestCommandHelp(t *testing.T) {
	for _, args := range [][]string{
		{"agent", "-h"}, {"topic", "-h"}, {"topic", "create", "-h"}, {"topic", "list", "--help"},
		{"topic", "describe", "-h"}, {"topic", "alter", "-h"}, {"topic", "delete", "-h"},
		{"produce", "-h"}, {"consume", "-h"}, {"help", "consume"}, {"help", "topic", "alter"},
	} {
		code, stdout, stderr := cli(t, "", args...)
		if code != exitOK || !strings.Contains(stdout+stderr, "Usage:") {
			t.Errorf("%v: code %d, stdout %q stderr %q", args, code, stdout, stderr)
		}
	}
	_, stdout, _ := cli(t, "", "help", "topic", "create")
	if !strings.Contains(stdout, "--if-not-exists") || !strings.Contains(stdout, "--brokers host:port") {
		t.Errorf("topic create help: %q", stdout)
	}
}

// TestArgumentErrors checks command-line mistakes: exit 2 and a message saying what is wrong,
// before any connection is attempted.
func TestArgumentErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"topic"}, "Usage:"},
		{[]string{"topic", "frob"}, `samsa topic: unknown sub-command "frob"`},
		{[]string{"topic", "create"}, "samsa topic create: missing topic NAME"},
		{[]string{"topic", "create", "a", "b"}, "want one topic NAME, got 2 arguments: a b"},
		{[]string{"topic", "create", "x", "--config", "foo"}, `invalid value "foo" for flag -config: want key=value`},
		{[]string{"topic", "create", "x", "--config", "=1"}, `invalid value "=1" for flag -config: want key=value`},
		{[]string{"topic", "create", "x", "--config", "a=1", "--config", "a=2"}, `key "a" given twice`},
		{[]string{"topic", "create", "x", "--partitions", "0"}, "--partitions must be -1 or at least 1, got 0"},
		{[]string{"topic", "create", "x", "--replication-factor", "-2"}, "--replication-factor must be -1 or at least 1"},
		{[]string{"topic", "create", "x", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"topic", "list", "extra"}, `samsa topic list: unexpected argument "extra"`},
		{[]string{"topic", "describe"}, "samsa topic describe: missing topic NAME"},
		{[]string{"topic", "alter", "x"}, "nothing to change: give --set, --delete or --partitions"},
		{[]string{"topic", "alter", "x", "--set", "a=1", "--delete", "a"}, `config "a" is both set and deleted`},
		{[]string{"topic", "alter", "x", "--set", "a"}, `invalid value "a" for flag -set: want key=value`},
		{[]string{"topic", "alter", "x", "--partitions", "-3"}, "--partitions must be at least 1, got -3"},
		{[]string{"topic", "delete"}, "samsa topic delete: missing topic NAME"},
		{[]string{"produce"}, "samsa produce: missing --topic"},
		{[]string{"produce", "--topic", "t", "extra"}, `unexpected argument "extra" (records are read from stdin)`},
		{[]string{"produce", "--topic", "t", "--acks", "2"}, `invalid value "2" for flag -acks: allowed: all, 1, 0`},
		{[]string{"produce", "--topic", "t", "--compression", "brotli"}, `invalid value "brotli" for flag -compression: allowed: none, gzip, snappy, lz4, zstd`},
		{[]string{"produce", "--topic", "t", "--header", "novalue"}, `invalid value "novalue" for flag -header: want key=value`},
		{[]string{"produce", "--topic", "t", "--partition", "-2"}, "--partition must be -1 or a partition number, got -2"},
		{[]string{"produce", "--topic", "t", "--timeout", "500ms"}, "--timeout must be at least 1s, got 500ms"},
		{[]string{"topic", "list", "--timeout", "0s"}, "--timeout must be positive, got 0s"},
		{[]string{"consume"}, "samsa consume: missing --topic"},
		{[]string{"consume", "--topic", "t", "--from", "yesterday"}, `--from: invalid value "yesterday" (allowed: beginning, end, OFFSET`},
		{[]string{"consume", "--topic", "t", "--format", "xml"}, `invalid value "xml" for flag -format: allowed: value, kv, json`},
		{[]string{"consume", "--topic", "t", "--count", "-1"}, "--count must not be negative, got -1"},
		{[]string{"agent", "extra"}, `samsa agent: unexpected argument "extra"`},
		{[]string{"agent", "--nope"}, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := cli(t, "", tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestAgentConfigErrors: a bad config is exit 1 with one line on stderr naming the source.
func TestAgentConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("data_dir: "+dir+"\nfsync: sometimes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("fsink: always\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  string // NAME=value or ""
		args []string
		want string
	}{
		{"", []string{"agent", "--config", bad},
			`samsa: config file ` + bad + `: key "fsync" (line 2): invalid value "sometimes" (allowed: always, interval, never)`},
		{"", []string{"agent", "--config", unknown}, `samsa: config file ` + unknown + `: unknown key "fsink" (line 1); allowed keys: data_dir,`},
		{"", []string{"agent", "--config", filepath.Join(dir, "missing.yaml")}, "samsa: config file " + dir + "/missing.yaml: open "},
		{"SAMSA_FSYNC=sometimes", []string{"agent"},
			`samsa: environment variable SAMSA_FSYNC: invalid value "sometimes" (allowed: always, interval, never)`},
		{"SAMSA_FSINK=always", []string{"agent"}, "samsa: environment variable SAMSA_FSINK: unknown config key (known: SAMSA_DATA_DIR,"},
		{"", []string{"agent", "--kafka-addr", "nonsense"},
			`samsa: --kafka-addr: config key "kafka_addr": invalid value "nonsense" (allowed: host:port, port 0-65535)`},
		{"", []string{"agent", "--data-dir", ""}, `samsa: --data-dir: config key "data_dir": invalid value ""`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+" "+tt.env, func(t *testing.T) {
			if name, value, ok := strings.Cut(tt.env, "="); ok {
				t.Setenv(name, value)
			}
			code, _, stderr := cli(t, "", tt.args...)
			if code != exitError || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("code %d stderr %q, want 1 and one line starting %q", code, stderr, tt.want)
			}
		})
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	tests := []struct {
		args, pos []string
		sep       string
		count     int
	}{
		{[]string{"NAME", "--key-separator", ":", "--count", "3"}, []string{"NAME"}, ":", 3},
		{[]string{"--count=2", "A", "B"}, []string{"A", "B"}, "", 2},
		{[]string{"A", "--", "--count", "5"}, []string{"A", "--count", "5"}, "", 0},
		{[]string{"--key-separator", "--", "NAME", "--count", "1"}, []string{"NAME"}, "--", 1},
		{[]string{"-", "--count", "4"}, []string{"-"}, "", 4},
	}
	for _, tt := range tests {
		fs := newFlagSet("test", "test", "", &bytes.Buffer{})
		sep := fs.String("key-separator", "", "")
		count := fs.Int("count", 0, "")
		pos, err := parseArgs(fs, tt.args)
		if err != nil || !slices.Equal(pos, tt.pos) || *sep != tt.sep || *count != tt.count {
			t.Errorf("%q: pos %q sep %q count %d err %v; want %q %q %d", tt.args, pos, *sep, *count, err, tt.pos, tt.sep, tt.count)
		}
	}
}

func TestBrokersFromEnv(t *testing.T) {
	t.Setenv("SAMSA_BROKERS", " a:1, b:2 ,")
	fs := newFlagSet("test", "test", "", &bytes.Buffer{})
	var cf clientFlags
	cf.register(fs, "")
	if _, err := parseArgs(fs, nil); err != nil {
		t.Fatal(err)
	}
	if seeds, err := cf.seeds(); err != nil || !slices.Equal(seeds, []string{"a:1", "b:2"}) {
		t.Errorf("seeds %q, %v", seeds, err)
	}
	if _, err := parseArgs(fs, []string{"--brokers", "c:3"}); err != nil {
		t.Fatal(err)
	}
	if seeds, _ := cf.seeds(); !slices.Equal(seeds, []string{"c:3"}) {
		t.Errorf("--brokers did not override: %q", seeds)
	}
	t.Setenv("SAMSA_BROKERS", "")
	cf = clientFlags{}
	cf.register(newFlagSet("test", "test", "", &bytes.Buffer{}), "")
	if cf.brokers != defaultBrokers {
		t.Errorf("default brokers %q", cf.brokers)
	}
	cf.brokers = " , "
	if _, err := cf.seeds(); err == nil {
		t.Error("empty broker list accepted")
	}
}

func TestParseFrom(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want startSpec
	}{
		{"beginning", startSpec{kind: fromBeginning}},
		{"end", startSpec{kind: fromEnd}},
		{"0", startSpec{kind: fromOffset, n: 0}},
		{"1234", startSpec{kind: fromOffset, n: 1234}},
		{"-10", startSpec{kind: fromTail, n: 10}},
		{"2025-03-01T08:30:00Z", startSpec{kind: fromTime, t: time.Date(2025, 3, 1, 8, 30, 0, 0, time.UTC)}},
		{"2025-03-01T08:30:00.123456789+02:00", startSpec{kind: fromTime,
			t: time.Date(2025, 3, 1, 6, 30, 0, 123456789, time.UTC)}},
		{"2025-03-01", startSpec{kind: fromTime, t: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}},
		{"2h", startSpec{kind: fromTime, t: now.Add(-2 * time.Hour)}},
		{"7d", startSpec{kind: fromTime, t: now.Add(-7 * 24 * time.Hour)}},
		{"1w2d3h", startSpec{kind: fromTime, t: now.Add(-(9*24 + 3) * time.Hour)}},
		{"1.5h", startSpec{kind: fromTime, t: now.Add(-90 * time.Minute)}},
		{"250ms", startSpec{kind: fromTime, t: now.Add(-250 * time.Millisecond)}},
	}
	for _, tt := range tests {
		got, err := parseFrom(tt.in, now)
		if err != nil || got.kind != tt.want.kind || got.n != tt.want.n || !got.t.Equal(tt.want.t) {
			t.Errorf("parseFrom(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2h ago", "7x", "h", "-2h", "1..5h", "2025-13-01", "99999999999w"} {
		if got, err := parseFrom(bad, now); err == nil {
			t.Errorf("parseFrom(%q) = %+v, want error", bad, got)
		}
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // longer than the reader's buffer
	max := strings.Repeat("m", maxLineBytes)
	in := "a\n\nkey:value\r\n" + long + "\n" + max + "\nlast"
	r := bufio.NewReaderSize(strings.NewReader(in), 64<<10)
	want := []string{"a", "", "key:value\r", long, max, "last"}
	for i, w := range want {
		line, err := readLine(r, maxLineBytes)
		if err != nil || string(line) != w {
			t.Fatalf("line %d: %d bytes, %v; want %d bytes", i+1, len(line), err, len(w))
		}
	}
	if line, err := readLine(r, maxLineBytes); err == nil || len(line) != 0 {
		t.Fatalf("after last line: %q, %v; want EOF", line, err)
	}
	for _, tooLong := range []string{max + "m\n", max + "m"} {
		r = bufio.NewReaderSize(strings.NewReader(tooLong), 64<<10)
		if _, err := readLine(r, maxLineBytes); !errors.Is(err, errLineTooLong) {
			t.Errorf("%d-byte line: %v, want errLineTooLong", len(tooLong), err)
		}
	}
}

func TestNewRecord(t *testing.T) {
	hs := []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}
	tests := []struct {
		line, sep string
		key       []byte // nil = no key
		value     string
	}{
		{"k:v", ":", []byte("k"), "v"},
		{"k::v:w", "::", []byte("k"), "v:w"},
		{":v", ":", []byte{}, "v"},
		{"novalue", ":", nil, "novalue"},
		{"k:v", "", nil, "k:v"},
	}
	for _, tt := range tests {
		r := newRecord([]byte(tt.line), tt.sep, hs)
		if (r.Key == nil) != (tt.key == nil) || string(r.Key) != string(tt.key) || string(r.Value) != tt.value ||
			len(r.Headers) != 1 {
			t.Errorf("newRecord(%q, %q) = key %q value %q", tt.line, tt.sep, r.Key, r.Value)
		}
	}
}

func TestPrinter(t *testing.T) {
	ts := time.Date(2025, 3, 10, 12, 0, 0, 123000000, time.FixedZone("CET", 3600))
	rec := &kgo.Record{Topic: "t", Partition: 2, Offset: 41, Timestamp: ts, Key: []byte("k<1>"),
		Value: []byte("v \"q\""), Headers: []kgo.RecordHeader{{Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("1")}}}
	tomb := &kgo.Record{Topic: "t", Offset: 42, Timestamp: ts}
	tests := []struct{ format, want string }{
		{"json", `{"topic":"t","partition":2,"offset":41,"timestamp":"2025-03-10T11:00:00.123Z","key":"k<1>","value":"v \"q\"","headers":{"a":"1","b":"2"}}` + "\n" +
			`{"topic":"t","partition":0,"offset":42,"timestamp":"2025-03-10T11:00:00.123Z","key":null,"value":null,"headers":{}}` + "\n"},
		{"kv", "k<1>|v \"q\"\n|\n"},
		{"value", "v \"q\"\n\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		p := newPrinter(w, tt.format, "|")
		if err := p.print(rec); err != nil {
			t.Fatal(err)
		}
		if err := p.print(tomb); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if buf.String() != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.format, buf.String(), tt.want)
		}
		if tt.format == "json" {
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.SplitN(buf.String(), "\n", 2)[0]), &m); err != nil {
				t.Errorf("json line does not parse: %v", err)
			}
		}
	}
}

func TestNewLogger(t *testing.T) {
	cfg := agent.DefaultConfig()
	cfg.LogLevel, cfg.LogFormat = "warn", "json"
	var buf bytes.Buffer
	l := newLogger(&buf, cfg)
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "shown" || m["level"] != "WARN" {
		t.Errorf("json logger wrote %q (%v)", buf.String(), err)
	}
	cfg.LogLevel, cfg.LogFormat = "debug", "text"
	buf.Reset()
	newLogger(&buf, cfg).Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Errorf("text logger wrote %q", buf.String())
	}
}

// TestProduceReportsRecordNumber: with no broker, the first record fails and is named.
func TestProduceReportsRecordNumber(t *testing.T) {
	code, _, stderr := cli(t, "a\nb\n", "produce", "--topic", "t", "--brokers", "127.0.0.1:1", "--timeout", "1s")
	if code != exitError || !strings.Contains(stderr, "produced 0 records to t\n") ||
		!strings.Contains(stderr, `samsa: produce to "t": record 1: `) {
		t.Errorf("code %d stderr %q", code, stderr)
	}
}
