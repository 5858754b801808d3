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
//
// Idempotent producers (batches with a producer id, from InitProducerId) are
// checked by the commit log: a retried batch is answered with success and the
// offsets it got first (nothing is appended again), a sequence gap with
// OUT_OF_ORDER_SEQUENCE_NUMBER, a stale epoch with INVALID_PRODUCER_EPOCH (in
// every version: PRODUCER_FENCED belongs to the transaction APIs), and a
// transactional batch with INVALID_TXN_STATE (no transaction can be open).
// From v8 the partition's error message says why.

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
		switch {
		case acksOK && isInternalTopic(rt.Topic):
			topicCode = kerr.InvalidTopicException.Code // only the broker writes them, as in Kafka
		case acksOK:
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
	resp.ThrottleMillis = s.throttleMillis()
	r.throttle = resp.ThrottleMillis
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
		if errors.Is(err, commitlog.ErrAppendRefused) {
			// The disk guard: it logged the change of state once; say why to the client (v8+).
			s.log.Debug("produce refused", "topic", l.Topic(), "partition", rp.Partition, "err", err)
			msg := err.Error()
			p.ErrorMessage = &msg
		} else if code == kerr.UnknownServerError.Code || code == kerr.KafkaStorageError.Code {
			s.log.Error("produce append failed", "topic", l.Topic(), "partition", rp.Partition, "err", err)
		} else {
			s.log.Debug("produce rejected", "topic", l.Topic(), "partition", rp.Partition, "err", err)
			msg := err.Error() // the client's own mistake: tell it what (v8+)
			p.ErrorMessage = &msg
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
