package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// kafka runs the tests with franz-go against a Kafka-protocol broker at addr.
type kafka struct {
	addr          string
	fetchMaxBytes int32 // consumer FetchMaxBytes = FetchMaxPartitionBytes
}

func (k *kafka) client(opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(k.addr),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}
	return kgo.NewClient(append(base, opts...)...)
}

// createTopic creates a one-partition topic (one JetStream stream is one ordered log too).
func (k *kafka) createTopic(ctx context.Context, name string) error {
	cl, err := k.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, name)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("create topic %s: %w", name, resp.Err)
	}
	return nil
}

// produce sends n records asynchronously with acks=all and a 5 ms linger and waits for all
// acknowledgements. One synchronous record first loads metadata and opens the connection, so
// the topic ends up with n+1 records.
func (k *kafka) produce(ctx context.Context, m *meter, name string, size, n int) (throughput, error) {
	if err := k.createTopic(ctx, name); err != nil {
		return throughput{}, err
	}
	cl, err := k.client(
		kgo.DefaultProduceTopic(name),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()
	value := payload(size)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
		return throughput{}, fmt.Errorf("warm-up record: %w", err)
	}
	var failed atomic.Int64
	var firstErr atomic.Value
	cb := func(_ *kgo.Record, err error) {
		if err != nil && failed.Add(1) == 1 {
			firstErr.Store(err)
		}
	}
	m.begin()
	for range n {
		cl.Produce(ctx, &kgo.Record{Value: value}, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		return throughput{}, err
	}
	if f := failed.Load(); f > 0 {
		return throughput{}, fmt.Errorf("%d of %d records failed, first: %v", f, n, firstErr.Load())
	}
	return newThroughput(m, n, size), nil
}

// consume reads the topic from the start until it has seen all n+1 records (the warm-up
// record is counted in the time but not in the result).
func (k *kafka) consume(ctx context.Context, m *meter, name string, size, n int) (throughput, error) {
	m.begin()
	cl, err := k.client(
		kgo.ConsumeTopics(name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(k.fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(k.fetchMaxBytes),
	)
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()
	want := n + 1
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return throughput{}, fmt.Errorf("after %d of %d records: %w", got, want, err)
		}
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != size && bad == nil {
				bad = fmt.Errorf("record at offset %d has %d bytes, want %d", r.Offset, len(r.Value), size)
			}
			got++
		})
		if bad != nil {
			return throughput{}, bad
		}
	}
	return newThroughput(m, n, size), nil
}

// latency produces with acks=1 and no linger at a fixed rate; each record's callback records
// its latency from the planned send time.
func (k *kafka) latency(ctx context.Context, m *meter, name string, p paceConfig) ([]time.Duration, error) {
	if err := k.createTopic(ctx, name); err != nil {
		return nil, err
	}
	cl, err := k.client(
		kgo.DefaultProduceTopic(name),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(), // idempotence needs acks=all
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	value := payload(p.size)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
		return nil, fmt.Errorf("warm-up record: %w", err)
	}
	rec := newLatencyRecorder(p)
	return rec.run(ctx, m, func(i int) error {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				rec.fail(err)
				return
			}
			rec.ack(i)
		})
		return nil
	})
}

// rawConsume reads the topic with bare Fetch requests (v12, the last with topic names) and
// counts records from the batch headers after checking each batch's CRC-32C, without
// decoding records. It shows what the broker can deliver when the client does not decode;
// consume shows what a real franz-go consumer gets.
func (k *kafka) rawConsume(ctx context.Context, m *meter, name string, size, n int) (throughput, error) {
	cl, err := k.client(kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()
	m.begin()
	want := int64(n + 1)
	var got, offset int64
	for got < want {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, k.fetchMaxBytes
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = name
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = offset, k.fetchMaxBytes
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return throughput{}, fmt.Errorf("fetch at %d: %w", offset, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return throughput{}, fmt.Errorf("fetch at %d: unexpected response shape", offset)
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return throughput{}, fmt.Errorf("fetch at %d: %w", offset, err)
		}
		recs, next, err := countBatches(p.RecordBatches)
		if err != nil {
			return throughput{}, fmt.Errorf("fetch at %d: %w", offset, err)
		}
		if next <= offset {
			return throughput{}, fmt.Errorf("fetch at %d made no progress (high watermark %d)", offset, p.HighWatermark)
		}
		got, offset = got+recs, next
	}
	return newThroughput(m, n, size), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// countBatches walks RecordBatch v2 headers: it checks each whole batch's CRC-32C and returns
// the records counted and the offset after the last whole batch (a trailing partial batch,
// which a broker may send, is ignored).
func countBatches(b []byte) (records, next int64, err error) {
	const headerLen = 61 // through the records count
	for len(b) >= headerLen {
		base := int64(binary.BigEndian.Uint64(b[0:]))
		total := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
		if total < headerLen {
			return 0, 0, fmt.Errorf("batch at offset %d: bad length %d", base, total-12)
		}
		if total > len(b) {
			break
		}
		if b[16] != 2 {
			return 0, 0, fmt.Errorf("batch at offset %d: magic %d", base, b[16])
		}
		if crc := binary.BigEndian.Uint32(b[17:]); crc != crc32.Checksum(b[21:total], castagnoli) {
			return 0, 0, fmt.Errorf("batch at offset %d: CRC mismatch", base)
		}
		records += int64(int32(binary.BigEndian.Uint32(b[57:])))
		next = base + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		b = b[total:]
	}
	return records, next, nil
}
