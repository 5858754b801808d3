package groups

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Defaults of Options. Kafka's broker config names are in parentheses.
const (
	DefaultMinSessionTimeout      = 6 * time.Second    // group.min.session.timeout.ms
	DefaultMaxSessionTimeout      = 30 * time.Minute   // group.max.session.timeout.ms
	DefaultMaxGroups              = 10000              // samsa's own cap
	DefaultMaxGroupSize           = 1000               // group.max.size
	DefaultMaxMemberMetadataBytes = 1 << 20            // per member, metadata and assignment each
	DefaultMaxMetadataBytes       = 64 << 20           // all members of all groups
	DefaultOffsetsRetention       = 7 * 24 * time.Hour // offsets.retention.minutes
	DefaultSweepInterval          = time.Minute        // offsets.retention.check.interval.ms
	DefaultOffsetsSegmentBytes    = 8 << 20            // segment.bytes of __consumer_offsets
	MaxOffsetMetadataBytes        = 4096               // offset.metadata.max.bytes
)

// OffsetsTopic is the internal topic holding group metadata and committed offsets.
const OffsetsTopic = "__consumer_offsets"

// Options configures a Coordinator. Zero values get the defaults above, except
// InitialRebalanceDelay, whose zero means no delay (the agent's config supplies Kafka's 3s).
type Options struct {
	Store  *commitlog.Store // required
	Clock  Clock            // default: the system clock
	Logger *slog.Logger     // default slog.Default()

	MinSessionTimeout     time.Duration // a JoinGroup's session timeout must be >= this
	MaxSessionTimeout     time.Duration // ... and <= this (INVALID_SESSION_TIMEOUT otherwise)
	InitialRebalanceDelay time.Duration // first join phase of an Empty group waits this long

	MaxGroups              int           // groups held at once
	MaxGroupSize           int           // members plus pending member ids per group
	MaxMemberMetadataBytes int           // one member's protocols, or one assignment
	MaxMetadataBytes       int64         // every member's protocols and assignment together
	OffsetsRetention       time.Duration // offsets of an Empty group expire this long after commit/emptying
	SweepInterval          time.Duration // how often deleted topics and expired offsets are swept
	OffsetsSegmentBytes    int64         // segment.bytes of a newly created __consumer_offsets
}

// validate applies defaults and checks the options.
func (o *Options) validate() error {
	if o.Store == nil {
		return errors.New("groups: Options.Store is required")
	}
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	setDefault(&o.MinSessionTimeout, DefaultMinSessionTimeout)
	setDefault(&o.MaxSessionTimeout, DefaultMaxSessionTimeout)
	setDefault(&o.MaxGroups, DefaultMaxGroups)
	setDefault(&o.MaxGroupSize, DefaultMaxGroupSize)
	setDefault(&o.MaxMemberMetadataBytes, DefaultMaxMemberMetadataBytes)
	setDefault(&o.MaxMetadataBytes, DefaultMaxMetadataBytes)
	setDefault(&o.OffsetsRetention, DefaultOffsetsRetention)
	setDefault(&o.SweepInterval, DefaultSweepInterval)
	setDefault(&o.OffsetsSegmentBytes, DefaultOffsetsSegmentBytes)
	switch {
	case o.MinSessionTimeout > o.MaxSessionTimeout:
		return fmt.Errorf("groups: min session timeout %s is above the max %s", o.MinSessionTimeout, o.MaxSessionTimeout)
	case o.InitialRebalanceDelay < 0:
		return fmt.Errorf("groups: negative initial rebalance delay %s", o.InitialRebalanceDelay)
	case o.MaxMetadataBytes < int64(o.MaxMemberMetadataBytes):
		return fmt.Errorf("groups: metadata budget %d is below one member's cap %d", o.MaxMetadataBytes, o.MaxMemberMetadataBytes)
	}
	return nil
}

// setDefault replaces a zero or negative value by def.
func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
