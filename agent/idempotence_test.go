package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// rawProducer sends hand-made idempotent batches through a franz-go client, so the test
// controls producer id, epoch and sequence the way a retrying client would use them.
type rawProducer struct {
	t     *testing.T
	cl    *kgo.Client
	topic string
}

func newRawProducer(t *testing.T, addr, topic string) *rawProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &rawProducer{t: t, cl: cl, topic: topic}
}

func (p *rawProducer) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure bound only
	p.t.Cleanup(cancel)
	return ctx
}

// initProducerID returns a new producer id.
func (p *rawProducer) initProducerID() int64 {
	p.t.Helper()
	resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(p.ctx(), p.cl)
	if err != nil || resp.ErrorCode != 0 {
		p.t.Fatalf("InitProducerId: %v %v", resp, err)
	}
	return resp.ProducerID
}

// send produces one batch of n records and returns the base offset or the error code.
func (p *rawProducer) send(pid int64, seq int32, n int) (int64, int16) {
	p.t.Helper()
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: pid, BaseSequence: seq})
	for i := range n {
		b.Add(time.Now().UnixMilli(), nil, fmt.Appendf(nil, "seq-%d", int(seq)+i), nil)
	}
	records, err := b.Build()
	if err != nil {
		p.t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = p.topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = records
	tp.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	req.Topics = []kmsg.ProduceRequestTopic{tp}
	resp, err := req.RequestWith(p.ctx(), p.cl)
	if err != nil {
		p.t.Fatalf("produce: %v", err)
	}
	got := resp.Topics[0].Partitions[0]
	return got.BaseOffset, got.ErrorCode
}

// TestIdempotentRetryAcrossKill9 sends an idempotent producer's batches, kills the agent
// with SIGKILL (no clean shutdown, no snapshot at close), restarts it and re-sends the last
// five batches with the same producer id, epoch and sequences: each is answered with the
// offsets it got before the kill, and nothing is appended twice.
func TestIdempotentRetryAcrossKill9(t *testing.T) {
	dir := t.TempDir()
	const topic = "idem-crash"
	p := startAgentProcess(t, dir, "SAMSA_FSYNC=always")
	rp := newRawProducer(t, p.kafkaAddr, topic)
	if _, err := kadm.NewClient(rp.cl).CreateTopic(rp.ctx(), 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("4096")}, topic); err != nil {
		t.Fatal(err)
	}
	pid := rp.initProducerID()
	const batches, size = 100, 3
	for i := range batches {
		if off, code := rp.send(pid, int32(i*size), size); code != 0 || off != int64(i*size) {
			t.Fatalf("batch %d: offset %d, %s", i, off, kerr.ErrorForCode(code))
		}
	}
	p.kill9(t)

	p = startAgentProcess(t, dir, "SAMSA_FSYNC=always")
	rp = newRawProducer(t, p.kafkaAddr, topic)
	for i := batches - 5; i < batches; i++ {
		if off, code := rp.send(pid, int32(i*size), size); code != 0 || off != int64(i*size) {
			t.Fatalf("retry of batch %d after kill -9: offset %d, %v; want offset %d", i, off, kerr.ErrorForCode(code), i*size)
		}
	}
	if _, code := rp.send(pid, batches*size+1, 1); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after kill -9: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(code))
	}
	if off, code := rp.send(pid, batches*size, 1); code != 0 || off != batches*size {
		t.Fatalf("next batch after kill -9: offset %d, %v", off, kerr.ErrorForCode(code))
	}
	if id := rp.initProducerID(); id <= pid {
		t.Fatalf("producer id %d handed out again after kill -9 (had %d)", id, pid)
	}
	ends, err := kadm.NewClient(rp.cl).ListEndOffsets(rp.ctx(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if end, _ := ends.Lookup(topic, 0); end.Offset != batches*size+1 {
		t.Fatalf("log end %d, want %d (no duplicates)", end.Offset, batches*size+1)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
	}
}
