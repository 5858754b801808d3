package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListOffsets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.topic("ts", 1, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i := range 10 {
		// Timestamps rise by 10 ms, except record 7, which carries the maximum.
		ts := base.Add(time.Duration(i*10) * time.Millisecond)
		if i == 7 {
			ts = base.Add(500 * time.Millisecond)
		}
		recs = append(recs, &kgo.Record{Topic: "ts", Value: []byte{byte(i)}, Timestamp: ts})
	}
	produceSync(t, e.client(), recs...)
	adm := e.admin()
	ctx := ctxFor(t)

	after, err := adm.ListOffsetsAfterMilli(ctx, base.Add(55*time.Millisecond).UnixMilli(), "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := after.Lookup("ts", 0); o.Err != nil || o.Offset != 6 || o.Timestamp != base.Add(60*time.Millisecond).UnixMilli() {
		t.Errorf("after base+55ms: offset %d timestamp %d err %v, want offset 6", o.Offset, o.Timestamp, o.Err)
	}
	exact, err := adm.ListOffsetsAfterMilli(ctx, base.UnixMilli(), "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := exact.Lookup("ts", 0); o.Offset != 0 {
		t.Errorf("at the first timestamp: offset %d, want 0", o.Offset)
	}
	start, err := adm.ListStartOffsets(ctx, "ts")
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, "ts")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := start.Lookup("ts", 0); s.Offset != 0 {
		t.Errorf("start offset %d", s.Offset)
	}
	if en, _ := end.Lookup("ts", 0); en.Offset != 10 {
		t.Errorf("end offset %d", en.Offset)
	}
	checkListOffsetsRaw(t, e, base)
}

// checkListOffsetsRaw checks special timestamps and errors at several versions
// on the ten records of TestListOffsets.
func checkListOffsetsRaw(t *testing.T, e *env, base time.Time) {
	nc := e.dial()
	cases := []struct {
		name            string
		version         int16
		ts              int64
		wantOff, wantTS int64
	}{
		{"latest v1", 1, -1, 10, -1},
		{"earliest v4", 4, -2, 0, -1},
		{"max timestamp v7", 7, -3, 7, base.Add(500 * time.Millisecond).UnixMilli()},
		{"earliest local v8", 8, -4, 0, -1},
		{"after everything", 8, base.Add(time.Hour).UnixMilli(), -1, -1},
		{"exact v6", 6, base.Add(50 * time.Millisecond).UnixMilli(), 5, base.Add(50 * time.Millisecond).UnixMilli()},
		// The first record in offset order at or after the time: record 7 (base+500ms) beats record 8.
		{"first in offset order", 8, base.Add(75 * time.Millisecond).UnixMilli(), 7, base.Add(500 * time.Millisecond).UnixMilli()},
	}
	for i, c := range cases {
		resp := rawRoundTrip[*kmsg.ListOffsetsResponse](t, nc, listReq("ts", 0, c.ts), c.version, int32(i))
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.Offset != c.wantOff || p.Timestamp != c.wantTS {
			t.Errorf("%s: offset %d timestamp %d error %s, want %d %d", c.name, p.Offset, p.Timestamp,
				errorName(p.ErrorCode), c.wantOff, c.wantTS)
		}
		if c.version >= 4 && p.LeaderEpoch != 0 {
			t.Errorf("%s: leader epoch %d", c.name, p.LeaderEpoch)
		}
	}
	resp := rawRoundTrip[*kmsg.ListOffsetsResponse](t, nc, listReq("ts", 3, -1), 8, 100)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.Offset != -1 {
		t.Errorf("unknown partition: %+v", p)
	}
	resp = rawRoundTrip[*kmsg.ListOffsetsResponse](t, nc, listReq("none", 0, -1), 2, 101)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %+v", p)
	}
}

func TestListOffsetsEmptyLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.topic("empty", 1, nil)
	nc := e.dial()
	for i, ts := range []int64{-1, -2, -3, 12345} {
		resp := rawRoundTrip[*kmsg.ListOffsetsResponse](t, nc, listReq("empty", 0, ts), 8, int32(i))
		p := resp.Topics[0].Partitions[0]
		want := int64(0)
		if ts == -3 || ts > 0 {
			want = -1
		}
		if p.ErrorCode != 0 || p.Offset != want {
			t.Errorf("timestamp %d on an empty log: offset %d error %s, want %d", ts, p.Offset, errorName(p.ErrorCode), want)
		}
	}
}

func listReq(topic string, partition int32, ts int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = partition, ts, -1
	lt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{lp}
	req.Topics = []kmsg.ListOffsetsRequestTopic{lt}
	return req
}
