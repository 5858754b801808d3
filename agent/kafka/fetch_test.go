package kafka

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// parkedHook returns a server setup that signals on the channel whenever a
// fetch starts to long-poll.
func parkedHook() (chan struct{}, func(*Server)) {
	ch := make(chan struct{}, 64)
	return ch, func(s *Server) {
		s.testHookLongPoll = func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// waitParked waits until a fetch long-polls.
func waitParked(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-ctxFor(t).Done():
		t.Fatal("no fetch started to long-poll")
	}
}

// fetchReq builds a Fetch request for partitions of one topic from offset.
func fetchReq(topic string, id [16]byte, maxWait, minBytes, maxBytes, partMax int32, offsets map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, id
	for p := int32(0); p < int32(len(offsets)); p++ {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, offsets[p], partMax
		ft.Partitions = append(ft.Partitions, fp)
	}
	req.Topics = []kmsg.FetchRequestTopic{ft}
	return req
}

// produceReq builds a Produce request of one batch per partition.
func produceReq(topic string, acks int16, batches map[int32][]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 60_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = topic
	for p := int32(0); p < int32(len(batches)); p++ {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = p, batches[p]
		tp.Partitions = append(tp.Partitions, pp)
	}
	req.Topics = []kmsg.ProduceRequestTopic{tp}
	return req
}

// TestFetchLongPollWakesOnProduce parks a franz-go consumer in a fetch whose
// max wait (5 min) is longer than the failure bound, then produces: the
// record can only arrive in time if the append woke the fetch.
func TestFetchLongPollWakesOnProduce(t *testing.T) {
	t.Parallel()
	parked, hook := parkedHook()
	e := newEnv(t, nil, hook)
	e.topic("longpoll", 1, nil)
	cons := e.client(kgo.ConsumeTopics("longpoll"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(5*60_000_000_000))
	ctx := ctxFor(t)
	got := make(chan []*kgo.Record, 1)
	go func() {
		var recs []*kgo.Record
		for len(recs) == 0 && ctx.Err() == nil {
			recs = append(recs, cons.PollFetches(ctx).Records()...)
		}
		got <- recs
	}()
	waitParked(t, parked)
	produceSync(t, e.client(), &kgo.Record{Topic: "longpoll", Value: []byte("wake up")})
	select {
	case recs := <-got:
		if len(recs) != 1 || string(recs[0].Value) != "wake up" {
			t.Fatalf("consumed %v", recs)
		}
	case <-ctx.Done():
		t.Fatal("the parked fetch was not woken by the produce")
	}
}

// TestPipelinedFetchThenProduce sends a long-polling fetch and then a produce
// on the same connection: the produce must be read and appended while the
// fetch waits (which wakes the fetch), and the responses come back in
// request order. With one partition the fetch waits on the partition's
// Changed channel, with two on the store's.
func TestPipelinedFetchThenProduce(t *testing.T) {
	for _, parts := range []int32{1, 2} {
		t.Run(fmt.Sprintf("%d partitions", parts), func(t *testing.T) {
			t.Parallel()
			parked, hook := parkedHook()
			e := newEnv(t, nil, hook)
			e.topic("pipe", parts, nil)
			nc := e.dial()
			offsets := map[int32]int64{}
			for p := range parts {
				offsets[p] = 0
			}
			rawSend(t, nc, fetchReq("pipe", [16]byte{}, 300_000, 1, 1<<20, 1<<20, offsets), 12, 1)
			waitParked(t, parked)
			b := testBatch(t, 3)
			rawSend(t, nc, produceReq("pipe", -1, map[int32][]byte{0: b}), 9, 2)

			fr := kmsg.NewPtrFetchResponse()
			fr.Version = 12
			rawRead(t, nc, fr, 1)
			p := fr.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != 3 || len(p.RecordBatches) != len(b) {
				t.Fatalf("fetch: error %d hw %d %d record bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
			}
			pr := kmsg.NewPtrProduceResponse()
			pr.Version = 9
			rawRead(t, nc, pr, 2)
			if got := pr.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.BaseOffset != 0 {
				t.Fatalf("produce: %+v", got)
			}
		})
	}
}

// TestFetchZeroCopy proves record bytes go out with sendfile: after fetching
// every record of two partitions, the sendfile counter grew by at least the
// record bytes received and nothing was copied. Not parallel: the copy
// fallback test also moves the counters.
func TestFetchZeroCopy(t *testing.T) {
	e := newEnv(t, nil)
	tp := e.topic("zerocopy", 2, nil)
	cl := e.client(kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := range 3000 {
		recs = append(recs, &kgo.Record{Topic: "zerocopy", Value: bytes.Repeat([]byte{byte(i)}, 200+i%300)})
	}
	produceSync(t, cl, recs...)

	sentBefore, copiedBefore := SendfileBytes(), CopiedRecordBytes()
	nc := e.dial()
	var total int64
	offsets := map[int32]int64{0: 0, 1: 0}
	for corr := int32(0); offsets[0] < tp.Partition(0).HighWatermark() || offsets[1] < tp.Partition(1).HighWatermark(); corr++ {
		resp := rawRoundTrip[*kmsg.FetchResponse](t, nc, fetchReq("", tp.ID(), 0, 1, 64<<10, 32<<10, offsets), 16, corr)
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("partition %d: %s", p.Partition, errorName(p.ErrorCode))
			}
			total += int64(len(p.RecordBatches))
			offsets[p.Partition] = nextOffset(t, p.RecordBatches, offsets[p.Partition])
		}
	}
	if total == 0 {
		t.Fatal("no record bytes fetched")
	}
	if sent := SendfileBytes() - sentBefore; sent < uint64(total) {
		t.Errorf("sendfile sent %d bytes, fewer than the %d record bytes fetched", sent, total)
	}
	if copied := CopiedRecordBytes() - copiedBefore; copied != 0 {
		t.Errorf("%d record bytes were copied through user space", copied)
	}
	var m bytes.Buffer
	e.srv.WriteMetrics(&m)
	if !bytes.Contains(m.Bytes(), []byte("samsa_kafka_fetch_sendfile_bytes_total ")) {
		t.Errorf("metrics lack sendfile bytes:\n%s", m.String())
	}
}

// nextOffset returns the offset after the last batch in records (or from
// when there are none).
func nextOffset(t *testing.T, records []byte, from int64) int64 {
	t.Helper()
	for len(records) > 0 {
		h, err := batch.ParseHeader(records)
		if err != nil {
			t.Fatalf("fetched batch: %v", err)
		}
		from = h.LastOffset() + 1
		records = records[h.Size():]
	}
	return from
}

func TestFetchErrorsAnswerAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tp := e.topic("errs", 1, nil)
	produceSync(t, e.client(), &kgo.Record{Topic: "errs", Value: []byte("a")})
	nc := e.dial()
	const wait = 300_000 // would outlast the failure bound if the server waited

	resp := rawRoundTrip[*kmsg.FetchResponse](t, nc, fetchReq("", [16]byte{9, 9, 9}, wait, 1, 1<<20, 1<<20, map[int32]int64{0: 0}), 13, 1)
	if got := resp.Topics[0].Partitions[0].ErrorCode; got != kerr.UnknownTopicID.Code {
		t.Errorf("unknown topic id: %s", errorName(got))
	}
	if resp.Topics[0].TopicID != [16]byte{9, 9, 9} {
		t.Errorf("topic id not echoed")
	}
	resp = rawRoundTrip[*kmsg.FetchResponse](t, nc, fetchReq("nope", [16]byte{}, wait, 1, 1<<20, 1<<20, map[int32]int64{0: 0}), 12, 2)
	if got := resp.Topics[0].Partitions[0].ErrorCode; got != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: %s", errorName(got))
	}
	resp = rawRoundTrip[*kmsg.FetchResponse](t, nc, fetchReq("errs", tp.ID(), wait, 1, 1<<20, 1<<20, map[int32]int64{0: 1000}), 11, 3)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != -1 {
		t.Errorf("offset 1000: %s hw %d", errorName(p.ErrorCode), p.HighWatermark)
	}
	req := fetchReq("errs", tp.ID(), wait, 1, 1<<20, 1<<20, map[int32]int64{0: 0})
	req.SessionID, req.SessionEpoch = 77, 3
	resp = rawRoundTrip[*kmsg.FetchResponse](t, nc, req, 7, 4)
	if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || len(resp.Topics) != 0 {
		t.Errorf("unknown session: %s, %d topics", errorName(resp.ErrorCode), len(resp.Topics))
	}
}

// TestFetchMaxBytesKIP74 checks the byte limits: the first batch with data
// comes whole even if larger than the limits, and then the limit holds.
func TestFetchMaxBytesKIP74(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tp := e.topic("kip74", 2, nil)
	big := batch.NewBuilder(batch.BuildOptions{ProducerID: -1})
	big.Add(1, nil, bytes.Repeat([]byte("B"), 20_000), nil)
	bigBatch, err := big.Build()
	if err != nil {
		t.Fatal(err)
	}
	small := testBatch(t, 1)
	nc := e.dial()
	rawRoundTrip[*kmsg.ProduceResponse](t, nc, produceReq("kip74", -1, map[int32][]byte{0: bigBatch, 1: small}), 9, 1)

	resp := rawRoundTrip[*kmsg.FetchResponse](t, nc, fetchReq("kip74", tp.ID(), 0, 1, 100, 100, map[int32]int64{0: 0, 1: 0}), 12, 2)
	ps := resp.Topics[0].Partitions
	if len(ps[0].RecordBatches) != len(bigBatch) || len(ps[1].RecordBatches) != 0 || ps[1].HighWatermark != 1 {
		t.Errorf("limit 100: partition 0 got %d bytes (want %d), partition 1 got %d (want 0), hw %d",
			len(ps[0].RecordBatches), len(bigBatch), len(ps[1].RecordBatches), ps[1].HighWatermark)
	}
	// Partition 1 first: its small batch is the first data, then the limit is spent.
	req := fetchReq("kip74", tp.ID(), 0, 1, int32(len(small)+10), 1<<20, map[int32]int64{0: 0, 1: 0})
	ps0 := req.Topics[0].Partitions
	req.Topics[0].Partitions = []kmsg.FetchRequestTopicPartition{ps0[1], ps0[0]}
	resp = rawRoundTrip[*kmsg.FetchResponse](t, nc, req, 12, 3)
	ps = resp.Topics[0].Partitions
	if ps[0].Partition != 1 || len(ps[0].RecordBatches) != len(small) || len(ps[1].RecordBatches) != 0 {
		t.Errorf("partition 1 first: got %d and %d bytes", len(ps[0].RecordBatches), len(ps[1].RecordBatches))
	}
}

// TestFetchAllVersions fetches the same records at every supported version.
func TestFetchAllVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tp := e.topic("versions", 1, nil)
	b := testBatch(t, 5)
	nc := e.dial()
	rawRoundTrip[*kmsg.ProduceResponse](t, nc, produceReq("versions", 1, map[int32][]byte{0: b}), 3, 0)
	for v := int16(4); v <= 16; v++ {
		resp := rawRoundTrip[*kmsg.FetchResponse](t, nc, fetchReq("versions", tp.ID(), 100, 1, 1<<20, 1<<20, map[int32]int64{0: 0}), v, int32(v))
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != 5 || p.LastStableOffset != 5 || len(p.RecordBatches) != len(b) {
			t.Errorf("v%d: error %d hw %d lso %d, %d record bytes", v, p.ErrorCode, p.HighWatermark, p.LastStableOffset, len(p.RecordBatches))
		}
		if v >= 5 && p.LogStartOffset != 0 {
			t.Errorf("v%d: log start %d", v, p.LogStartOffset)
		}
		if h, err := batch.Validate(p.RecordBatches); err != nil || h.BaseOffset != 0 || h.NumRecords != 5 {
			t.Errorf("v%d: batch %+v: %v", v, h, err)
		}
	}
}

// TestWriteRangeCopyFallback sends a file range over a connection without a
// file descriptor (net.Pipe): the bytes are copied and counted as such. Not
// parallel: the zero-copy test watches the same counter.
func TestWriteRangeCopyFallback(t *testing.T) {
	content := make([]byte, 100_000)
	for i := range content {
		content[i] = byte(i % 251)
	}
	f := rangeFile(t, content)
	a, b := net.Pipe()
	defer b.Close()
	w := &respWriter{nc: a, bw: bufio.NewWriter(a), m: &metrics{}}
	before := CopiedRecordBytes()
	errc := make(chan error, 1)
	go func() {
		err := w.writeRange(commitlog.FileRange{File: f, Pos: 10, Len: 90_000})
		a.Close()
		errc <- err
	}()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content[10:90_010]) {
		t.Fatalf("copied %d bytes, content differs", len(got))
	}
	if n := CopiedRecordBytes() - before; n != 90_000 {
		t.Fatalf("copied counter grew by %d, want 90000", n)
	}
	// A range past the end of the file is an error, not a short response.
	a2, b2 := net.Pipe()
	defer b2.Close()
	go io.Copy(io.Discard, b2)
	w2 := &respWriter{nc: a2, bw: bufio.NewWriter(a2), m: &metrics{}}
	if err := w2.writeRange(commitlog.FileRange{File: f, Pos: 99_000, Len: 5000}); err == nil {
		t.Fatal("range past the end of the file: no error")
	}
	a2.Close()
}

// TestLongPollPanicClosesConnection checks the last line of defence: a
// panicking long poll closes its connection, and the server keeps serving.
func TestLongPollPanicClosesConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, func(s *Server) { s.testHookLongPoll = func() { panic("boom") } })
	tp := e.topic("panic", 1, nil)
	nc := e.dial()
	rawSend(t, nc, fetchReq("panic", tp.ID(), 60_000, 1, 1<<20, 1<<20, map[int32]int64{0: 0}), 12, 1)
	expectClosed(t, nc)
	if _, ok := e.logs.find("panicked", "boom"); !ok {
		t.Errorf("panic not logged:\n%s", e.logs.dump())
	}
	produceSync(t, e.client(), &kgo.Record{Topic: "panic", Value: []byte("still serving")})
}
