package agent

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "samsa.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	want := Config{
		DataDir:               "./samsa-data",
		KafkaAddr:             "127.0.0.1:9092",
		HTTPAddr:              "127.0.0.1:9644",
		Fsync:                 "interval",
		FsyncInterval:         Duration(time.Second),
		AutoCreateTopics:      true,
		DefaultPartitions:     1,
		SocketRequestMaxBytes: 104857600,
		QueuedMaxRequestBytes: 134217728,
		MaxConnections:        1024,
		ProducerIDExpiration:  Duration(24 * time.Hour),
		LogLevel:              "info",
		LogFormat:             "text",
		TopicDefaults:         map[string]string{},

		GroupInitialRebalanceDelay: Duration(3 * time.Second),
		GroupMinSessionTimeout:     Duration(6 * time.Second),
		GroupMaxSessionTimeout:     Duration(30 * time.Minute),
		GroupMaxSize:               1000,
		MaxGroups:                  10000,
		OffsetsRetention:           Duration(168 * time.Hour),

		Disk:                   DiskConfig{MinFreeBytes: 256 << 20, MinFreePercent: 2, CheckInterval: Duration(time.Second)},
		Cleaner:                CleanerConfig{DedupeBufferBytes: 16 << 20, Backoff: Duration(15 * time.Second)},
		RetentionCheckInterval: Duration(30 * time.Second),
		Tiering:                TieringConfig{CacheBytes: 256 << 20, ReadAheadBytes: 32 << 20},
		Memory:                 MemoryConfig{ThrottlePercent: 90},
		HostMetrics:            HostMetricsConfig{Topic: "_samsa.host"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("DefaultConfig() = %+v, want %+v", c, want)
	}
	got, err := LoadConfig("", nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadConfig(\"\", nil) = %+v, %v", got, err)
	}
}

// TestFieldTableCoversConfig keeps the key table and the struct's yaml tags in step; a block
// (a struct field such as Disk) contributes section.key for each of its fields.
func TestFieldTableCoversConfig(t *testing.T) {
	var tags []string
	rt := reflect.TypeFor[Config]()
	for i := range rt.NumField() {
		tag := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]
		if ft := rt.Field(i).Type; ft.Kind() == reflect.Struct {
			for j := range ft.NumField() {
				tags = append(tags, tag+"."+strings.Split(ft.Field(j).Tag.Get("yaml"), ",")[0])
			}
			continue
		}
		tags = append(tags, tag)
	}
	if keys := fieldKeys(); !slices.Equal(tags, keys) {
		t.Fatalf("yaml tags %v != field table %v", tags, keys)
	}
}

func TestLoadConfigFile(t *testing.T) {
	p := writeFile(t, `# every key
data_dir: /var/lib/samsa
kafka_addr: 0.0.0.0:19092
http_addr: ":19644"
advertised_addr: pi.local:19092
node_id: 7
fsync: always
fsync_interval: 250ms
auto_create_topics: false
default_partitions: 3
socket_request_max_bytes: 1048576
max_connections: 64
producer_id_expiration: 2h
log_level: debug
log_format: json
topic_defaults:
  segment.bytes: 16777216
  cleanup.policy: compact,delete
group_initial_rebalance_delay: 0
group_min_session_timeout: 1s
group_max_session_timeout: 2m
group_max_size: 50
max_groups: 100
offsets_retention: 24h
`)
	got, err := LoadConfig(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DataDir:               "/var/lib/samsa",
		KafkaAddr:             "0.0.0.0:19092",
		HTTPAddr:              ":19644",
		AdvertisedAddr:        "pi.local:19092",
		NodeID:                7,
		Fsync:                 "always",
		FsyncInterval:         Duration(250 * time.Millisecond),
		AutoCreateTopics:      false,
		DefaultPartitions:     3,
		SocketRequestMaxBytes: 1 << 20,
		QueuedMaxRequestBytes: 128 << 20,
		MaxConnections:        64,
		ProducerIDExpiration:  Duration(2 * time.Hour),
		LogLevel:              "debug",
		LogFormat:             "json",
		TopicDefaults:         map[string]string{"segment.bytes": "16777216", "cleanup.policy": "compact,delete"},

		GroupMinSessionTimeout: Duration(time.Second),
		GroupMaxSessionTimeout: Duration(2 * time.Minute),
		GroupMaxSize:           50,
		MaxGroups:              100,
		OffsetsRetention:       Duration(24 * time.Hour),

		Disk:                   defaultDiskConfig(),
		Cleaner:                defaultCleanerConfig(),
		RetentionCheckInterval: Duration(30 * time.Second),
		Tiering:                defaultTieringConfig(),
		Memory:                 defaultMemoryConfig(),
		HostMetrics:            defaultHostMetricsConfig(),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadConfigFileEdgeCases(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "---\n"} {
		got, err := LoadConfig(writeFile(t, text), nil)
		if err != nil || !reflect.DeepEqual(got, DefaultConfig()) {
			t.Errorf("file %q: got %+v, %v; want defaults", text, got, err)
		}
	}
	// A key with no value keeps the default; an integer duration is milliseconds.
	got, err := LoadConfig(writeFile(t, "data_dir:\nfsync_interval: 1500\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.DataDir != "./samsa-data" || got.FsyncInterval.Duration() != 1500*time.Millisecond {
		t.Errorf("got data_dir %q fsync_interval %v", got.DataDir, got.FsyncInterval)
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"unknown key", "data_dir: /d\nfsync: never\nfoo: 1\n",
			[]string{`: unknown key "foo" (line 3)`, "allowed keys: data_dir, kafka_addr,", "topic_defaults"}},
		{"repeated key", "fsync: never\nfsync: always\n", []string{`key "fsync" repeated (lines 1 and 2)`}},
		{"not a mapping", "- a\n- b\n", []string{"line 1: top level must be a mapping"}},
		{"syntax", "fsync: [\n", []string{"yaml:"}},
		{"bad value", "\n\nfsync: sometimes\n",
			[]string{`key "fsync" (line 3): invalid value "sometimes" (allowed: always, interval, never)`}},
		{"bad type", "node_id: [1]\n", []string{`key "node_id" (line 1): invalid value: a YAML sequence`}},
		{"bad bool", "auto_create_topics: yes\n", []string{`invalid value "yes" (allowed: true, false)`}},
		{"topic defaults scalar list", "topic_defaults: [a]\n", []string{`key "topic_defaults" (line 1): invalid value: a YAML sequence`}},
		{"topic defaults nested", "topic_defaults:\n  a:\n    b: c\n", []string{`topic config key "a" (line 2)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.text)
			_, err := LoadConfig(p, nil)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config file "+p+": ") {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	_, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadConfigEnv(t *testing.T) {
	p := writeFile(t, "data_dir: /from/file\nfsync: never\nnode_id: 1\n")
	env := []string{
		"PATH=/bin",
		"SAMSA_BROKERS=host:9092", // used by the CLI, not a config key
		"SAMSA_FSYNC=always",
		"SAMSA_FSYNC_INTERVAL=200ms",
		"SAMSA_AUTO_CREATE_TOPICS=false",
		"SAMSA_TOPIC_DEFAULTS=segment.bytes=1048576,retention.ms=60000,cleanup.policy=compact,delete",
		"SAMSA_NODE_ID=5",
		"SAMSA_NODE_ID=6", // the later entry wins
		"SAMSA_MAX_CONNECTIONS= 10 ",
		"SAMSA_PRODUCER_ID_EXPIRATION=90m",
	}
	c, err := LoadConfig(p, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/file" || c.Fsync != "always" || c.FsyncInterval.Duration() != 200*time.Millisecond ||
		c.AutoCreateTopics || c.NodeID != 6 || c.MaxConnections != 10 || c.ProducerIDExpiration.Duration() != 90*time.Minute {
		t.Errorf("got %+v", c)
	}
	wantTD := map[string]string{"segment.bytes": "1048576", "retention.ms": "60000", "cleanup.policy": "compact,delete"}
	if !reflect.DeepEqual(c.TopicDefaults, wantTD) {
		t.Errorf("topic defaults %v, want %v", c.TopicDefaults, wantTD)
	}
}

// TestPrecedence: defaults < file < env < flags (Set, as cmd/samsa applies them).
func TestPrecedence(t *testing.T) {
	p := writeFile(t, "data_dir: /file\nkafka_addr: 127.0.0.1:1001\nhttp_addr: 127.0.0.1:2001\n")
	env := []string{"SAMSA_KAFKA_ADDR=127.0.0.1:1002", "SAMSA_HTTP_ADDR=127.0.0.1:2002"}
	c, err := LoadConfig(p, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("http_addr", "127.0.0.1:2003"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "info" || c.DataDir != "/file" || c.KafkaAddr != "127.0.0.1:1002" || c.HTTPAddr != "127.0.0.1:2003" {
		t.Errorf("got %+v", c)
	}
}

func TestSet(t *testing.T) {
	c := DefaultConfig()
	err := c.Set("kafka_addr", "nonsense")
	if err == nil || err.Error() != `config key "kafka_addr": invalid value "nonsense" (allowed: host:port, port 0-65535)` {
		t.Errorf("Set bad value: %v", err)
	}
	if c.KafkaAddr != "127.0.0.1:9092" {
		t.Errorf("failed Set changed the value to %q", c.KafkaAddr)
	}
	if err := c.Set("nope", "1"); err == nil || !strings.Contains(err.Error(), `unknown config key "nope"`) {
		t.Errorf("Set unknown key: %v", err)
	}
}

func TestUnknownEnv(t *testing.T) {
	for _, name := range []string{"SAMSA_FSYNC_MS", "SAMSA_data_dir", "SAMSA_"} {
		_, err := LoadConfig("", []string{"SAMSA_FSYNC=never", name + "=1"})
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		want := "environment variable " + name + ": unknown config key (known: SAMSA_DATA_DIR,"
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %q, want prefix %q", name, err, want)
		}
	}
}

// TestInvalidValues checks that each validated key rejects bad values with a message naming the
// key (or variable), the value and what is allowed, from Validate, the environment and a file.
func TestInvalidValues(t *testing.T) {
	tests := []struct {
		key, value, allowed string
	}{
		{"data_dir", "", "a non-empty directory path"},
		{"kafka_addr", "localhost", "host:port, port 0-65535"},
		{"kafka_addr", "localhost:99999", "host:port, port 0-65535"},
		{"http_addr", "127.0.0.1:http", "host:port, port 0-65535"},
		{"advertised_addr", ":9092", `"" (use the Kafka listener address) or host:port with a host and a non-zero port`},
		{"advertised_addr", "pi:0", `"" (use the Kafka listener address) or host:port with a host and a non-zero port`},
		{"node_id", "-1", "an integer from 0 to 2147483647"},
		{"node_id", "abc", "an integer from 0 to 2147483647"},
		{"fsync", "sometimes", "always, interval, never"},
		{"fsync_interval", "0", "a duration > 0 and <= 1h such as 500ms or 2s, or integer milliseconds"},
		{"fsync_interval", "-1s", "a duration > 0 and <= 1h such as 500ms or 2s, or integer milliseconds"},
		{"fsync_interval", "2h", "a duration > 0 and <= 1h such as 500ms or 2s, or integer milliseconds"},
		{"fsync_interval", "soon", "a duration > 0 and <= 1h such as 500ms or 2s, or integer milliseconds"},
		{"auto_create_topics", "maybe", "true, false"},
		{"default_partitions", "0", "an integer from 1 to 10000"},
		{"default_partitions", "10001", "an integer from 1 to 10000"},
		{"socket_request_max_bytes", "1023", "an integer from 1024 to 1073741824"},
		{"socket_request_max_bytes", "1073741825", "an integer from 1024 to 1073741824"},
		{"max_connections", "0", "an integer from 1 to 1048576"},
		{"producer_id_expiration", "0", "a duration > 0 and <= 720h such as 500ms or 2s, or integer milliseconds"},
		{"producer_id_expiration", "721h", "a duration > 0 and <= 720h such as 500ms or 2s, or integer milliseconds"},
		{"log_level", "verbose", "debug, info, warn, error"},
		{"log_format", "xml", "text, json"},
		{"topic_defaults", "segment.bytes", "a mapping of topic config keys to values (environment: k=v,k2=v2)"},
		{"topic_defaults", "a=1,a=2", "a mapping of topic config keys to values (environment: k=v,k2=v2)"},
		{"group_initial_rebalance_delay", "-1s", "a duration from 0s to 5m such as 500ms or 2s, or integer milliseconds"},
		{"group_initial_rebalance_delay", "6m", "a duration from 0s to 5m such as 500ms or 2s, or integer milliseconds"},
		{"group_min_session_timeout", "0", "a duration from 1ms to 24h such as 500ms or 2s, or integer milliseconds"},
		{"group_max_session_timeout", "25h", "a duration from 1ms to 24h such as 500ms or 2s, or integer milliseconds"},
		{"group_max_size", "0", "an integer from 1 to 1000000"},
		{"max_groups", "0", "an integer from 1 to 1000000"},
		{"offsets_retention", "30s", "a duration from 1m to 8760h such as 500ms or 2s, or integer milliseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			tail := `: invalid value "` + tt.value + `" (allowed: ` + tt.allowed + `)`
			env := "SAMSA_" + strings.ToUpper(tt.key)
			_, err := LoadConfig("", []string{env + "=" + tt.value})
			if want := "environment variable " + env + tail; err == nil || err.Error() != want {
				t.Errorf("env: got %v\nwant %s", err, want)
			}
			p := writeFile(t, "# one bad value\n"+tt.key+": '"+tt.value+"'\n")
			_, err = LoadConfig(p, nil)
			if want := "config file " + p + `: key "` + tt.key + `" (line 2)` + tail; err == nil || err.Error() != want {
				t.Errorf("file: got %v\nwant %s", err, want)
			}
			// Validate sees the value only when it parses into the field's type.
			c := DefaultConfig()
			f := lookupField(tt.key)
			if !f.set(&c, tt.value) {
				return
			}
			err = c.Validate()
			// Validate shows the parsed value (a duration "2h" is shown as "2h0m0s").
			tail = `: invalid value "` + f.show(&c) + `" (allowed: ` + tt.allowed + `)`
			if want := `config key "` + tt.key + `"` + tail; err == nil || err.Error() != want {
				t.Errorf("Validate: got %v\nwant %s", err, want)
			}
			if !errors.Is(err, ErrInvalidValue) {
				t.Errorf("Validate error %v is not ErrInvalidValue", err)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := map[string]time.Duration{
		"500ms": 500 * time.Millisecond, "2s": 2 * time.Second, "1m30s": 90 * time.Second,
		"1500": 1500 * time.Millisecond, " 7 ": 7 * time.Millisecond, "0": 0,
	}
	for in, want := range tests {
		got, err := ParseDuration(in)
		if err != nil || got.Duration() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.5", "2 days", "99999999999999999"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): no error", in)
		}
	}
	if shortDuration(time.Hour) != "1h" || shortDuration(90*time.Minute) != "1h30m" || shortDuration(time.Second) != "1s" {
		t.Errorf("shortDuration: %s %s %s", shortDuration(time.Hour), shortDuration(90*time.Minute), shortDuration(time.Second))
	}
}

func TestTopicDefaultsEnvRoundTrip(t *testing.T) {
	in := "cleanup.policy=compact,delete,retention.ms=60000,segment.bytes=1048576"
	m, ok := parseTopicDefaults(in)
	if !ok {
		t.Fatal("parse failed")
	}
	if out := formatTopicDefaults(m); out != in {
		t.Errorf("round trip %q -> %q", in, out)
	}
	if m, ok := parseTopicDefaults(""); !ok || len(m) != 0 {
		t.Errorf("empty: %v %v", m, ok)
	}
	for _, bad := range []string{",a=1", "=1", "a=1,a=2"} {
		if _, ok := parseTopicDefaults(bad); ok {
			t.Errorf("parseTopicDefaults(%q) accepted", bad)
		}
	}
}
