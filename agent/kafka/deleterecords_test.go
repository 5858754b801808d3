package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Tests of DeleteRecords (key 21) and DescribeLogDirs (key 35), and of ListOffsets and Fetch
// following the log start offset that DeleteRecords moves. Everything runs against a real
// store and server with franz-go clients (kadm, kgo) or raw kmsg requests on a socket.

// drAgent is a server over a store in a given directory, so a test can stop it and start
// another one on the same data.
type drAgent struct {
	t      *testing.T
	st     *commitlog.Store
	srv    *Server
	addr   string
	served chan struct{}
	done   bool
}

// startDRAgent opens the store in dir and serves it on 127.0.0.1:0 until stop or the end of
// the test.
func startDRAgent(t *testing.T, dir string) *drAgent {
	t.Helper()
	st, err := commitlog.Open(commitlog.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Options{Store: st, AdvertisedHost: "127.0.0.1",
		AdvertisedPort: int32(ln.Addr().(*net.TCPAddr).Port), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a := &drAgent{t: t, st: st, srv: srv, addr: ln.Addr().String(), served: make(chan struct{})}
	go func() {
		defer close(a.served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(a.stop)
	return a
}

// stop shuts the server down and closes the store (once).
func (a *drAgent) stop() {
	if a.done {
		return
	}
	a.done = true
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.t.Errorf("shutdown: %v", err)
	}
	<-a.served
	if err := a.st.Close(); err != nil {
		a.t.Errorf("close store: %v", err)
	}
}

// client returns a franz-go client of the agent: uncompressed batches, records go to the
// partition they name.
func (a *drAgent) client(opts ...kgo.Opt) *kgo.Client {
	a.t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(a.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(cl.Close)
	return cl
}

// drValue is the value of the record at offset o of a test partition.
func drValue(o int64) string { return fmt.Sprintf("record-%05d-%s", o, strings.Repeat("x", 40)) }

// drProduce appends batches of per records to a partition whose end offset is next, one
// produce call per batch, so that a small segment.bytes rolls a segment every batch or two.
func drProduce(t *testing.T, cl *kgo.Client, topic string, partition int32, next int64, batches, per int) {
	t.Helper()
	for range batches {
		recs := make([]*kgo.Record, per)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topic, Partition: partition, Value: []byte(drValue(next))}
			next++
		}
		produceSync(t, cl, recs...)
	}
}

// segmentBases lists the base offsets of the segment files in a partition directory.
func segmentBases(t *testing.T, dir string) []int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		b, err := strconv.ParseInt(name, 10, 64)
		if err != nil {
			t.Fatalf("segment file %s: %v", e.Name(), err)
		}
		bases = append(bases, b)
	}
	slices.Sort(bases)
	return bases
}

// consumeAll consumes a partition from its log start and checks it holds exactly the records
// from..to-1 of drProduce.
func consumeAll(t *testing.T, a *drAgent, topic string, partition int32, from, to int64) {
	t.Helper()
	cons := a.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {partition: kgo.NewOffset().AtStart()}}))
	recs := consumeN(t, cons, int(to-from))
	if len(recs) != int(to-from) {
		t.Fatalf("consumed %d records, want %d", len(recs), to-from)
	}
	for i, r := range recs {
		if want := from + int64(i); r.Offset != want || string(r.Value) != drValue(want) {
			t.Fatalf("record %d: offset %d value %q, want offset %d value %q", i, r.Offset, r.Value, want, drValue(want))
		}
	}
}

// TestDeleteRecordsMovesLogStart deletes the records below an offset in the middle of a
// partition of many segments, then checks every way the new start shows: the low watermark
// answered, ListOffsets earliest, a fetch below it (OFFSET_OUT_OF_RANGE) and at it (exactly the
// remaining records), the segment files after a retention pass, DescribeLogDirs sizes, and a
// restart on the same data directory.
func TestDeleteRecordsMovesLogStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startDRAgent(t, dir)
	tp, err := a.st.CreateTopic("dr", 1, map[string]string{"segment.bytes": "1024"}, false)
	if err != nil {
		t.Fatal(err)
	}
	l := tp.Partition(0)
	drProduce(t, a.client(), "dr", 0, 0, 20, 10)
	const cut, end = int64(95), int64(200)
	if hw := l.HighWatermark(); hw != end {
		t.Fatalf("high watermark %d, want %d", hw, end)
	}
	before := segmentBases(t, l.Dir())
	if len(before) < 5 {
		t.Fatalf("%d segments, want several: %v", len(before), before)
	}
	// The segments that must survive: the one holding cut, and the later ones.
	first := 0
	for i, b := range before {
		if b <= cut {
			first = i
		}
	}
	want := before[first:]
	if first == 0 {
		t.Fatalf("cut %d falls in the first segment %v; the test needs segments wholly below it", cut, before)
	}

	adm := kadm.NewClient(a.client())
	ctx := ctxFor(t)
	rs, err := adm.DeleteRecords(ctx, kadm.Offsets{"dr": {0: {Topic: "dr", Partition: 0, At: cut}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := rs.On("dr", 0, nil); err != nil || r.Err != nil || r.LowWatermark != cut {
		t.Fatalf("delete records before %d: %+v, %v; want low watermark %d", cut, r, err, cut)
	}
	checkStart(t, adm, "dr", 0, cut)

	// A fetch below the start: OFFSET_OUT_OF_RANGE, surfaced as is when the consumer may not reset.
	below := a.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"dr": {0: kgo.NewOffset().At(10)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	fetchErr := awaitFetchError(t, below)
	if !errors.Is(fetchErr, kerr.OffsetOutOfRange) {
		t.Errorf("fetch at 10 after deleting before %d: %v, want OFFSET_OUT_OF_RANGE", cut, fetchErr)
	}
	checkRawFetch(t, a, tp, cut)
	consumeAll(t, a, "dr", 0, cut, end)

	// An offset below the start changes nothing and answers the current start.
	rs, err = adm.DeleteRecords(ctx, kadm.Offsets{"dr": {0: {At: 50}}})
	if r, _ := rs.On("dr", 0, nil); err != nil || r.Err != nil || r.LowWatermark != cut {
		t.Errorf("delete records before 50 after %d: %+v, %v; want low watermark %d", cut, r, err, cut)
	}

	awaitSegments(t, a.st, l.Dir(), want)
	if _, err := os.Stat(filepath.Join(l.Dir(), fmt.Sprintf("%020d.index", before[0]))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("index of deleted segment %d: %v, want gone", before[0], err)
	}
	checkLogDirSizes(t, adm, a.st)

	// The start survives a restart, although the first remaining segment begins below it.
	a.stop()
	a = startDRAgent(t, dir)
	l = a.st.Topic("dr").Partition(0)
	if got := l.LogStartOffset(); got != cut {
		t.Fatalf("log start after restart: %d, want %d", got, cut)
	}
	if data, err := os.ReadFile(filepath.Join(l.Dir(), "log-start-offset")); err != nil || string(data) != "offset-checkpoint v1\n95\ncrc32c 89d7a700\n" {
		t.Errorf("log-start-offset file: %q, %v", data, err)
	}
	if got := segmentBases(t, l.Dir()); !slices.Equal(got, want) {
		t.Errorf("segments after restart %v, want %v", got, want)
	}
	adm = kadm.NewClient(a.client())
	checkStart(t, adm, "dr", 0, cut)
	consumeAll(t, a, "dr", 0, cut, end)
	checkLogDirSizes(t, adm, a.st)
}

// checkStart checks ListOffsets earliest of a partition.
func checkStart(t *testing.T, adm *kadm.Client, topic string, p int32, want int64) {
	t.Helper()
	starts, err := adm.ListStartOffsets(ctxFor(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := starts.Lookup(topic, p); !ok || o.Err != nil || o.Offset != want {
		t.Errorf("start offset of %s[%d]: %+v (found %v), want %d", topic, p, o, ok, want)
	}
}

// awaitFetchError polls a consumer until a fetch fails and returns the error.
func awaitFetchError(t *testing.T, cl *kgo.Client) error {
	t.Helper()
	ctx := ctxFor(t)
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no fetch error: %v", err)
		}
		if n := fs.NumRecords(); n > 0 {
			t.Fatalf("fetched %d records, want an error", n)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return errs[0].Err
		}
	}
}

// checkRawFetch fetches a partition whose start is start with Fetch v12 (by name) and v16 (by
// topic id): below it OFFSET_OUT_OF_RANGE, at it the batch holding it, with log_start_offset.
func checkRawFetch(t *testing.T, a *drAgent, tp *commitlog.Topic, start int64) {
	t.Helper()
	nc, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(failAfter))
	for i, v := range []int16{12, 16} {
		name := tp.Name()
		if v >= 13 {
			name = ""
		}
		resp := rawRoundTrip[*kmsg.FetchResponse](t, nc, fetchReq(name, tp.ID(), 0, 1, 1<<20, 1<<20, map[int32]int64{0: start - 1}), v, int32(2*i))
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || len(p.RecordBatches) != 0 {
			t.Errorf("fetch v%d at %d: %s with %d bytes, want OFFSET_OUT_OF_RANGE", v, start-1, errorName(p.ErrorCode), len(p.RecordBatches))
		}
		resp = rawRoundTrip[*kmsg.FetchResponse](t, nc, fetchReq(name, tp.ID(), 0, 1, 1<<20, 1<<20, map[int32]int64{0: start}), v, int32(2*i+1))
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.LogStartOffset != start || len(p.RecordBatches) == 0 {
			t.Errorf("fetch v%d at %d: %s, log start %d, %d bytes; want records from log start %d",
				v, start, errorName(p.ErrorCode), p.LogStartOffset, len(p.RecordBatches), start)
		}
	}
}

// awaitSegments runs retention until the partition directory holds exactly the segments
// want. DeleteRecords already kicked the store's janitor, and RunRetention skips a log the
// janitor is working on, so a pass may find nothing left to do or have to be repeated; the
// loop ends as soon as the files are as expected (failAfter is only a failure bound).
func awaitSegments(t *testing.T, st *commitlog.Store, dir string, want []int64) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		st.RunRetention()
		got := segmentBases(t, dir)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("segments %v after retention, want %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkLogDirSizes checks that DescribeLogDirs, for all partitions, answers one directory (the
// data directory) with every partition's size equal to Log.Size, and the volume's sizes.
func checkLogDirSizes(t *testing.T, adm *kadm.Client, st *commitlog.Store) {
	t.Helper()
	all, err := adm.DescribeAllLogDirs(ctxFor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs, ok := all[0]
	if len(all) != 1 || !ok || len(dirs) != 1 {
		t.Fatalf("log dirs %+v, want one directory on broker 0", all)
	}
	abs, _ := filepath.Abs(st.Dir())
	d, ok := dirs[abs]
	if !ok || d.Err != nil {
		t.Fatalf("log dirs %+v, want %s without error", dirs, abs)
	}
	if d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes {
		t.Errorf("volume total %d usable %d", d.TotalBytes, d.UsableBytes)
	}
	n := 0
	for _, tp := range st.Topics() {
		for p := range tp.NumPartitions() {
			n++
			got, ok := d.Topics.Lookup(tp.Name(), p)
			if want := tp.Partition(p).Size(); !ok || got.Size != want || got.OffsetLag != 0 || got.IsFuture {
				t.Errorf("%s[%d]: %+v (found %v), want size %d", tp.Name(), p, got, ok, want)
			}
		}
	}
	if got := len(d.Topics.Sorted()); got != n {
		t.Errorf("%d partitions described, want %d", got, n)
	}
}

// TestDeleteRecordsHighWatermarkAndErrors: -1 deletes everything up to the high watermark; an
// offset past it, a negative one and an unknown topic or partition are refused, through kadm.
func TestDeleteRecordsHighWatermarkAndErrors(t *testing.T) {
	t.Parallel()
	a := startDRAgent(t, t.TempDir())
	tp, err := a.st.CreateTopic("hwm", 2, map[string]string{"segment.bytes": "1024"}, false)
	if err != nil {
		t.Fatal(err)
	}
	cl := a.client()
	drProduce(t, cl, "hwm", 0, 0, 6, 10)
	drProduce(t, cl, "hwm", 1, 0, 3, 10)
	adm := kadm.NewClient(cl)
	ctx := ctxFor(t)

	rs, err := adm.DeleteRecords(ctx, kadm.Offsets{"hwm": {0: {At: -1}, 1: {At: 31}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rs.On("hwm", 0, nil); r.Err != nil || r.LowWatermark != 60 {
		t.Errorf("delete records of partition 0 up to the high watermark: %+v, want low watermark 60", r)
	}
	if r, _ := rs.On("hwm", 1, nil); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Errorf("delete records of partition 1 before 31 (high watermark 30): %+v, want OFFSET_OUT_OF_RANGE", r)
	}
	checkStart(t, adm, "hwm", 0, 60)
	checkStart(t, adm, "hwm", 1, 0)
	if got := tp.Partition(0).LogStartOffset(); got != 60 {
		t.Errorf("log start of partition 0: %d, want 60", got)
	}

	// New records after everything was deleted are served from the old high watermark.
	drProduce(t, cl, "hwm", 0, 60, 1, 5)
	consumeAll(t, a, "hwm", 0, 60, 65)

	rs, err = adm.DeleteRecords(ctx, kadm.Offsets{"hwm": {1: {At: -7}}})
	if r, _ := rs.On("hwm", 1, nil); err != nil || !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Errorf("delete records before -7: %+v, %v; want OFFSET_OUT_OF_RANGE", r, err)
	}
	rs, err = adm.DeleteRecords(ctx, kadm.Offsets{"no-such-topic": {0: {At: 1}}})
	if err == nil {
		_, err = rs.On("no-such-topic", 0, func(r *kadm.DeleteRecordsResponse) error { return r.Err })
	}
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("delete records of an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	checkStart(t, adm, "hwm", 1, 0)
}

// TestDeleteRecordsVersions sends raw DeleteRecords requests at every version: duplicates are
// answered once with the offset given last, unknown topics and partitions, offsets out of
// range and a compact-only topic get Kafka's error codes, and every answer decodes at its
// version.
func TestDeleteRecordsVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cl := e.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	nc := e.dial()
	for v := int16(0); v <= 2; v++ {
		name := fmt.Sprintf("drv%d", v)
		compact := name + "-compact"
		e.topic(name, 2, nil)
		e.topic(compact, 1, map[string]string{"cleanup.policy": "compact"})
		drProduce(t, cl, name, 0, 0, 1, 10)

		req := drReq(
			drTopic(name, 0, 3, 0, 7, 5, 0),
			drTopic("nope", 0, 0),
			drTopic(name, 1, -1, 0, 6),
			drTopic(compact, 0, 0),
		)
		resp := rawRoundTrip[*kmsg.DeleteRecordsResponse](t, nc, req, v, int32(10*v))
		got := drAnswers(resp)
		want := []string{
			name + "[0] low 6 NONE",
			name + "[5] low -1 UNKNOWN_TOPIC_OR_PARTITION",
			name + "[1] low 0 NONE",
			"nope[0] low -1 UNKNOWN_TOPIC_OR_PARTITION",
			compact + "[0] low -1 POLICY_VIOLATION",
		}
		if !slices.Equal(got, want) {
			t.Errorf("v%d answers:\n%s\nwant:\n%s", v, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for i, c := range []struct {
			offset int64
			want   string
		}{
			{2, "low 6 NONE"},                       // below the start: unchanged
			{11, "low -1 OFFSET_OUT_OF_RANGE"},      // past the high watermark (10)
			{-2, "low -1 OFFSET_OUT_OF_RANGE"},      // negative, not -1
			{10, "low 10 NONE"},                     // exactly the high watermark
			{-1, "low 10 NONE"},                     // the high watermark again
			{9, "low 10 NONE"},                      // below the new start
			{1 << 62, "low -1 OFFSET_OUT_OF_RANGE"}, // far out
		} {
			resp := rawRoundTrip[*kmsg.DeleteRecordsResponse](t, nc, drReq(drTopic(name, 0, c.offset)), v, int32(10*v)+int32(i)+1)
			if got := drAnswers(resp); len(got) != 1 || got[0] != name+"[0] "+c.want {
				t.Errorf("v%d before %d: %q, want %q", v, c.offset, got, c.want)
			}
		}
		if got := e.st.Topic(name).Partition(0).LogStartOffset(); got != 10 {
			t.Errorf("v%d: log start %d, want 10", v, got)
		}
	}
	if _, ok := e.logs.find("WARN", "delete records failed"); ok {
		t.Errorf("client mistakes were logged as failures:\n%s", e.logs.dump())
	}
}

// drReq builds a DeleteRecords request.
func drReq(topics ...kmsg.DeleteRecordsRequestTopic) *kmsg.DeleteRecordsRequest {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Topics, req.TimeoutMillis = topics, 5000
	return req
}

// drTopic builds a request topic from partition, offset pairs.
func drTopic(name string, po ...int64) kmsg.DeleteRecordsRequestTopic {
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = name
	for i := 0; i+1 < len(po); i += 2 {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = int32(po[i]), po[i+1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}

// drAnswers renders a response as "topic[partition] low N ERROR" lines in response order.
func drAnswers(resp *kmsg.DeleteRecordsResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s[%d] low %d %s", t.Topic, p.Partition, p.LowWatermark, errorName(p.ErrorCode)))
		}
	}
	return out
}

// TestDescribeLogDirsVersions sends raw DescribeLogDirs requests at every version: null topics
// describe everything, named partitions are described once each and unknown ones left out, an
// empty list describes none, and v4 carries the volume's sizes.
func TestDescribeLogDirsVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.topic("dla", 3, nil)
	e.topic("dlb", 1, nil)
	cl := e.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	drProduce(t, cl, "dla", 1, 0, 2, 10)
	nc := e.dial()
	abs, _ := filepath.Abs(e.st.Dir())
	for v := int16(0); v <= 4; v++ {
		all := rawRoundTrip[*kmsg.DescribeLogDirsResponse](t, nc, kmsg.NewPtrDescribeLogDirsRequest(), v, int32(3*v))
		d := dlOneDir(t, all, abs)
		wantAll := []string{"dla[0] 0", fmt.Sprintf("dla[1] %d", a.Partition(1).Size()), "dla[2] 0", "dlb[0] 0"}
		if got := dlParts(d); !slices.Equal(got, wantAll) {
			t.Errorf("v%d all: %q, want %q", v, got, wantAll)
		}
		if a.Partition(1).Size() == 0 {
			t.Errorf("v%d: partition with records has size 0", v)
		}
		if v >= 4 && (d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes) {
			t.Errorf("v%d: total %d usable %d", v, d.TotalBytes, d.UsableBytes)
		}
		if v < 4 && (d.TotalBytes != -1 || d.UsableBytes != -1) {
			t.Errorf("v%d: total %d usable %d, want -1 (not in this version)", v, d.TotalBytes, d.UsableBytes)
		}

		req := kmsg.NewPtrDescribeLogDirsRequest()
		for _, rt := range []struct {
			name  string
			parts []int32
		}{{"dla", []int32{2, 1, 2, 9, -1}}, {"nope", []int32{0}}, {"dla", []int32{1}}, {"dlb", nil}} {
			reqTopic := kmsg.NewDescribeLogDirsRequestTopic()
			reqTopic.Topic, reqTopic.Partitions = rt.name, rt.parts
			req.Topics = append(req.Topics, reqTopic)
		}
		some := rawRoundTrip[*kmsg.DescribeLogDirsResponse](t, nc, req, v, int32(3*v+1))
		wantSome := []string{fmt.Sprintf("dla[1] %d", a.Partition(1).Size()), "dla[2] 0"}
		if got := dlParts(dlOneDir(t, some, abs)); !slices.Equal(got, wantSome) {
			t.Errorf("v%d named partitions: %q, want %q", v, got, wantSome)
		}

		req = kmsg.NewPtrDescribeLogDirsRequest()
		req.Topics = []kmsg.DescribeLogDirsRequestTopic{}
		none := rawRoundTrip[*kmsg.DescribeLogDirsResponse](t, nc, req, v, int32(3*v+2))
		if got := dlParts(dlOneDir(t, none, abs)); len(got) != 0 {
			t.Errorf("v%d empty topic list: %q, want nothing", v, got)
		}
	}
}

// dlOneDir checks a response holds exactly the data directory, without error.
func dlOneDir(t *testing.T, resp *kmsg.DescribeLogDirsResponse, abs string) kmsg.DescribeLogDirsResponseDir {
	t.Helper()
	if resp.ErrorCode != 0 || len(resp.Dirs) != 1 || resp.Dirs[0].Dir != abs || resp.Dirs[0].ErrorCode != 0 {
		t.Fatalf("log dirs %+v, want only %s", resp, abs)
	}
	return resp.Dirs[0]
}

// dlParts renders a directory's partitions as "topic[partition] size" in response order.
func dlParts(d kmsg.DescribeLogDirsResponseDir) []string {
	var out []string
	for _, t := range d.Topics {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s[%d] %d", t.Topic, p.Partition, p.Size))
		}
	}
	return out
}

// TestEveryAPIHasShape: checkShape lets keys without a schema through undecoded-checked, so
// every supported API must have one.
func TestEveryAPIHasShape(t *testing.T) {
	for _, a := range supportedAPIs {
		if _, ok := requestShapes[a.key]; !ok {
			t.Errorf("%s (key %d) has no request shape in reqshape.go", kmsg.NameForKey(a.key), a.key)
		}
	}
}

// addLogSeeds adds DeleteRecords and DescribeLogDirs requests to the fuzz seeds (correlation
// ids from 200).
func addLogSeeds(seeds map[string][]byte) {
	dr := drReq(drTopic("events", 0, 10, 1, -1))
	seeds["deleterecords_v0"] = frameOf(dr, 0, 200)
	seeds["deleterecords_v2"] = frameOf(dr, 2, 201)
	dl := kmsg.NewPtrDescribeLogDirsRequest()
	seeds["describelogdirs_v0_all"] = frameOf(dl, 0, 202)
	rt := kmsg.NewDescribeLogDirsRequestTopic()
	rt.Topic, rt.Partitions = "events", []int32{0, 1}
	dl.Topics = []kmsg.DescribeLogDirsRequestTopic{rt}
	seeds["describelogdirs_v4"] = frameOf(dl, 4, 203)
}
