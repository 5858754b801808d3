package groups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Record versions written to __consumer_offsets (Kafka 2.3–3.x formats).
const (
	offsetKeyVersion   = 1 // OffsetCommitKey
	offsetValueVersion = 3 // OffsetCommitValue with leader epoch
	groupKeyVersion    = 2 // GroupMetadataKey
	groupValueVersion  = 3 // GroupMetadataValue with instance ids
)

// Batches written to __consumer_offsets stay below this size, well under the topic's
// max.message.bytes; a large commit becomes several batches appended together.
const maxBatchBytes = 256 << 10

// A GroupMetadataValue larger than this is written without its members: they are informative
// only (groups restart Empty), and the record must fit a batch.
const maxGroupRecordBytes = 128 << 10

// record is one key/value to append; a nil value is a tombstone.
type record struct {
	key, value []byte
}

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.topic, Partition: tp.partition}
	return k.AppendTo(nil)
}

func offsetRecord(group string, tp topicPartition, o *committed) record {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset, v.LeaderEpoch, v.Metadata = o.offset, o.leaderEpoch, o.metadata
	v.CommitTimestamp = o.commitTime.UnixMilli()
	return record{key: offsetKey(group, tp), value: v.AppendTo(nil)}
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// groupRecord encodes g's metadata: protocol type, generation, leader and (when small enough)
// the members with their subscription and assignment.
func groupRecord(g *group) record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType, v.Generation = g.protocolType, g.generation
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateSince.UnixMilli()
	for _, m := range g.sortedMembers() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		vm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		vm.Subscription, _ = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	value := v.AppendTo(nil)
	if len(value) > maxGroupRecordBytes {
		v.Members = nil
		value = v.AppendTo(nil)
	}
	return record{key: groupKey(g.id), value: value}
}

// appendLocked writes records to __consumer_offsets in batches of at most maxBatchBytes, all
// in one Log.Append, and returns the high watermark that covers them.
func (c *Coordinator) appendLocked(recs []record) (int64, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	now := c.clock.Now().UnixMilli()
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: -1})
	var out []byte
	for i, r := range recs {
		b.Add(now, r.key, r.value, nil)
		if b.EstimatedSize() >= maxBatchBytes || i == len(recs)-1 {
			data, err := b.Build()
			if err != nil {
				return 0, fmt.Errorf("build %s batch: %w", OffsetsTopic, err)
			}
			out = append(out, data...)
		}
	}
	res, err := c.offsetsLog().Append(out)
	if err != nil {
		return 0, fmt.Errorf("append to %s: %w", OffsetsTopic, err)
	}
	return res.LastOffset + 1, nil
}

// persistGroupLocked writes g's metadata without waiting for it to be durable.
func (c *Coordinator) persistGroupLocked(g *group) {
	if _, err := c.appendLocked([]record{groupRecord(g)}); err != nil {
		c.log.Warn("group metadata not written", "group", g.id, "generation", g.generation, "err", err)
	}
}

// writeLocked appends recs and calls then with the result once the high watermark covers
// them.
func (c *Coordinator) writeLocked(recs []record, then func(error)) {
	target, err := c.appendLocked(recs)
	if err != nil {
		c.later(func() { then(err) })
		return
	}
	c.awaitLocked(target, then)
}

// awaitLocked calls then once the high watermark reaches target: queued now when it already
// has (fsync=interval), else from a goroutine. A zero target is reached.
func (c *Coordinator) awaitLocked(target int64, then func(error)) {
	if target == 0 || c.offsetsLog().HighWatermark() >= target {
		c.later(func() { then(nil) })
		return
	}
	c.waits.Add(1)
	go func() {
		defer c.waits.Done()
		then(c.offsetsLog().WaitHighWatermark(c.ctx, target))
	}()
}

// writeErrorCode maps a failed write to the code Kafka's coordinator answers.
func writeErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, commitlog.ErrMessageTooLarge), errors.Is(err, batch.ErrTooLarge):
		return kerr.InvalidCommitOffsetSize.Code
	case errors.Is(err, commitlog.ErrStorage), errors.Is(err, commitlog.ErrClosed):
		return kerr.NotCoordinator.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

// loadStats counts what a replay read.
type loadStats struct {
	records, bytes int64
	offsets        int
}

// load replays __consumer_offsets into memory: the latest value of every key wins, tombstones
// delete. Groups come back Empty.
func (c *Coordinator) load() (loadStats, error) {
	var st loadStats
	l := c.offsetsLog()
	end := l.HighWatermark()
	var buf []byte
	for off := l.LogStartOffset(); off < end; {
		rr, err := l.Read(off, 1<<20, true, commitlog.ReadToHighWatermark)
		if err != nil {
			return st, fmt.Errorf("replay %s at offset %d: %w", OffsetsTopic, off, err)
		}
		buf, err = readRanges(rr, buf[:0])
		rr.Release()
		if err != nil {
			return st, fmt.Errorf("replay %s at offset %d: %w", OffsetsTopic, off, err)
		}
		if len(buf) == 0 {
			break
		}
		st.bytes += int64(len(buf))
		next := off
		err = batch.Split(buf, func(b []byte) error {
			h, err := batch.ParseHeader(b)
			if err != nil {
				return err
			}
			next = h.LastOffset() + 1
			if h.Control() {
				return nil
			}
			return batch.Records(b, func(r *batch.Record) error {
				st.records++
				c.replayRecord(r)
				return nil
			})
		})
		if err != nil {
			return st, fmt.Errorf("replay %s at offset %d: %w", OffsetsTopic, off, err)
		}
		if next <= off {
			return st, fmt.Errorf("replay %s: no progress at offset %d", OffsetsTopic, off)
		}
		off = next
	}
	for _, g := range c.groups {
		st.offsets += len(g.offsets)
	}
	return st, nil
}

// readRanges appends the bytes of a read's file ranges to dst.
func readRanges(rr commitlog.ReadResult, dst []byte) ([]byte, error) {
	for _, fr := range rr.Ranges {
		start := len(dst)
		dst = append(dst, make([]byte, fr.Len)...)
		if _, err := fr.File.ReadAt(dst[start:], fr.Pos); err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", fr.File.Name(), fr.Pos, err)
		}
	}
	return dst, nil
}

// replayRecord applies one record of __consumer_offsets. Records it does not understand
// (newer formats, KIP-848 groups) are skipped with a debug log.
func (c *Coordinator) replayRecord(r *batch.Record) {
	if len(r.Key) < 2 {
		c.log.Warn("skipping a record without a key version", "topic", OffsetsTopic, "offset", r.Offset)
		return
	}
	var err error
	switch version := int16(binary.BigEndian.Uint16(r.Key)); version {
	case 0, 1:
		err = c.replayOffset(r)
	case 2:
		err = c.replayGroup(r)
	default:
		c.log.Debug("skipping a record of an unknown key version", "topic", OffsetsTopic, "offset", r.Offset, "version", version)
	}
	if err != nil {
		c.log.Warn("skipping an unreadable record", "topic", OffsetsTopic, "offset", r.Offset, "err", err)
	}
}

// groupForReplay returns the group named in a replayed record, creating it: max_groups does
// not apply to what is already stored.
func (c *Coordinator) groupForReplay(id string) *group {
	g := c.groups[id]
	if g == nil {
		g = newGroup(id, c.clock.Now())
		c.groups[id] = g
	}
	return g
}

// offsetRef names one committed offset of one group.
type offsetRef struct {
	group string
	tp    topicPartition
}

// tombstoneStaleLocked writes tombstones for the offsets the replay dropped as committed to a
// deleted topic, so that the next replay does not read them again.
func (c *Coordinator) tombstoneStaleLocked() {
	if len(c.staleOffsets) == 0 {
		return
	}
	recs := make([]record, 0, len(c.staleOffsets))
	for ref := range c.staleOffsets {
		recs = append(recs, record{key: offsetKey(ref.group, ref.tp)})
	}
	c.staleOffsets = nil
	if _, err := c.appendLocked(recs); err != nil {
		c.log.Warn("tombstones for offsets of deleted topics not written", "err", err)
	}
}

func (c *Coordinator) replayOffset(r *batch.Record) error {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(r.Key); err != nil {
		return fmt.Errorf("offset commit key: %w", err)
	}
	tp := topicPartition{topic: k.Topic, partition: k.Partition}
	delete(c.staleOffsets, offsetRef{group: k.Group, tp: tp}) // a later record decides
	if r.Value == nil {
		if g := c.groups[k.Group]; g != nil {
			delete(g.offsets, tp)
		}
		return nil
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(r.Value); err != nil {
		return fmt.Errorf("offset commit value for %s %s[%d]: %w", k.Group, k.Topic, k.Partition, err)
	}
	o := &committed{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTime: time.UnixMilli(v.CommitTimestamp)}
	if v.Version >= 3 {
		o.leaderEpoch = v.LeaderEpoch
	}
	if t := c.store.Topic(k.Topic); t != nil {
		if v.CommitTimestamp < t.CreatedAt().UnixMilli() {
			// Committed to an earlier topic of this name, deleted since: drop it (a
			// tombstone is written after the replay) rather than give it the new topic's id.
			if g := c.groups[k.Group]; g != nil {
				delete(g.offsets, tp)
			}
			c.staleOffsets[offsetRef{group: k.Group, tp: tp}] = struct{}{}
			return nil
		}
		o.topicID = t.ID()
	}
	c.groupForReplay(k.Group).offsets[tp] = o
	return nil
}

func (c *Coordinator) replayGroup(r *batch.Record) error {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(r.Key); err != nil {
		return fmt.Errorf("group metadata key: %w", err)
	}
	if r.Value == nil {
		if g := c.groups[k.Group]; g != nil {
			if len(g.offsets) == 0 {
				delete(c.groups, k.Group)
			} else {
				g.protocolType, g.generation = "", 0
			}
		}
		return nil
	}
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(r.Value); err != nil {
		return fmt.Errorf("group metadata value for %s: %w", k.Group, err)
	}
	// The group is Empty from now on (its members must rejoin): stateSince stays the load
	// time, which is when offset retention starts counting.
	g := c.groupForReplay(k.Group)
	g.protocolType, g.generation = v.ProtocolType, v.Generation
	return nil
}
