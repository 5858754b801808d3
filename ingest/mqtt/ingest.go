package mqtt

import (
	"context"
	"errors"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// The ingest pipeline: paho calls onMessage for each message, one at a time and in the order
// received (SetOrderMatters). onMessage maps the message to a topic and key, waits for room
// under the in-flight bounds (which stops paho from reading more: backpressure, not a buffer),
// queues it for acknowledgement in arrival order and hands it to the batcher. The batcher builds
// one RecordBatch per partition, appends it when it is full or lingered long enough, retrying
// with backoff while the log refuses writes, and passes the appended offsets to the acker. The
// acker waits until the high watermark covers each batch (durable under the agent's fsync
// policy) and acknowledges the messages, in the order they arrived.

// Backoffs of the ingest pipeline.
const (
	appendBackoffMin = 50 * time.Millisecond
	appendBackoffMax = 2 * time.Second
)

// dropReason says why a message is acknowledged without a record.
type dropReason uint8

const (
	dropNone         dropReason = iota
	dropNoRule                  // no subscribe rule's filter matches its topic (a subscription of an older configuration)
	dropInvalidTopic            // the topic template rendered a name Kafka does not allow
	dropTooLarge                // a single record larger than the topic's max.message.bytes
	dropInvalid                 // the log refused the record for good (e.g. a failed build)
	dropNullKey                 // egress: a record without a key for a {key} template
	dropBadMQTTTopic            // egress: the mqtt_topic template rendered an invalid topic name
	numDropReasons
)

var dropNames = [numDropReasons]string{"", "no_rule", "invalid_topic", "too_large", "invalid_record", "null_key", "invalid_mqtt_topic"}

// inMsg is an MQTT message in the pipeline.
type inMsg struct {
	msg   paho.Message
	topic string // the record's topic
	key   []byte
	ts    int64 // receipt time, ms
	size  int64 // payload bytes, counted against MaxInFlightBytes
	drop  dropReason
	done  bool // durable (or dropped): may be acknowledged; guarded by ackQueue.mu
}

// ackJob is a set of messages that are durable once log's high watermark reaches end (log nil:
// nothing to wait for).
type ackJob struct {
	log  *commitlog.Log
	end  int64
	msgs []*inMsg
}

type ingest struct {
	b     *Bridge
	lim   limiter
	queue ackQueue
	in    chan *inMsg
	jobs  chan ackJob

	stopBatcher chan struct{}
	batcherDone chan struct{}
	ackerDone   chan struct{}
	ackCtx      context.Context
	ackCancel   context.CancelFunc
}

func (in *ingest) init(b *Bridge) {
	in.b = b
	in.lim = limiter{maxN: int64(b.opts.MaxInFlight), maxBytes: b.opts.MaxInFlightBytes, wake: make(chan struct{})}
	// Every message in the pipeline holds one unit of the limiter and belongs to one job, so
	// channels as large as the bound never block their senders.
	in.in = make(chan *inMsg, b.opts.MaxInFlight)
	in.jobs = make(chan ackJob, b.opts.MaxInFlight)
	in.stopBatcher = make(chan struct{})
	in.batcherDone = make(chan struct{})
	in.ackerDone = make(chan struct{})
	in.ackCtx, in.ackCancel = context.WithCancel(context.Background())
}

func (in *ingest) start() {
	go in.runBatcher()
	go in.runAcker()
}

// stop appends what is batched and acknowledges what becomes durable before ctx ends.
func (in *ingest) stop(ctx context.Context) error {
	close(in.stopBatcher)
	<-in.batcherDone
	select {
	case <-in.ackerDone:
		in.ackCancel()
		return nil
	case <-ctx.Done():
		in.ackCancel()
		<-in.ackerDone
		return nil // the broker delivers the unacknowledged messages again: nothing is lost
	}
}

// onMessage is paho's handler for every message (see the pipeline comment above).
func (in *ingest) onMessage(_ paho.Client, pm paho.Message) {
	b := in.b
	select {
	case <-b.closing:
		return // not acknowledged: the broker delivers it again on the next connection
	default:
	}
	b.m.in.Add(1)
	m := &inMsg{msg: pm, ts: time.Now().UnixMilli(), size: int64(len(pm.Payload()))}
	in.route(m)
	if !in.lim.acquire(m.size, b.closing) {
		return
	}
	in.queue.push(m)
	select {
	case in.in <- m:
	case <-b.closing:
	}
}

// route sets the message's topic and key from the first rule whose filter matches, or a drop
// reason.
func (in *ingest) route(m *inMsg) {
	topic := m.msg.Topic()
	for i := range in.b.c.subs {
		s := &in.b.c.subs[i]
		if !matchFilter(s.Filter, topic) {
			continue
		}
		env := renderEnv{mqttTopic: topic}
		m.topic = string(s.topic.render(nil, &env))
		if err := commitlog.ValidateTopicName(m.topic); err != nil {
			m.drop = dropInvalidTopic
			in.b.warn("invalid_topic", "mqtt message mapped to an invalid topic name; acknowledged and dropped",
				"mqtt_topic", topic, "filter", s.Filter, "template", s.Topic, "err", err)
			return
		}
		m.key = s.key.render(make([]byte, 0, len(topic)), &env)
		return
	}
	m.drop = dropNoRule
	in.b.warn("no_rule", "mqtt message matches no subscribe rule (a subscription the broker kept from an older configuration?); acknowledged and dropped",
		"mqtt_topic", topic)
}

// Header values, shared by every record.
var (
	qosValues    = [3][]byte{[]byte("0"), []byte("1"), []byte("2")}
	retainValues = [2][]byte{[]byte("false"), []byte("true")}
)

// addRecord adds m's record to bld: the payload as value, with headers mqtt.topic, mqtt.qos and
// mqtt.retain. hdrs is scratch space.
func addRecord(bld *batch.Builder, m *inMsg, hdrs []batch.RecordHeader) {
	retain := 0
	if m.msg.Retained() {
		retain = 1
	}
	hdrs = append(hdrs[:0],
		batch.RecordHeader{Key: "mqtt.topic", Value: []byte(m.msg.Topic())},
		batch.RecordHeader{Key: "mqtt.qos", Value: qosValues[min(m.msg.Qos(), 2)]},
		batch.RecordHeader{Key: "mqtt.retain", Value: retainValues[retain]})
	value := m.msg.Payload()
	if value == nil {
		value = []byte{}
	}
	bld.Add(m.ts, m.key, value, hdrs)
}

// recordSize estimates the bytes a message adds to a batch.
func recordSize(m *inMsg) int {
	return len(m.msg.Payload()) + len(m.key) + len(m.msg.Topic()) + 64
}

// runAcker acknowledges durable messages in arrival order and frees their in-flight room.
func (in *ingest) runAcker() {
	defer close(in.ackerDone)
	b := in.b
	for job := range in.jobs {
		if job.log != nil && !in.waitDurable(job) {
			return // closing: the rest stays unacknowledged and is delivered again
		}
		for _, m := range in.queue.complete(job.msgs) {
			if m.drop != dropNone {
				b.m.dropped[m.drop].Add(1)
			}
			m.msg.Ack() // no-op at QoS 0
			b.m.acked.Add(1)
			in.lim.release(m.size)
		}
	}
}

// waitDurable waits until job's records are durable, retrying while the log fails; false when
// the bridge stops first.
func (in *ingest) waitDurable(job ackJob) bool {
	backoff := appendBackoffMin
	for {
		err := job.log.WaitHighWatermark(in.ackCtx, job.end)
		switch {
		case err == nil:
			return true
		case in.ackCtx.Err() != nil:
			return false
		case errors.Is(err, commitlog.ErrClosed):
			// The topic was deleted after the append: its records went with it, as they would
			// have a moment later had they been acknowledged.
			in.b.warn("deleted", "topic deleted while its records were being made durable; acknowledging them",
				"topic", job.log.Topic(), "err", err)
			return true
		}
		in.b.m.durableRetries.Add(1)
		in.b.warn("durable", "records appended but not durable (the partition failed); not acknowledging, retrying",
			"topic", job.log.Topic(), "partition", job.log.Partition(), "err", err)
		select {
		case <-time.After(backoff):
		case <-in.ackCtx.Done():
			return false
		}
		backoff = min(2*backoff, appendBackoffMax)
	}
}

// limiter bounds the messages and payload bytes in flight. One message is always admitted
// when none is in flight, whatever its size.
type limiter struct {
	mu             sync.Mutex
	n, bytes       int64
	maxN, maxBytes int64
	wake           chan struct{} // closed and replaced on every release
}

// acquire waits for room for one message of size bytes; false if stop closes first.
func (l *limiter) acquire(size int64, stop <-chan struct{}) bool {
	for {
		l.mu.Lock()
		if l.n == 0 || l.n < l.maxN && l.bytes+size <= l.maxBytes {
			l.n++
			l.bytes += size
			l.mu.Unlock()
			return true
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-stop:
			return false
		}
	}
}

func (l *limiter) release(size int64) {
	l.mu.Lock()
	l.n--
	l.bytes -= size
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// inFlight returns the messages and bytes in flight.
func (l *limiter) inFlight() (n, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.bytes
}

// ackQueue holds the messages in flight in arrival order; they are acknowledged from the front
// as they complete.
type ackQueue struct {
	mu   sync.Mutex
	q    []*inMsg
	head int
}

func (a *ackQueue) push(m *inMsg) {
	a.mu.Lock()
	a.q = append(a.q, m)
	a.mu.Unlock()
}

// complete marks msgs done and returns the messages now ready at the front, in order.
func (a *ackQueue) complete(msgs []*inMsg) []*inMsg {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range msgs {
		m.done = true
	}
	start := a.head
	for a.head < len(a.q) && a.q[a.head].done {
		a.head++
	}
	ready := make([]*inMsg, a.head-start)
	copy(ready, a.q[start:a.head])
	clear(a.q[start:a.head])
	if a.head == len(a.q) {
		a.q, a.head = a.q[:0], 0
	} else if a.head > len(a.q)/2 {
		n := copy(a.q, a.q[a.head:])
		clear(a.q[n:])
		a.q, a.head = a.q[:n], 0
	}
	return ready
}
