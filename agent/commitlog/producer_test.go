package commitlog

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// idemBatch builds a batch of n records from an idempotent producer.
func idemBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	b := batch.NewBuilder(batch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq})
	for i := 0; i < n; i++ {
		b.Add(int64(1000+i), nil, fmt.Appendf(nil, "p%d-e%d-s%d", pid, epoch, int64(seq)+int64(i)), nil)
	}
	out, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// setAttr sets attribute bits of a batch and re-checksums it.
func setAttr(b []byte, bits uint16) []byte {
	attrs := uint16(b[batch.AttributesPos])<<8 | uint16(b[batch.AttributesPos+1]) | bits
	b[batch.AttributesPos], b[batch.AttributesPos+1] = byte(attrs>>8), byte(attrs)
	crc := batch.CRC(b)
	b[batch.CRCPos], b[batch.CRCPos+1], b[batch.CRCPos+2], b[batch.CRCPos+3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	return b
}

// appendOK appends and checks the result is a new append (dup=false) or a duplicate at
// the given offsets.
func appendOK(t testing.TB, l *Log, b []byte, dup bool, base, last int64) {
	t.Helper()
	res, err := l.Append(b)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if res.Duplicate != dup || res.BaseOffset != base || res.LastOffset != last {
		t.Fatalf("append: %+v, want duplicate=%v offsets %d..%d", res, dup, base, last)
	}
}

func oneTopic(t testing.TB, s *Store, configs map[string]string) *Log {
	t.Helper()
	topic, err := s.CreateTopic("t", 1, configs, false)
	if err != nil {
		t.Fatal(err)
	}
	return topic.Partition(0)
}

func TestIdempotentSequences(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := oneTopic(t, s, nil)
	first := idemBatch(t, 7, 0, 0, 3)
	appendOK(t, l, first, false, 0, 2)
	second := idemBatch(t, 7, 0, 3, 2)
	appendOK(t, l, second, false, 3, 4)
	appendOK(t, l, first, true, 0, 2) // a retry of either in-flight batch
	appendOK(t, l, second, true, 3, 4)

	if _, err := l.Append(idemBatch(t, 7, 0, 10, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v, want ErrOutOfOrderSequence", err)
	}
	if _, err := l.Append(idemBatch(t, 7, 0, 4, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("overlap that is no retry: %v, want ErrOutOfOrderSequence", err)
	}
	if _, err := l.Append(idemBatch(t, 7, 1, 5, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at sequence 0: %v, want ErrOutOfOrderSequence", err)
	}
	appendOK(t, l, idemBatch(t, 7, 1, 0, 1), false, 5, 5) // bumped epoch starts over
	if _, err := l.Append(idemBatch(t, 7, 0, 5, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	if _, err := l.Append(first); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("retry from the fenced epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	// An unknown producer id (new, or expired) is accepted at any sequence.
	appendOK(t, l, idemBatch(t, 8, 3, 42, 2), false, 6, 7)
	appendOK(t, l, idemBatch(t, 8, 3, 44, 1), false, 8, 8)
	// Non-idempotent batches are not checked.
	appendOK(t, l, makeBatch(t, 1, "plain", 1), false, 9, 9)
	appendOK(t, l, makeBatch(t, 1, "plain", 1), false, 10, 10)
	if n := len(readAll(t, l)); n != 11 {
		t.Fatalf("log holds %d records, want 11 (no duplicates)", n)
	}
	if got := s.metrics.producerDuplicates.Load(); got != 2 {
		t.Errorf("duplicates counted %d, want 2", got)
	}
}

// The partition remembers five batches per producer: a retry of an older one is out of
// order, as in Kafka.
func TestIdempotentWindowOfFive(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := oneTopic(t, s, nil)
	var batches [][]byte
	for i := 0; i < 6; i++ {
		b := idemBatch(t, 1, 0, int32(i*2), 2)
		batches = append(batches, b)
		appendOK(t, l, b, false, int64(i*2), int64(i*2+1))
	}
	for i := 1; i < 6; i++ {
		appendOK(t, l, batches[i], true, int64(i*2), int64(i*2+1))
	}
	if _, err := l.Append(batches[0]); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("retry of the sixth newest batch: %v, want ErrOutOfOrderSequence", err)
	}
}

func TestIdempotentSequenceWraps(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := oneTopic(t, s, nil)
	appendOK(t, l, idemBatch(t, 1, 0, math.MaxInt32-1, 2), false, 0, 1) // ends at MaxInt32
	appendOK(t, l, idemBatch(t, 1, 0, 0, 1), false, 2, 2)
	// A batch whose sequences wrap inside it.
	appendOK(t, l, idemBatch(t, 2, 0, math.MaxInt32-1, 4), false, 3, 6) // last sequence 1
	wrapped := idemBatch(t, 2, 0, 2, 1)
	appendOK(t, l, wrapped, false, 7, 7)
	appendOK(t, l, wrapped, true, 7, 7)
	if lastSeq(math.MaxInt32-1, 3) != 1 || lastSeq(5, 0) != 5 || !inSequence(math.MaxInt32, 0) || inSequence(math.MaxInt32, 1) {
		t.Fatal("sequence arithmetic")
	}
}

func TestIdempotentBadInput(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := oneTopic(t, s, nil)
	txn := setAttr(idemBatch(t, 1, 0, 0, 1), 0x10)
	if _, err := l.Append(txn); !errors.Is(err, ErrTransactionalBatch) {
		t.Fatalf("transactional batch: %v, want ErrTransactionalBatch", err)
	}
	ctl := setAttr(idemBatch(t, 1, 0, 0, 1), 0x20)
	if _, err := l.Append(ctl); !errors.Is(err, ErrTransactionalBatch) {
		t.Fatalf("control batch: %v, want ErrTransactionalBatch", err)
	}
	two := append(idemBatch(t, 1, 0, 0, 1), idemBatch(t, 1, 0, 1, 1)...)
	if _, err := l.Append(two); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("two idempotent batches in one append: %v, want ErrCorrupt", err)
	}
	if _, err := l.Append(idemBatch(t, 1, 0, -1, 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("producer id with sequence -1: %v, want ErrCorrupt", err)
	}
	if _, err := l.Append(idemBatch(t, 1, -1, 0, 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("producer id with epoch -1: %v, want ErrCorrupt", err)
	}
	if l.LogEndOffset() != 0 || l.NumProducers() != 0 {
		t.Fatalf("bad input changed the log: LEO %d, %d producers", l.LogEndOffset(), l.NumProducers())
	}
	// Several plain batches in one append still work.
	appendOK(t, l, append(makeBatch(t, 2, "a", 1), makeBatch(t, 3, "b", 1)...), false, 0, 4)
}

func TestLogAppendTimeDuplicateKeepsTime(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := oneTopic(t, s, map[string]string{"message.timestamp.type": "LogAppendTime"})
	b := idemBatch(t, 1, 0, 0, 1)
	res, err := l.Append(b)
	if err != nil || res.LogAppendTime < 0 {
		t.Fatalf("append: %+v %v", res, err)
	}
	dup, err := l.Append(b)
	if err != nil || !dup.Duplicate || dup.LogAppendTime != res.LogAppendTime {
		t.Fatalf("duplicate: %+v %v, want log append time %d", dup, err, res.LogAppendTime)
	}
}

// fakeClock is an injectable clock for expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestProducerExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	dir := t.TempDir()
	opts := Options{ProducerIDExpiration: time.Minute, Now: clock.Now}
	s := openTestStore(t, dir, opts)
	l := oneTopic(t, s, nil)
	for pid := int64(1); pid <= 3; pid++ {
		appendOK(t, l, idemBatch(t, pid, 0, 0, 1), false, pid-1, pid-1)
	}
	clock.advance(30 * time.Second)
	appendOK(t, l, idemBatch(t, 2, 0, 1, 1), false, 3, 3)
	if n := s.ExpireProducers(); n != 0 {
		t.Fatalf("expired %d before anyone was idle a minute", n)
	}
	clock.advance(40 * time.Second)
	if n := s.ExpireProducers(); n != 2 || l.NumProducers() != 1 {
		t.Fatalf("expired %d, %d left; want 2 expired (ids 1, 3), 1 left", n, l.NumProducers())
	}
	// An expired producer continues at any sequence, like a new one.
	appendOK(t, l, idemBatch(t, 1, 0, 9, 1), false, 4, 4)
	// The live one is still checked.
	if _, err := l.Append(idemBatch(t, 2, 0, 7, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("live producer gap: %v", err)
	}
	// Expired while the agent was down: not loaded from the snapshot.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	clock.advance(59 * time.Second) // id 2 was last seen 99s ago, id 1 59s ago
	s = openTestStore(t, dir, opts)
	defer s.Close()
	if n := s.Topic("t").Partition(0).NumProducers(); n != 1 {
		t.Fatalf("%d producers after reopen, want 1 (id 2 expired)", n)
	}
	if s.expiryInterval() != 30*time.Second || (&Store{opts: Options{ProducerIDExpiration: 24 * time.Hour}}).expiryInterval() != 10*time.Minute {
		t.Errorf("expiry interval %v", s.expiryInterval())
	}
}

func TestProducerCap(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{MaxProducers: 3})
	defer s.Close()
	l := oneTopic(t, s, nil)
	for pid := int64(1); pid <= 3; pid++ {
		appendOK(t, l, idemBatch(t, pid, 0, 0, 1), false, pid-1, pid-1)
	}
	appendOK(t, l, idemBatch(t, 1, 0, 1, 1), false, 3, 3) // id 1 is now the most recently used
	appendOK(t, l, idemBatch(t, 4, 0, 0, 1), false, 4, 4) // evicts id 2, the least recently used
	if n := l.NumProducers(); n != 3 {
		t.Fatalf("%d producers tracked, cap 3", n)
	}
	if got := s.metrics.producersEvicted.Load(); got != 1 {
		t.Fatalf("evictions %d, want 1", got)
	}
	// id 2 is forgotten: its retry is appended again (the price of the cap), id 1's is caught.
	appendOK(t, l, idemBatch(t, 2, 0, 0, 1), false, 5, 5)
	appendOK(t, l, idemBatch(t, 1, 0, 1, 1), true, 3, 3)
	for pid := int64(100); pid < 1100; pid++ {
		if _, err := l.Append(idemBatch(t, pid, 0, 0, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.NumProducers(); n != 3 {
		t.Fatalf("%d producers tracked after 1000 more ids, cap 3", n)
	}
}

// Appends of an idempotent producer allocate nothing in the steady state.
func TestIdempotentAppendDoesNotAllocate(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := oneTopic(t, s, nil)
	const runs = 200
	batches := make([][]byte, runs+2)
	for i := range batches {
		batches[i] = idemBatch(t, 5, 0, int32(i), 1)
	}
	appendOK(t, l, batches[0], false, 0, 0)
	i := 1
	if n := testing.AllocsPerRun(runs, func() {
		if _, err := l.Append(batches[i]); err != nil {
			t.Fatal(err)
		}
		i++
	}); n != 0 {
		t.Errorf("%v allocations per idempotent append", n)
	}
	if n := testing.AllocsPerRun(runs, func() {
		if res, err := l.Append(batches[i-1]); err != nil || !res.Duplicate {
			t.Fatal(res, err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per duplicate", n)
	}
}

// Concurrent producers, each sending every batch twice, end up with every batch once.
func TestIdempotentConcurrentRetries(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{Fsync: FsyncAlways})
	defer s.Close()
	l := oneTopic(t, s, map[string]string{"segment.bytes": "4096"})
	const producers, batches = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := int64(0); p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				b := idemBatch(t, p, 0, int32(i*3), 3)
				first, err := l.Append(b)
				if err == nil {
					var again AppendResult
					again, err = l.Append(b)
					if err == nil && (!again.Duplicate || again.BaseOffset != first.BaseOffset) {
						err = fmt.Errorf("producer %d batch %d: retry %+v, first %+v", p, i, again, first)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, l)); n != producers*batches*3 {
		t.Fatalf("%d records, want %d", n, producers*batches*3)
	}
}

func TestProducerIDsUniqueAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	seen := map[int64]bool{}
	alloc := func(s *Store, n int) {
		for range n {
			id, err := s.AllocateProducerID()
			if err != nil {
				t.Fatal(err)
			}
			if seen[id] || !s.ProducerIDAllocated(id) {
				t.Fatalf("id %d handed out twice or not marked allocated", id)
			}
			seen[id] = true
		}
	}
	alloc(s, 1500) // crosses a block
	if s.ProducerIDAllocated(1500) || s.ProducerIDAllocated(-1) {
		t.Fatal("an id not handed out counts as allocated")
	}
	s.Close()
	s = openTestStore(t, dir, Options{})
	alloc(s, 10)
	crash(t, s)
	s = openTestStore(t, dir, Options{})
	alloc(s, 10)
	s.Close()

	if err := os.WriteFile(filepath.Join(dir, producerIDsName), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), producerIDsName) {
		t.Fatalf("open with a corrupt producer id file: %v, want an error naming it", err)
	}
}
