package agent

import (
	"fmt"

	"github.com/samsa-io/samsa/agent/membudget"
)

// MemoryConfig is the YAML block memory: the agent's memory budget (agent/membudget). With a
// budget, queued_max_request_bytes and socket_request_max_bytes are lowered to a quarter of it,
// cleaner.dedupe_buffer_bytes to an eighth and tiering.read_ahead_bytes to a sixteenth (never
// raised), an eighth is kept for the MQTT bridge's batching, the Go memory limit is set to the
// budget minus the cleaner's and the tiered reads' shares (outside the Go heap), and
// Kafka clients are throttled (throttle_time_ms, KIP-219) while the live heap and stacks are
// at or above memory.throttle_percent of that limit. In the environment:
// SAMSA_MEMORY_MAX_BYTES, SAMSA_MEMORY_THROTTLE_PERCENT.
type MemoryConfig struct {
	// MaxBytes (memory.max_bytes) is the budget in bytes. Default 0: no budget (the limits
	// above apply as configured, no Go memory limit, no throttling); otherwise 16 MiB to 1 TiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// ThrottlePercent (memory.throttle_percent) is where throttling starts, in percent of the
	// Go memory limit. Default 90; 1 to 100.
	ThrottlePercent int `yaml:"throttle_percent"`
}

// Limits of the memory keys.
const maxMemoryBytes = 1 << 40

// defaultMemoryConfig returns the memory: block's defaults (no budget).
func defaultMemoryConfig() MemoryConfig {
	return MemoryConfig{ThrottlePercent: membudget.DefaultThrottlePercent}
}

// memoryFields are the memory keys of the field table.
var memoryFields = []field{
	memoryBytesField("memory.max_bytes", func(c *Config) *int64 { return &c.Memory.MaxBytes }),
	intField("memory.throttle_percent", func(c *Config) *int { return &c.Memory.ThrottlePercent }, 1, 100),
}

// memoryBytesField accepts 0 (off) or membudget.MinBytes..maxMemoryBytes.
func memoryBytesField(key string, get func(*Config) *int64) field {
	f := int64Field(key, get, 0, maxMemoryBytes, "")
	f.allowed = fmt.Sprintf("0 (no budget) or an integer number of bytes from %d (16 MiB) to %d (1 TiB)",
		membudget.MinBytes, int64(maxMemoryBytes))
	f.valid = func(c *Config) bool {
		v := *get(c)
		return v == 0 || (v >= membudget.MinBytes && v <= maxMemoryBytes)
	}
	return f
}
