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
//	v8     timestamp -4: earliest local offset (KIP-405; everything is local for now)
//
// Special timestamps: -2 earliest (log start), -1 latest (the high
// watermark, which is also the last stable offset: no transactions), -3 the
// record with the largest timestamp, -4 earliest local. Any other timestamp
// finds the first offset whose timestamp is at or after it; when there is
// none the answer is offset -1, timestamp -1.

// Special ListOffsets timestamps.
const (
	listLatest        = -1
	listEarliest      = -2
	listMaxTimestamp  = -3
	listEarliestLocal = -4
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
	switch {
	case ts == listEarliest, ts == listEarliestLocal && version >= 8:
		p.Offset = l.LogStartOffset()
	case ts == listLatest:
		p.Offset = l.HighWatermark()
	case ts == listMaxTimestamp && version >= 7:
		off, mts := l.MaxTimestamp()
		if off >= 0 && off < l.HighWatermark() {
			p.Offset, p.Timestamp = off, mts
		}
	default:
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
