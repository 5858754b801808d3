package agent

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of one agent. It is the only place in the project where
// YAML is parsed: LoadConfig layers an embedded default, an optional YAML file and SAMSA_*
// environment variables; command-line flags are applied on top by cmd/samsa with Set.
//
// Every field is a top-level YAML key (the yaml tag) and an environment variable
// SAMSA_<KEY IN UPPER CASE>, except the blocks disk:, cleaner: (config_disk.go) and tiering:
// (config_tiering.go), whose keys are named section.key ("disk.min_free_bytes": Set, messages)
// and whose variables are SAMSA_<SECTION>_<KEY> (SAMSA_DISK_MIN_FREE_BYTES). The zero Config is
// not valid; start from DefaultConfig.
type Config struct {
	// DataDir holds the commit log and the agent's state. Default "./samsa-data".
	DataDir string `yaml:"data_dir"`
	// KafkaAddr is the host:port the Kafka listener binds. Default "127.0.0.1:9092".
	KafkaAddr string `yaml:"kafka_addr"`
	// HTTPAddr is the host:port of the health/metrics/status endpoint. Default "127.0.0.1:9644".
	HTTPAddr string `yaml:"http_addr"`
	// AdvertisedAddr is the host:port clients are told to connect to. Default "" means the
	// bound Kafka listener address.
	AdvertisedAddr string `yaml:"advertised_addr"`
	// NodeID is this agent's broker id. Default 0.
	NodeID int32 `yaml:"node_id"`
	// Fsync is the durability mode: "always" (group-committed fdatasync before acknowledging),
	// "interval" (every FsyncInterval) or "never" (leave it to the OS). Default "interval".
	Fsync string `yaml:"fsync"`
	// FsyncInterval is the flush period in "interval" mode. Default 1s; > 0 and <= 1h.
	FsyncInterval Duration `yaml:"fsync_interval"`
	// AutoCreateTopics lets a Metadata or Produce request for an unknown topic create it.
	// Default true.
	AutoCreateTopics bool `yaml:"auto_create_topics"`
	// DefaultPartitions is the partition count of auto-created topics and of CreateTopics
	// requests that ask for the broker default. Default 1; 1..10000.
	DefaultPartitions int32 `yaml:"default_partitions"`
	// SocketRequestMaxBytes is the largest Kafka request accepted. Default 100 MiB; 1 KiB..1 GiB.
	SocketRequestMaxBytes int32 `yaml:"socket_request_max_bytes"`
	// QueuedMaxRequestBytes bounds the bytes of all requests being read or handled at once,
	// over every connection (Kafka's queued.max.request.bytes): readers wait when it is spent.
	// Default 128 MiB; 1 MiB..1 GiB. A request larger than it waits until it is all free.
	QueuedMaxRequestBytes int `yaml:"queued_max_request_bytes"`
	// MaxConnections bounds concurrent client connections. Default 1024; 1..1048576.
	MaxConnections int `yaml:"max_connections"`
	// ProducerIDExpiration is Kafka's producer.id.expiration.ms: each partition forgets an
	// idempotent producer id idle this long (its next batch is then accepted at any sequence).
	// Default 24h (Kafka's 1 day); > 0 and <= 720h.
	ProducerIDExpiration Duration `yaml:"producer_id_expiration"`
	// LogLevel is one of debug, info, warn, error. Default "info".
	LogLevel string `yaml:"log_level"`
	// LogFormat is "text" or "json". Default "text".
	LogFormat string `yaml:"log_format"`
	// TopicDefaults are Kafka topic config keys (e.g. "segment.bytes": "16777216") applied to
	// every topic unless the topic overrides them. Only parsed here; the commitlog validates
	// keys and values. In the environment: SAMSA_TOPIC_DEFAULTS="k=v,k2=v2" (a comma followed
	// by text without '=' continues the previous value, so cleanup.policy=compact,delete works).
	TopicDefaults map[string]string `yaml:"topic_defaults"`

	// Consumer groups (config_groups.go has the limits). GroupInitialRebalanceDelay is
	// group.initial.rebalance.delay.ms: the first join phase of an empty group waits this
	// long for more members. Default 3s; 0..5m.
	GroupInitialRebalanceDelay Duration `yaml:"group_initial_rebalance_delay"`
	// GroupMinSessionTimeout and GroupMaxSessionTimeout bound the session timeout a member may
	// ask for (group.min/max.session.timeout.ms). Defaults 6s and 30m; min <= max.
	GroupMinSessionTimeout Duration `yaml:"group_min_session_timeout"`
	GroupMaxSessionTimeout Duration `yaml:"group_max_session_timeout"`
	// GroupMaxSize caps the members of one group (group.max.size). Default 1000.
	GroupMaxSize int `yaml:"group_max_size"`
	// MaxGroups caps the groups held; a request that would create another gets
	// COORDINATOR_NOT_AVAILABLE. Default 10000.
	MaxGroups int `yaml:"max_groups"`
	// OffsetsRetention is offsets.retention.minutes: the offsets of a group without members
	// expire this long after their commit (or the group emptying). Default 168h (7 days).
	OffsetsRetention Duration `yaml:"offsets_retention"`

	// Disk is the disk guard (the YAML block disk:, see DiskConfig).
	Disk DiskConfig `yaml:"disk"`
	// Cleaner tunes the log cleaner (the YAML block cleaner:, see CleanerConfig).
	Cleaner CleanerConfig `yaml:"cleaner"`
	// RetentionCheckInterval is how often retention.ms and retention.bytes are enforced
	// (Kafka's log.retention.check.interval.ms). Default 30s; 10ms to 24h.
	RetentionCheckInterval Duration `yaml:"retention_check_interval"`

	// Tiering uploads closed segments of remote.storage.enable topics to S3/MinIO (the YAML
	// block tiering:, see TieringConfig). Off unless tiering.endpoint is set.
	Tiering TieringConfig `yaml:"tiering"`

	// Memory is the memory budget (the YAML block memory:, see MemoryConfig). Off unless
	// memory.max_bytes is set.
	Memory MemoryConfig `yaml:"memory"`
	// HostMetrics reports the device's health (the YAML block host_metrics:, see
	// HostMetricsConfig).
	HostMetrics HostMetricsConfig `yaml:"host_metrics"`

	// MQTT bridges MQTT brokers and topics (the YAML block mqtt:, see MQTTConfig; YAML only,
	// no environment variable). No bridges by default.
	MQTT MQTTConfig `yaml:"mqtt"`
}

// EnvPrefix starts every environment variable that overrides a config key.
const EnvPrefix = "SAMSA_"

// nonConfigEnv lists SAMSA_* variables that are not config keys and must not be rejected.
var nonConfigEnv = []string{"SAMSA_BROKERS", "SAMSA_HTTP"}

// Limits of the validated keys.
const (
	maxFsyncInterval    = time.Hour
	maxDefaultPartition = 10000
	minRequestMaxBytes  = 1024
	maxRequestMaxBytes  = 1 << 30
	maxMaxConnections   = 1 << 20
	maxProducerIDExpiry = 30 * 24 * time.Hour
)

// DefaultConfig is the embedded configuration an agent runs with when nothing else is given.
func DefaultConfig() Config {
	return Config{
		DataDir:               "./samsa-data",
		KafkaAddr:             "127.0.0.1:9092",
		HTTPAddr:              "127.0.0.1:9644",
		AdvertisedAddr:        "",
		NodeID:                0,
		Fsync:                 FsyncModeInterval,
		FsyncInterval:         Duration(time.Second),
		AutoCreateTopics:      true,
		DefaultPartitions:     1,
		SocketRequestMaxBytes: 100 << 20,
		QueuedMaxRequestBytes: 128 << 20,
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
		OffsetsRetention:           Duration(7 * 24 * time.Hour),

		Disk:                   defaultDiskConfig(),
		Cleaner:                defaultCleanerConfig(),
		RetentionCheckInterval: Duration(defaultRetentionCheck),
		Tiering:                defaultTieringConfig(),
		Memory:                 defaultMemoryConfig(),
		HostMetrics:            defaultHostMetricsConfig(),
	}
}

// Values of Config.Fsync.
const (
	FsyncModeAlways   = "always"   // fdatasync (group commit) before acknowledging a write
	FsyncModeInterval = "interval" // fdatasync every Config.FsyncInterval
	FsyncModeNever    = "never"    // never fsync explicitly
)

// Validate checks every key and returns the first problem as
// `config key "fsync": invalid value "sometimes" (allowed: always, interval, never)`.
func (c Config) Validate() error {
	for i := range fields {
		f := &fields[i]
		if !f.valid(&c) {
			return fmt.Errorf("config key %q: %w", f.key, f.invalid(f.show(&c)))
		}
	}
	if err := c.validateGroups(); err != nil {
		return err
	}
	if err := c.validateMQTT(); err != nil {
		return err
	}
	return c.validateTiering()
}

// Set parses value into the key (a YAML key such as "kafka_addr") and checks it, as if it had
// come from the environment. cmd/samsa uses it to apply command-line flags.
func (c *Config) Set(key, value string) error {
	f := lookupField(key)
	if f == nil {
		return fmt.Errorf("unknown config key %q (allowed: %s)", key, strings.Join(fieldKeys(), ", "))
	}
	if err := f.setChecked(c, value); err != nil {
		return fmt.Errorf("config key %q: %w", key, err)
	}
	return nil
}

// LoadConfig builds a Config from DefaultConfig, then the YAML file at path (skipped when path
// is ""), then the SAMSA_* variables in environ ("KEY=value" entries, as from os.Environ). It
// returns an error naming the file and line, or the variable, of the first bad entry, and
// finally runs Validate.
func LoadConfig(path string, environ []string) (Config, error) {
	c := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		if err := c.applyYAML(data); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := c.applyEnv(environ); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// applyYAML overlays the keys present in a YAML document. Unknown and repeated keys are errors;
// a key with an empty (null) value keeps its current value.
func (c *Config) applyYAML(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: top level must be a mapping of config keys", root.Line)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if configSection(k.Value) {
			if err := c.applyYAMLSection(k, v, seen); err != nil {
				return err
			}
			continue
		}
		f := lookupField(k.Value)
		if f == nil {
			return fmt.Errorf("unknown key %q (line %d); allowed keys: %s",
				k.Value, k.Line, strings.Join(fieldKeys(), ", "))
		}
		if prev, ok := seen[k.Value]; ok {
			return fmt.Errorf("key %q repeated (lines %d and %d)", k.Value, prev, k.Line)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		if err := f.setNodeChecked(c, v); err != nil {
			return fmt.Errorf("key %q (line %d): %w", k.Value, v.Line, err)
		}
	}
	return nil
}

// applyYAMLSection overlays a block of keys such as disk: (config_disk.go). seen holds the
// lines of the keys already set, by full key ("disk.min_free_bytes").
func (c *Config) applyYAMLSection(k, v *yaml.Node, seen map[string]int) error {
	if prev, ok := seen[k.Value]; ok {
		return fmt.Errorf("key %q repeated (lines %d and %d)", k.Value, prev, k.Line)
	}
	seen[k.Value] = k.Line
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	allowed := strings.Join(sectionKeys(k.Value), ", ")
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("key %q (line %d): %w: want a mapping of the keys %s", k.Value, v.Line, ErrInvalidValue, allowed)
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		sk, sv := v.Content[i], v.Content[i+1]
		key := k.Value + sectionSep + sk.Value
		f := lookupField(key)
		if f == nil {
			return fmt.Errorf("unknown key %q in %s: (line %d); allowed keys there: %s", sk.Value, k.Value, sk.Line, allowed)
		}
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("key %q repeated (lines %d and %d)", key, prev, sk.Line)
		}
		seen[key] = sk.Line
		if sv.Kind == yaml.ScalarNode && sv.Tag == "!!null" {
			continue
		}
		if err := f.setNodeChecked(c, sv); err != nil {
			return fmt.Errorf("key %q (line %d): %w", key, sv.Line, err)
		}
	}
	return nil
}

// applyEnv overlays SAMSA_* variables, in name order so the first error is deterministic.
func (c *Config) applyEnv(environ []string) error {
	vars := map[string]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || slices.Contains(nonConfigEnv, name) {
			continue
		}
		vars[name] = value // a later entry wins, as with exec.Cmd.Env
	}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := lookupEnv(name)
		if f == nil {
			return fmt.Errorf("environment variable %s: unknown config key (known: %s)",
				name, strings.Join(envNames(), ", "))
		}
		if err := f.setChecked(c, vars[name]); err != nil {
			return fmt.Errorf("environment variable %s: %w", name, err)
		}
	}
	return nil
}

// Duration is a time.Duration that YAML and the environment write as a Go duration ("500ms",
// "2s", "1m30s") or as a plain integer meaning milliseconds ("1500").
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML accepts a Go duration string or an integer number of milliseconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 500ms or 2s", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// ParseDuration parses a Go duration ("500ms", "2s") or a plain integer of milliseconds.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		const maxMillis = math.MaxInt64 / int64(time.Millisecond)
		if ms > maxMillis || ms < -maxMillis {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return Duration(time.Duration(ms) * time.Millisecond), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 500ms, 2s, or integer milliseconds)", s)
	}
	return Duration(v), nil
}

// ErrInvalidValue is wrapped by every error about a value that does not parse or is out of
// range for its key, so callers can test with errors.Is.
var ErrInvalidValue = errors.New("invalid value")

// addrOK reports whether s is host:port with a numeric port 0..65535 (host may be empty, which
// binds every interface).
func addrOK(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && (port == strconv.FormatUint(p, 10))
}

// advertisedOK reports whether s is empty or a host:port a client can dial (host and a
// non-zero port).
func advertisedOK(s string) bool {
	if s == "" {
		return true
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && p != 0
}

// parseTopicDefaults parses "k=v,k2=v2". A comma-separated piece without '=' continues the
// previous value (so "cleanup.policy=compact,delete" keeps its list value).
func parseTopicDefaults(s string) (map[string]string, bool) {
	m := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return m, true
	}
	last := ""
	for piece := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(piece, "=")
		if !ok {
			if last == "" {
				return nil, false
			}
			m[last] += "," + piece
			continue
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		m[k] = v
		last = k
	}
	return m, true
}

// formatTopicDefaults is the inverse of parseTopicDefaults, keys sorted.
func formatTopicDefaults(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// field describes one config key: how to parse it from text (environment, flags, YAML scalars),
// how to check it and how to show it in messages. The table below is the single list of keys
// that YAML decoding, the environment and Validate all use.
type field struct {
	key     string                              // YAML key (section.key in a block); env var: envName
	allowed string                              // what is allowed, for messages
	set     func(c *Config, s string) bool      // parse s into c; false if s does not parse
	setNode func(c *Config, n *yaml.Node) error // non-scalar YAML forms; nil = scalars only
	valid   func(c *Config) bool                // whether the current value is allowed
	show    func(c *Config) string              // the current value as text
}

var fields = slices.Concat([]field{
	stringField("data_dir", "a non-empty directory path", func(c *Config) *string { return &c.DataDir },
		func(s string) bool { return s != "" }),
	stringField("kafka_addr", "host:port, port 0-65535", func(c *Config) *string { return &c.KafkaAddr }, addrOK),
	stringField("http_addr", "host:port, port 0-65535", func(c *Config) *string { return &c.HTTPAddr }, addrOK),
	stringField("advertised_addr", `"" (use the Kafka listener address) or host:port with a host and a non-zero port`,
		func(c *Config) *string { return &c.AdvertisedAddr }, advertisedOK),
	int32Field("node_id", func(c *Config) *int32 { return &c.NodeID }, 0, 1<<31-1),
	enumField("fsync", func(c *Config) *string { return &c.Fsync }, FsyncModeAlways, FsyncModeInterval, FsyncModeNever),
	durationField("fsync_interval", func(c *Config) *Duration { return &c.FsyncInterval }, maxFsyncInterval),
	boolField("auto_create_topics", func(c *Config) *bool { return &c.AutoCreateTopics }),
	int32Field("default_partitions", func(c *Config) *int32 { return &c.DefaultPartitions }, 1, maxDefaultPartition),
	int32Field("socket_request_max_bytes", func(c *Config) *int32 { return &c.SocketRequestMaxBytes },
		minRequestMaxBytes, maxRequestMaxBytes),
	intField("queued_max_request_bytes", func(c *Config) *int { return &c.QueuedMaxRequestBytes }, 1<<20, 1<<30),
	intField("max_connections", func(c *Config) *int { return &c.MaxConnections }, 1, maxMaxConnections),
	durationField("producer_id_expiration", func(c *Config) *Duration { return &c.ProducerIDExpiration }, maxProducerIDExpiry),
	enumField("log_level", func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error"),
	enumField("log_format", func(c *Config) *string { return &c.LogFormat }, "text", "json"),
	topicDefaultsField("topic_defaults", func(c *Config) *map[string]string { return &c.TopicDefaults }),
}, groupFields, diskFields, tieringFields, memoryFields, hostMetricsFields, mqttFields)

// invalid is the error for a bad value of f.
func (f *field) invalid(value string) error {
	return fmt.Errorf("%w %q (allowed: %s)", ErrInvalidValue, value, f.allowed)
}

// setChecked parses s into c and checks it; c is left unchanged on error.
func (f *field) setChecked(c *Config, s string) error {
	tmp := *c
	if !f.set(&tmp, s) || !f.valid(&tmp) {
		return f.invalid(s)
	}
	*c = tmp
	return nil
}

// setNodeChecked is setChecked for a YAML value.
func (f *field) setNodeChecked(c *Config, n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode {
		return f.setChecked(c, n.Value)
	}
	if f.setNode == nil {
		return fmt.Errorf("%w: a YAML %s (allowed: %s)", ErrInvalidValue, nodeKind(n), f.allowed)
	}
	tmp := *c
	if err := f.setNode(&tmp, n); err != nil {
		return err
	}
	if !f.valid(&tmp) {
		return f.invalid(f.show(&tmp))
	}
	*c = tmp
	return nil
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	default:
		return "node"
	}
}

func lookupField(key string) *field {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	return nil
}

// lookupEnv maps SAMSA_FSYNC_INTERVAL to the fsync_interval field (SAMSA_DISK_MIN_FREE_BYTES to
// disk.min_free_bytes); the name must be upper case.
func lookupEnv(name string) *field {
	for i := range fields {
		if envName(fields[i].key) == name {
			return &fields[i]
		}
	}
	return nil
}

func fieldKeys() []string {
	keys := make([]string, len(fields))
	for i := range fields {
		keys[i] = fields[i].key
	}
	return keys
}

func envNames() []string {
	names := make([]string, len(fields))
	for i := range fields {
		names[i] = envName(fields[i].key)
	}
	return names
}

// newField builds a field of type T from a getter, a parser, a check and a formatter.
func newField[T any](key, allowed string, get func(*Config) *T,
	parse func(string) (T, bool), ok func(T) bool, show func(T) string) field {
	return field{
		key:     key,
		allowed: allowed,
		set: func(c *Config, s string) bool {
			v, good := parse(s)
			if good {
				*get(c) = v
			}
			return good
		},
		valid: func(c *Config) bool { return ok(*get(c)) },
		show:  func(c *Config) string { return show(*get(c)) },
	}
}

func stringField(key, allowed string, get func(*Config) *string, ok func(string) bool) field {
	identity := func(s string) string { return s }
	return newField(key, allowed, get, func(s string) (string, bool) { return s, true }, ok, identity)
}

func enumField(key string, get func(*Config) *string, values ...string) field {
	return stringField(key, strings.Join(values, ", "), get,
		func(s string) bool { return slices.Contains(values, s) })
}

func int32Field(key string, get func(*Config) *int32, lo, hi int32) field {
	return newField(key, fmt.Sprintf("an integer from %d to %d", lo, hi), get,
		func(s string) (int32, bool) {
			v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			return int32(v), err == nil
		},
		func(v int32) bool { return v >= lo && v <= hi },
		func(v int32) string { return strconv.FormatInt(int64(v), 10) })
}

func intField(key string, get func(*Config) *int, lo, hi int) field {
	return newField(key, fmt.Sprintf("an integer from %d to %d", lo, hi), get,
		func(s string) (int, bool) {
			v, err := strconv.Atoi(strings.TrimSpace(s))
			return v, err == nil
		},
		func(v int) bool { return v >= lo && v <= hi },
		strconv.Itoa)
}

func boolField(key string, get func(*Config) *bool) field {
	return newField(key, "true, false", get,
		func(s string) (bool, bool) {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true":
				return true, true
			case "false":
				return false, true
			}
			return false, false
		},
		func(bool) bool { return true },
		strconv.FormatBool)
}

func durationField(key string, get func(*Config) *Duration, hi time.Duration) field {
	return newField(key,
		fmt.Sprintf("a duration > 0 and <= %s such as 500ms or 2s, or integer milliseconds", shortDuration(hi)),
		get,
		func(s string) (Duration, bool) {
			d, err := ParseDuration(s)
			return d, err == nil
		},
		func(d Duration) bool { return d > 0 && time.Duration(d) <= hi },
		Duration.String)
}

// shortDuration prints 1h rather than time.Duration's 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func topicDefaultsField(key string, get func(*Config) *map[string]string) field {
	f := newField(key, "a mapping of topic config keys to values (environment: k=v,k2=v2)", get,
		parseTopicDefaults,
		func(m map[string]string) bool {
			for k := range m {
				if strings.TrimSpace(k) == "" {
					return false
				}
			}
			return true
		},
		formatTopicDefaults)
	f.setNode = func(c *Config, n *yaml.Node) error {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%w: a YAML %s (allowed: %s)", ErrInvalidValue, nodeKind(n), f.allowed)
		}
		m := make(map[string]string, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				return fmt.Errorf("topic config key %q (line %d): %w: want a string or number", k.Value, k.Line, ErrInvalidValue)
			}
			if _, dup := m[k.Value]; dup {
				return fmt.Errorf("topic config key %q repeated (line %d)", k.Value, k.Line)
			}
			m[k.Value] = v.Value
		}
		*get(c) = m
		return nil
	}
	return f
}
