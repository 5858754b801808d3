package commitlog

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

func TestSnapshotRoundTrip(t *testing.T) {
	var ps producerState
	for id := int64(1); id <= 4; id++ {
		for i := int64(0); i < id*2; i++ { // ids 3 and 4 wrap their window
			ps.apply(batchHeader{pid: id, epoch: int16(id), seq: int32(i * 2), delta: 1, base: id*100 + i*2, ts: 50 + i}.h(), 1000+id)
		}
	}
	ps.apply(batchHeader{pid: 2, epoch: 2, seq: 4, delta: 0, base: 500, ts: 1}.h(), 2000) // id 2 most recent
	data := encodeSnapshot(&ps, 1000)
	var got producerState
	if err := decodeSnapshot(data, 1000, &got, 0); err != nil {
		t.Fatal(err)
	}
	if dump(&got) != dump(&ps) {
		t.Fatalf("round trip:\n got %s\nwant %s", dump(&got), dump(&ps))
	}
	// Expired producers are skipped.
	var live producerState
	if err := decodeSnapshot(data, 1000, &live, 1003); err != nil || live.len() != 2 {
		t.Fatalf("decode with cutoff: %v, %d producers, want 2 (ids 2 and 4)", err, live.len())
	}
	// Any flipped bit or lost byte is detected.
	for i := range data {
		bad := slices.Clone(data)
		bad[i] ^= 0x40
		var ps producerState
		if err := decodeSnapshot(bad, 1000, &ps, 0); err == nil {
			t.Fatalf("flipped byte %d not detected", i)
		}
		if err := decodeSnapshot(data[:i], 1000, &ps, 0); err == nil {
			t.Fatalf("truncation to %d bytes not detected", i)
		}
	}
	if err := decodeSnapshot(data, 999, &producerState{}, 0); err == nil {
		t.Fatal("snapshot under another name accepted")
	}
}

// batchHeader builds the batch.Header fields the producer state reads.
type batchHeader struct {
	pid        int64
	epoch      int16
	seq, delta int32
	base, ts   int64
}

func (b batchHeader) h() *batch.Header {
	return &batch.Header{ProducerID: b.pid, ProducerEpoch: b.epoch, BaseSequence: b.seq, LastOffsetDelta: b.delta,
		NumRecords: b.delta + 1, BaseOffset: b.base, MaxTimestamp: b.ts}
}

// dump renders a producer state, least recently used first.
func dump(ps *producerState) string {
	var out strings.Builder
	for e := ps.oldest; e != nil; e = e.newer {
		fmt.Fprintf(&out, "id=%d epoch=%d seen=%d [", e.id, e.epoch, e.lastSeen)
		e.each(func(b *producerBatch) {
			fmt.Fprintf(&out, "%d-%d@%d-%d/%d ", b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffset, b.timestamp)
		})
		out.WriteString("] ")
	}
	if n := ps.len(); n != strings.Count(out.String(), "id=") {
		fmt.Fprintf(&out, "map holds %d", n)
	}
	return out.String()
}

// idemLog is a test partition with three producers appending across many segment rolls.
type idemLog struct {
	t     *testing.T
	l     *Log
	next  map[int64]int32    // next sequence per producer
	sent  map[int64][][]byte // batches per producer, in order
	first map[string]int64   // base offset each batch got
}

func newIdemLog(t *testing.T, l *Log) *idemLog {
	return &idemLog{t: t, l: l, next: map[int64]int32{}, sent: map[int64][][]byte{}, first: map[string]int64{}}
}

// produce appends n batches round-robin over producers 1..3.
func (il *idemLog) produce(n int) {
	il.t.Helper()
	for i := 0; i < n; i++ {
		pid := int64(i%3 + 1)
		b := idemBatch(il.t, pid, 0, il.next[pid], 2)
		res, err := il.l.Append(b)
		if err != nil || res.Duplicate {
			il.t.Fatalf("append: %+v %v", res, err)
		}
		il.next[pid] += 2
		il.sent[pid] = append(il.sent[pid], b)
		il.first[string(b[batchCRCStart:])] = res.BaseOffset
	}
}

// batchCRCStart skips the fields the log stamps (base offset, length, leader epoch, ...).
const batchCRCStart = 21

// checkRetries re-sends each producer's last five batches (duplicates, at their first
// offsets) and checks a gap is refused.
func (il *idemLog) checkRetries(l *Log) {
	il.t.Helper()
	leo := l.LogEndOffset()
	for pid, bs := range il.sent {
		for _, b := range bs[max(len(bs)-5, 0):] {
			res, err := l.Append(slices.Clone(b))
			if want := il.first[string(b[batchCRCStart:])]; err != nil || !res.Duplicate || res.BaseOffset != want {
				il.t.Fatalf("producer %d retry: %+v %v, want duplicate at %d", pid, res, err, want)
			}
		}
		if _, err := l.Append(idemBatch(il.t, pid, 0, il.next[pid]+1, 1)); err == nil {
			il.t.Fatalf("producer %d: a gap was accepted after reopen", pid)
		}
	}
	if l.LogEndOffset() != leo {
		il.t.Fatalf("retries changed the log end from %d to %d", leo, l.LogEndOffset())
	}
}

func snapshotOffsets(t *testing.T, l *Log) []int64 {
	t.Helper()
	offs, err := listSnapshots(l.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return offs
}

func TestSnapshotsAtRollAndCleanClose(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	il := newIdemLog(t, l)
	il.produce(60)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	bases := segmentBases(l)
	if len(bases) < 4 {
		t.Fatalf("%d segments, want rolls", len(bases))
	}
	if got, want := snapshotOffsets(t, l), bases[len(bases)-2:]; !slices.Equal(got, want) {
		t.Fatalf("snapshots at %v, want the two newest segment bases %v", got, want)
	}
	leo := l.LogEndOffset()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := snapshotOffsets(t, l); got[len(got)-1] != leo || len(got) != 2 {
		t.Fatalf("snapshots after close %v, want the newest at the log end %d", got, leo)
	}
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	il.checkRetries(s.Topic("t").Partition(0))
}

// copyDir copies a data directory as a crash would leave it: whatever is in the files now,
// without the clean shutdown marker.
func copyDir(t *testing.T, src string) string {
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

func TestProducerStateAfterCrash(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := smallTopic(t, s)
	il := newIdemLog(t, l)
	il.produce(40)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	il.produce(2) // after the newest snapshot: replayed from the log
	image := copyDir(t, s.Dir())
	s2 := openTestStore(t, image, Options{})
	defer s2.Close()
	l2 := s2.Topic("t").Partition(0)
	if offs := snapshotOffsets(t, l2); offs[len(offs)-1] >= l2.LogEndOffset() {
		t.Fatalf("snapshots %v: the test wants a replay after the newest (log end %d)", offs, l2.LogEndOffset())
	}
	il.checkRetries(l2)
}

func TestProducerStateWithoutSnapshots(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	il := newIdemLog(t, l)
	il.produce(50)
	s.Close()
	for _, off := range snapshotOffsets(t, l) {
		os.Remove(snapshotPath(l.Dir(), off))
	}
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	il.checkRetries(s.Topic("t").Partition(0)) // rebuilt from every segment's headers
}

func TestCorruptSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, Options{})
	l := smallTopic(t, s)
	il := newIdemLog(t, l)
	il.produce(50)
	s.Close()
	offs := snapshotOffsets(t, l)
	newest := snapshotPath(l.Dir(), offs[len(offs)-1])
	data, _ := os.ReadFile(newest)
	data[len(data)-3] ^= 1
	os.WriteFile(newest, data, 0o644)
	stale := filepath.Join(l.Dir(), "."+filepath.Base(newest)+".tmp-12345") // an interrupted write
	os.WriteFile(stale, data[:7], 0o644)
	s = openTestStore(t, dir, Options{})
	defer s.Close()
	if _, err := os.Stat(newest); !os.IsNotExist(err) {
		t.Fatalf("corrupt snapshot kept: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("temporary file of an interrupted snapshot write kept: %v", err)
	}
	il.checkRetries(s.Topic("t").Partition(0))
}

// When recovery cuts the log below a snapshot, the snapshot goes, and the producer state
// forgets the cut batches: their retries are appended again.
func TestRecoveryCutDropsSnapshotsAbove(t *testing.T) {
	s := openTestStore(t, t.TempDir(), Options{})
	defer s.Close()
	l := smallTopic(t, s)
	il := newIdemLog(t, l)
	for len(segmentBases(l)) < 3 {
		il.produce(1)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	bases := segmentBases(l)
	newest, prev := bases[len(bases)-1], bases[len(bases)-2]
	if offs := snapshotOffsets(t, l); !slices.Contains(offs, newest) {
		t.Fatalf("no snapshot at the newest segment base %d: %v", newest, offs)
	}
	image := copyDir(t, s.Dir())
	pdir := filepath.Join(image, "topics", "t", "0")
	seg := segmentPath(pdir, prev, ".log")
	bounds := batchBounds(t, seg)
	cut := bounds[len(bounds)-2] // the start of prev's last batch
	if err := os.Truncate(seg, cut+5); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t, image, Options{})
	defer s2.Close()
	l2 := s2.Topic("t").Partition(0)
	leo := l2.LogEndOffset()
	if leo >= newest {
		t.Fatalf("log end %d after the cut, want below %d", leo, newest)
	}
	if offs := snapshotOffsets(t, l2); slices.Contains(offs, newest) {
		t.Fatalf("snapshot at %d kept past the log end %d: %v", newest, leo, offs)
	}
	// The cut batch was the last one of its producer that the log kept; its retry is new.
	var lost []byte
	for _, bs := range il.sent {
		for _, b := range bs {
			if il.first[string(b[batchCRCStart:])] == leo {
				lost = b
			}
		}
	}
	if lost == nil {
		t.Fatalf("no batch was at offset %d", leo)
	}
	appendOK(t, l2, slices.Clone(lost), false, leo, leo+1)
	appendOK(t, l2, slices.Clone(lost), true, leo, leo+1)
}

// snapshotSeeds are encoded snapshots for the fuzz corpus.
func snapshotSeeds() map[string][]byte {
	var ps producerState
	for id := int64(1); id <= 3; id++ {
		for i := int64(0); i < id*3; i++ {
			ps.apply(batchHeader{pid: id, epoch: int16(id - 1), seq: int32(i * 2), delta: 1, base: id*100 + i*2, ts: i}.h(), id)
		}
	}
	return map[string][]byte{
		"empty":     encodeSnapshot(&producerState{}, 0),
		"producers": encodeSnapshot(&ps, 1000),
	}
}

// TestWriteSnapshotFuzzCorpus rewrites testdata/fuzz/FuzzDecodeSnapshot when
// SAMSA_WRITE_FUZZ_CORPUS=1.
func TestWriteSnapshotFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SAMSA_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeSnapshot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range snapshotSeeds() {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzDecodeSnapshot: decoding arbitrary bytes never panics, and what decodes re-encodes to
// a snapshot that decodes to the same state.
func FuzzDecodeSnapshot(f *testing.F) {
	for _, b := range snapshotSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		offset := int64(0)
		if len(data) >= snapshotHeader {
			offset = int64(binary.BigEndian.Uint64(data[6:]))
		}
		var ps producerState
		if err := decodeSnapshot(data, offset, &ps, -1<<62); err != nil {
			return
		}
		var again producerState
		if err := decodeSnapshot(encodeSnapshot(&ps, offset), offset, &again, -1<<62); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if dump(&again) != dump(&ps) {
			t.Fatalf("round trip changed the state:\n%s\n%s", dump(&ps), dump(&again))
		}
	})
}
