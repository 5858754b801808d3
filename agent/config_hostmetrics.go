package agent

import (
	"fmt"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/hostmetrics"
)

// HostMetricsConfig is the YAML block host_metrics: the device's CPU, memory, disk and
// temperature (agent/hostmetrics) are always on GET /metrics; with an interval they are also
// appended as JSON records to a topic of the agent's own log. In the environment:
// SAMSA_HOST_METRICS_INTERVAL, SAMSA_HOST_METRICS_TOPIC.
type HostMetricsConfig struct {
	// Interval (host_metrics.interval) is how often a sample is appended to the topic.
	// Default 0s: never; otherwise 1s to 24h.
	Interval Duration `yaml:"interval"`
	// Topic (host_metrics.topic) receives the samples; created with one partition when
	// missing. Default "_samsa.host".
	Topic string `yaml:"topic"`
}

// Limits of the host_metrics keys.
const (
	minHostMetricsInterval = time.Second
	maxHostMetricsInterval = 24 * time.Hour
)

// defaultHostMetricsConfig returns the host_metrics: block's defaults (not published).
func defaultHostMetricsConfig() HostMetricsConfig {
	return HostMetricsConfig{Topic: hostmetrics.DefaultTopic}
}

// hostMetricsFields are the host_metrics keys of the field table.
var hostMetricsFields = []field{
	offOrDurationField("host_metrics.interval", func(c *Config) *Duration { return &c.HostMetrics.Interval },
		minHostMetricsInterval, maxHostMetricsInterval),
	stringField("host_metrics.topic", "a topic name: 1 to 249 characters a-z, A-Z, 0-9, '.', '_' and '-', not \".\" or \"..\"",
		func(c *Config) *string { return &c.HostMetrics.Topic }, func(s string) bool { return commitlog.ValidateTopicName(s) == nil }),
}

// offOrDurationField is a duration that is 0 (off) or from lo to hi.
func offOrDurationField(key string, get func(*Config) *Duration, lo, hi time.Duration) field {
	f := durationRangeField(key, get, lo, hi)
	f.allowed = fmt.Sprintf("0s (off) or a duration from %s to %s such as 10s or 1m, or integer milliseconds",
		shortDuration(lo), shortDuration(hi))
	f.valid = func(c *Config) bool { d := get(c).Duration(); return d == 0 || (d >= lo && d <= hi) }
	return f
}
