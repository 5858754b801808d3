package mqtt

import (
	"errors"
	"fmt"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// errStopping: the bridge closes while the batcher waits; what is pending stays unacknowledged.
var errStopping = errors.New("mqtt bridge stopping")

// errNoTopic: a rule maps a message to a topic that does not exist and may not be created.
var errNoTopic = errors.New("topic does not exist and auto_create_topics is off")

// partKey names a partition.
type partKey struct {
	topic     string
	partition int32
}

// openBatch is the batch being built for one partition.
type openBatch struct {
	log   *commitlog.Log
	bld   *batch.Builder
	msgs  []*inMsg
	limit int // bytes: MaxBatchBytes capped by the topic's max.message.bytes
}

// batcher is the state of runBatcher's goroutine.
type batcher struct {
	in    *ingest
	open  map[partKey]*openBatch
	hdrs  []batch.RecordHeader
	timer *time.Timer
	armed bool
}

// runBatcher collects messages into per-partition batches and appends them when full or when
// the oldest has lingered Options.Linger; on stop it appends what it holds and returns.
func (in *ingest) runBatcher() {
	defer close(in.batcherDone)
	defer close(in.jobs)
	bt := &batcher{in: in, open: map[partKey]*openBatch{}, timer: time.NewTimer(time.Hour)}
	bt.timer.Stop()
	defer bt.timer.Stop()
	for {
		select {
		case m := <-in.in:
			bt.add(m)
		case <-bt.timer.C:
			bt.armed = false
			bt.flushAll()
		case <-in.stopBatcher:
			for {
				select {
				case m := <-in.in:
					bt.add(m)
					continue
				default:
				}
				break
			}
			bt.flushAll()
			return
		}
	}
}

// add puts a message into its partition's batch, appending batches that are full.
func (bt *batcher) add(m *inMsg) {
	in := bt.in
	if m.drop != dropNone {
		in.jobs <- ackJob{msgs: []*inMsg{m}}
		return
	}
	log, limit, err := bt.partition(m.topic, m.key)
	if err != nil {
		if !errors.Is(err, errStopping) {
			m.drop = dropInvalidTopic
			in.b.warn("create", "cannot create the topic of an mqtt message; acknowledged and dropped", "topic", m.topic, "err", err)
			in.jobs <- ackJob{msgs: []*inMsg{m}}
		}
		return
	}
	k := partKey{m.topic, log.Partition()}
	ob := bt.open[k]
	if ob != nil && ob.log != log { // the topic was re-created meanwhile
		bt.flush(ob)
		ob = nil
	}
	if ob == nil {
		ob = &openBatch{log: log, bld: batch.NewBuilder(batch.BuildOptions{ProducerID: -1, Codec: in.b.c.codec}), limit: limit}
		bt.open[k] = ob
	}
	if len(ob.msgs) > 0 && ob.bld.EstimatedSize()+recordSize(m) > ob.limit {
		bt.flush(ob)
	}
	addRecord(ob.bld, m, bt.hdrs)
	ob.msgs = append(ob.msgs, m)
	if ob.bld.EstimatedSize() >= ob.limit {
		bt.flush(ob)
		delete(bt.open, k)
	}
	if len(bt.open) > 0 && !bt.armed {
		bt.timer.Reset(in.b.opts.Linger)
		bt.armed = true
	}
}

// flushAll appends every open batch.
func (bt *batcher) flushAll() {
	for k, ob := range bt.open {
		bt.flush(ob)
		delete(bt.open, k)
	}
	if bt.armed {
		bt.timer.Stop()
		bt.armed = false
	}
}

// flush appends ob's batch (retrying while the log refuses it) and empties ob.
func (bt *batcher) flush(ob *openBatch) {
	msgs := ob.msgs
	ob.msgs = nil
	if len(msgs) == 0 {
		return
	}
	data, err := ob.bld.Build()
	if err != nil {
		bt.dropAll(msgs, dropInvalid, err)
		return
	}
	bt.appendRetry(ob.log, data, msgs)
}

// appendRetry appends data (the batch of msgs) to log. While the log refuses writes (disk
// guard, a failed disk) it retries with backoff, holding the messages unacknowledged; when the
// bridge closes meanwhile it gives up (the broker delivers them again later).
func (bt *batcher) appendRetry(log *commitlog.Log, data []byte, msgs []*inMsg) {
	in := bt.in
	b := in.b
	backoff := appendBackoffMin
	for {
		res, err := log.Append(data)
		if err == nil {
			b.m.appended.Add(int64(len(msgs)))
			b.m.batches.Add(1)
			in.jobs <- ackJob{log: log, end: res.LastOffset + 1, msgs: msgs}
			return
		}
		switch {
		case errors.Is(err, commitlog.ErrMessageTooLarge) && len(msgs) > 1:
			bt.appendEach(log, msgs) // compression did not shrink it under max.message.bytes
			return
		case errors.Is(err, commitlog.ErrMessageTooLarge):
			bt.dropAll(msgs, dropTooLarge, err)
			return
		case errors.Is(err, commitlog.ErrInvalidRecord), errors.Is(err, commitlog.ErrCorrupt),
			errors.Is(err, commitlog.ErrTransactionalBatch):
			bt.dropAll(msgs, dropInvalid, err)
			return
		case errors.Is(err, commitlog.ErrClosed), errors.Is(err, commitlog.ErrUnknownTopic):
			// The topic was deleted (or the store is closing): route the messages again.
			if !bt.sleep(backoff) {
				return
			}
			bt.reroute(msgs)
			return
		}
		b.m.appendRetries.Add(1)
		b.warn("append", "the log refuses the bridge's records; not acknowledging them to the broker, retrying",
			"topic", log.Topic(), "partition", log.Partition(), "records", len(msgs), "err", err)
		if !bt.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, appendBackoffMax)
	}
}

// appendEach appends each message as a batch of its own.
func (bt *batcher) appendEach(log *commitlog.Log, msgs []*inMsg) {
	bld := batch.NewBuilder(batch.BuildOptions{ProducerID: -1, Codec: bt.in.b.c.codec})
	for _, m := range msgs {
		addRecord(bld, m, bt.hdrs)
		data, err := bld.Build()
		if err != nil {
			bt.dropAll([]*inMsg{m}, dropInvalid, err)
			continue
		}
		bt.appendRetry(log, data, []*inMsg{m})
	}
}

// reroute appends messages again after their topic went away: to the topic as it is now
// (re-created, or missing), partitioned again, in order.
func (bt *batcher) reroute(msgs []*inMsg) {
	for _, m := range msgs {
		log, _, err := bt.partition(m.topic, m.key)
		if err != nil {
			if !errors.Is(err, errStopping) {
				bt.dropAll([]*inMsg{m}, dropInvalidTopic, err)
			}
			continue
		}
		bld := batch.NewBuilder(batch.BuildOptions{ProducerID: -1, Codec: bt.in.b.c.codec})
		addRecord(bld, m, bt.hdrs)
		data, err := bld.Build()
		if err != nil {
			bt.dropAll([]*inMsg{m}, dropInvalid, err)
			continue
		}
		bt.appendRetry(log, data, []*inMsg{m})
	}
}

// dropAll acknowledges messages that can never be appended, with a warning.
func (bt *batcher) dropAll(msgs []*inMsg, why dropReason, err error) {
	for _, m := range msgs {
		m.drop = why
	}
	bt.in.b.warn("drop_"+dropNames[why], "mqtt messages the log cannot take; acknowledged and dropped",
		"reason", dropNames[why], "messages", len(msgs), "err", err)
	bt.in.jobs <- ackJob{msgs: msgs}
}

// partition returns the log a record of topic with key goes to, creating the topic when
// allowed, and the batch size limit for it. A missing topic that may not be created is waited
// for (with a warning); errStopping when the bridge closes meanwhile.
func (bt *batcher) partition(topic string, key []byte) (*commitlog.Log, int, error) {
	b := bt.in.b
	o := b.opts
	backoff := appendBackoffMin
	for {
		t := o.Store.Topic(topic)
		var err error
		if t == nil && o.AutoCreateTopics {
			t, err = o.Store.CreateTopic(topic, o.DefaultPartitions, nil, false)
			switch {
			case err == nil:
				b.log.Info("created topic for mqtt messages", "topic", topic, "partitions", o.DefaultPartitions)
			case errors.Is(err, commitlog.ErrTopicExists):
				t, err = o.Store.Topic(topic), nil
			case errors.Is(err, commitlog.ErrInvalidTopic), errors.Is(err, commitlog.ErrInvalidConfig),
				errors.Is(err, commitlog.ErrInvalidPartitions):
				return nil, 0, err
			}
		} else if t == nil {
			err = fmt.Errorf("%w: %q", errNoTopic, topic)
		}
		if t != nil {
			if n := t.NumPartitions(); n > 0 {
				if l := t.Partition(partitionFor(key, n)); l != nil {
					limit := o.MaxBatchBytes
					if mm := int(t.Config().MaxMessageBytes); mm > 0 && mm < limit {
						limit = mm
					}
					return l, limit, nil
				}
			}
			err = fmt.Errorf("topic %q has no partitions open", topic)
		}
		b.m.appendRetries.Add(1)
		b.warn("topic", "no topic for mqtt messages; not acknowledging them, retrying", "topic", topic, "err", err)
		if !bt.sleep(backoff) {
			return nil, 0, errStopping
		}
		backoff = min(2*backoff, appendBackoffMax)
	}
}

// sleep waits d; false when the batcher is told to stop meanwhile (or the bridge closes).
func (bt *batcher) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-bt.in.stopBatcher:
		return false
	case <-bt.in.b.closing:
		return false
	}
}

// partitionFor is Kafka's default partitioner for keyed records (murmur2 of the key, positive,
// modulo the partition count), so the records of a key land where a Kafka producer would put
// them.
func partitionFor(key []byte, n int32) int32 {
	if n <= 1 {
		return 0
	}
	return int32(uint32(murmur2(key))&0x7fffffff) % n
}

// murmur2 is Kafka's Utils.murmur2.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}
