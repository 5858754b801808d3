package mqtt

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/groups"
)

// The egress consumer group lives in the agent's own group coordinator, called in-process with
// the same requests a Kafka client sends: OffsetFetch, and OffsetCommit as a "simple" commit
// (generation -1, no member), which Kafka accepts for a group without members. So the offsets
// are in __consumer_offsets like any group's, and kadm or "samsa group describe" show the
// bridge's lag. A Kafka consumer must not join the group: its commits would then be refused.

// offsetRequestVersion is the version of the requests built here (v8: several groups per
// OffsetFetch; the coordinator answers v2-v9).
const offsetRequestVersion = 8

// offsetCommit is one partition's offset to commit.
type offsetCommit struct {
	part   *egressPart
	offset int64
}

// fetchCommitted returns the group's committed offset of a partition, or -1 when none.
func fetchCommitted(g *groups.Coordinator, group, topic string, partition int32) (int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = offsetRequestVersion
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = topic, []int32{partition}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp := g.OffsetFetch(req)
	if len(resp.Groups) != 1 {
		return 0, fmt.Errorf("offset fetch for group %q: %d groups in the answer", group, len(resp.Groups))
	}
	if err := kerr.ErrorForCode(resp.Groups[0].ErrorCode); err != nil {
		return 0, fmt.Errorf("offset fetch for group %q: %w", group, err)
	}
	for _, t := range resp.Groups[0].Topics {
		for _, p := range t.Partitions {
			if t.Topic == topic && p.Partition == partition {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return 0, fmt.Errorf("offset fetch for group %q, %s-%d: %w", group, topic, partition, err)
				}
				return p.Offset, nil
			}
		}
	}
	return -1, nil
}

// commitOffsets commits the offsets and, for the partitions the coordinator accepted, records
// them as committed. A partition of a deleted topic is skipped; other refusals are errors.
func commitOffsets(ctx context.Context, g *groups.Coordinator, group string, todo []offsetCommit) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = offsetRequestVersion
	req.Group = group
	req.Generation = -1
	byTopic := map[string]int{}
	for _, c := range todo {
		topic := c.part.log.Topic()
		i, ok := byTopic[topic]
		if !ok {
			i = len(req.Topics)
			byTopic[topic] = i
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = c.part.log.Partition(), c.offset, -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	done := make(chan *kmsg.OffsetCommitResponse, 1)
	g.OffsetCommit(req, func(r *kmsg.OffsetCommitResponse) { done <- r })
	var resp *kmsg.OffsetCommitResponse
	select {
	case resp = <-done:
	case <-ctx.Done():
		return fmt.Errorf("offset commit for group %q: %w", group, ctx.Err())
	}
	var errs []error
	for _, c := range todo {
		code := commitCode(resp, c.part.log.Topic(), c.part.log.Partition())
		err := kerr.ErrorForCode(code)
		switch {
		case err == nil:
			c.part.committed.Store(c.offset)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			// deleted meanwhile: nothing to keep
		default:
			errs = append(errs, fmt.Errorf("offset commit for group %q, %s-%d: %w", group, c.part.log.Topic(), c.part.log.Partition(), err))
		}
	}
	return errors.Join(errs...)
}

// commitCode finds a partition's error code in a commit answer.
func commitCode(resp *kmsg.OffsetCommitResponse, topic string, partition int32) int16 {
	for _, t := range resp.Topics {
		if t.Topic != topic {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition == partition {
				return p.ErrorCode
			}
		}
	}
	return kerr.UnknownServerError.Code
}
