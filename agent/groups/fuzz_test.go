package groups

import (
	"log/slog"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// FuzzReplayRecord feeds arbitrary keys and values to the replay of __consumer_offsets:
// nothing may panic, and whatever is applied must stay consistent enough to answer.
func FuzzReplayRecord(f *testing.F) {
	g := &group{id: "g", generation: 3, protocolType: "consumer", protocol: "range", leader: "m", stateSince: time.UnixMilli(1)}
	g.members = map[string]*member{"m": {id: "m", clientID: "c", protocols: []protocol{{name: "range", metadata: []byte{1}}}, assignment: []byte{2}}}
	tp := topicPartition{topic: "t", partition: 1}
	off := offsetRecord("g", tp, &committed{offset: 7, metadata: "x", commitTime: time.UnixMilli(5)})
	grp := groupRecord(g)
	f.Add(off.key, off.value, false)
	f.Add(off.key, []byte(nil), true)
	f.Add(grp.key, grp.value, false)
	f.Add(grp.key, []byte(nil), true)
	f.Add([]byte{0, 9, 1}, []byte{1, 2, 3}, false)

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
