package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Fetch (key 1)
//
//	v4     isolation level; last stable offset; aborted transactions
//	v5     log_start_offset in and out
//	v6     same as v5
//	v7     fetch sessions (KIP-227): session id/epoch, forgotten topics, top-level error
//	v8     same as v7
//	v9     current leader epoch in
//	v10    same as v9 (zstd)
//	v11    rack id in, preferred read replica out
//	v12    flexible; last fetched epoch; diverging epoch tags
//	v13    topic ids instead of names (UNKNOWN_TOPIC_ID for an unknown id)
//	v14    same as v13
//	v15    replica state tag instead of replica id
//	v16    node endpoints tag
//
// Sessions are not kept: every fetch is a full fetch and the answer carries
// session id 0, which tells clients no session was created; forgotten topics
// are ignored and a non-zero session id gets FETCH_SESSION_ID_NOT_FOUND.
//
// Consumers read up to the high watermark; the last stable offset is the
// high watermark (no transactions). max_bytes and partition_max_bytes follow
// KIP-74: the first batch of the first partition with data is returned whole
// even when it is larger than either limit, so a consumer always progresses.
// When less than min_bytes is available the request long-polls for up to
// max_wait_ms, woken whenever a high watermark advances (Log.Changed for a
// one-partition fetch, Store.Changed otherwise), in its own goroutine so the
// connection keeps serving.

// fetchPlan is a resolved Fetch request.
type fetchPlan struct {
	version  int16
	corrID   int32
	errCode  int16 // top-level
	throttle int32 // throttle_time_ms (throttle.go)
	maxBytes int64
	minBytes int64
	topics   []fetchPlanTopic
}

type fetchPlanTopic struct {
	name  string
	id    [16]byte
	parts []fetchPlanPart
}

type fetchPlanPart struct {
	partition int32
	offset    int64
	maxBytes  int64
	log       *commitlog.Log // nil when code is set
	code      int16
}

// handleFetch reads what is available now and, when it is not enough, turns
// the request into a long poll completed from its own goroutine.
func (s *Server) handleFetch(c *conn, r *request, req *kmsg.FetchRequest) *reply {
	plan := s.planFetch(r, req)
	plan.throttle = s.throttleMillis()
	r.throttle = plan.throttle
	changed := s.changedFor(plan) // before reading, so no append can slip between
	res, n, failed := s.readFetch(plan)
	if failed || n >= plan.minBytes || req.MaxWaitMillis <= 0 || len(plan.topics) == 0 || s.isDraining() {
		return readyReply(s.fetchResponse(plan, res))
	}
	releaseFetch(res)
	rep := pendingReply()
	go s.longPoll(c, plan, time.Duration(req.MaxWaitMillis)*time.Millisecond, changed, rep)
	return rep
}

// planFetch resolves the request's topics and partitions.
func (s *Server) planFetch(r *request, req *kmsg.FetchRequest) *fetchPlan {
	plan := &fetchPlan{
		version:  r.version,
		corrID:   r.corrID,
		maxBytes: int64(req.MaxBytes),
		minBytes: int64(req.MinBytes),
	}
	if req.SessionID != 0 {
		plan.errCode = kerr.FetchSessionIDNotFound.Code
		return plan
	}
	plan.topics = make([]fetchPlanTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		pt := fetchPlanTopic{name: rt.Topic, id: rt.TopicID, parts: make([]fetchPlanPart, 0, len(rt.Partitions))}
		var topic *commitlog.Topic
		missing := kerr.UnknownTopicOrPartition.Code
		if r.version >= 13 {
			topic = s.store.TopicByID(rt.TopicID)
			if topic == nil {
				missing = kerr.UnknownTopicID.Code
			}
		} else {
			topic = s.store.Topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			pp := fetchPlanPart{partition: rp.Partition, offset: rp.FetchOffset, maxBytes: int64(rp.PartitionMaxBytes)}
			if pp.log = partitionLog(topic, rp.Partition); pp.log == nil {
				pp.code = missing
			}
			pt.parts = append(pt.parts, pp)
		}
		plan.topics = append(plan.topics, pt)
	}
	return plan
}

// readFetch reads every partition of plan. It returns the results, the
// record bytes found and whether any partition failed (which answers at once).
func (s *Server) readFetch(plan *fetchPlan) (res []fetchTopicResult, total int64, failed bool) {
	remaining := plan.maxBytes
	minOne := true
	res = make([]fetchTopicResult, 0, len(plan.topics))
	for _, t := range plan.topics {
		tr := fetchTopicResult{name: t.name, id: t.id, parts: make([]fetchPartResult, 0, len(t.parts))}
		for i := range t.parts {
			pp := &t.parts[i]
			pr := fetchPartResult{partition: pp.partition, errCode: pp.code, hw: -1, lso: -1, logStart: -1}
			if pp.code == 0 {
				s.readPartition(pp, &pr, min(pp.maxBytes, remaining), minOne)
				if pr.read.Bytes > 0 {
					minOne = false
					remaining -= pr.read.Bytes
					total += pr.read.Bytes
				}
			}
			failed = failed || pr.errCode != 0
			tr.parts = append(tr.parts, pr)
		}
		res = append(res, tr)
	}
	return res, total, failed
}

// readPartition reads one partition into pr: from the local log, or from object storage for
// an offset of a tiered topic below the local log start.
func (s *Server) readPartition(pp *fetchPlanPart, pr *fetchPartResult, limit int64, minOne bool) {
	rr, err := pp.log.Read(pp.offset, max(limit, 0), minOne, commitlog.ReadToHighWatermark)
	if remote := s.opts.Remote; remote != nil && errors.Is(err, commitlog.ErrOffsetOutOfRange) && pp.offset < rr.LogStartOffset {
		rr, err = s.readRemote(remote, pp, rr, max(limit, 0), minOne)
		if mem, ok := remote.(remoteMemory); ok && err == nil {
			pr.mem = memoryRanges(mem, rr.Ranges)
		}
	}
	if remote := s.opts.Remote; remote != nil && err == nil && rr.LogStartOffset > 0 {
		if rs, rerr := remoteStart(remote, pp.log); rerr == nil && rs >= 0 && rs < rr.LogStartOffset {
			rr.LogStartOffset = rs // the partition starts in object storage
		}
	}
	if err != nil {
		pr.errCode = errorCode(err)
		if !errors.Is(err, commitlog.ErrOffsetOutOfRange) {
			s.log.Warn("fetch read failed", "topic", pp.log.Topic(), "partition", pp.partition,
				"offset", pp.offset, "err", err)
		}
		return
	}
	pr.read = rr
	pr.hw = rr.HighWatermark
	pr.lso = rr.HighWatermark
	pr.logStart = rr.LogStartOffset
}

// readRemote serves a read below the local log start from object storage. Offsets between
// the end of object storage and the local start (segments expired before they were uploaded)
// are answered with what follows them, as a compacted log's gaps are.
func (s *Server) readRemote(remote RemoteLog, pp *fetchPlanPart, local commitlog.ReadResult, limit int64, minOne bool) (commitlog.ReadResult, error) {
	topic := pp.log.Topic()
	rs, err := remoteStart(remote, pp.log)
	if err != nil {
		return local, err
	}
	if rs < 0 || pp.offset < rs {
		return local, fmt.Errorf("fetch %s-%d at %d (earliest %d): %w", topic, pp.partition, pp.offset, min(max(rs, 0), local.LogStartOffset), commitlog.ErrOffsetOutOfRange)
	}
	ctx, cancel := context.WithTimeout(context.Background(), remoteReadTimeout)
	defer cancel()
	rr, err := remote.Read(ctx, topic, pp.partition, pp.offset, limit, minOne)
	if err != nil {
		return local, err
	}
	if rr.Bytes == 0 { // nothing remote at or after the offset: the local log's start follows
		return pp.log.Read(local.LogStartOffset, limit, minOne, commitlog.ReadToHighWatermark)
	}
	rr.HighWatermark, rr.LogStartOffset, rr.LogEndOffset = local.HighWatermark, rs, local.LogEndOffset
	return rr, nil
}

// memoryRanges returns, per range, its bytes when they are in a reused memory buffer of the
// remote log (written with write(2), see remoteMemory), else nil; nil when no range is.
func memoryRanges(mem remoteMemory, ranges []commitlog.FileRange) [][]byte {
	var out [][]byte
	for i, fr := range ranges {
		if b, ok := mem.RangeBytes(fr); ok {
			if out == nil {
				out = make([][]byte, len(ranges))
			}
			out[i] = b
		}
	}
	return out
}

// remoteReadTimeout bounds one read from object storage.
const remoteReadTimeout = 30 * time.Second

// longPoll waits for appends until min_bytes are available, max_wait_ms has
// passed or the server drains, then completes rep.
func (s *Server) longPoll(c *conn, plan *fetchPlan, wait time.Duration, changed <-chan struct{}, rep *reply) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("fetch long poll panicked; closing connection", "remote", c.remote, "panic", fmt.Sprint(p))
			s.m.closed(causePanic)
			rep.complete(closeOut{})
		}
	}()
	s.m.fetchWaiting.Add(1)
	defer s.m.fetchWaiting.Add(-1)
	if s.testHookLongPoll != nil {
		s.testHookLongPoll()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		final := false
		select {
		case <-changed:
		case <-timer.C:
			final = true
		case <-s.draining:
			final = true
		case <-c.ctx.Done():
			rep.complete(closeOut{}) // the connection is gone; nothing will be written
			return
		}
		changed = s.changedFor(plan)
		res, n, failed := s.readFetch(plan)
		if final || failed || n >= plan.minBytes {
			rep.complete(s.fetchResponse(plan, res))
			return
		}
		releaseFetch(res)
	}
}

// changedFor returns the channel that closes when the plan may have more to
// read: the partition's own for a one-partition fetch (the common consumer
// case), so a busy store does not wake every idle poll; the store's otherwise.
func (s *Server) changedFor(plan *fetchPlan) <-chan struct{} {
	if len(plan.topics) == 1 && len(plan.topics[0].parts) == 1 {
		if l := plan.topics[0].parts[0].log; l != nil {
			return l.Changed()
		}
	}
	return s.store.Changed()
}

// fetchResponse encodes the answer and counts its error codes.
func (s *Server) fetchResponse(plan *fetchPlan, res []fetchTopicResult) *fetchOut {
	s.m.errorCode(1, plan.errCode)
	for _, t := range res {
		for _, p := range t.parts {
			s.m.errorCode(1, p.errCode)
		}
	}
	return encodeFetch(plan.version, plan.corrID, plan.throttle, plan.errCode, res)
}

// releaseFetch releases the reads of a result that will not be sent.
func releaseFetch(res []fetchTopicResult) {
	for i := range res {
		for j := range res[i].parts {
			res[i].parts[j].read.Release()
		}
	}
}

// isDraining reports whether Shutdown has begun.
func (s *Server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}
