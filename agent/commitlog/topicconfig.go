package commitlog

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TopicConfig is a topic's effective configuration, parsed from Kafka's topic config keys.
type TopicConfig struct {
	CleanupPolicy          string        // cleanup.policy: delete | compact | compact,delete
	RetentionMs            int64         // retention.ms (-1: forever)
	RetentionBytes         int64         // retention.bytes per partition (-1: unlimited)
	SegmentBytes           int64         // segment.bytes
	SegmentAge             time.Duration // segment.ms
	SegmentIndexBytes      int64         // segment.index.bytes: cap on each index file
	IndexIntervalBytes     int64         // index.interval.bytes
	FlushMessages          int64         // flush.messages: fsync after this many unflushed records
	FlushAge               time.Duration // flush.ms: fsync when the oldest unflushed data is this old
	MaxMessageBytes        int32         // max.message.bytes: largest batch accepted
	LogAppendTime          bool          // message.timestamp.type=LogAppendTime
	MinInsyncReplicas      int32         // min.insync.replicas
	DeleteRetentionMs      int64         // delete.retention.ms
	MinCleanableDirtyRatio float64       // min.cleanable.dirty.ratio
	MinCompactionLagMs     int64         // min.compaction.lag.ms
	MaxCompactionLagMs     int64         // max.compaction.lag.ms
	RemoteStorageEnable    bool          // remote.storage.enable
	LocalRetentionMs       int64         // local.retention.ms (-2: same as retention.ms)
	LocalRetentionBytes    int64         // local.retention.bytes (-2: same as retention.bytes)

	// cleanup.policy parsed once (Append asks on every batch)
	policyDelete, policyCompact bool
}

// Kafka DescribeConfigs config types.
const (
	typeBoolean int8 = 1
	typeString  int8 = 2
	typeInt     int8 = 3
	typeLong    int8 = 5
	typeDouble  int8 = 6
	typeList    int8 = 7
)

// configKey describes one supported topic config key.
type configKey struct {
	name  string
	typ   int8
	def   string
	doc   string
	check func(v string) error
	set   func(c *TopicConfig, v string) // v already checked
}

func intRange(min, max int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < min || n > max {
			return fmt.Errorf("must be between %d and %d", min, max)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("allowed: %s", strings.Join(allowed, ", "))
	}
}

func mustInt(v string) int64 { n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64); return n }

func msDuration(v string) time.Duration {
	n := mustInt(v)
	if n <= 0 || n > math.MaxInt64/int64(time.Millisecond) {
		return 0 // 0 means "never" for segment.ms / flush.ms
	}
	return time.Duration(n) * time.Millisecond
}

var boolCheck = oneOf("true", "false")

// configKeys lists every topic config samsa accepts, with Kafka's names and defaults adapted to
// the edge (smaller segments).
var configKeys = []configKey{
	{"cleanup.policy", typeList, "delete", "delete, compact or compact,delete", oneOf("delete", "compact", "compact,delete", "delete,compact"),
		func(c *TopicConfig, v string) {
			c.CleanupPolicy = v
			c.policyDelete, c.policyCompact = strings.Contains(v, "delete"), strings.Contains(v, "compact")
		}},
	{"retention.ms", typeLong, "604800000", "how long data is kept (-1: forever)", intRange(-1, math.MaxInt64),
		func(c *TopicConfig, v string) { c.RetentionMs = mustInt(v) }},
	{"retention.bytes", typeLong, "-1", "bytes kept per partition (-1: unlimited)", intRange(-1, math.MaxInt64),
		func(c *TopicConfig, v string) { c.RetentionBytes = mustInt(v) }},
	{"segment.bytes", typeInt, "33554432", "segment file size at which the log rolls", intRange(1024, math.MaxInt32),
		func(c *TopicConfig, v string) { c.SegmentBytes = mustInt(v) }},
	{"segment.ms", typeLong, "604800000", "age at which the active segment rolls", intRange(1, math.MaxInt64),
		func(c *TopicConfig, v string) { c.SegmentAge = msDuration(v) }},
	{"segment.index.bytes", typeInt, "10485760", "maximum size of each index file", intRange(64, math.MaxInt32),
		func(c *TopicConfig, v string) { c.SegmentIndexBytes = mustInt(v) }},
	{"index.interval.bytes", typeInt, "4096", "bytes of log between offset index entries", intRange(0, math.MaxInt32),
		func(c *TopicConfig, v string) { c.IndexIntervalBytes = mustInt(v) }},
	{"flush.messages", typeLong, "9223372036854775807", "fsync after this many records (agent fsync mode still applies)", intRange(1, math.MaxInt64),
		func(c *TopicConfig, v string) { c.FlushMessages = mustInt(v) }},
	{"flush.ms", typeLong, "9223372036854775807", "fsync when unflushed data is this old, in ms", intRange(0, math.MaxInt64),
		func(c *TopicConfig, v string) { c.FlushAge = msDuration(v) }},
	{"max.message.bytes", typeInt, "1048588", "largest record batch accepted", intRange(0, math.MaxInt32),
		func(c *TopicConfig, v string) { c.MaxMessageBytes = int32(mustInt(v)) }},
	{"message.timestamp.type", typeString, "CreateTime", "CreateTime or LogAppendTime", oneOf("CreateTime", "LogAppendTime"),
		func(c *TopicConfig, v string) { c.LogAppendTime = v == "LogAppendTime" }},
	{"min.insync.replicas", typeInt, "1", "replicas that must acknowledge acks=all", intRange(1, math.MaxInt32),
		func(c *TopicConfig, v string) { c.MinInsyncReplicas = int32(mustInt(v)) }},
	{"delete.retention.ms", typeLong, "86400000", "how long tombstones are kept on compacted topics", intRange(0, math.MaxInt64),
		func(c *TopicConfig, v string) { c.DeleteRetentionMs = mustInt(v) }},
	{"min.cleanable.dirty.ratio", typeDouble, "0.5", "dirty ratio at which compaction starts", checkRatio,
		func(c *TopicConfig, v string) { c.MinCleanableDirtyRatio, _ = strconv.ParseFloat(v, 64) }},
	{"min.compaction.lag.ms", typeLong, "0", "minimum age before a record may be compacted", intRange(0, math.MaxInt64),
		func(c *TopicConfig, v string) { c.MinCompactionLagMs = mustInt(v) }},
	{"max.compaction.lag.ms", typeLong, "9223372036854775807", "maximum age before a record must be compacted", intRange(1, math.MaxInt64),
		func(c *TopicConfig, v string) { c.MaxCompactionLagMs = mustInt(v) }},
	{"remote.storage.enable", typeBoolean, "false", "offload closed segments to object storage", boolCheck,
		func(c *TopicConfig, v string) { c.RemoteStorageEnable = v == "true" }},
	{"local.retention.ms", typeLong, "-2", "local retention when tiered (-2: retention.ms)", intRange(-2, math.MaxInt64),
		func(c *TopicConfig, v string) { c.LocalRetentionMs = mustInt(v) }},
	{"local.retention.bytes", typeLong, "-2", "local retention when tiered (-2: retention.bytes)", intRange(-2, math.MaxInt64),
		func(c *TopicConfig, v string) { c.LocalRetentionBytes = mustInt(v) }},
}

func checkRatio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 1) { // NaN too: it compares false with every score
		return fmt.Errorf("must be a number between 0 and 1")
	}
	return nil
}

var configKeyIndex = func() map[string]*configKey {
	m := make(map[string]*configKey, len(configKeys))
	for i := range configKeys {
		m[configKeys[i].name] = &configKeys[i]
	}
	return m
}()

// ConfigKeyNames lists the supported topic config keys, sorted.
func ConfigKeyNames() []string {
	names := make([]string, 0, len(configKeys))
	for _, k := range configKeys {
		names = append(names, k.name)
	}
	sort.Strings(names)
	return names
}

// ValidateTopicConfigs checks Kafka topic config keys and values. The error names the key, the
// value and what is allowed, and wraps ErrInvalidConfig.
func ValidateTopicConfigs(m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ck, ok := configKeyIndex[k]
		if !ok {
			return fmt.Errorf("%w: unknown key %q (supported: %s)", ErrInvalidConfig, k, strings.Join(ConfigKeyNames(), ", "))
		}
		if err := ck.check(m[k]); err != nil {
			return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, k, m[k], err)
		}
	}
	return nil
}

// check refuses combinations of keys that are valid alone: remote storage of a compacted topic
// (Kafka refuses it too: a compacted segment would not match its uploaded copy).
func (c *TopicConfig) check() error {
	if c.RemoteStorageEnable && c.Compacts() {
		return fmt.Errorf("%w: remote.storage.enable=true with cleanup.policy=%s: compacted topics cannot be tiered", ErrInvalidConfig, c.CleanupPolicy)
	}
	return nil
}

// localRetention resolves local.retention.ms/bytes (-2: the same as retention.*).
func (c *TopicConfig) localRetention() (ms, bytes int64) {
	ms, bytes = c.LocalRetentionMs, c.LocalRetentionBytes
	if ms == -2 {
		ms = c.RetentionMs
	}
	if bytes == -2 {
		bytes = c.RetentionBytes
	}
	return ms, bytes
}

// buildTopicConfig layers defaults, agent-level topic defaults and topic overrides.
func buildTopicConfig(agentDefaults, overrides map[string]string) TopicConfig {
	var c TopicConfig
	for _, k := range configKeys {
		v := k.def
		if d, ok := agentDefaults[k.name]; ok {
			v = d
		}
		if o, ok := overrides[k.name]; ok {
			v = o
		}
		k.set(&c, v)
	}
	return c
}

// describeConfigs lists every key with its value and where it came from.
func describeConfigs(agentDefaults, overrides map[string]string) []ConfigEntry {
	out := make([]ConfigEntry, 0, len(configKeys))
	for _, k := range configKeys {
		e := ConfigEntry{Name: k.name, Value: k.def, Source: SourceDefault, Type: k.typ, Doc: k.doc}
		if d, ok := agentDefaults[k.name]; ok {
			e.Value, e.Source = d, SourceStaticBroker
		}
		if o, ok := overrides[k.name]; ok {
			e.Value, e.Source = o, SourceDynamicTopic
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// applyConfigOps applies IncrementalAlterConfigs operations to a copy of overrides.
func applyConfigOps(overrides map[string]string, ops []ConfigOp) (map[string]string, error) {
	next := make(map[string]string, len(overrides)+len(ops))
	for k, v := range overrides {
		next[k] = v
	}
	for _, op := range ops {
		ck, ok := configKeyIndex[op.Key]
		if !ok {
			return nil, fmt.Errorf("%w: unknown key %q (supported: %s)", ErrInvalidConfig, op.Key, strings.Join(ConfigKeyNames(), ", "))
		}
		switch op.Op {
		case OpSet:
			next[op.Key] = op.Value
		case OpDelete:
			delete(next, op.Key)
		case OpAppend, OpSubtract:
			if ck.typ != typeList {
				return nil, fmt.Errorf("%w: %s is not a list; APPEND/SUBTRACT not allowed", ErrInvalidConfig, op.Key)
			}
			next[op.Key] = editList(valueOr(next, ck), op.Value, op.Op == OpAppend)
		default:
			return nil, fmt.Errorf("%w: unknown operation %d for %s", ErrInvalidConfig, op.Op, op.Key)
		}
	}
	if err := ValidateTopicConfigs(next); err != nil {
		return nil, err
	}
	return next, nil
}

func valueOr(m map[string]string, ck *configKey) string {
	if v, ok := m[ck.name]; ok {
		return v
	}
	return ck.def
}

func editList(cur, v string, add bool) string {
	var items []string
	for _, it := range strings.Split(cur, ",") {
		if it = strings.TrimSpace(it); it != "" && it != v {
			items = append(items, it)
		}
	}
	if add {
		items = append(items, v)
	}
	sort.Strings(items)
	return strings.Join(items, ",")
}
