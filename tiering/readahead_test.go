package tiering

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/internal/testminio"
)

// getLog records the ranged GETs of .log objects made through a real store.
type getLog struct {
	ObjectStore
	mu   sync.Mutex
	gets []string // "key@offset+n"
}

func (s *getLog) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if strings.HasSuffix(key, ".log") {
		s.mu.Lock()
		s.gets = append(s.gets, fmt.Sprintf("%s@%d+%d", key, off, n))
		s.mu.Unlock()
	}
	return s.ObjectStore.Get(ctx, key, off, n)
}

// covered reports whether a recorded GET fetched byte pos of key.
func (s *getLog) covered(key string, pos int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.gets {
		k, rng, _ := strings.Cut(g, "@")
		var off, n int64
		fmt.Sscanf(rng, "%d+%d", &off, &n)
		if k == key && off <= pos && pos < off+n {
			return true
		}
	}
	return false
}

func (s *getLog) reset() {
	s.mu.Lock()
	s.gets = nil
	s.mu.Unlock()
}

// coldLog is a partition whose first segments are only in the object store, read back by a
// Tierer with 1 KiB chunks.
type coldLog struct {
	t     *testing.T
	tl    *tieredLog
	store *getLog
	tier  *Tierer
	made  atomic.Int64 // memory slots made
	end   int64        // the remote end offset
}

// newColdLog produces n batches of 5 records into 4 KiB segments, uploads them to store and
// drops the local copies, then opens a Tierer with cfg (CacheDir, ChunkBytes and CacheBytes
// filled in) over store.
func newColdLog(t *testing.T, store ObjectStore, n int, cfg Config) *coldLog {
	t.Helper()
	dir := t.TempDir()
	logs, err := commitlog.Open(commitlog.Options{Dir: filepath.Join(dir, "data"), RetentionCheckInterval: time.Hour, CleanerBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	up, err := New(store, logs, Config{CacheDir: filepath.Join(dir, "up"), ReadAheadBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	// An index entry per batch: what 4 KiB between entries is for 4 MiB chunks.
	top, err := logs.CreateTopic("t", 1, map[string]string{"remote.storage.enable": "true", "segment.bytes": "4096",
		"local.retention.bytes": "1", "index.interval.bytes": "100"}, false)
	if err != nil {
		t.Fatal(err)
	}
	tl := &tieredLog{t: t, dir: dir, logs: logs, tier: up, l: top.Partition(0)}
	tl.produce(n, time.Now().UnixMilli())
	tl.sync()
	logs.RunRetention()
	if tl.l.LogStartOffset() == 0 {
		t.Fatal("local retention kept everything")
	}
	cl := &coldLog{t: t, tl: tl, store: &getLog{ObjectStore: store}}
	cfg.CacheDir, cfg.ChunkBytes, cfg.CacheBytes = filepath.Join(dir, "cache"), 1024, 64<<10
	if cl.tier, err = New(cl.store, logs, cfg); err != nil {
		t.Fatal(err)
	}
	newBuf := cl.tier.mem.newBuf
	cl.tier.mem.newBuf = func(size int64) (*os.File, []byte, error) {
		cl.made.Add(1)
		return newBuf(size)
	}
	t.Cleanup(func() {
		cl.waitReadAhead()
		cl.tier.mem.close()
	})
	if err := cl.tier.SyncAll(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	cl.end = cl.tier.lookup("t", 0).EndOffset()
	if cl.end <= 0 || cl.end%5 != 0 {
		t.Fatalf("remote end offset %d", cl.end)
	}
	return cl
}

// want is what the store holds: the batches below the remote end, as appended.
func (cl *coldLog) want() []byte { return bytes.Join(cl.tl.sent[:cl.end/5], nil) }

// batchesFrom returns the bytes of the batches from offset on, as appended.
func (cl *coldLog) batchesFrom(offset int64) []byte {
	return bytes.Join(cl.tl.sent[offset/5:cl.end/5], nil)
}

// waitReadAhead waits until no read-ahead GET is in flight.
func (cl *coldLog) waitReadAhead() {
	slots := cl.tier.prefetchSlots
	for range cap(slots) {
		slots <- struct{}{}
	}
	for range cap(slots) {
		<-slots
	}
}

// read reads once at offset and returns the result, unreleased, and its bytes.
func (cl *coldLog) read(offset, maxBytes int64) (commitlog.ReadResult, []byte) {
	cl.t.Helper()
	rr, err := cl.tier.Read(context.Background(), "t", 0, offset, maxBytes, true)
	if err != nil {
		cl.t.Fatalf("read at %d: %v", offset, err)
	}
	if rr.Bytes == 0 {
		cl.t.Fatalf("read at %d (remote end %d): nothing", offset, cl.end)
	}
	return rr, rangeBytes(cl.t, rr)
}

// rangeBytes reads a result's bytes through its files.
func rangeBytes(t *testing.T, rr commitlog.ReadResult) []byte {
	t.Helper()
	var out []byte
	for _, fr := range rr.Ranges {
		buf := make([]byte, fr.Len)
		if _, err := fr.File.ReadAt(buf, fr.Pos); err != nil {
			t.Fatalf("read range of %s: %v", fr.File.Name(), err)
		}
		out = append(out, buf...)
	}
	return out
}

// readAll reads [from, remote end) sequentially, maxBytes at a time, releasing each read.
func (cl *coldLog) readAll(from, maxBytes int64) []byte {
	cl.t.Helper()
	var out []byte
	for offset := from; offset < cl.end; {
		rr, b := cl.read(offset, maxBytes)
		rr.Release()
		out = append(out, b...)
		batch.Split(b, func(b []byte) error {
			h, _ := batch.ParseHeader(b)
			offset = h.LastOffset() + 1
			return nil
		})
	}
	return out
}

func TestSequentialColdReadStaysInMemory(t *testing.T) {
	if !memBufsSupported {
		t.Skip("memory chunks need Linux")
	}
	dir := t.TempDir()
	store, err := NewFSStore(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	cl := newColdLog(t, store, 400, Config{ReadAheadBytes: 4 << 10}) // 4 slots of 1 KiB
	want := cl.want()
	if got := cl.readAll(0, 1500); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want the %d appended, byte-exact", len(got), len(want))
	}
	cl.waitReadAhead()
	chunks := int64(0)
	for _, s := range cl.tier.lookup("t", 0).Segments {
		chunks += (s.Size + 1023) / 1024
	}
	if chunks < 40 {
		t.Fatalf("only %d chunks: the test needs many more than the 4 slots", chunks)
	}
	if n := cl.tier.cache.writes.Load(); n != 0 || cl.tier.cache.bytes() != 0 {
		t.Fatalf("a single sequential pass wrote %d chunks (%d bytes) to the disk cache", n, cl.tier.cache.bytes())
	}
	if peak, made := cl.tier.mem.peak.Load(), cl.made.Load(); peak > 4 || made > 4 {
		t.Fatalf("memory held up to %d chunks in %d slots made, above the 4 of read_ahead_bytes", peak, made)
	}
	if got := cl.tier.mem.bytes(); got > 4<<10 {
		t.Fatalf("memory chunks take %d bytes, above read_ahead_bytes", got)
	}
	if got := cl.tier.m.remoteGetBytes.Load(); got != cl.tier.lookup("t", 0).Size() {
		t.Fatalf("GETs fetched %d bytes for a log of %d: a chunk was fetched twice or not at all", got, cl.tier.lookup("t", 0).Size())
	}
}

func TestColdReadWithoutMemoryUsesDiskCache(t *testing.T) {
	store, err := NewFSStore(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	cl := newColdLog(t, store, 200, Config{ReadAheadBytes: -1})
	rr, got := cl.read(0, 3000)
	if !bytes.Equal(got, cl.batchesFrom(0)[:len(got)]) {
		t.Fatal("read differs from what was appended")
	}
	for _, fr := range rr.Ranges {
		if _, ok := cl.tier.RangeBytes(fr); ok {
			t.Fatalf("range of %s taken for a memory chunk with read_ahead_bytes off", fr.File.Name())
		}
	}
	rr.Release()
	if want := cl.want(); !bytes.Equal(cl.readAll(0, 1500), want) {
		t.Fatal("read back differs")
	}
	if cl.tier.cache.writes.Load() == 0 || cl.made.Load() != 0 {
		t.Fatalf("%d chunks written to disk, %d memory slots made: want the disk cache only", cl.tier.cache.writes.Load(), cl.made.Load())
	}
}

// A chunk read in part goes to the disk cache when it leaves memory, and a read of it after
// that needs no GET; chunks fetched ahead that nobody read are dropped, not written.
func TestPartlyReadChunkSpillsAndIsReadAgainFromDisk(t *testing.T) {
	if !memBufsSupported {
		t.Skip("memory chunks need Linux")
	}
	store, err := NewFSStore(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	cl := newColdLog(t, store, 400, Config{ReadAheadBytes: 3 << 10})
	m := cl.tier.lookup("t", 0)
	// One batch inside one chunk of the first segment, not at its start.
	seg := m.Segments[0]
	key := seg.Key("", "t", 0, ".log")
	first, pos := int64(-1), 0
	for off, p := seg.BaseOffset, 0; off < seg.EndOffset(); off += 5 {
		n := len(cl.tl.sent[off/5])
		if off > seg.BaseOffset+10 && p%1024 != 0 && p/1024 == (p+n-1)/1024 {
			first, pos = off, p
			break
		}
		p += n
	}
	if first < 0 {
		t.Fatal("no batch inside a chunk")
	}
	rr, got := cl.read(first, 1)
	if !bytes.Equal(got, cl.tl.sent[first/5]) || len(rr.Ranges) != 1 {
		t.Fatalf("first read differs, or in %d ranges", len(rr.Ranges))
	}
	b, ok := cl.tier.RangeBytes(rr.Ranges[0])
	if !ok || !bytes.Equal(b, got) {
		t.Fatalf("RangeBytes of a memory chunk: ok %v, same bytes %v", ok, bytes.Equal(b, got))
	}
	rr.Release()
	cl.waitReadAhead()
	chunkKey := fmt.Sprintf("%s#%d", key, pos/1024)

	// Read far away until that chunk has left memory.
	far := m.Segments[len(m.Segments)/2].BaseOffset
	if !bytes.Equal(cl.readAll(far, 1500), cl.batchesFrom(far)) {
		t.Fatal("far read differs")
	}
	cl.waitReadAhead()
	if loaded, loading := cl.tier.mem.state(chunkKey); loaded || loading {
		t.Fatal("the partly read chunk is still in memory")
	}
	if !cl.tier.cache.has(chunkKey) {
		t.Fatalf("the partly read chunk %s is not in the disk cache (%d spills)", chunkKey, cl.tier.mem.spills.Load())
	}
	if n := cl.tier.mem.spills.Load(); n != 1 {
		t.Fatalf("%d chunks spilled to disk, want only the one read in part (chunks fetched ahead and not read are dropped)", n)
	}
	cl.store.reset()
	rr, got = cl.read(first, 1)
	rr.Release()
	if !bytes.Equal(got, cl.tl.sent[first/5]) {
		t.Fatal("read after eviction differs")
	}
	if cl.store.covered(key, int64(pos)) {
		t.Fatal("the read after eviction fetched the chunk again instead of using the disk cache")
	}
}

// A memory slot is not reused while a read result still references its chunk: the bytes of
// a result held across many other reads (which take every other slot, then fall back to the
// disk cache) stay what they were.
func TestHeldChunkIsNotReused(t *testing.T) {
	if !memBufsSupported {
		t.Skip("memory chunks need Linux")
	}
	store, err := NewFSStore(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	cl := newColdLog(t, store, 300, Config{ReadAheadBytes: 2 << 10}) // 2 slots
	held, got := cl.read(0, 1500)
	want := append([]byte(nil), got...)
	var mem [][]byte
	for _, fr := range held.Ranges {
		if b, ok := cl.tier.RangeBytes(fr); ok {
			mem = append(mem, b)
		}
	}
	if len(mem) == 0 {
		t.Fatal("the first read is not in memory")
	}
	m := cl.tier.lookup("t", 0)
	if !bytes.Equal(cl.readAll(m.Segments[1].BaseOffset, 700), cl.batchesFrom(m.Segments[1].BaseOffset)) {
		t.Fatal("reads while a slot is held differ")
	}
	if cl.tier.cache.writes.Load() == 0 {
		t.Fatal("no read fell back to the disk cache although a slot was held")
	}
	if !bytes.Equal(rangeBytes(t, held), want) || !bytes.Equal(bytes.Join(mem, nil), want[:len(bytes.Join(mem, nil))]) {
		t.Fatal("the held read's bytes changed: its slot was reused")
	}
	held.Release()
	if made := cl.made.Load(); made > 2 {
		t.Fatalf("%d slots made for 2", made)
	}
}

// Concurrent readers at different places (run with -race).
func TestConcurrentColdReaders(t *testing.T) {
	store, err := NewFSStore(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	cl := newColdLog(t, store, 300, Config{ReadAheadBytes: 3 << 10})
	m := cl.tier.lookup("t", 0)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		from := m.Segments[i%len(m.Segments)].BaseOffset
		wg.Go(func() {
			for offset := from; offset < cl.end; {
				rr, err := cl.tier.Read(context.Background(), "t", 0, offset, int64(500+i*300), true)
				if err != nil || rr.Bytes == 0 {
					errs <- fmt.Errorf("read at %d: %d bytes, %v", offset, rr.Bytes, err)
					return
				}
				var b []byte
				for _, fr := range rr.Ranges {
					if mb, ok := cl.tier.RangeBytes(fr); ok {
						b = append(b, mb...)
						continue
					}
					buf := make([]byte, fr.Len)
					if _, err := fr.File.ReadAt(buf, fr.Pos); err != nil {
						errs <- err
						return
					}
					b = append(b, buf...)
				}
				rr.Release()
				if want := cl.batchesFrom(offset); !bytes.HasPrefix(want, b) {
					errs <- fmt.Errorf("reader from %d: read at %d differs", from, offset)
					return
				}
				batch.Split(b, func(b []byte) error {
					h, _ := batch.ParseHeader(b)
					offset = h.LastOffset() + 1
					return nil
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The same sequential read through a real MinIO: ranged GETs of several chunks at once.
func TestSequentialColdReadMinIO(t *testing.T) {
	if !memBufsSupported {
		t.Skip("memory chunks need Linux")
	}
	srv := testminio.Start(t)
	srv.CreateBucket(t, "cold")
	store, err := NewS3Store(S3Config{Endpoint: srv.Endpoint, Bucket: "cold", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	cl := newColdLog(t, store, 200, Config{ReadAheadBytes: 4 << 10})
	if got, want := cl.readAll(0, 3000), cl.want(); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want the %d appended, byte-exact", len(got), len(want))
	}
	cl.waitReadAhead()
	if n := cl.tier.cache.writes.Load(); n != 0 {
		t.Fatalf("%d chunks written to the disk cache on a sequential pass", n)
	}
	multi := false
	for _, g := range cl.store.gets {
		var n int64
		_, rng, _ := strings.Cut(g, "@")
		_, size, _ := strings.Cut(rng, "+")
		fmt.Sscan(size, &n)
		multi = multi || n > 1024
	}
	if !multi {
		t.Fatalf("no read-ahead GET spanned several chunks: %v", cl.store.gets)
	}
}
