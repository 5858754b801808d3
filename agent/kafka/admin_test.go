package kafka

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Integration tests of the admin APIs: a real commitlog.Store in a temp dir, handlers called
// directly with kmsg requests at their lowest and highest supported versions. Every response
// is also encoded and decoded at its version.

func admServer(t *testing.T, mod func(*Options)) (*Server, *commitlog.Store) {
	t.Helper()
	st, err := commitlog.Open(commitlog.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	opts := Options{Store: st, AdvertisedHost: "edge.local", AdvertisedPort: 9092, DefaultPartitions: 2,
		Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&opts)
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	return s, st
}

func admTopic(t *testing.T, st *commitlog.Store, name string, partitions int32, configs map[string]string) *commitlog.Topic {
	t.Helper()
	tp, err := st.CreateTopic(name, partitions, configs, false)
	if err != nil {
		t.Fatalf("create topic %q: %v", name, err)
	}
	return tp
}

// admWire checks the response's version and that it survives encoding at that version.
func admWire(t *testing.T, resp kmsg.Response, version int16) {
	t.Helper()
	if resp.GetVersion() != version {
		t.Fatalf("%T: version %d, want %d", resp, resp.GetVersion(), version)
	}
	back := kmsg.ResponseForKey(resp.Key())
	back.SetVersion(version)
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("%T v%d does not round-trip: %v", resp, version, err)
	}
}

// admErr checks an entry's error: want nil means success with no message; otherwise the code
// and a non-empty message containing msgPart.
func admErr(t *testing.T, what string, code int16, msg *string, want *kerr.Error, msgPart string) {
	t.Helper()
	if want == nil {
		if code != 0 || msg != nil {
			t.Errorf("%s: error %v (%v), want none", what, kerr.ErrorForCode(code), admStr(msg))
		}
		return
	}
	if code != want.Code {
		t.Errorf("%s: error %v (%s), want %v", what, kerr.ErrorForCode(code), admStr(msg), want)
	}
	if msg == nil || *msg == "" || !strings.Contains(*msg, msgPart) {
		t.Errorf("%s: message %q, want one containing %q", what, admStr(msg), msgPart)
	}
}

func admStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func admEntry(t *testing.T, entries []commitlog.ConfigEntry, name string) commitlog.ConfigEntry {
	t.Helper()
	for _, e := range entries {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no config entry %q", name)
	return commitlog.ConfigEntry{}
}

func admCreateReq(version int16, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.Topics, req.TimeoutMillis = version, topics, 5000
	return req
}

func admNewTopic(name string, partitions int32, rf int16, kv ...string) kmsg.CreateTopicsRequestTopic {
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(kv); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = kv[i], kmsg.StringPtr(kv[i+1])
		t.Configs = append(t.Configs, c)
	}
	return t
}

func TestAdminCreateTopics(t *testing.T) {
	for _, v := range []int16{2, 7} {
		s, st := admServer(t, nil)
		resp := s.handleCreateTopics(context.Background(), admCreateReq(v,
			admNewTopic("events", 3, 1, "retention.ms", "1000"), admNewTopic("defaulted", -1, -1)))
		admWire(t, resp, v)
		if len(resp.Topics) != 2 {
			t.Fatalf("v%d: %d topics in response, want 2", v, len(resp.Topics))
		}
		for i, want := range []struct {
			name       string
			partitions int32
		}{{"events", 3}, {"defaulted", 2}} {
			got := resp.Topics[i]
			admErr(t, want.name, got.ErrorCode, got.ErrorMessage, nil, "")
			tp := st.Topic(want.name)
			if got.Topic != want.name || tp == nil || tp.NumPartitions() != want.partitions {
				t.Fatalf("v%d: entry %q, stored topic %v, want %q with %d partitions", v, got.Topic, tp, want.name, want.partitions)
			}
			if v < 5 {
				if got.NumPartitions != -1 || got.ReplicationFactor != -1 || got.Configs != nil || got.TopicID != [16]byte{} {
					t.Errorf("v%d %s: v5+/v7+ fields set: %+v", v, want.name, got)
				}
				continue
			}
			if got.NumPartitions != want.partitions || got.ReplicationFactor != 1 || got.TopicID != tp.ID() || got.TopicID == [16]byte{} {
				t.Errorf("v%d %s: partitions %d rf %d id %x, want %d 1 %x", v, want.name, got.NumPartitions,
					got.ReplicationFactor, got.TopicID, want.partitions, tp.ID())
			}
			entries := tp.DescribeConfigs()
			if len(got.Configs) != len(entries) {
				t.Fatalf("v%d %s: %d configs, want %d", v, want.name, len(got.Configs), len(entries))
			}
			for j, e := range entries {
				c := got.Configs[j]
				if c.Name != e.Name || admStr(c.Value) != e.Value || c.ReadOnly != e.ReadOnly ||
					c.Source != int8(e.Source) || c.IsSensitive != e.Sensitive {
					t.Errorf("v%d %s: config %+v, want %+v", v, want.name, c, e)
				}
			}
		}
		if e := admEntry(t, st.Topic("events").DescribeConfigs(), "retention.ms"); e.Value != "1000" || e.Source != commitlog.SourceDynamicTopic {
			t.Errorf("v%d: retention.ms stored as %+v", v, e)
		}
	}
}

func TestAdminCreateTopicsErrors(t *testing.T) {
	s, st := admServer(t, nil)
	admTopic(t, st, "taken", 1, nil)
	nullCfg := admNewTopic("nullcfg", 1, 1)
	nullCfg.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms"}}
	assigned := admNewTopic("assigned", -1, -1)
	assigned.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{0}}}
	cases := []struct {
		topic   kmsg.CreateTopicsRequestTopic
		want    *kerr.Error
		msgPart string
	}{
		{admNewTopic("bad name!", 1, 1), kerr.InvalidTopicException, "bad name!"},
		{admNewTopic("", 1, 1), kerr.InvalidTopicException, ""},
		{admNewTopic("zero", 0, 1), kerr.InvalidPartitions, "larger than 0"},
		{admNewTopic("negative", -2, 1), kerr.InvalidPartitions, "larger than 0"},
		{admNewTopic("rf3", 1, 3), kerr.InvalidReplicationFactor, "only 1 agent"},
		{admNewTopic("rf0", 1, 0), kerr.InvalidReplicationFactor, "larger than 0"},
		{assigned, kerr.InvalidRequest, "assignment"},
		{admNewTopic("badcfg", 1, 1, "retention.ms", "abc"), kerr.InvalidConfig, "retention.ms"},
		{admNewTopic("unknowncfg", 1, 1, "no.such.key", "1"), kerr.InvalidConfig, "no.such.key"},
		{nullCfg, kerr.InvalidConfig, "retention.ms"},
		{admNewTopic("taken", 1, 1), kerr.TopicAlreadyExists, "taken"},
	}
	for _, v := range []int16{2, 7} {
		for _, c := range cases {
			resp := s.handleCreateTopics(context.Background(), admCreateReq(v, c.topic))
			admWire(t, resp, v)
			if len(resp.Topics) != 1 || resp.Topics[0].Topic != c.topic.Topic {
				t.Fatalf("v%d %q: response topics %+v", v, c.topic.Topic, resp.Topics)
			}
			got := resp.Topics[0]
			admErr(t, c.topic.Topic, got.ErrorCode, got.ErrorMessage, c.want, c.msgPart)
			if got.NumPartitions != -1 || got.ReplicationFactor != -1 || got.Configs != nil || got.TopicID != [16]byte{} {
				t.Errorf("v%d %q: failed entry has topic details: %+v", v, c.topic.Topic, got)
			}
			if c.topic.Topic != "taken" && c.topic.Topic != "" && st.Topic(c.topic.Topic) != nil {
				t.Errorf("v%d %q: topic was created", v, c.topic.Topic)
			}
		}
	}

	// A name given twice is answered once and not created; the rest of the request goes ahead.
	resp := s.handleCreateTopics(context.Background(), admCreateReq(7,
		admNewTopic("dup", 1, 1), admNewTopic("single", 1, 1), admNewTopic("dup", 2, 1)))
	admWire(t, resp, 7)
	if len(resp.Topics) != 2 || resp.Topics[0].Topic != "dup" || resp.Topics[1].Topic != "single" {
		t.Fatalf("duplicates: response topics %+v", resp.Topics)
	}
	admErr(t, "dup", resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage, kerr.InvalidRequest, "Duplicate")
	admErr(t, "single", resp.Topics[1].ErrorCode, resp.Topics[1].ErrorMessage, nil, "")
	if st.Topic("dup") != nil || st.Topic("single") == nil {
		t.Errorf("duplicates: dup stored %v, single stored %v", st.Topic("dup"), st.Topic("single"))
	}

	// ValidateOnly checks and describes, and stores nothing.
	req := admCreateReq(7, admNewTopic("dry", 4, -1, "cleanup.policy", "compact"))
	req.ValidateOnly = true
	resp = s.handleCreateTopics(context.Background(), req)
	admWire(t, resp, 7)
	got := resp.Topics[0]
	admErr(t, "dry", got.ErrorCode, got.ErrorMessage, nil, "")
	if got.NumPartitions != 4 || got.ReplicationFactor != 1 || got.TopicID != [16]byte{} || st.Topic("dry") != nil {
		t.Errorf("validate only: %+v, stored %v", got, st.Topic("dry"))
	}
	found := false
	for _, c := range got.Configs {
		found = found || c.Name == "cleanup.policy" && admStr(c.Value) == "compact" && c.Source == int8(commitlog.SourceDynamicTopic)
	}
	if !found {
		t.Errorf("validate only: cleanup.policy=compact not in configs %+v", got.Configs)
	}
}

func TestAdminDeleteTopicsByName(t *testing.T) {
	for _, v := range []int16{0, 6} {
		s, st := admServer(t, nil)
		for _, n := range []string{"a", "__internal", "__consumer_offsets"} {
			admTopic(t, st, n, 1, nil)
		}
		names := []string{"a", "missing", "__internal", "__consumer_offsets"}
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.Version = v
		if v < 6 {
			req.TopicNames = names
		} else {
			for i := range names {
				req.Topics = append(req.Topics, kmsg.DeleteTopicsRequestTopic{Topic: &names[i]})
			}
		}
		ids := map[string][16]byte{"a": st.Topic("a").ID(), "__internal": st.Topic("__internal").ID(),
			"__consumer_offsets": st.Topic("__consumer_offsets").ID()}
		resp := s.handleDeleteTopics(context.Background(), req)
		admWire(t, resp, v)
		internal := kerr.TopicDeletionDisabled
		if v < 3 {
			internal = kerr.InvalidRequest
		}
		wants := []*kerr.Error{nil, kerr.UnknownTopicOrPartition, nil, internal}
		if len(resp.Topics) != len(names) {
			t.Fatalf("v%d: %d results, want %d", v, len(resp.Topics), len(names))
		}
		for i, want := range wants {
			got := resp.Topics[i]
			if admStr(got.Topic) != names[i] {
				t.Errorf("v%d: result %d names %q, want %q", v, i, admStr(got.Topic), names[i])
			}
			admErr(t, names[i], got.ErrorCode, got.ErrorMessage, want, "")
			wantID := [16]byte{}
			if v >= 6 {
				wantID = ids[names[i]]
			}
			if got.TopicID != wantID {
				t.Errorf("v%d %s: topic id %x, want %x", v, names[i], got.TopicID, wantID)
			}
		}
		if st.Topic("a") != nil || st.Topic("__internal") != nil || st.Topic("__consumer_offsets") == nil {
			t.Errorf("v%d: after delete: a %v, __internal %v, __consumer_offsets %v", v,
				st.Topic("a"), st.Topic("__internal"), st.Topic("__consumer_offsets"))
		}
	}
}

func TestAdminDeleteTopicsByID(t *testing.T) {
	s, st := admServer(t, nil)
	ids := map[string][16]byte{}
	for _, n := range []string{"b", "c", "d", "e", "f", "g"} {
		ids[n] = admTopic(t, st, n, 1, nil).ID()
	}
	name := func(s string) *string { return &s }
	unknownID := [16]byte{0xde, 0xad}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	req.Topics = []kmsg.DeleteTopicsRequestTopic{
		{Topic: name("b")},                     // by name
		{TopicID: ids["c"]},                    // by id
		{TopicID: unknownID},                   // unknown id
		{Topic: name("d"), TopicID: ids["d"]},  // both: refused
		{},                                     // neither: refused
		{Topic: name("e")}, {Topic: name("e")}, // duplicate name: one answer, kept
		{Topic: name("f")}, {TopicID: ids["f"]}, // name of an id also given: name refused, id deletes
		{TopicID: ids["g"]}, {TopicID: ids["g"]}, // duplicate id: one answer, kept
	}
	resp := s.handleDeleteTopics(context.Background(), req)
	admWire(t, resp, 6)
	wants := []struct {
		name string
		id   [16]byte
		err  *kerr.Error
	}{
		{"b", ids["b"], nil},
		{"c", ids["c"], nil},
		{"<nil>", unknownID, kerr.UnknownTopicID},
		{"d", ids["d"], kerr.InvalidRequest},
		{"<nil>", [16]byte{}, kerr.InvalidRequest},
		{"e", [16]byte{}, kerr.InvalidRequest},
		{"f", ids["f"], kerr.InvalidRequest},
		{"f", ids["f"], nil},
		{"<nil>", ids["g"], kerr.InvalidRequest},
	}
	if len(resp.Topics) != len(wants) {
		t.Fatalf("%d results, want %d: %+v", len(resp.Topics), len(wants), resp.Topics)
	}
	for i, w := range wants {
		got := resp.Topics[i]
		if admStr(got.Topic) != w.name || got.TopicID != w.id {
			t.Errorf("result %d: %s %x, want %s %x", i, admStr(got.Topic), got.TopicID, w.name, w.id)
		}
		admErr(t, w.name, got.ErrorCode, got.ErrorMessage, w.err, "")
	}
	for n, wantKept := range map[string]bool{"b": false, "c": false, "d": true, "e": true, "f": false, "g": true} {
		if kept := st.Topic(n) != nil; kept != wantKept {
			t.Errorf("topic %s kept=%v, want %v", n, kept, wantKept)
		}
	}
}

func TestAdminCreatePartitions(t *testing.T) {
	for _, v := range []int16{0, 3} {
		s, st := admServer(t, nil)
		for n, p := range map[string]int32{"grow": 1, "same": 2, "fewer": 3, "assigned": 1, "dup": 1, "dry": 1} {
			admTopic(t, st, n, p, nil)
		}
		topic := func(name string, count int32) kmsg.CreatePartitionsRequestTopic {
			return kmsg.CreatePartitionsRequestTopic{Topic: name, Count: count}
		}
		assigned := topic("assigned", 2)
		assigned.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{0}}}
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Version = v
		req.Topics = []kmsg.CreatePartitionsRequestTopic{topic("grow", 3), topic("same", 2), topic("fewer", 1),
			topic("missing", 2), assigned, topic("dup", 2), topic("dup", 3)}
		resp := s.handleCreatePartitions(context.Background(), req)
		admWire(t, resp, v)
		wants := []struct {
			name string
			err  *kerr.Error
			msg  string
		}{{"grow", nil, ""}, {"same", kerr.InvalidPartitions, "already has 2"}, {"fewer", kerr.InvalidPartitions, "cannot be removed"},
			{"missing", kerr.UnknownTopicOrPartition, "missing"}, {"assigned", kerr.InvalidRequest, "assignment"},
			{"dup", kerr.InvalidRequest, "Duplicate"}}
		if len(resp.Topics) != len(wants) {
			t.Fatalf("v%d: %d results, want %d", v, len(resp.Topics), len(wants))
		}
		for i, w := range wants {
			got := resp.Topics[i]
			if got.Topic != w.name {
				t.Errorf("v%d: result %d is %q, want %q", v, i, got.Topic, w.name)
			}
			admErr(t, w.name, got.ErrorCode, got.ErrorMessage, w.err, w.msg)
		}
		for n, want := range map[string]int32{"grow": 3, "same": 2, "fewer": 3, "assigned": 1, "dup": 1} {
			if got := st.Topic(n).NumPartitions(); got != want {
				t.Errorf("v%d: %s has %d partitions, want %d", v, n, got, want)
			}
		}
		req.Topics, req.ValidateOnly = []kmsg.CreatePartitionsRequestTopic{topic("dry", 5)}, true
		resp = s.handleCreatePartitions(context.Background(), req)
		admWire(t, resp, v)
		admErr(t, "dry", resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage, nil, "")
		if got := st.Topic("dry").NumPartitions(); got != 1 {
			t.Errorf("v%d: validate only changed dry to %d partitions", v, got)
		}
	}
}

func admDescribe(s *Server, version int16, synonyms, docs bool, resources ...kmsg.DescribeConfigsRequestResource) *kmsg.DescribeConfigsResponse {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version, req.IncludeSynonyms, req.IncludeDocumentation, req.Resources = version, synonyms, docs, resources
	return s.handleDescribeConfigs(context.Background(), req)
}

// admCheckConfigs compares described configs with the entries they come from.
func admCheckConfigs(t *testing.T, what string, version int16, synonyms, docs bool, got []kmsg.DescribeConfigsResponseResourceConfig, want []commitlog.ConfigEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d configs, want %d", what, len(got), len(want))
	}
	for i, e := range want {
		c := got[i]
		if c.Name != e.Name || admStr(c.Value) != e.Value || c.ReadOnly != e.ReadOnly || c.IsSensitive != e.Sensitive ||
			c.Source != kmsg.ConfigSource(e.Source) || c.IsDefault != (e.Source == commitlog.SourceDefault) {
			t.Errorf("%s: config %+v, want %+v", what, c, e)
		}
		wantSyn := 0
		if synonyms && version >= 1 {
			wantSyn = 1
		}
		if len(c.ConfigSynonyms) != wantSyn || wantSyn == 1 && (c.ConfigSynonyms[0].Name != e.Name ||
			admStr(c.ConfigSynonyms[0].Value) != e.Value || c.ConfigSynonyms[0].Source != kmsg.ConfigSource(e.Source)) {
			t.Errorf("%s %s: synonyms %+v", what, e.Name, c.ConfigSynonyms)
		}
		wantType, wantDoc := kmsg.ConfigType(0), "<nil>"
		if version >= 3 {
			wantType = kmsg.ConfigType(e.Type)
			if docs && e.Doc != "" {
				wantDoc = e.Doc
			}
		}
		if c.ConfigType != wantType || admStr(c.Documentation) != wantDoc {
			t.Errorf("%s %s: type %d doc %q, want %d %q", what, e.Name, c.ConfigType, admStr(c.Documentation), wantType, wantDoc)
		}
	}
}

func TestAdminDescribeTopicConfigs(t *testing.T) {
	s, st := admServer(t, nil)
	entries := admTopic(t, st, "cfg", 1, map[string]string{"retention.ms": "1234"}).DescribeConfigs()
	topic := func(name string, keys []string) kmsg.DescribeConfigsRequestResource {
		return kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: name, ConfigNames: keys}
	}
	for _, v := range []int16{0, 4} {
		for _, flags := range [][2]bool{{false, false}, {true, true}} {
			resp := admDescribe(s, v, flags[0], flags[1], topic("cfg", nil), topic("cfg", []string{}),
				topic("cfg", []string{"retention.ms", "no.such.key"}))
			admWire(t, resp, v)
			if len(resp.Resources) != 3 {
				t.Fatalf("v%d: %d resources, want 3", v, len(resp.Resources))
			}
			for i, want := range [][]commitlog.ConfigEntry{entries, entries, {admEntry(t, entries, "retention.ms")}} {
				r := resp.Resources[i]
				admErr(t, "cfg", r.ErrorCode, r.ErrorMessage, nil, "")
				if r.ResourceType != kmsg.ConfigResourceTypeTopic || r.ResourceName != "cfg" {
					t.Errorf("v%d: resource %d is %d/%q", v, i, r.ResourceType, r.ResourceName)
				}
				admCheckConfigs(t, "cfg", v, flags[0], flags[1], r.Configs, want)
			}
		}
		if e := admFirst(admDescribe(s, v, false, false, topic("cfg", []string{"retention.ms"}))); len(e.Configs) != 1 ||
			admStr(e.Configs[0].Value) != "1234" || e.Configs[0].Source != kmsg.ConfigSourceDynamicTopicConfig || e.Configs[0].IsDefault {
			t.Errorf("v%d: retention.ms described as %+v", v, e.Configs)
		}
		bad := []kmsg.DescribeConfigsRequestResource{topic("missing", nil), topic("bad name!", nil),
			{ResourceType: kmsg.ConfigResourceTypeBrokerLogger, ResourceName: "0"}, {ResourceType: 1, ResourceName: "x"}}
		resp := admDescribe(s, v, true, true, bad...)
		admWire(t, resp, v)
		for i, want := range []*kerr.Error{kerr.UnknownTopicOrPartition, kerr.InvalidTopicException, kerr.InvalidRequest, kerr.InvalidRequest} {
			r := resp.Resources[i]
			admErr(t, bad[i].ResourceName, r.ErrorCode, r.ErrorMessage, want, "")
			if r.ResourceType != bad[i].ResourceType || r.ResourceName != bad[i].ResourceName || r.Configs != nil {
				t.Errorf("v%d: failed resource %+v", v, r)
			}
		}
	}
}

func admFirst(resp *kmsg.DescribeConfigsResponse) kmsg.DescribeConfigsResponseResource {
	if len(resp.Resources) == 0 {
		return kmsg.DescribeConfigsResponseResource{}
	}
	return resp.Resources[0]
}

func TestAdminDescribeBrokerConfigs(t *testing.T) {
	s, _ := admServer(t, func(o *Options) {
		o.NodeID, o.AutoCreateTopics, o.MaxRequestBytes, o.DefaultPartitions = 7, true, 1<<20, 3
	})
	want := map[string]string{"broker.id": "7", "num.partitions": "3", "default.replication.factor": "1",
		"auto.create.topics.enable": "true", "socket.request.max.bytes": "1048576"}
	broker := func(name string) kmsg.DescribeConfigsRequestResource {
		return kmsg.DescribeConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: name}
	}
	for _, v := range []int16{0, 4} {
		resp := admDescribe(s, v, true, true, broker(""), broker("7"), broker("8"), broker("x"))
		admWire(t, resp, v)
		for i, r := range resp.Resources[:2] {
			admErr(t, r.ResourceName, r.ErrorCode, r.ErrorMessage, nil, "")
			if len(r.Configs) != len(want) {
				t.Fatalf("v%d resource %d: %d configs, want %d", v, i, len(r.Configs), len(want))
			}
			for _, c := range r.Configs {
				if w, ok := want[c.Name]; !ok || admStr(c.Value) != w || !c.ReadOnly || c.IsDefault ||
					c.Source != kmsg.ConfigSourceStaticBrokerConfig || c.IsSensitive {
					t.Errorf("v%d: broker config %+v, want value %q", v, c, w)
				}
				if v >= 3 && (c.ConfigType == 0 || c.Documentation == nil || len(c.ConfigSynonyms) != 1) {
					t.Errorf("v%d %s: type %d doc %v synonyms %+v", v, c.Name, c.ConfigType, c.Documentation, c.ConfigSynonyms)
				}
			}
		}
		for _, r := range resp.Resources[2:] {
			admErr(t, r.ResourceName, r.ErrorCode, r.ErrorMessage, kerr.InvalidRequest, r.ResourceName)
		}
	}
}

func admAlter(s *Server, version int16, validateOnly bool, resources ...kmsg.IncrementalAlterConfigsRequestResource) *kmsg.IncrementalAlterConfigsResponse {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version, req.ValidateOnly, req.Resources = version, validateOnly, resources
	return s.handleIncrementalAlterConfigs(context.Background(), req)
}

func admOp(name string, op kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: op, Value: value}
}

func TestAdminIncrementalAlterConfigs(t *testing.T) {
	s, st := admServer(t, nil)
	admTopic(t, st, "alt", 1, nil)
	def := admEntry(t, admTopic(t, st, "fresh", 1, nil).DescribeConfigs(), "retention.ms")
	topic := func(name string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
		return kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: name, Configs: ops}
	}
	retention := func() commitlog.ConfigEntry { return admEntry(t, st.Topic("alt").DescribeConfigs(), "retention.ms") }
	steps := []struct {
		version      int16
		validateOnly bool
		op           kmsg.IncrementalAlterConfigsRequestResourceConfig
		wantValue    string
	}{
		{0, false, admOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("5000")), "5000"},
		{1, true, admOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("9")), "5000"},
		{1, false, admOp("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil), def.Value},
	}
	for _, step := range steps {
		resp := admAlter(s, step.version, step.validateOnly, topic("alt", step.op))
		admWire(t, resp, step.version)
		r := resp.Resources[0]
		admErr(t, "alt", r.ErrorCode, r.ErrorMessage, nil, "")
		if r.ResourceType != kmsg.ConfigResourceTypeTopic || r.ResourceName != "alt" {
			t.Errorf("v%d: resource %d/%q", step.version, r.ResourceType, r.ResourceName)
		}
		if got := retention(); got.Value != step.wantValue {
			t.Errorf("v%d %+v: retention.ms %q, want %q", step.version, step.op, got.Value, step.wantValue)
		}
	}
	if got := retention(); got.Source != def.Source {
		t.Errorf("after DELETE retention.ms has source %d, want %d", got.Source, def.Source)
	}

	set := func(v string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		return admOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(v))
	}
	bad := []struct {
		res     kmsg.IncrementalAlterConfigsRequestResource
		want    *kerr.Error
		msgPart string
	}{
		{topic("alt", set("abc")), kerr.InvalidConfig, "retention.ms"},
		{topic("alt", admOp("no.such.key", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1"))), kerr.InvalidConfig, "no.such.key"},
		{topic("missing", set("1")), kerr.UnknownTopicOrPartition, "missing"},
		{topic("bad name!", set("1")), kerr.InvalidTopicException, "bad name!"},
		{topic("alt", admOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, nil)), kerr.InvalidRequest, "null"},
		{topic("alt", admOp("retention.ms", 9, kmsg.StringPtr("1"))), kerr.InvalidRequest, "operation"},
		{topic("alt", set("1"), set("2")), kerr.InvalidRequest, "more than once"},
		{kmsg.IncrementalAlterConfigsRequestResource{ResourceType: kmsg.ConfigResourceTypeBroker, Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{
			admOp("num.partitions", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("3"))}}, kerr.InvalidRequest, "read-only"},
		{kmsg.IncrementalAlterConfigsRequestResource{ResourceType: 1, ResourceName: "x"}, kerr.InvalidRequest, "unsupported"},
	}
	for _, v := range []int16{0, 1} {
		for _, b := range bad {
			resp := admAlter(s, v, false, b.res)
			admWire(t, resp, v)
			r := resp.Resources[0]
			admErr(t, b.res.ResourceName, r.ErrorCode, r.ErrorMessage, b.want, b.msgPart)
			if r.ResourceType != b.res.ResourceType || r.ResourceName != b.res.ResourceName {
				t.Errorf("v%d: resource %d/%q", v, r.ResourceType, r.ResourceName)
			}
		}
		// A resource given twice is answered once and not changed.
		resp := admAlter(s, v, false, topic("alt", set("77")), topic("alt", set("78")))
		admWire(t, resp, v)
		if len(resp.Resources) != 1 {
			t.Fatalf("v%d duplicates: %d results, want 1", v, len(resp.Resources))
		}
		admErr(t, "alt", resp.Resources[0].ErrorCode, resp.Resources[0].ErrorMessage, kerr.InvalidRequest, "once")
	}
	if got := retention(); got.Value != def.Value {
		t.Errorf("failed requests changed retention.ms to %q", got.Value)
	}
}

func TestAdminDescribeCluster(t *testing.T) {
	s, st := admServer(t, func(o *Options) { o.NodeID = 3 })
	for _, v := range []int16{0, 1} {
		for _, ops := range []bool{false, true} {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.Version, req.IncludeClusterAuthorizedOperations = v, ops
			resp := s.handleDescribeCluster(context.Background(), req)
			admWire(t, resp, v)
			admErr(t, "cluster", resp.ErrorCode, resp.ErrorMessage, nil, "")
			wantOps := int32(math.MinInt32)
			if ops {
				wantOps = 8096 // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE
			}
			if resp.ClusterID == "" || resp.ClusterID != st.ClusterID() || resp.ControllerID != 3 ||
				resp.EndpointType != 1 || resp.ClusterAuthorizedOperations != wantOps {
				t.Errorf("v%d: %+v", v, resp)
			}
			if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 3 || resp.Brokers[0].Host != "edge.local" ||
				resp.Brokers[0].Port != 9092 || resp.Brokers[0].Rack != nil {
				t.Errorf("v%d: brokers %+v", v, resp.Brokers)
			}
		}
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version, req.EndpointType = 1, 2
	resp := s.handleDescribeCluster(context.Background(), req)
	admWire(t, resp, 1)
	admErr(t, "controllers", resp.ErrorCode, resp.ErrorMessage, kerr.UnsupportedEndpointType, "type 2")
	if resp.Brokers != nil {
		t.Errorf("controller endpoint request got brokers %+v", resp.Brokers)
	}
}

// TestAdminEmptyAndCancelled: empty requests answer nothing; a cancelled request changes nothing.
func TestAdminEmptyAndCancelled(t *testing.T) {
	s, st := admServer(t, nil)
	admTopic(t, st, "keep", 1, nil)
	bg := context.Background()
	counts := []int{len(s.handleCreateTopics(bg, &kmsg.CreateTopicsRequest{Version: 7}).Topics),
		len(s.handleDeleteTopics(bg, &kmsg.DeleteTopicsRequest{Version: 6}).Topics),
		len(s.handleCreatePartitions(bg, &kmsg.CreatePartitionsRequest{Version: 3}).Topics),
		len(s.handleDescribeConfigs(bg, &kmsg.DescribeConfigsRequest{Version: 4}).Resources),
		len(s.handleIncrementalAlterConfigs(bg, &kmsg.IncrementalAlterConfigsRequest{Version: 1}).Resources)}
	if counts[0]+counts[1]+counts[2]+counts[3]+counts[4] != 0 {
		t.Errorf("empty requests answered with entries: %v", counts)
	}
	if r := s.handleDescribeCluster(bg, &kmsg.DescribeClusterRequest{}); r.ErrorCode != 0 || len(r.Brokers) != 1 {
		t.Errorf("zero DescribeCluster v0: %+v", r)
	}

	ctx, cancel := context.WithCancel(bg)
	cancel()
	ct := s.handleCreateTopics(ctx, admCreateReq(7, admNewTopic("late", 1, 1)))
	admErr(t, "create", ct.Topics[0].ErrorCode, ct.Topics[0].ErrorMessage, kerr.RequestTimedOut, "cancelled")
	dt := s.handleDeleteTopics(ctx, &kmsg.DeleteTopicsRequest{Version: 5, TopicNames: []string{"keep"}})
	admErr(t, "delete", dt.Topics[0].ErrorCode, dt.Topics[0].ErrorMessage, kerr.RequestTimedOut, "cancelled")
	if st.Topic("late") != nil || st.Topic("keep") == nil {
		t.Errorf("cancelled requests changed topics: late %v keep %v", st.Topic("late"), st.Topic("keep"))
	}
}

// TestAdminKadm drives the admin APIs through the network server with franz-go's kadm, so
// version negotiation and encoding are those of a real client.
func TestAdminKadm(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	s, st := admServer(t, func(o *Options) { o.AdvertisedHost, o.AdvertisedPort = "127.0.0.1", port })
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := adm.CreateTopic(ctx, 2, -1, map[string]*string{"retention.ms": kmsg.StringPtr("1000")}, "kt"); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "kt-rf3"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Errorf("create with replication factor 3: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("2000")}}
	if r, err := adm.AlterTopicConfigs(ctx, alter, "kt"); err != nil || r[0].Err != nil {
		t.Fatalf("alter configs: %v %+v", err, r)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "kt")
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	found := false
	for _, c := range rc[0].Configs {
		found = found || c.Key == "retention.ms" && c.MaybeValue() == "2000" && c.Source == kmsg.ConfigSourceDynamicTopicConfig
	}
	if !found {
		t.Errorf("retention.ms=2000 (dynamic topic config) not described: %+v", rc)
	}
	bc, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil || len(bc) != 1 || bc[0].Err != nil || len(bc[0].Configs) == 0 {
		t.Errorf("describe broker configs: %v %+v", err, bc)
	}
	if r, err := adm.UpdatePartitions(ctx, 4, "kt"); err != nil || r["kt"].Err != nil || st.Topic("kt").NumPartitions() != 4 {
		t.Fatalf("update partitions: %v %+v", err, r)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil || dc.ErrorCode != 0 || dc.ClusterID != st.ClusterID() || len(dc.Brokers) != 1 || dc.Brokers[0].Port != port {
		t.Errorf("describe cluster: %v %+v", err, dc)
	}
	if r, err := adm.DeleteTopics(ctx, "kt"); err != nil || r["kt"].Err != nil || st.Topic("kt") != nil {
		t.Fatalf("delete topics: %v %+v", err, r)
	}
}
