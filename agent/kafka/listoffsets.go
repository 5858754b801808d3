package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// ListOffsets (key 2)
//
//	v1     one offset and its timestamp per partition (v0's offset lists are not served)
//	v2     isolation level; throttle_time_ms
//	v3     same as v2
//	v4     current leader epoch in, leader epoch out
//	v5     same as v4
//	v6     flexible
//	v7     timestamp -3: offset of the max timestamp (KIP-734)
//	v8     timestamp -4: earliest local offset (KIP-405)
//	v9     timestamp -5: latest tiered offset (KIP-1005)
//
// Special timestamps: -2 earliest (the log start, in object storage for a
// tiered topic), -1 latest (the high watermark, which is also the last stable
// offset: no transactions), -3 the record with the largest timestamp, -4
// earliest local, -5 the last offset in object storage (-1 when none). Any
// other timestamp finds the first offset whose timestamp is at or after it,
// looking in object storage first; when there is none the answer is offset
// -1, timestamp -1.

// Special ListOffsets timestamps.
const (
	listLatest        = -1
	listEarliest      = -2
	listMaxTimestamp  = -3
	listEarliestLocal = -4
	listLatestTiered  = -5
)

// handleListOffsets answers a ListOffsets request.
func (s *Server) handleListOffsets(_ context.Context, req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Version = req.Version
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		topic := s.store.Topic(rt.Topic)
		t.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			s.listOffset(partitionLog(topic, rp.Partition), rp.Timestamp, req.Version, &p)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// listOffset answers one partition.
func (s *Server) listOffset(l *commitlog.Log, ts int64, version int16, p *kmsg.ListOffsetsResponseTopicPartition) {
	p.Timestamp, p.Offset, p.LeaderEpoch = -1, -1, -1
	if l == nil {
		p.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	p.LeaderEpoch = 0
	remote := s.opts.Remote
	switch {
	case ts == listEarliest:
		p.Offset = l.LogStartOffset()
		if remote != nil {
			rs, err := remoteStart(remote, l)
			if err != nil {
				p.Offset, p.LeaderEpoch, p.ErrorCode = -1, -1, errorCode(err)
				return
			}
			if rs >= 0 && rs < p.Offset {
				p.Offset = rs
			}
		}
	case ts == listEarliestLocal && version >= 8:
		p.Offset = l.LogStartOffset()
	case ts == listLatestTiered && version >= 9:
		if remote != nil {
			if _, err := remote.RemoteStart(l.Topic(), l.Partition()); err != nil {
				p.Offset, p.LeaderEpoch, p.ErrorCode = -1, -1, errorCode(err)
				return
			}
			p.Offset = remote.RemoteLastOffset(l.Topic(), l.Partition())
		}
	case ts == listLatest:
		p.Offset = l.HighWatermark()
	case ts == listMaxTimestamp && version >= 7:
		off, mts := l.MaxTimestamp()
		if off >= 0 && off < l.HighWatermark() {
			p.Offset, p.Timestamp = off, mts
		}
	default:
		if s.remoteOffsetForTimestamp(l, ts, p) {
			return
		}
		off, fts, err := l.OffsetForTimestamp(ts)
		switch {
		case err == nil && off >= 0 && off < l.HighWatermark():
			p.Offset, p.Timestamp = off, fts
		case err == nil, errors.Is(err, commitlog.ErrOffsetOutOfRange):
			// No record at or after ts: -1, as Kafka answers.
		default:
			p.ErrorCode = errorCode(err)
			p.LeaderEpoch = -1
			s.log.Warn("list offsets by timestamp failed", "topic", l.Topic(), "partition", l.Partition(), "err", err)
		}
	}
}

// remoteOffsetForTimestamp answers a timestamp lookup from object storage when it holds a
// match, and reports whether it did (or failed, with the error set in p).
func (s *Server) remoteOffsetForTimestamp(l *commitlog.Log, ts int64, p *kmsg.ListOffsetsResponseTopicPartition) bool {
	remote := s.opts.Remote
	if remote == nil || ts < 0 {
		return false
	}
	rs, err := remoteStart(remote, l)
	if err != nil {
		p.ErrorCode, p.LeaderEpoch = errorCode(err), -1
		return true
	} else if rs < 0 || rs >= l.LogStartOffset() {
		return false // object storage holds nothing that may still be served
	}
	ctx, cancel := context.WithTimeout(context.Background(), remoteReadTimeout)
	defer cancel()
	off, fts, found, err := remote.OffsetForTimestamp(ctx, l.Topic(), l.Partition(), ts)
	switch {
	case err != nil:
		p.ErrorCode, p.LeaderEpoch = errorCode(err), -1
		s.log.Warn("list offsets by timestamp in object storage failed", "topic", l.Topic(), "partition", l.Partition(), "err", err)
		return true
	case found && off < rs:
		// The match lies below what DeleteRecords left: the first offset still served
		// follows it (with the match's timestamp; timestamps rise with offsets in practice).
		p.Offset, p.Timestamp = rs, fts
		return true
	case found:
		p.Offset, p.Timestamp = off, fts
		return true
	}
	return false
}
