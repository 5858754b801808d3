package groups

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Limits on client-chosen identifiers, so that maps keyed by them stay small.
const (
	maxGroupIDLen    = 1024 // longer group ids get INVALID_GROUP_ID where a group would be created
	maxInstanceIDLen = 249  // Kafka's rule for group.instance.id
	maxClientIDInID  = 128  // client id characters kept in a generated member id
)

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("group coordinator closed")

// Client describes the connection a request came from.
type Client struct {
	ID   string // the request header's client id
	Host string // the peer's address, e.g. "/127.0.0.1" as Kafka shows it
}

// Coordinator runs every consumer group of this node and keeps committed offsets in
// __consumer_offsets. See the package documentation.
type Coordinator struct {
	opts   Options
	store  *commitlog.Store
	log    *slog.Logger
	clock  Clock
	topic  *commitlog.Topic
	ctx    context.Context // cancelled by Close: ends high watermark waits
	cancel context.CancelFunc

	mu        sync.Mutex
	groups    map[string]*group
	metaBytes int64    // member protocols and assignments held, over all groups
	queued    []func() // callbacks to run once mu is released
	closed    bool
	timerSeq  uint64
	sweeper   Timer
	capWarned time.Time // last "max_groups reached" warning
	// staleOffsets are the offsets the replay dropped as committed before their topic was
	// (re-)created; tombstoned once the replay ends.
	staleOffsets map[offsetRef]struct{}
	waits        sync.WaitGroup
}

// New opens (creating if needed) __consumer_offsets, replays it and returns a running
// coordinator. Close it before closing the store.
func New(opts Options) (*Coordinator, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Coordinator{opts: opts, store: opts.Store, log: opts.Logger, clock: opts.Clock, groups: map[string]*group{},
		staleOffsets: map[offsetRef]struct{}{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	t, err := c.openTopic()
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.topic = t
	start := time.Now()
	stats, err := c.load()
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.log.Info("group coordinator ready", "groups", len(c.groups), "offsets", stats.offsets,
		"records", stats.records, "bytes", stats.bytes, "replay", time.Since(start).Round(time.Millisecond))
	c.mu.Lock()
	c.tombstoneStaleLocked()
	c.sweepLocked()
	c.scheduleSweepLocked()
	c.unlock()
	return c, nil
}

// openTopic returns __consumer_offsets, creating it when missing.
func (c *Coordinator) openTopic() (*commitlog.Topic, error) {
	if t := c.store.Topic(OffsetsTopic); t != nil {
		return t, nil
	}
	cfg := map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  strconv.FormatInt(c.opts.OffsetsSegmentBytes, 10),
	}
	t, err := c.store.CreateTopic(OffsetsTopic, 1, cfg, false)
	if errors.Is(err, commitlog.ErrTopicExists) {
		t = c.store.Topic(OffsetsTopic)
	} else if err != nil {
		return nil, fmt.Errorf("create %s: %w", OffsetsTopic, err)
	}
	if t == nil {
		return nil, fmt.Errorf("open %s: %w", OffsetsTopic, commitlog.ErrUnknownTopic)
	}
	return t, nil
}

// offsetsLog is partition 0 of __consumer_offsets.
func (c *Coordinator) offsetsLog() *commitlog.Log { return c.topic.Partition(0) }

// Close answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR, stops the timers
// and waits for commits in flight. Later calls answer COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.sweeper != nil {
		c.sweeper.Stop()
	}
	for _, g := range c.groups {
		c.stopGroupLocked(g, kerr.NotCoordinator.Code)
	}
	c.unlock()
	c.cancel()
	c.waits.Wait()
	c.log.Info("group coordinator closed")
	return nil
}

// stopGroupLocked answers g's waiting calls with code and stops its timers.
func (c *Coordinator) stopGroupLocked(g *group, code int16) {
	for _, m := range g.members {
		c.answerJoinErrLocked(m, code)
		c.answerSyncErrLocked(m, code)
		if m.timer != nil {
			m.timer.Stop()
		}
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	c.stopJoinTimerLocked(g)
	c.stopSyncTimerLocked(g)
}

// later queues f to run after mu is released. Caller holds mu.
func (c *Coordinator) later(f func()) { c.queued = append(c.queued, f) }

// unlock releases mu and runs the callbacks queued meanwhile.
func (c *Coordinator) unlock() {
	q := c.queued
	c.queued = nil
	c.mu.Unlock()
	for _, f := range q {
		f()
	}
}

// afterFunc runs f with mu held after d, unless the coordinator closed by then.
func (c *Coordinator) afterFunc(d time.Duration, f func()) Timer {
	return c.clock.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.unlock()
		if !c.closed {
			f()
		}
	})
}

// nextSeq returns a fresh timer sequence number. Caller holds mu.
func (c *Coordinator) nextSeq() uint64 {
	c.timerSeq++
	return c.timerSeq
}

// groupForCreate returns the group, creating it when there is room. The code is
// COORDINATOR_NOT_AVAILABLE when max_groups is reached. Caller holds mu.
func (c *Coordinator) groupForCreate(id string) (*group, int16) {
	if g := c.groups[id]; g != nil {
		return g, 0
	}
	if id == "" || len(id) > maxGroupIDLen {
		return nil, kerr.InvalidGroupID.Code
	}
	if len(c.groups) >= c.opts.MaxGroups {
		now := c.clock.Now()
		if now.Sub(c.capWarned) >= time.Minute {
			c.capWarned = now
			c.log.Warn("refusing a new consumer group: max_groups reached", "max_groups", c.opts.MaxGroups, "group", truncate(id, 64))
		}
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	g := newGroup(id, c.clock.Now())
	c.groups[id] = g
	return g, 0
}

// removeGroupLocked forgets g (DeleteGroups, or an Empty group with nothing left).
func (c *Coordinator) removeGroupLocked(g *group) {
	c.stopGroupLocked(g, kerr.CoordinatorNotAvailable.Code)
	for _, m := range g.members {
		c.metaBytes -= m.metaBytes
	}
	g.setState(stateDead, c.clock.Now())
	delete(c.groups, g.id)
}

// newMemberID makes a member id as Kafka does: client id (or instance id), "-", a UUID.
func newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return truncate(prefix, maxClientIDInID) + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// truncate cuts s to at most n bytes, for ids and logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// touch records that m was heard from and makes sure its session timer runs.
func (c *Coordinator) touch(g *group, m *member) {
	m.lastSeen = c.clock.Now()
	if m.timer == nil {
		c.scheduleSessionLocked(g, m, m.sessionTimeout)
	}
}

// scheduleSessionLocked sets m's session timer to check it after d.
func (c *Coordinator) scheduleSessionLocked(g *group, m *member, d time.Duration) {
	if m.timer != nil {
		m.timer.Stop()
	}
	seq := c.nextSeq()
	m.timerSeq = seq
	m.timer = c.afterFunc(d, func() { c.checkSessionLocked(g, m, seq) })
}

// checkSessionLocked runs when m's session timer fires: m expires unless it was heard from
// within its session timeout or waits in JoinGroup or SyncGroup.
func (c *Coordinator) checkSessionLocked(g *group, m *member, seq uint64) {
	if c.groups[g.id] != g || g.members[m.id] != m || m.timerSeq != seq {
		return
	}
	m.timer = nil
	now := c.clock.Now()
	switch {
	case m.joinDone != nil && m.isNew && now.Sub(m.lastSeen) >= newMemberJoinTimeout:
	case m.waiting():
		c.scheduleSessionLocked(g, m, m.sessionTimeout)
		return
	case now.Sub(m.lastSeen) < m.sessionTimeout:
		c.scheduleSessionLocked(g, m, m.sessionTimeout-now.Sub(m.lastSeen))
		return
	}
	c.log.Info("group member session expired", "group", g.id, "member", m.id, "generation", g.generation,
		"session_timeout", m.sessionTimeout)
	c.removeMemberAndUpdateLocked(g, m)
}

// scheduleSweepLocked arms the next sweep.
func (c *Coordinator) scheduleSweepLocked() {
	c.sweeper = c.afterFunc(c.opts.SweepInterval, func() {
		c.sweepLocked()
		c.scheduleSweepLocked()
	})
}

// Sweep drops the offsets of deleted topics, expires the offsets of long-Empty groups and
// deletes Empty groups with nothing left. It runs every Options.SweepInterval; tests call it.
func (c *Coordinator) Sweep() {
	c.mu.Lock()
	defer c.unlock()
	if !c.closed {
		c.sweepLocked()
	}
}

// NumGroups is the number of groups held.
func (c *Coordinator) NumGroups() int {
	c.mu.Lock()
	defer c.unlock()
	return len(c.groups)
}
