package groups

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// FuzzReplayRecord feeds arbitrary keys and values to the replay of __consumer_offsets:
// nothing may panic, and whatever is applied must stay consistent enough to answer.
func FuzzReplayRecord(f *testing.F) {
	for _, s := range replaySeeds() {
		f.Add(s.key, s.value, s.tombstone)
	}

	st, err := commitlog.Open(commitlog.Options{Dir: f.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	c := &Coordinator{store: st, log: slog.New(slog.DiscardHandler), clock: SystemClock(), groups: map[string]*group{}}
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		c.replayRecord(&batch.Record{Key: key, Value: value})
		for _, g := range c.groups {
			_ = groupRecord(g)
			_ = g.committedTopics()
		}
		if len(c.groups) > 1000 {
			c.groups = map[string]*group{}
		}
	})
}

// replaySeed is one FuzzReplayRecord input.
type replaySeed struct {
	key, value []byte
	tombstone  bool
}

// replaySeeds are records as the coordinator writes them to __consumer_offsets: an offset
// commit and a group's metadata, their tombstones, and an unknown key version.
func replaySeeds() map[string]replaySeed {
	g := &group{id: "g", generation: 3, protocolType: "consumer", protocol: "range", leader: "m", stateSince: time.UnixMilli(1)}
	g.members = map[string]*member{"m": {id: "m", clientID: "c", protocols: []protocol{{name: "range", metadata: []byte{1}}}, assignment: []byte{2}}}
	tp := topicPartition{topic: "t", partition: 1}
	off := offsetRecord("g", tp, &committed{offset: 7, metadata: "x", commitTime: time.UnixMilli(5)})
	grp := groupRecord(g)
	return map[string]replaySeed{
		"offset":           {off.key, off.value, false},
		"offset_tombstone": {off.key, nil, true},
		"group":            {grp.key, grp.value, false},
		"group_tombstone":  {grp.key, nil, true},
		"unknown_version":  {[]byte{0, 9, 1}, []byte{1, 2, 3}, false},
	}
}

// TestWriteReplayFuzzCorpus rewrites testdata/fuzz/FuzzReplayRecord and FuzzSubscribedTopics
// when SAMSA_WRITE_FUZZ_CORPUS=1.
func TestWriteReplayFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SAMSA_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReplayRecord")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range replaySeeds() {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nbool(%v)\n", s.key, s.value, s.tombstone)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzSubscribedTopics")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, md := range subscriptionSeeds() {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", md)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzSubscribedTopics decodes the consumer protocol metadata a member sends in JoinGroup, as
// OffsetDelete does to refuse deleting the offsets of a subscribed topic. Nothing may panic;
// metadata that decodes lists exactly its topics; metadata that does not counts every topic
// as subscribed.
func FuzzSubscribedTopics(f *testing.F) {
	for _, md := range subscriptionSeeds() {
		f.Add(md)
	}
	f.Fuzz(func(t *testing.T, md []byte) {
		g := &group{id: "g", state: stateStable, protocolType: "consumer", protocol: "range", members: map[string]*member{
			"m": {id: "m", protocols: []protocol{{name: "range", metadata: md}}},
		}}
		topics, all := g.subscribedTopics()
		var cm kmsg.ConsumerMemberMetadata
		if err := cm.ReadFrom(md); err != nil {
			if !all {
				t.Fatalf("metadata that does not decode (%v) did not count every topic as subscribed", err)
			}
			return
		}
		if all {
			t.Fatal("metadata that decodes counted every topic as subscribed")
		}
		for _, topic := range cm.Topics {
			if !topics[topic] {
				t.Fatalf("topic %q missing from %v", topic, topics)
			}
		}
		if len(topics) > len(cm.Topics) {
			t.Fatalf("%v holds more than %q", topics, cm.Topics)
		}
	})
}

// subscriptionSeeds are consumer protocol metadata of versions 0 to 3 (as franz-go and the
// Java client send them) and a truncated one.
func subscriptionSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	for v := int16(0); v <= 3; v++ {
		cm := kmsg.NewConsumerMemberMetadata()
		cm.Version, cm.Topics, cm.UserData = v, []string{"orders", "events"}, []byte{1}
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic, op.Partitions = "orders", []int32{0, 2}
		cm.OwnedPartitions = append(cm.OwnedPartitions, op)
		cm.Generation, cm.Rack = 4, kmsg.StringPtr("r1")
		seeds[fmt.Sprintf("v%d", v)] = cm.AppendTo(nil)
	}
	seeds["truncated"] = seeds["v1"][:9]
	return seeds
}
