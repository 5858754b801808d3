package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// valueGen defines the value of every record: the one at offset i is size bytes of a fixed
// random pool from position (i*valueStride) mod valuePool. Reads are checked byte for byte
// against it without keeping what was produced; consecutive values do not overlap, and the
// pattern repeats only after valuePool offsets.
type valueGen struct {
	pool []byte
	size int
}

const (
	valuePool   = 8 << 20
	valueStride = 4099 // prime, and larger than any -record-size the flags allow
)

func newValueGen(size int, seed uint64) *valueGen {
	g := &valueGen{pool: make([]byte, valuePool+size), size: size}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(g.pool); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			g.pool[i+j] = byte(v >> (8 * j))
		}
	}
	return g
}

// value is the value at offset i; it aliases the pool and must not be written to.
func (g *valueGen) value(i int64) []byte {
	off := int((i * valueStride) % valuePool)
	return g.pool[off : off+g.size : off+g.size]
}

func newClient(addr string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ProducerBatchCompression(kgo.NoCompression())}
	return kgo.NewClient(append(base, opts...)...)
}

// createTopic creates the one-partition tiered topic.
func createTopic(ctx context.Context, addr, topic string, segmentBytes int64) error {
	cl, err := newClient(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	cfg := map[string]*string{
		"remote.storage.enable": new("true"),
		"segment.bytes":         new(strconv.FormatInt(segmentBytes, 10)),
		"retention.ms":          new("-1"),
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// alterTopic sets one config key of the topic.
func alterTopic(ctx context.Context, addr, topic, key, value string) error {
	cl, err := newClient(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	rs, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		for _, r := range rs {
			if r.Err != nil {
				err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("set %s=%s on %s: %w", key, value, topic, err)
	}
	return nil
}

// produce sends the records at offsets [from, to) asynchronously (acks=all, idempotent, 5 ms
// linger, no compression) and waits for every acknowledgement. One partition and one
// idempotent producer keep offset i = the i-th record sent, which the reads check.
func produce(ctx context.Context, addr, topic string, g *valueGen, from, to int64) (time.Duration, error) {
	cl, err := newClient(addr, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	// franz-go calls the promises of one partition in order: the k-th call is offset from+k.
	var failed, acked atomic.Int64
	var firstErr atomic.Value
	cb := func(r *kgo.Record, err error) {
		want := from + acked.Add(1) - 1
		if err == nil && r.Offset != want {
			err = fmt.Errorf("record %d was stored at offset %d", want, r.Offset)
		}
		if err != nil && failed.Add(1) == 1 {
			firstErr.Store(err)
		}
	}
	start := time.Now()
	for i := from; i < to; i++ {
		cl.Produce(ctx, &kgo.Record{Value: g.value(i), Partition: 0}, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d of %d records failed, first: %v", f, to-from, firstErr.Load())
	}
	return took, nil
}

// consumeResult is one read of offsets [0, n) through the agent.
type consumeResult struct {
	Seconds    float64 `json:"seconds"`
	Records    int64   `json:"records"`
	LastOffset int64   `json:"last_offset"`
	// BatchBytes is the sum of the record batches' sizes as fetched (franz-go's
	// HookFetchBatchRead: CompressedBytes, the records, plus the 61-byte batch header): the
	// .log bytes the reads covered.
	BatchBytes int64 `json:"batch_bytes"`
	Batches    int64 `json:"batches"`
	// Fetches is the Fetch responses read; FetchWaitSeconds the time the client spent
	// waiting for and reading them (franz-go has one fetch in flight per broker and decodes a
	// response before it sends the next request).
	Fetches          int64   `json:"fetches"`
	FetchWaitSeconds float64 `json:"fetch_wait_seconds"`
	MBPerSec         float64 `json:"mb_per_s"`
	// Verified: every record's offset was the next one and its value byte-exact.
	Verified bool   `json:"verified"`
	CPU      cpuUse `json:"cpu"`
}

// batchHeaderSize is the size of a v2 record batch's header (batch.HeaderSize), which
// FetchBatchMetrics does not count.
const batchHeaderSize = batch.HeaderSize

// batchHook counts the record batches franz-go reads and the time it spends reading fetch
// responses.
type batchHook struct {
	bytes, batches atomic.Int64
	fetches        atomic.Int64
	fetchWait      atomic.Int64 // nanoseconds
}

// OnBrokerRead adds up, for Fetch responses, the time from the request being sent to the
// response read in full: the agent preparing it, plus the transfer.
func (h *batchHook) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, readWait, timeToRead time.Duration, err error) {
	if key == 1 && err == nil { // Fetch
		h.fetches.Add(1)
		h.fetchWait.Add(int64(readWait + timeToRead))
	}
}

func (h *batchHook) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.bytes.Add(int64(m.CompressedBytes) + batchHeaderSize)
	h.batches.Add(1)
}

// consume reads offsets [0, n) of partition 0 with one franz-go consumer and checks every
// record. The time runs from creating the client (connection and metadata included) to the
// record at offset n-1.
func consume(ctx context.Context, addr, topic string, g *valueGen, n int64, fetchMax int32) (consumeResult, error) {
	hook := &batchHook{}
	start := time.Now()
	cl, err := newClient(addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxBytes(fetchMax), kgo.FetchMaxPartitionBytes(fetchMax),
		kgo.WithHooks(hook))
	if err != nil {
		return consumeResult{}, err
	}
	defer cl.Close()
	res := consumeResult{LastOffset: -1}
	next := int64(0)
	var bad error
	for next < n && bad == nil {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return res, fmt.Errorf("after %d of %d records: %w", next, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			switch {
			case bad != nil || r.Offset >= n: // the filler record after the tiered range
			case r.Offset != next:
				bad = fmt.Errorf("got offset %d, want %d", r.Offset, next)
			case !bytes.Equal(r.Value, g.value(r.Offset)) || r.Key != nil:
				bad = fmt.Errorf("record at offset %d: %d-byte value differs from the one produced", r.Offset, len(r.Value))
			default:
				next++
				res.LastOffset = r.Offset
			}
		})
	}
	res.Seconds = time.Since(start).Seconds()
	if bad != nil {
		return res, bad
	}
	res.Records, res.Verified = next, true
	res.BatchBytes, res.Batches = hook.bytes.Load(), hook.batches.Load()
	res.Fetches, res.FetchWaitSeconds = hook.fetches.Load(), time.Duration(hook.fetchWait.Load()).Seconds()
	res.MBPerSec = float64(res.BatchBytes) / 1e6 / res.Seconds
	return res, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// rawConsume reads offsets [0, n) with bare Fetch requests (v12, one at a time, like a
// consumer) and does not decode records: it checks each batch's CRC-32C, that the batches
// follow each other, and that the batches of each segment add up to that segment's .log file
// (its CRC-32C, crcs). It shows what the agent delivers when the client does little work.
func rawConsume(ctx context.Context, addr, topic string, n int64, fetchMax int32, segs []segmentFiles, crcs []uint32) (consumeResult, error) {
	res := consumeResult{LastOffset: -1}
	start := time.Now()
	cl, err := newClient(addr, kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	seg, h := 0, crc32.New(castagnoli)
	var offset int64
	for offset < n {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, fetchMax
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = offset, fetchMax
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		sent := time.Now()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return res, fmt.Errorf("fetch at %d: %w", offset, err)
		}
		res.FetchWaitSeconds += time.Since(sent).Seconds()
		res.Fetches++
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return res, fmt.Errorf("fetch at %d: unexpected response shape", offset)
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return res, fmt.Errorf("fetch at %d: %w", offset, err)
		}
		before := offset
		for b := p.RecordBatches; len(b) >= batch.HeaderSize && offset < n; {
			base := int64(binary.BigEndian.Uint64(b[0:]))
			total := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
			if total < batch.HeaderSize {
				return res, fmt.Errorf("batch at offset %d: bad length %d", base, total)
			}
			if total > len(b) {
				break // a trailing partial batch
			}
			if b[16] != 2 || binary.BigEndian.Uint32(b[17:]) != crc32.Checksum(b[21:total], castagnoli) {
				return res, fmt.Errorf("batch at offset %d: bad magic or CRC-32C", base)
			}
			if base != offset {
				return res, fmt.Errorf("batch at offset %d, want %d", base, offset)
			}
			for seg+1 < len(segs) && base >= segs[seg+1].Base {
				if h.Sum32() != crcs[seg] {
					return res, fmt.Errorf("the batches of segment %d do not add up to its .log file", segs[seg].Base)
				}
				seg, h = seg+1, crc32.New(castagnoli)
			}
			h.Write(b[:total])
			res.BatchBytes += int64(total)
			res.Batches++
			res.Records += int64(int32(binary.BigEndian.Uint32(b[57:])))
			offset = base + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
			res.LastOffset = offset - 1
			b = b[total:]
		}
		if offset == before {
			return res, fmt.Errorf("fetch at %d made no progress (high watermark %d)", offset, p.HighWatermark)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if seg != len(segs)-1 || h.Sum32() != crcs[seg] {
		return res, fmt.Errorf("the batches of the last segment do not add up to its .log file")
	}
	res.Verified = res.Records == n
	res.MBPerSec = float64(res.BatchBytes) / 1e6 / res.Seconds
	return res, nil
}
