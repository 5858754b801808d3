package agent_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCrashKill9UnderLoad kills an fsync=always agent with SIGKILL at random points while an
// acks=all producer runs, then checks after every restart that each acknowledged record is
// there at the offset it was acknowledged with, that offsets are dense, and that fetching works.
func TestCrashKill9UnderLoad(t *testing.T) {
	cycles := 20
	if testing.Short() {
		cycles = 5
	}
	dir := t.TempDir()
	const topic = "crash"
	acked := map[int64]string{} // offset -> value, over all cycles
	var mu sync.Mutex           // guards acked: producer callbacks write it
	snapshot := func() map[int64]string {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(acked)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for cycle := 0; cycle < cycles; cycle++ {
		p := startAgentProcess(t, dir, "SAMSA_FSYNC=always")
		verifyLog(t, p.kafkaAddr, topic, snapshot(), cycle)
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafkaAddr),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond),
			kgo.RecordRetries(0), kgo.MaxBufferedRecords(2000))
		if err != nil {
			t.Fatal(err)
		}
		if cycle == 0 {
			if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
		}
		target := 200 + rng.IntN(2000) // acknowledged records before the kill
		n := 0
		done := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			defer close(done)
			for i := 0; ctx.Err() == nil; i++ {
				val := fmt.Sprintf("c%d-r%d-%s", cycle, i, strings.Repeat("x", (i*7919)%200))
				cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(val)}, func(r *kgo.Record, err error) {
					if err != nil {
						return // not acknowledged: may or may not be in the log
					}
					mu.Lock()
					acked[r.Offset] = string(r.Value)
					n++
					mu.Unlock()
				})
			}
		}()
		for {
			mu.Lock()
			got := n
			mu.Unlock()
			if got >= target {
				break
			}
			time.Sleep(time.Millisecond) // polling the ack count; the kill point is random anyway
		}
		time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		p.kill9(t)
		cancel()
		cl.Close() // fails the outstanding records; their callbacks don't record them
		<-done
	}
	p := startAgentProcess(t, dir, "SAMSA_FSYNC=always")
	verifyLog(t, p.kafkaAddr, topic, snapshot(), cycles)
	if !strings.Contains(p.Logs(), "clean_shutdown\":false") {
		t.Fatalf("agent did not report an unclean start after kill -9:\n%s", p.Logs())
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
	}
	if _, err := os.Stat(filepath.Join(dir, ".clean_shutdown")); err != nil {
		t.Fatalf("no clean shutdown marker after SIGTERM: %v", err)
	}
}

// verifyLog consumes the whole topic and checks it against the acknowledged records.
func verifyLog(t *testing.T, addr, topic string, acked map[int64]string, cycle int) {
	t.Helper()
	if len(acked) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure bound only
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := int64(0)
	for next < end.Offset {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("cycle %d: consumed up to %d of %d: %v", cycle, next, end.Offset, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("cycle %d: fetch: %v", cycle, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next {
				t.Fatalf("cycle %d: offsets not dense: got %d, want %d", cycle, r.Offset, next)
			}
			if want, ok := acked[r.Offset]; ok && want != string(r.Value) {
				t.Fatalf("cycle %d: offset %d holds %q, acknowledged %q", cycle, r.Offset, r.Value, want)
			}
			next++
		})
	}
	for off := range acked {
		if off >= next {
			t.Fatalf("cycle %d: acknowledged offset %d lost (log ends at %d)", cycle, off, next)
		}
	}
	t.Logf("cycle %d: %d records in the log, all %d acknowledged ones intact", cycle, next, len(acked))
}
