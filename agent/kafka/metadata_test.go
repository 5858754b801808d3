package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMetadataKadm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.NodeID = 7 })
	a := e.topic("alpha", 3, nil)
	e.topic("beta", 1, nil)
	md, err := e.admin().Metadata(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].NodeID != 7 || md.Brokers[0].Host != "127.0.0.1" ||
		md.Brokers[0].Port != e.srv.opts.AdvertisedPort {
		t.Errorf("brokers %+v", md.Brokers)
	}
	if md.Cluster != e.st.ClusterID() || md.Controller != 7 {
		t.Errorf("cluster %q controller %d, want %q 7", md.Cluster, md.Controller, e.st.ClusterID())
	}
	alpha, ok := md.Topics["alpha"]
	if !ok || alpha.ID != a.ID() || len(alpha.Partitions) != 3 {
		t.Fatalf("alpha: %+v", alpha)
	}
	for _, p := range alpha.Partitions {
		if p.Leader != 7 || p.LeaderEpoch != 0 || len(p.Replicas) != 1 || p.Replicas[0] != 7 || len(p.ISR) != 1 || p.ISR[0] != 7 {
			t.Errorf("partition %+v", p)
		}
	}
	if _, ok := md.Topics["beta"]; !ok || len(md.Topics) != 2 {
		t.Errorf("topics %v", md.Topics.Names())
	}
}

func TestMetadataVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.topic("alpha", 2, nil)
	nc := e.dial()
	named := func(names ...string) *kmsg.MetadataRequest {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, n := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		return req
	}
	for v := int16(0); v <= 12; v++ {
		resp := rawRoundTrip[*kmsg.MetadataResponse](t, nc, named("alpha"), v, int32(v))
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		if v >= 10 && resp.Topics[0].TopicID != a.ID() {
			t.Errorf("v%d: topic id %x", v, resp.Topics[0].TopicID)
		}
		if v >= 2 && (resp.ClusterID == nil || *resp.ClusterID != e.st.ClusterID()) {
			t.Errorf("v%d: cluster id %v", v, resp.ClusterID)
		}
	}
	// v0: empty list = all topics; v1+: empty list = none, null = all.
	if resp := rawRoundTrip[*kmsg.MetadataResponse](t, nc, named(), 0, 100); len(resp.Topics) != 1 {
		t.Errorf("v0 empty list: %d topics", len(resp.Topics))
	}
	if resp := rawRoundTrip[*kmsg.MetadataResponse](t, nc, named(), 1, 101); len(resp.Topics) != 0 {
		t.Errorf("v1 empty list: %d topics", len(resp.Topics))
	}
	all := kmsg.NewPtrMetadataRequest()
	if resp := rawRoundTrip[*kmsg.MetadataResponse](t, nc, all, 9, 102); len(resp.Topics) != 1 {
		t.Errorf("v9 null list: %d topics", len(resp.Topics))
	}
	// By topic id (v10+), known and unknown.
	byID := kmsg.NewPtrMetadataRequest()
	for _, id := range [][16]byte{a.ID(), {1, 2, 3}} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = id
		byID.Topics = append(byID.Topics, rt)
	}
	resp := rawRoundTrip[*kmsg.MetadataResponse](t, nc, byID, 12, 103)
	if len(resp.Topics) != 2 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "alpha" ||
		resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("by id: %+v", resp.Topics)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.DefaultPartitions = 3 })
	nc := e.dial()
	req := func(allow bool, names ...string) *kmsg.MetadataRequest {
		r := kmsg.NewPtrMetadataRequest()
		r.AllowAutoTopicCreation = allow
		for _, n := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			r.Topics = append(r.Topics, rt)
		}
		return r
	}
	resp := rawRoundTrip[*kmsg.MetadataResponse](t, nc, req(false, "later"), 9, 1)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || e.st.Topic("later") != nil {
		t.Errorf("not allowed: %s", errorName(resp.Topics[0].ErrorCode))
	}
	resp = rawRoundTrip[*kmsg.MetadataResponse](t, nc, req(true, "later", "bad/name"), 9, 2)
	if resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 3 || e.st.Topic("later") == nil {
		t.Errorf("allowed: %+v", resp.Topics[0])
	}
	if resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Errorf("invalid name: %s", errorName(resp.Topics[1].ErrorCode))
	}
	// Before v4 creation is always allowed (the field does not exist).
	resp = rawRoundTrip[*kmsg.MetadataResponse](t, nc, req(false, "old-client"), 3, 3)
	if resp.Topics[0].ErrorCode != 0 || e.st.Topic("old-client") == nil {
		t.Errorf("v3: %s", errorName(resp.Topics[0].ErrorCode))
	}

	off := newEnv(t, func(o *Options) { o.AutoCreateTopics = false })
	resp = rawRoundTrip[*kmsg.MetadataResponse](t, off.dial(), req(true, "never"), 12, 1)
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || off.st.Topic("never") != nil {
		t.Errorf("auto-create disabled: %s", errorName(resp.Topics[0].ErrorCode))
	}
}
