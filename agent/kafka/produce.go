package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Produce (key 0)
//
//	v3     transactional id; RecordBatch v2 only (what we require)
//	v4     same as v3
//	v5     log_start_offset in the response
//	v6-7   same as v5
//	v8     record errors and error message in the response
//	v9     flexible
//	v10    current leader / node endpoints tags (unused: we always lead)
//	v11    same as v10
//
// The appends run in the connection's read loop, so one connection's
// batches land in request order. With acks 1 or -1 the answer waits until
// the high watermark covers the last appended offset; that wait runs in its
// own goroutine so the connection keeps reading. acks=0 gets no response at
// all; if any partition failed, the connection is closed instead (as Kafka
// does) so the client learns something went wrong.

// hwWait is one appended partition whose acknowledgement waits for the HW.
type hwWait struct {
	log    *commitlog.Log
	target int64 // high watermark that covers the append
	ti, pi int   // where the partition's answer sits in the response
}

// handleProduce appends the request's batches and returns the reply slot.
func (s *Server) handleProduce(c *conn, r *request, req *kmsg.ProduceRequest) (*reply, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Version = req.Version
	acksOK := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	var waits []hwWait
	failed := 0
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	for ti, rt := range req.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		var topic *commitlog.Topic
		topicCode := kerr.InvalidRequiredAcks.Code
		if acksOK {
			topic, topicCode = s.lookupTopic(rt.Topic, s.opts.AutoCreateTopics)
		}
		t.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		for pi, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition = rp.Partition
			code, w := s.appendPartition(topic, topicCode, rp, &p)
			if code != 0 {
				failed++
				setProduceError(&p, code)
			} else if w.log != nil {
				w.ti, w.pi = ti, pi
				waits = append(waits, w)
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if req.Acks == 0 {
		c.s.m.countResponseErrors(resp)
		if failed > 0 {
			return nil, &closeError{cause: causeAcks0Error,
				reason: fmt.Sprintf("acks=0 produce failed for %d partition(s): %s", failed, firstProduceError(resp))}
		}
		return nil, nil
	}
	waits = pendingWaits(waits)
	if len(waits) == 0 {
		return c.kmsgReply(r, resp), nil
	}
	rep := pendingReply()
	go s.awaitProduce(c, r, req.TimeoutMillis, resp, waits, rep)
	return rep, nil
}

// appendPartition appends one partition's records. It fills p's offsets and
// returns the wait for its acknowledgement, or a Kafka error code.
func (s *Server) appendPartition(topic *commitlog.Topic, topicCode int16, rp kmsg.ProduceRequestTopicPartition,
	p *kmsg.ProduceResponseTopicPartition) (int16, hwWait) {
	if topicCode != 0 {
		return topicCode, hwWait{}
	}
	l := partitionLog(topic, rp.Partition)
	if l == nil {
		return kerr.UnknownTopicOrPartition.Code, hwWait{}
	}
	if len(rp.Records) == 0 {
		return kerr.CorruptMessage.Code, hwWait{}
	}
	res, err := l.Append(rp.Records)
	if err != nil {
		code := errorCode(err)
		if code == kerr.UnknownServerError.Code || code == kerr.KafkaStorageError.Code {
			s.log.Error("produce append failed", "topic", l.Topic(), "partition", rp.Partition, "err", err)
		} else {
			s.log.Debug("produce rejected", "topic", l.Topic(), "partition", rp.Partition, "err", err)
		}
		return code, hwWait{}
	}
	p.BaseOffset = res.BaseOffset
	p.LogAppendTime = res.LogAppendTime
	p.LogStartOffset = res.LogStartOffset
	return 0, hwWait{log: l, target: res.LastOffset + 1}
}

// setProduceError marks a partition answer as failed.
func setProduceError(p *kmsg.ProduceResponseTopicPartition, code int16) {
	p.ErrorCode = code
	p.BaseOffset = -1
	p.LogAppendTime = -1
	p.LogStartOffset = -1
}

// pendingWaits drops the waits whose high watermark is already there.
func pendingWaits(waits []hwWait) []hwWait {
	out := waits[:0]
	for _, w := range waits {
		if w.log.HighWatermark() < w.target {
			out = append(out, w)
		}
	}
	return out
}

// awaitProduce waits for the high watermarks (bounded by the request's
// timeout) and completes the reply.
func (s *Server) awaitProduce(c *conn, r *request, timeoutMs int32, resp *kmsg.ProduceResponse, waits []hwWait, rep *reply) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("produce wait panicked; closing connection", "remote", c.remote, "panic", fmt.Sprint(p))
			c.s.m.closed(causePanic)
			rep.complete(closeOut{})
		}
	}()
	ctx, cancel := context.WithTimeout(c.ctx, time.Duration(max(timeoutMs, 0))*time.Millisecond)
	defer cancel()
	for _, w := range waits {
		err := w.log.WaitHighWatermark(ctx, w.target)
		if err == nil {
			continue
		}
		p := &resp.Topics[w.ti].Partitions[w.pi]
		code := errorCode(err)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			code = kerr.RequestTimedOut.Code
		}
		setProduceError(p, code)
	}
	out := c.kmsgReply(r, resp)
	rep.complete(out.out)
}

// firstProduceError names the first failed partition of resp, for logs.
func firstProduceError(resp *kmsg.ProduceResponse) string {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return fmt.Sprintf("%s[%d]: %s", t.Topic, p.Partition, errorName(p.ErrorCode))
			}
		}
	}
	return ""
}

// maxProduceEntries caps the topic and partition entries of one Produce
// request. A real producer sends one entry per partition it writes to.
const maxProduceEntries = 100_000

// checkProduceShape walks a Produce request body (v3-v11) before kmsg decodes
// it: every array count must be backed by real entries and there may be at
// most maxProduceEntries of them, so decoding allocates little more than the
// frame itself (the records stay slices of the frame).
func checkProduceShape(version int16, b []byte) error {
	r := shapeReader{b: b, flex: version >= 9}
	r.skip(r.length(true, false)) // transactional id
	r.skip(2 + 4)                 // acks, timeout
	topics := r.arrayLen()
	entries := topics
	for i := 0; i < topics && r.err == nil; i++ {
		r.skip(r.length(false, false)) // topic name
		parts := r.arrayLen()
		if entries += parts; entries > maxProduceEntries {
			return fmt.Errorf("produce request with more than %d topic and partition entries", maxProduceEntries)
		}
		for j := 0; j < parts && r.err == nil; j++ {
			r.skip(4)                    // partition
			r.skip(r.length(true, true)) // records
			r.tags()
		}
		r.tags()
	}
	r.tags()
	return r.err
}

// shapeReader walks Kafka primitives without decoding them; after the first
// failure every method is a no-op and err says what overran.
type shapeReader struct {
	b    []byte
	flex bool
	err  error
}

func (r *shapeReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("produce request: %s overruns the frame", what)
	}
	r.b = nil
}

func (r *shapeReader) skip(n int) {
	if r.err != nil {
		return
	}
	if n < 0 || n > len(r.b) {
		r.fail("a field")
		return
	}
	r.b = r.b[n:]
}

func (r *shapeReader) uvarint() int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > math.MaxInt32 {
		r.fail("a varint")
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *shapeReader) fixed(size int) int {
	if r.err != nil || len(r.b) < size {
		r.fail("a length")
		return 0
	}
	var v int
	if size == 2 {
		v = int(int16(binary.BigEndian.Uint16(r.b)))
	} else {
		v = int(int32(binary.BigEndian.Uint32(r.b)))
	}
	r.b = r.b[size:]
	return v
}

// length reads a string (int16) or bytes (int32) length, compact when
// flexible; a null (-1) is 0 when nullable and an error otherwise.
func (r *shapeReader) length(nullable, isBytes bool) int {
	if r.err != nil {
		return 0
	}
	var n int
	switch {
	case r.flex:
		n = r.uvarint() - 1
	case isBytes:
		n = r.fixed(4)
	default:
		n = r.fixed(2)
	}
	if n < 0 {
		if n == -1 && nullable {
			return 0
		}
		r.fail("a negative length")
	}
	return n
}

// arrayLen reads an array count; every entry takes at least one byte.
func (r *shapeReader) arrayLen() int {
	if r.err != nil {
		return 0
	}
	var n int
	if r.flex {
		n = r.uvarint() - 1
	} else {
		n = r.fixed(4)
	}
	if n > len(r.b) || n < -1 {
		r.fail("an array count")
		return 0
	}
	return max(n, 0)
}

// tags skips a tagged field buffer (flexible versions only).
func (r *shapeReader) tags() {
	if r.err != nil || !r.flex {
		return
	}
	rest, err := skipTags(r.b)
	if err != nil {
		r.fail("tagged fields")
		return
	}
	r.b = rest
}
