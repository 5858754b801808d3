package mqtt

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// The egress pipeline: per publish rule, a manager goroutine watches the topic (it may not
// exist yet, gain partitions, or be deleted and re-created) and runs one worker per partition.
// A worker starts at the egress consumer group's committed offset (GroupID), reads the log up to
// the high watermark straight from the segment files, and publishes each record through paho,
// keeping at most MaxInFlight publishes unacknowledged. Completed publishes advance the
// partition's acknowledged offset in order; a committer goroutine commits those offsets through
// the group coordinator as they advance, so a restart resumes after the last record the broker
// acknowledged. A publish that fails, or was made on a connection that has since been lost
// (paho does not send it again: sessionStore), rewinds the worker to the acknowledged offset,
// and it publishes again, in offset order, once connected: records may be published twice,
// never skipped.

// Egress timing.
const (
	egressReadBytes    = 256 << 10
	topicCheckInterval = time.Second
	publishStall       = time.Minute // a publish unacknowledged this long while connected is redone
	rewindBackoff      = time.Second
	offsetRefresh      = time.Hour // committed offsets are re-committed so that offsets_retention never expires them
	commitBackoffMax   = 5 * time.Second
)

// errRewind: a publish failed; the worker goes back to the acknowledged offset.
var errRewind = errors.New("publish failed: rewind")

type egress struct {
	b      *Bridge
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // rule managers (and through them the partition workers)
	wake   chan struct{}  // asks the committer to commit
	done   chan struct{}  // closed when the committer has returned

	mu    sync.Mutex
	parts []*egressPart // every partition worker's state, for commits and metrics
}

// egressPart is one partition's egress state.
type egressPart struct {
	rule      *compiledPub
	log       *commitlog.Log
	acked     atomic.Int64 // every record below is acknowledged by the broker; -1 before the start
	committed atomic.Int64 // the offset last committed; -1 none
	inflight  atomic.Int64
}

// pendingPub is a publish awaiting its acknowledgement; tok nil marks offsets passed without a
// publish (dropped records, compaction gaps, control batches). epoch is the connection epoch
// before the publish: once a connection is lost, its publishes are never acknowledged (paho
// does not send them again, see sessionStore), so the worker rewinds.
type pendingPub struct {
	offset int64
	tok    paho.Token
	sent   time.Time
	epoch  uint64
}

// pubWindow is a worker's publishes in flight, oldest first.
type pubWindow struct {
	q       []pendingPub
	buf     []byte // segment bytes read
	scratch []byte // rendered MQTT topic
}

func (e *egress) init(b *Bridge) {
	e.b = b
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.wake = make(chan struct{}, 1)
	e.done = make(chan struct{})
}

func (e *egress) start() {
	if len(e.b.c.pubs) == 0 {
		close(e.done)
		return
	}
	go e.runCommitter()
	for i := range e.b.c.pubs {
		e.wg.Add(1)
		go e.runRule(&e.b.c.pubs[i])
	}
}

// stop ends the workers and commits the offsets they reached.
func (e *egress) stop(ctx context.Context) error {
	e.cancel()
	e.wg.Wait()
	<-e.done
	if len(e.b.c.pubs) == 0 {
		return nil
	}
	return e.commit(ctx, false)
}

func (e *egress) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// runRule runs the workers of one publish rule's topic, following it as it appears, grows
// partitions, or is deleted and re-created.
func (e *egress) runRule(r *compiledPub) {
	defer e.wg.Done()
	var (
		cur     [16]byte
		have    bool
		n       int32
		wcancel context.CancelFunc = func() {}
		wctx    context.Context
		wwg     sync.WaitGroup
		parts   []*egressPart
		waiting bool
	)
	stopWorkers := func() {
		wcancel()
		wwg.Wait()
		e.unregister(parts)
		parts, n, have = nil, 0, false
	}
	tick := time.NewTicker(topicCheckInterval)
	defer tick.Stop()
	for {
		t := e.b.opts.Store.Topic(r.Topic)
		if have && (t == nil || t.ID() != cur) {
			e.b.log.Info("egress topic deleted or re-created; restarting its publishers", "topic", r.Topic)
			stopWorkers()
		}
		switch {
		case t != nil:
			if !have {
				cur, have, waiting = t.ID(), true, false
				wctx, wcancel = context.WithCancel(e.ctx)
			}
			for ; n < t.NumPartitions(); n++ {
				l := t.Partition(n)
				if l == nil {
					break
				}
				ep := &egressPart{rule: r, log: l}
				ep.acked.Store(-1)
				ep.committed.Store(-1)
				e.register(ep)
				parts = append(parts, ep)
				wwg.Add(1)
				go func() { defer wwg.Done(); e.runPart(wctx, ep) }()
			}
		case !waiting:
			e.b.log.Info("egress topic does not exist yet; waiting for it", "topic", r.Topic)
			waiting = true
		}
		select {
		case <-e.ctx.Done():
			wcancel()
			wwg.Wait()
			return
		case <-tick.C:
		}
	}
}

func (e *egress) register(ep *egressPart) {
	e.mu.Lock()
	e.parts = append(e.parts, ep)
	e.mu.Unlock()
}

func (e *egress) unregister(parts []*egressPart) {
	e.mu.Lock()
	e.parts = slices.DeleteFunc(e.parts, func(p *egressPart) bool { return slices.Contains(parts, p) })
	e.mu.Unlock()
}

func (e *egress) snapshot() []*egressPart {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.parts)
}

// runPart publishes one partition's records from the committed offset on.
func (e *egress) runPart(ctx context.Context, ep *egressPart) {
	select {
	case <-e.b.connected1: // publishing before the first connection would only fail
	case <-ctx.Done():
		return
	}
	pos, ok := e.startOffset(ctx, ep)
	if !ok {
		return
	}
	ep.acked.Store(pos)
	w := &pubWindow{}
	backoff := appendBackoffMin
	for ctx.Err() == nil {
		if e.reap(ep, w) {
			pos = e.rewind(ctx, ep, w)
			continue
		}
		changed := ep.log.Changed()
		n, err := e.readAndPublish(ctx, ep, w, &pos)
		switch {
		case errors.Is(err, errRewind):
			pos = e.rewind(ctx, ep, w)
			continue
		case errors.Is(err, commitlog.ErrClosed), errors.Is(err, commitlog.ErrUnknownTopic):
			return // the topic is gone; runRule starts over when it is re-created
		case err != nil:
			if ctx.Err() == nil {
				e.b.warn("egress_read", "egress cannot read the log; retrying", "topic", ep.log.Topic(),
					"partition", ep.log.Partition(), "err", err)
				sleepCtx(ctx, backoff)
				backoff = min(2*backoff, appendBackoffMax)
			}
			continue
		}
		backoff = appendBackoffMin
		if n > 0 {
			continue
		}
		if e.idle(ctx, ep, w, changed) {
			pos = e.rewind(ctx, ep, w)
		}
	}
}

// idle waits for new records (changed), the oldest publish's acknowledgement, or ctx. It
// returns true when the oldest publish stalled (no acknowledgement for publishStall while
// connected): the caller rewinds.
func (e *egress) idle(ctx context.Context, ep *egressPart, w *pubWindow, changed <-chan struct{}) (stalled bool) {
	if len(w.q) == 0 {
		select {
		case <-ctx.Done():
		case <-changed:
		}
		return false
	}
	front := w.q[0]
	if front.tok == nil {
		return false // reap pops it
	}
	epoch, conn := e.b.connState()
	if front.epoch != epoch {
		return false // reap rewinds
	}
	stall := time.NewTimer(max(time.Until(front.sent.Add(publishStall)), time.Millisecond))
	defer stall.Stop()
	select {
	case <-ctx.Done():
	case <-changed:
	case <-conn: // lost: reap rewinds
	case <-front.tok.Done():
	case <-stall.C:
		if e.b.client.IsConnectionOpen() {
			e.b.warn("stall", "an egress publish got no acknowledgement in time; publishing again from the acknowledged offset",
				"topic", ep.log.Topic(), "partition", ep.log.Partition(), "after", publishStall)
			return true
		}
	}
	return false
}

// startOffset is the committed offset, or the log start or end per the rule's start_from.
func (e *egress) startOffset(ctx context.Context, ep *egressPart) (int64, bool) {
	backoff := appendBackoffMin
	for {
		off, err := fetchCommitted(e.b.opts.Groups, GroupID(e.b.opts.Name), ep.log.Topic(), ep.log.Partition())
		if err == nil {
			switch {
			case off >= 0:
				ep.committed.Store(off)
				return off, true
			case ep.rule.StartFrom == StartLatest:
				return ep.log.HighWatermark(), true
			default:
				return ep.log.LogStartOffset(), true
			}
		}
		e.b.warn("offset_fetch", "cannot read the egress group's committed offset; retrying", "group", GroupID(e.b.opts.Name),
			"topic", ep.log.Topic(), "partition", ep.log.Partition(), "err", err)
		if !sleepCtx(ctx, backoff) {
			return 0, false
		}
		backoff = min(2*backoff, commitBackoffMax)
	}
}

// reap pops the completed publishes at the front of the window, advancing the acknowledged
// offset; true when one failed (the caller rewinds).
func (e *egress) reap(ep *egressPart, w *pubWindow) (failed bool) {
	i := 0
	for ; i < len(w.q); i++ {
		p := w.q[i]
		if p.tok != nil {
			if !tokenDone(p.tok) {
				if epoch, _ := e.b.connState(); p.epoch != epoch {
					failed = true // its connection is gone: it will never be acknowledged
				}
				break
			}
			if err := p.tok.Error(); err != nil {
				e.b.warn("publish", "an egress publish failed; publishing again from the acknowledged offset",
					"topic", ep.log.Topic(), "partition", ep.log.Partition(), "offset", p.offset, "err", err)
				failed = true
				break
			}
			e.b.m.out.Add(1)
		}
		ep.acked.Store(p.offset + 1)
	}
	w.q = w.q[:copy(w.q, w.q[i:])]
	ep.inflight.Store(int64(len(w.q)))
	if i > 0 {
		e.kick()
	}
	return failed
}

func tokenDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// rewind forgets the publishes in flight and returns the offset to publish from again.
func (e *egress) rewind(ctx context.Context, ep *egressPart, w *pubWindow) int64 {
	clear(w.q)
	w.q = w.q[:0]
	ep.inflight.Store(0)
	e.b.m.rewinds.Add(1)
	sleepCtx(ctx, rewindBackoff)
	return ep.acked.Load()
}

// readAndPublish reads records from *pos up to the high watermark (one read) and publishes
// them; it returns how many offsets it passed.
func (e *egress) readAndPublish(ctx context.Context, ep *egressPart, w *pubWindow, pos *int64) (int, error) {
	res, err := ep.log.Read(*pos, egressReadBytes, true, commitlog.ReadToHighWatermark)
	if errors.Is(err, commitlog.ErrOffsetOutOfRange) {
		return e.skip(ep, w, pos, res), nil
	}
	if err != nil {
		return 0, err
	}
	if res.Bytes == 0 {
		res.Release()
		return 0, nil
	}
	w.buf = slices.Grow(w.buf[:0], int(res.Bytes))[:res.Bytes]
	off := 0
	for _, r := range res.Ranges {
		if _, err := r.File.ReadAt(w.buf[off:off+int(r.Len)], r.Pos); err != nil {
			res.Release()
			return 0, err
		}
		off += int(r.Len)
	}
	res.Release()
	n := 0
	err = batch.Split(w.buf, func(bb []byte) error {
		h, err := batch.ParseHeader(bb)
		if err != nil {
			return err
		}
		if h.LastOffset() < *pos {
			return nil
		}
		if !h.Control() {
			err := batch.Records(bb, func(r *batch.Record) error {
				if r.Offset < *pos {
					return nil
				}
				if err := e.publish(ctx, ep, w, r); err != nil {
					return err
				}
				*pos = r.Offset + 1
				n++
				return nil
			})
			if err != nil {
				return err
			}
		}
		if *pos <= h.LastOffset() { // offsets without records: compaction gaps, a control batch
			w.q = append(w.q, pendingPub{offset: h.LastOffset()})
			*pos = h.LastOffset() + 1
			n++
		}
		return nil
	})
	return n, err
}

// skip moves past offsets the log no longer has (retention deleted them before they were
// published) or never had.
func (e *egress) skip(ep *egressPart, w *pubWindow, pos *int64, res commitlog.ReadResult) int {
	switch {
	case *pos < res.LogStartOffset:
		e.b.m.skipped.Add(res.LogStartOffset - *pos)
		e.b.warn("skip", "records were deleted by retention before they were published to mqtt; skipping them",
			"topic", ep.log.Topic(), "partition", ep.log.Partition(), "from", *pos, "to", res.LogStartOffset)
		w.q = append(w.q, pendingPub{offset: res.LogStartOffset - 1})
		*pos = res.LogStartOffset
		return 1
	case *pos > res.LogEndOffset:
		e.b.warn("skip", "the egress offset is past the log end (the log lost its tail?); continuing from the end",
			"topic", ep.log.Topic(), "partition", ep.log.Partition(), "offset", *pos, "log_end", res.LogEndOffset)
		*pos = res.LogEndOffset
		if len(w.q) == 0 {
			ep.acked.Store(*pos)
		}
		return 1
	}
	return 0
}

// publish sends one record, first waiting for room in the window.
func (e *egress) publish(ctx context.Context, ep *egressPart, w *pubWindow, r *batch.Record) error {
	b := e.b
	for len(w.q) >= b.opts.MaxInFlight {
		if e.reap(ep, w) {
			return errRewind
		}
		if len(w.q) < b.opts.MaxInFlight {
			break
		}
		if e.idle(ctx, ep, w, nil) {
			return errRewind
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	rule := ep.rule
	if r.Key == nil && rule.mqttTopic.uses(varKey) {
		b.m.dropped[dropNullKey].Add(1)
		b.warn("null_key", "record without a key for an mqtt_topic with {key}; not published",
			"topic", ep.log.Topic(), "partition", ep.log.Partition(), "offset", r.Offset)
		w.q = append(w.q, pendingPub{offset: r.Offset})
		return nil
	}
	env := renderEnv{key: r.Key, topic: ep.log.Topic(), partition: ep.log.Partition(), offset: r.Offset}
	w.scratch = rule.mqttTopic.render(w.scratch[:0], &env)
	topic := string(w.scratch)
	if err := ValidateTopicName(topic); err != nil {
		b.m.dropped[dropBadMQTTTopic].Add(1)
		b.warn("bad_mqtt_topic", "record mapped to an invalid mqtt topic; not published",
			"topic", ep.log.Topic(), "partition", ep.log.Partition(), "offset", r.Offset, "err", err)
		w.q = append(w.q, pendingPub{offset: r.Offset})
		return nil
	}
	epoch, err := e.waitConnected(ctx)
	if err != nil {
		return err
	}
	if len(w.q) > 0 && w.q[len(w.q)-1].tok != nil && w.q[len(w.q)-1].epoch != epoch {
		return errRewind // publishes of a lost connection are in the window: start over from them
	}
	payload := bytes.Clone(r.Value) // paho keeps it until acknowledged; r's bytes are reused
	if payload == nil {
		payload = []byte{} // a tombstone: an empty message (with retain, it clears the retained one)
	}
	tok := b.client.Publish(topic, rule.QoS, rule.Retain, payload)
	w.q = append(w.q, pendingPub{offset: r.Offset, tok: tok, sent: time.Now(), epoch: epoch})
	ep.inflight.Store(int64(len(w.q)))
	return nil
}

// waitConnected waits until the connection is open (a publish made meanwhile would be dropped:
// sessionStore) and returns the connection epoch read before the check.
func (e *egress) waitConnected(ctx context.Context) (uint64, error) {
	for {
		epoch, changed := e.b.connState()
		if e.b.client.IsConnectionOpen() {
			return epoch, nil
		}
		t := time.NewTimer(time.Second) // a bound in case a connection event is missed
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// runCommitter commits acknowledged offsets as they advance, and every offsetRefresh hour all
// of them.
func (e *egress) runCommitter() {
	defer close(e.done)
	refresh := time.NewTicker(offsetRefresh)
	defer refresh.Stop()
	backoff := appendBackoffMin
	for {
		force := false
		select {
		case <-e.ctx.Done():
			return
		case <-e.wake:
		case <-refresh.C:
			force = true
		}
		if err := e.commit(e.ctx, force); err != nil && e.ctx.Err() == nil {
			e.b.warn("commit", "cannot commit the egress offsets; retrying", "group", GroupID(e.b.opts.Name), "err", err)
			sleepCtx(e.ctx, backoff)
			backoff = min(2*backoff, commitBackoffMax)
			e.kick()
			continue
		}
		backoff = appendBackoffMin
	}
}

// commit commits the acknowledged offsets that changed (all with force).
func (e *egress) commit(ctx context.Context, force bool) error {
	var todo []offsetCommit
	for _, ep := range e.snapshot() {
		off := ep.acked.Load()
		if off < 0 || (!force && off == ep.committed.Load()) {
			continue
		}
		todo = append(todo, offsetCommit{part: ep, offset: off})
	}
	if len(todo) == 0 {
		return nil
	}
	return commitOffsets(ctx, e.b.opts.Groups, GroupID(e.b.opts.Name), todo)
}

// sleepCtx waits d; false if ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
