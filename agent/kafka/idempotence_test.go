package kafka

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// franz-go with its default options is an idempotent producer: it asks for a producer id
// and stamps every batch with it.
func TestIdempotentProducerDefaultOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.topic("idem", 3, nil)
	prod := e.client(kgo.ProducerLinger(0))
	const n = 3000
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "idem", Key: fmt.Appendf(nil, "k%d", i%17), Value: fmt.Appendf(nil, "v%d", i)}
	}
	produceSync(t, prod, recs...)
	cons := e.client(kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, cons, n)
	seen := map[string]bool{}
	for _, r := range got {
		if r.ProducerID < 0 || r.ProducerID != got[0].ProducerID || r.ProducerEpoch != 0 {
			t.Fatalf("record %s/%d@%d: producer id %d epoch %d, want one id >= 0, epoch 0",
				r.Topic, r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch)
		}
		seen[string(r.Value)] = true
	}
	if len(seen) != n {
		t.Fatalf("consumed %d distinct records of %d", len(seen), n)
	}
}

// initProducerID asks the server for a producer id at version v.
func initProducerID(t *testing.T, nc net.Conn, v int16, txnID *string, id int64, epoch int16) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = txnID, id, epoch
	return rawRoundTrip[*kmsg.InitProducerIDResponse](t, nc, req, v, 7)
}

func TestInitProducerID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	nc := e.dial()
	seen := map[int64]bool{}
	for v := int16(0); v <= 5; v++ {
		resp := initProducerID(t, nc, v, nil, -1, -1)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 || seen[resp.ProducerID] {
			t.Fatalf("v%d: %+v, want a new id with epoch 0", v, resp)
		}
		seen[resp.ProducerID] = true
		if v < 3 {
			continue
		}
		// KIP-360: the client's own id and epoch get the next epoch.
		bump := initProducerID(t, nc, v, nil, resp.ProducerID, 0)
		if bump.ErrorCode != 0 || bump.ProducerID != resp.ProducerID || bump.ProducerEpoch != 1 {
			t.Fatalf("v%d bump: %+v, want id %d epoch 1", v, bump, resp.ProducerID)
		}
		// An exhausted epoch, or an id we never handed out, gets a fresh id.
		for _, old := range []struct {
			id    int64
			epoch int16
		}{{resp.ProducerID, math.MaxInt16 - 1}, {1 << 40, 3}} {
			fresh := initProducerID(t, nc, v, nil, old.id, old.epoch)
			if fresh.ErrorCode != 0 || fresh.ProducerID == old.id || seen[fresh.ProducerID] || fresh.ProducerEpoch != 0 {
				t.Fatalf("v%d from %+v: %+v, want a fresh id", v, old, fresh)
			}
			seen[fresh.ProducerID] = true
		}
		if bad := initProducerID(t, nc, v, nil, resp.ProducerID, -1); bad.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("v%d id without epoch: %s, want INVALID_REQUEST", v, errorName(bad.ErrorCode))
		}
	}
	txn, empty := "my-txn", ""
	for v := int16(0); v <= 5; v++ {
		if resp := initProducerID(t, nc, v, &txn, -1, -1); resp.ErrorCode != kerr.UnsupportedVersion.Code || resp.ProducerID != -1 {
			t.Fatalf("v%d transactional: %+v, want UNSUPPORTED_VERSION", v, resp)
		}
		if resp := initProducerID(t, nc, v, &empty, -1, -1); resp.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("v%d empty transactional id: %+v, want INVALID_REQUEST", v, resp)
		}
	}
	if _, ok := e.logs.find("transactions are not supported", "my-txn"); !ok {
		t.Errorf("refused transactional id not logged:\n%s", e.logs.dump())
	}
}

// idemRecords builds a batch of n records of an idempotent producer.
func idemRecords(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq})
	for i := range n {
		b.Add(1_700_000_000_000, nil, fmt.Appendf(nil, "e%d-s%d", epoch, int64(seq)+int64(i)), nil)
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// produceRaw sends one batch to topic/0 at version v and returns the partition's answer.
func produceRaw(t *testing.T, nc net.Conn, v int16, topic string, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 30_000
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = append([]byte(nil), records...) // as a client resends its own bytes
	tp.Partitions = []kmsg.ProduceRequestTopicPartition{pp}
	req.Topics = []kmsg.ProduceRequestTopic{tp}
	resp := rawRoundTrip[*kmsg.ProduceResponse](t, nc, req, v, 11)
	return resp.Topics[0].Partitions[0]
}

// wantProduce checks a produce answer: success at base, or the error code want.
func wantProduce(t *testing.T, what string, v int16, got kmsg.ProduceResponseTopicPartition, want *kerr.Error, base int64) {
	t.Helper()
	if want == nil {
		if got.ErrorCode != 0 || got.BaseOffset != base {
			t.Fatalf("v%d %s: %s at %d, want success at %d", v, what, errorName(got.ErrorCode), got.BaseOffset, base)
		}
		return
	}
	if got.ErrorCode != want.Code || got.BaseOffset != -1 {
		t.Fatalf("v%d %s: %s at %d, want %s", v, what, errorName(got.ErrorCode), got.BaseOffset, want.Message)
	}
	if v >= 8 && (got.ErrorMessage == nil || *got.ErrorMessage == "") {
		t.Fatalf("v%d %s: no error message", v, what)
	}
}

func TestProduceRetryReturnsFirstOffsets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	nc := e.dial()
	for _, v := range []int16{3, 5, 7, 8, 9, 11} {
		topic := fmt.Sprintf("retry-v%d", v)
		l := e.topic(topic, 1, nil).Partition(0)
		pid := initProducerID(t, nc, 4, nil, -1, -1).ProducerID
		first := idemRecords(t, pid, 0, 0, 3)
		wantProduce(t, "first", v, produceRaw(t, nc, v, topic, first), nil, 0)
		second := idemRecords(t, pid, 0, 3, 2)
		wantProduce(t, "second", v, produceRaw(t, nc, v, topic, second), nil, 3)
		wantProduce(t, "retry of the first", v, produceRaw(t, nc, v, topic, first), nil, 0)
		wantProduce(t, "retry of the second", v, produceRaw(t, nc, v, topic, second), nil, 3)
		if leo := l.LogEndOffset(); leo != 5 {
			t.Fatalf("v%d: log end %d after retries, want 5 (no duplicate)", v, leo)
		}
		wantProduce(t, "gap", v, produceRaw(t, nc, v, topic, idemRecords(t, pid, 0, 6, 1)), kerr.OutOfOrderSequenceNumber, 0)

		// KIP-360 bump: the new epoch starts at sequence 0 and fences the old one.
		bump := initProducerID(t, nc, 5, nil, pid, 0)
		if bump.ProducerID != pid || bump.ProducerEpoch != 1 {
			t.Fatalf("bump: %+v", bump)
		}
		wantProduce(t, "new epoch not at 0", v, produceRaw(t, nc, v, topic, idemRecords(t, pid, 1, 5, 1)), kerr.OutOfOrderSequenceNumber, 0)
		wantProduce(t, "new epoch", v, produceRaw(t, nc, v, topic, idemRecords(t, pid, 1, 0, 1)), nil, 5)
		wantProduce(t, "fenced epoch", v, produceRaw(t, nc, v, topic, idemRecords(t, pid, 0, 5, 1)), kerr.InvalidProducerEpoch, 0)
		wantProduce(t, "fenced retry", v, produceRaw(t, nc, v, topic, second), kerr.InvalidProducerEpoch, 0)

		txn := idemRecords(t, pid, 1, 1, 1)
		txn[batch.AttributesPos+1] |= 0x10 // transactional
		crc := batch.CRC(txn)
		txn[batch.CRCPos], txn[batch.CRCPos+1], txn[batch.CRCPos+2], txn[batch.CRCPos+3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
		wantProduce(t, "transactional", v, produceRaw(t, nc, v, topic, txn), kerr.InvalidTxnState, 0)
		if leo := l.LogEndOffset(); leo != 6 {
			t.Fatalf("v%d: log end %d, want 6", v, leo)
		}
	}
}

// dirServer is a server over a store in a directory of the test's choosing, so it can be
// stopped and started again on the same data.
type dirServer struct {
	srv    *Server
	st     *commitlog.Store
	addr   string
	served chan error
}

func startDirServer(t *testing.T, dir string) *dirServer {
	t.Helper()
	st, err := commitlog.Open(commitlog.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Options{Store: st, AdvertisedHost: "127.0.0.1", AdvertisedPort: int32(ln.Addr().(*net.TCPAddr).Port),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	d := &dirServer{srv: srv, st: st, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { d.served <- srv.Serve(ln) }()
	return d
}

// stop shuts the server down and closes the store cleanly.
func (d *dirServer) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-d.served
	if err := d.st.Close(); err != nil {
		t.Fatal(err)
	}
}

func (d *dirServer) dial(t *testing.T) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// copyDataDir copies a running agent's data directory as a crash (kill -9) would leave it:
// the files as they are now, no clean shutdown marker, no snapshot written at close.
func copyDataDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed or removed since the listing (a snapshot's temp file): not in the image
		}
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// A retry that arrives after an agent restart is still a duplicate: after a clean stop,
// after an unclean reopen (no clean marker), and from a crash image of a running agent.
func TestProduceRetryAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := startDirServer(t, dir)
	if _, err := d.st.CreateTopic("r", 1, map[string]string{"segment.bytes": "2048"}, false); err != nil {
		t.Fatal(err)
	}
	nc := d.dial(t)
	pid := initProducerID(t, nc, 5, nil, -1, -1).ProducerID
	var sent [][]byte
	for i := range 60 { // several segment rolls, so snapshots are involved
		b := idemRecords(t, pid, 0, int32(i*2), 2)
		wantProduce(t, "produce", 11, produceRaw(t, nc, 11, "r", b), nil, int64(i*2))
		sent = append(sent, b)
	}
	checkRetries := func(d *dirServer, what string) {
		t.Helper()
		nc := d.dial(t)
		for i := len(sent) - 5; i < len(sent); i++ {
			wantProduce(t, what+": retry", 11, produceRaw(t, nc, 11, "r", sent[i]), nil, int64(i*2))
		}
		wantProduce(t, what+": gap", 11, produceRaw(t, nc, 11, "r", idemRecords(t, pid, 0, 500, 1)), kerr.OutOfOrderSequenceNumber, 0)
		if leo := d.st.Topic("r").Partition(0).LogEndOffset(); leo != 120 {
			t.Fatalf("%s: log end %d, want 120", what, leo)
		}
		// A new producer id is not one handed out before the restart.
		if id := initProducerID(t, nc, 5, nil, -1, -1).ProducerID; id <= pid {
			t.Fatalf("%s: producer id %d reused (had %d)", what, id, pid)
		}
	}

	image := copyDataDir(t, dir) // while running: a crash image
	d.stop(t)
	d = startDirServer(t, dir)
	checkRetries(d, "clean restart")
	d.stop(t)
	if err := os.Remove(filepath.Join(dir, ".clean_shutdown")); err != nil {
		t.Fatal(err)
	}
	d = startDirServer(t, dir)
	checkRetries(d, "unclean reopen")
	d.stop(t)

	d = startDirServer(t, image)
	checkRetries(d, "crash image")
	d.stop(t)
	snaps, _ := filepath.Glob(filepath.Join(image, "topics", "r", "0", "*.snapshot"))
	if len(snaps) == 0 || len(snaps) > 2 {
		t.Errorf("producer snapshots in the partition directory: %v, want one or two", snaps)
	}
}
