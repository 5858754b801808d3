package kafka

// DeleteRecords (API key 21), versions 0–2.
//
// Version notes: v1 is v0 (throttling moved after the response), v2 is flexible.
//
// Each partition's log start offset moves up to the requested offset (Kafka's KIP-107): records
// below it are no longer served, ListOffsets earliest answers it and a Fetch below it gets
// OFFSET_OUT_OF_RANGE. Offset -1 means the high watermark. The answer is the partition's low
// watermark (its log start offset) after the call; an offset at or below the current start
// leaves the log alone and answers the current start. The new start is on disk before the
// answer is sent; segment files wholly below it are deleted by the store's next retention pass,
// which the call starts at once.
//
// Errors per partition, as from Kafka: an unknown topic or partition is
// UNKNOWN_TOPIC_OR_PARTITION; a negative offset other than -1, or one above the high watermark,
// OFFSET_OUT_OF_RANGE; a topic whose cleanup.policy does not include delete (compact only),
// POLICY_VIOLATION; a failed write of the new start, KAFKA_STORAGE_ERROR. A failed partition
// answers low watermark -1.
//
// A partition named more than once in a request is carried out once, with the offset given
// last, and answered once, as Kafka does (its handler collects the request into a map keyed by
// topic and partition). Topics named twice are merged into one response entry. On a single
// agent every partition is local and the call completes at once, so TimeoutMillis is not
// waited on.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// deleteRecordsHighWatermark is the request offset that means "up to the high watermark".
const deleteRecordsHighWatermark = -1

// deleteRecordsTopic is one topic of a DeleteRecords request after merging duplicates.
type deleteRecordsTopic struct {
	name  string
	parts []deleteRecordsPart
}

// deleteRecordsPart is one partition and the offset given for it last.
type deleteRecordsPart struct {
	partition int32
	offset    int64
}

// handleDeleteRecords moves the log start offset of the requested partitions.
func (s *Server) handleDeleteRecords(ctx context.Context, req *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	resp.Version = req.Version
	plan := planDeleteRecords(req)
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, 0, len(plan))
	for _, pt := range plan {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = pt.name
		topic := s.store.Topic(pt.name)
		rt.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, 0, len(pt.parts))
		for _, pp := range pt.parts {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition = pp.partition
			rp.LowWatermark, rp.ErrorCode = s.deleteRecords(ctx, topic, pp)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// planDeleteRecords merges the request's duplicates: one entry per topic in the order topics
// first appear, one per partition in the order partitions first appear, with the offset given
// last. The maps live for one request, so their size is bounded by the request size limit.
func planDeleteRecords(req *kmsg.DeleteRecordsRequest) []deleteRecordsTopic {
	type key struct {
		topic     string
		partition int32
	}
	topics := make(map[string]int, len(req.Topics))
	parts := make(map[key]int)
	plan := make([]deleteRecordsTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		ti, ok := topics[rt.Topic]
		if !ok {
			ti = len(plan)
			topics[rt.Topic] = ti
			plan = append(plan, deleteRecordsTopic{name: rt.Topic})
		}
		pt := &plan[ti]
		for _, rp := range rt.Partitions {
			k := key{rt.Topic, rp.Partition}
			if pi, ok := parts[k]; ok {
				pt.parts[pi].offset = rp.Offset
				continue
			}
			parts[k] = len(pt.parts)
			pt.parts = append(pt.parts, deleteRecordsPart{partition: rp.Partition, offset: rp.Offset})
		}
	}
	return plan
}

// deleteRecords moves one partition's log start offset and returns the low watermark and
// error code to answer.
func (s *Server) deleteRecords(ctx context.Context, topic *commitlog.Topic, pp deleteRecordsPart) (int64, int16) {
	l := partitionLog(topic, pp.partition)
	if l == nil {
		return -1, kerr.UnknownTopicOrPartition.Code
	}
	if ctx.Err() != nil {
		// The connection is gone; nothing will read the answer.
		return -1, kerr.RequestTimedOut.Code
	}
	if cfg := topic.Config(); !cfg.Deletes() {
		return -1, kerr.PolicyViolation.Code
	}
	if pp.offset < 0 && pp.offset != deleteRecordsHighWatermark {
		return -1, kerr.OffsetOutOfRange.Code
	}
	low, err := l.DeleteRecordsBefore(pp.offset)
	if err != nil {
		if !errors.Is(err, commitlog.ErrOffsetOutOfRange) {
			s.log.Warn("delete records failed", "topic", l.Topic(), "partition", l.Partition(),
				"offset", pp.offset, "err", err)
		}
		return -1, errorCode(err)
	}
	if remote := s.opts.Remote; remote != nil {
		// A tiered partition starts in object storage: its low watermark is the first
		// offset still served there (the deleted ones go with the next remote retention).
		if rs, err := remoteStart(remote, l); err == nil && rs >= 0 && rs < low {
			low = rs
		}
	}
	return low, 0
}
