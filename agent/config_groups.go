package agent

import (
	"fmt"
	"time"
)

// Limits of the consumer group keys.
const (
	maxInitialRebalanceDelay = 5 * time.Minute
	maxGroupSessionTimeout   = 24 * time.Hour
	maxGroupMaxSize          = 1_000_000
	maxMaxGroups             = 1_000_000
	maxOffsetsRetention      = 365 * 24 * time.Hour
)

// groupFields are the consumer group keys of the field table, in the order of their Config
// fields.
var groupFields = []field{
	durationRangeField("group_initial_rebalance_delay", func(c *Config) *Duration { return &c.GroupInitialRebalanceDelay },
		0, maxInitialRebalanceDelay),
	durationRangeField("group_min_session_timeout", func(c *Config) *Duration { return &c.GroupMinSessionTimeout },
		time.Millisecond, maxGroupSessionTimeout),
	durationRangeField("group_max_session_timeout", func(c *Config) *Duration { return &c.GroupMaxSessionTimeout },
		time.Millisecond, maxGroupSessionTimeout),
	intField("group_max_size", func(c *Config) *int { return &c.GroupMaxSize }, 1, maxGroupMaxSize),
	intField("max_groups", func(c *Config) *int { return &c.MaxGroups }, 1, maxMaxGroups),
	durationRangeField("offsets_retention", func(c *Config) *Duration { return &c.OffsetsRetention },
		time.Minute, maxOffsetsRetention),
}

// validateGroups checks what a single key cannot: the session timeout bounds are in order.
func (c Config) validateGroups() error {
	if c.GroupMinSessionTimeout > c.GroupMaxSessionTimeout {
		return fmt.Errorf("config key %q: %w %q (allowed: at most group_max_session_timeout, %s)",
			"group_min_session_timeout", ErrInvalidValue, c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout)
	}
	return nil
}

// durationRangeField is durationField with a lower bound (which may be 0).
func durationRangeField(key string, get func(*Config) *Duration, lo, hi time.Duration) field {
	f := durationField(key, get, hi)
	f.allowed = fmt.Sprintf("a duration from %s to %s such as 500ms or 2s, or integer milliseconds",
		shortDuration(lo), shortDuration(hi))
	f.valid = func(c *Config) bool { d := get(c).Duration(); return d >= lo && d <= hi }
	return f
}
