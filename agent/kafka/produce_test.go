package kafka

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestProduceConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.topic("roundtrip", 1, nil)
	prod := e.client()
	want := []*kgo.Record{
		{Topic: "roundtrip", Key: []byte("k1"), Value: []byte("hello")},
		{Topic: "roundtrip", Value: []byte("world"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}},
		{Topic: "roundtrip", Key: []byte{}, Value: nil},
	}
	produceSync(t, prod, want...)
	for i, r := range want {
		if r.Offset != int64(i) {
			t.Errorf("record %d acknowledged at offset %d", i, r.Offset)
		}
	}
	cons := e.client(kgo.ConsumeTopics("roundtrip"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, len(want))
	for i, r := range got {
		w := want[i]
		if r.Offset != int64(i) || !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) ||
			!sameHeaders(r.Headers, w.Headers) || !r.Timestamp.Equal(w.Timestamp) {
			t.Errorf("record %d: got %+v, want %+v", i, r, w)
		}
	}
}

// TestCodecsRoundTrip produces 100k records over 3 partitions, keyed and
// unkeyed with headers, with each compression codec and several produce
// requests in flight, and consumes them back byte-exact and in order.
func TestCodecsRoundTrip(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	n := 100_000
	if testing.Short() {
		n = 5_000
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			topic := "codec-" + c.name
			e.topic(topic, 3, nil)
			// Idempotent (the default), so up to five requests in flight.
			prod := e.client(kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(time.Millisecond))
			produced := produceMany(t, prod, topic, n)
			cons := e.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			checkConsumed(t, produced, consumeN(t, cons, n))
		})
	}
}

// produceMany produces n records (every third unkeyed, all with headers) and
// returns them once acknowledged.
func produceMany(t *testing.T, cl *kgo.Client, topic string, n int) []*kgo.Record {
	t.Helper()
	ctx := ctxFor(t)
	recs := make([]*kgo.Record, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := range recs {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("value %d %s", i, strings.Repeat("x", i%97)))}
		if i%3 != 0 {
			r.Key = []byte(fmt.Sprintf("device-%d", i%41))
		}
		r.Headers = []kgo.RecordHeader{{Key: "seq", Value: []byte(fmt.Sprint(i))}, {Key: "empty"}}
		recs[i] = r
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				firstErr = cmpOr(firstErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	return recs
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// checkConsumed compares consumed records with the produced ones: each
// partition's offsets are dense from 0, follow produce order, and every
// record is byte-exact.
func checkConsumed(t *testing.T, produced, consumed []*kgo.Record) {
	t.Helper()
	type at struct {
		p   int32
		off int64
	}
	byAt := make(map[at]*kgo.Record, len(produced))
	seqOf := make(map[*kgo.Record]int, len(produced))
	for i, r := range produced {
		byAt[at{r.Partition, r.Offset}] = r
		seqOf[r] = i
	}
	if len(byAt) != len(produced) {
		t.Fatalf("%d produced records share offsets", len(produced)-len(byAt))
	}
	next := map[int32]int64{}
	lastSeq := map[int32]int{}
	bad := 0
	for _, r := range consumed {
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		w, ok := byAt[at{r.Partition, r.Offset}]
		if !ok {
			t.Fatalf("consumed %d@%d was never acknowledged", r.Partition, r.Offset)
		}
		if seq, ok := lastSeq[r.Partition]; ok && seqOf[w] < seq {
			t.Fatalf("partition %d: record %d stored after record %d", r.Partition, seqOf[w], seq)
		}
		lastSeq[r.Partition] = seqOf[w]
		if !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) || !bytes.Equal(r.Value, w.Value) ||
			!sameHeaders(r.Headers, w.Headers) || r.Timestamp.UnixMilli() != w.Timestamp.UnixMilli() {
			if bad++; bad < 5 {
				t.Errorf("%d@%d: got key %q value %q, want key %q value %q", r.Partition, r.Offset, r.Key, r.Value, w.Key, w.Value)
			}
		}
	}
	if len(next) != 3 {
		t.Errorf("records landed in %d partitions, want 3", len(next))
	}
}

func TestProduceMessageTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.topic("small", 1, map[string]string{"max.message.bytes": "1024"})
	cl := e.client(kgo.ProducerBatchCompression(kgo.NoCompression()))
	err := cl.ProduceSync(ctxFor(t), &kgo.Record{Topic: "small", Value: bytes.Repeat([]byte("z"), 4096)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("produce 4 KiB to a 1 KiB topic: %v, want MESSAGE_TOO_LARGE", err)
	}
	produceSync(t, cl, &kgo.Record{Topic: "small", Value: []byte("fits")})
}

func TestProduceAcksZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.topic("fire-and-forget", 2, nil)
	// Idempotence needs acks=all (in Kafka and in franz-go): acks=0 goes without it.
	prod := e.client(kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	const n = 500
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "fire-and-forget", Value: []byte(fmt.Sprint(i))})
	}
	produceSync(t, prod, recs...)
	cons := e.client(kgo.ConsumeTopics("fire-and-forget"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, n)
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
	}
	if len(seen) != n {
		t.Fatalf("consumed %d distinct records, want %d", len(seen), n)
	}
}

// TestProduceAcksZeroErrorCloses checks that a failed acks=0 produce closes
// the connection (the client has no other way to learn of the failure).
func TestProduceAcksZeroErrorCloses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.topic("small", 1, map[string]string{"max.message.bytes": "100"})
	req := kmsg.NewPtrProduceRequest()
	req.Acks = 0
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = "small"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = testBatch(t, 20)
	tp.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	req.Topics = []kmsg.ProduceRequestTopic{tp}
	nc := e.dial()
	rawSend(t, nc, req, 9, 1)
	expectClosed(t, nc)
	if _, ok := e.logs.find("closing kafka connection", "acks=0", "MESSAGE_TOO_LARGE"); !ok {
		t.Errorf("no log of the acks=0 close:\n%s", e.logs.dump())
	}
}

func TestProduceErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.AutoCreateTopics = false })
	e.topic("known", 1, nil)
	nc := e.dial()
	legacy := testBatch(t, 1)
	legacy[16] = 1 // magic 1
	corrupt := testBatch(t, 2)
	corrupt[len(corrupt)-1] ^= 0xff
	cases := []struct {
		name    string
		topic   string
		part    int32
		acks    int16
		records []byte
		want    *kerr.Error
	}{
		{"unknown topic", "nope", 0, -1, testBatch(t, 1), kerr.UnknownTopicOrPartition},
		{"unknown partition", "known", 7, -1, testBatch(t, 1), kerr.UnknownTopicOrPartition},
		{"bad acks", "known", 0, 2, testBatch(t, 1), kerr.InvalidRequiredAcks},
		{"corrupt", "known", 0, 1, corrupt, kerr.CorruptMessage},
		{"empty", "known", 0, 1, nil, kerr.CorruptMessage},
		{"legacy magic", "known", 0, 1, legacy, kerr.UnsupportedForMessageFormat},
	}
	for i, c := range cases {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = c.acks, 30_000
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = c.topic
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = c.part, c.records
		tp.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
		req.Topics = []kmsg.ProduceRequestTopic{tp}
		resp := rawRoundTrip[*kmsg.ProduceResponse](t, nc, req, 11, int32(i))
		got := resp.Topics[0].Partitions[0]
		if got.ErrorCode != c.want.Code || got.BaseOffset != -1 {
			t.Errorf("%s: error %s base offset %d, want %s", c.name, errorName(got.ErrorCode), got.BaseOffset, c.want.Message)
		}
	}
	// A good one on the same connection still works, and reports the log start.
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = "known"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = testBatch(t, 4)
	tp.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	req.Topics = []kmsg.ProduceRequestTopic{tp}
	for i, v := range []int16{3, 5, 11} {
		resp := rawRoundTrip[*kmsg.ProduceResponse](t, nc, req, v, int32(100+i))
		got := resp.Topics[0].Partitions[0]
		if got.ErrorCode != 0 || got.BaseOffset != int64(4*i) || got.LogAppendTime != -1 {
			t.Errorf("v%d: %+v", v, got)
		}
		if v >= 5 && got.LogStartOffset != 0 {
			t.Errorf("v%d: log start offset %d", v, got.LogStartOffset)
		}
	}
}

func TestProduceAutoCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.DefaultPartitions = 2 })
	// Through Metadata, as franz-go does it when allowed to.
	cl := e.client(kgo.AllowAutoTopicCreation())
	produceSync(t, cl, &kgo.Record{Topic: "born-on-metadata", Value: []byte("x")})
	if tp := e.st.Topic("born-on-metadata"); tp == nil || tp.NumPartitions() != 2 {
		t.Fatalf("auto-created topic: %v", tp)
	}
	// Straight through Produce.
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 30_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = "born-on-produce"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = 1, testBatch(t, 2)
	tp.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	req.Topics = []kmsg.ProduceRequestTopic{tp}
	resp := rawRoundTrip[*kmsg.ProduceResponse](t, e.dial(), req, 8, 1)
	if got := resp.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("produce to a new topic: %+v", got)
	}
	if tp := e.st.Topic("born-on-produce"); tp == nil || tp.NumPartitions() != 2 {
		t.Fatalf("auto-created topic: %v", tp)
	}
}
