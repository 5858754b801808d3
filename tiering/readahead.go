package tiering

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Chunks in memory. A chunk fetched for a read, or ahead of a sequential reader, is read
// straight from the GET body into a memory slot (membuf_linux.go: a memfd and a mapping of
// it), and the fetch response writes it from there (Tierer.RangeBytes). Nothing is written to
// disk on a sequential pass: the disk cache (cache.go) gets a chunk only when it leaves
// memory without having been read once, whole, from start to end (a random read, a reader
// that stopped, a reader that read part of it twice), so the chunks worth keeping are kept
// and an SD card is not written for every chunk a consumer streams past.
//
// Memory is limit / slot bytes slots, made when first needed and reused for the life of the
// Tierer: allocating and freeing the pages of every chunk cost the agent more than the GETs
// did. Because slots are reused, their bytes must never be sent with sendfile, which hands
// the pages themselves to the socket, where they may stay after the write returned (a
// loopback receiver's queue, a TCP retransmit queue) and would change under it. The Kafka
// server therefore writes the ranges RangeBytes recognises with write(2), which copies them
// into the socket; a slot is reused only after the last response holding its chunk released
// it.
//
// Eviction, least recently used first, never takes a referenced or loading chunk. It takes
// chunks read whole first (dropped), then chunks nothing was served of (fetched ahead for a
// reader that went elsewhere; dropped: a GET fetches them again if needed), then chunks read
// in part (written to the disk cache first). A read-ahead takes the last two kinds only from
// stale chunks, unused while 2×slots other chunks came in, and otherwise skips the chunk: it
// is an optimisation, and evicting what a reader is about to use costs more than it saves. A
// read that needs a chunk now may evict any of them; when every slot is in use it loads into
// the disk cache instead, so memory never blocks a read.

// DefaultReadAheadBytes is the default of Config.ReadAheadBytes.
const DefaultReadAheadBytes = 32 << 20

// memPool holds chunks in memory slots of slot bytes, at most limit bytes of slots.
type memPool struct {
	slot   int64
	nslots int
	newBuf func(size int64) (*os.File, []byte, error)

	mu      sync.Mutex
	entries map[string]*memChunk // chunks in the pool, loading or loaded
	lru     *list.List           // the loaded ones; front: most recently used
	free    []*memSlot           // slots made and not in use
	made    int                  // slots made or being made
	inUse   int                  // slots held by chunks (in the pool, or out and referenced)
	tick    int64                // counts chunks entered: the pool's clock
	closed  bool

	byFile sync.Map // *os.File -> *memSlot, for RangeBytes

	peak   atomic.Int64 // most slots in use at once, for tests
	spills atomic.Int64 // chunks written to the disk cache when they left memory
}

// memSlot is one reusable chunk buffer: a memory file and its mapping.
type memSlot struct {
	f    *os.File
	data []byte
}

// memChunk is one chunk in memory. Fields under memPool.mu unless noted.
type memChunk struct {
	key  string
	size int64
	slot *memSlot // set before ready closes, then read-only until freed
	f    *os.File // slot.f
	data []byte   // slot.data[:size]

	refs   int
	inPool bool
	el     *list.Element // in memPool.lru while loaded and in the pool
	used   int64         // memPool.tick when last looked up or reserved

	ready chan struct{} // closed when the load ended
	err   error         // the load's error, set before ready closes

	// What reads served of it: [lo, hi) when contiguous.
	served bool
	lo, hi int64
	gap    bool // served ranges with a hole between them
	reread bool // a byte served twice
}

// newMemPool makes a pool of limit/slot slots of slot bytes (none when limit < slot).
func newMemPool(limit, slot int64) *memPool {
	n := 0
	if memBufsSupported && slot > 0 {
		n = int(limit / slot)
	}
	return &memPool{slot: slot, nslots: n, newBuf: newMemBuf, entries: map[string]*memChunk{}, lru: list.New()}
}

// enabled reports whether the pool can hold a chunk of size bytes.
func (p *memPool) enabled(size int64) bool {
	return p.nslots > 0 && size > 0 && size <= p.slot
}

// readWhole reports whether reads served every byte of the chunk exactly once. Such a chunk
// is dropped from memory without being written to disk.
func (mc *memChunk) readWhole() bool {
	return mc.served && !mc.gap && !mc.reread && mc.lo == 0 && mc.hi >= mc.size
}

// lookup returns the chunk under key, loaded or loading, with a reference the caller
// releases; nil when memory does not have it.
func (p *memPool) lookup(key string) *memChunk {
	p.mu.Lock()
	defer p.mu.Unlock()
	mc := p.entries[key]
	if mc == nil {
		return nil
	}
	mc.refs++
	mc.used = p.tick
	if mc.el != nil {
		p.lru.MoveToFront(mc.el)
	}
	return mc
}

// staleLocked reports whether a chunk was not used while 2×slots other chunks came in:
// whoever read it or had it fetched ahead has gone elsewhere.
func (p *memPool) staleLocked(mc *memChunk) bool { return p.tick-mc.used > 2*int64(p.nslots) }

// state reports whether memory has key loaded, or loading.
func (p *memPool) state(key string) (loaded, loading bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mc := p.entries[key]
	if mc == nil {
		return false, false
	}
	return mc.el != nil, mc.el == nil
}

// reserve takes a slot for a chunk of size bytes under key and enters it, loading, with a
// reference for the loader (fresh). If the pool has key already it returns that one with a
// reference (not fresh). Without a slot it returns nil, or a chunk read in part that must go
// to disk first (spill, referenced): the caller writes it, releases it and asks again.
func (p *memPool) reserve(key string, size int64, demand bool) (mc *memChunk, fresh bool, spill *memChunk) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mc := p.entries[key]; mc != nil {
		mc.refs++
		return mc, false, nil
	}
	if p.closed || !p.enabled(size) {
		return nil, false, nil
	}
	// A free slot, a new one, the slot of a chunk read whole (least recently used first),
	// then that of the least recently used chunk nothing was served of (fetched ahead for a
	// reader that went elsewhere: a GET can fetch it again), else of the least recently used
	// chunk read in part, spilled. A read-ahead takes the last two kinds only from stale
	// chunks, never from a reader that is still going.
	evictable := func(v *memChunk) bool { return demand || p.staleLocked(v) }
	if len(p.free) == 0 && p.made == p.nslots && !p.evictLocked((*memChunk).readWhole) {
		p.evictLocked(func(v *memChunk) bool { return !v.served && evictable(v) })
	}
	var slot *memSlot
	switch {
	case len(p.free) > 0:
		slot = p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
	case p.made < p.nslots:
		p.made++ // made by fill, outside the lock
	default:
		for el := p.lru.Back(); el != nil; el = el.Prev() {
			if v := el.Value.(*memChunk); v.refs == 0 && evictable(v) {
				p.removeLocked(v)
				v.refs = 1
				return nil, false, v
			}
		}
		return nil, false, nil // every slot is in use
	}
	p.tick++
	mc = &memChunk{key: key, size: size, slot: slot, refs: 1, inPool: true, used: p.tick, ready: make(chan struct{})}
	p.entries[key] = mc
	p.inUse++
	if int64(p.inUse) > p.peak.Load() {
		p.peak.Store(int64(p.inUse))
	}
	return mc, true, nil
}

// evictLocked frees the slot of the least recently used unreferenced loaded chunk that ok
// accepts; it reports whether it found one.
func (p *memPool) evictLocked(ok func(*memChunk) bool) bool {
	for el := p.lru.Back(); el != nil; el = el.Prev() {
		if v := el.Value.(*memChunk); v.refs == 0 && ok(v) {
			p.removeLocked(v)
			p.freeLocked(v)
			return true
		}
	}
	return false
}

// removeLocked takes a chunk out of the pool; its slot stays in use until freeLocked.
func (p *memPool) removeLocked(mc *memChunk) {
	delete(p.entries, mc.key)
	if mc.el != nil {
		p.lru.Remove(mc.el)
		mc.el = nil
	}
	mc.inPool = false
}

// freeLocked gives the slot of a chunk out of the pool and no longer referenced back (or
// unmaps it once the pool is closed).
func (p *memPool) freeLocked(mc *memChunk) {
	p.inUse--
	switch s := mc.slot; {
	case s == nil: // its slot could not be made
		p.made--
	case p.closed:
		p.made--
		p.byFile.Delete(s.f)
		freeMemBuf(s.f, s.data)
	default:
		p.free = append(p.free, s)
	}
	mc.slot, mc.f, mc.data = nil, nil, nil
}

// fill loads a fresh chunk with load, which must fill data whole, and makes it available
// (or takes it out of the pool on error). The loader's reference stays with the caller.
func (p *memPool) fill(mc *memChunk, load func(data []byte) error) error {
	err := p.prepare(mc)
	if err == nil {
		err = load(mc.slot.data[:mc.size])
	}
	p.finish(mc, err)
	return err
}

// prepare makes the slot of a fresh chunk if reserve could not give it one made before.
func (p *memPool) prepare(mc *memChunk) error {
	if mc.slot != nil {
		return nil
	}
	var s memSlot
	var err error
	if s.f, s.data, err = p.newBuf(p.slot); err != nil {
		return fmt.Errorf("memory chunk: %w", err)
	}
	p.byFile.Store(s.f, &s)
	p.mu.Lock()
	mc.slot = &s
	p.mu.Unlock()
	return nil
}

// finish ends the load of a fresh chunk: on success it is available, on error it leaves the
// pool (those waiting for it get err). The loader's reference stays with the caller.
func (p *memPool) finish(mc *memChunk, err error) {
	p.mu.Lock()
	mc.err = err
	if mc.slot != nil {
		mc.f, mc.data = mc.slot.f, mc.slot.data[:mc.size]
	}
	if err != nil {
		if mc.inPool {
			p.removeLocked(mc)
		}
	} else if mc.inPool {
		mc.el = p.lru.PushFront(mc)
	}
	p.mu.Unlock()
	close(mc.ready)
}

// wait waits until mc is loaded; it returns the load's error.
func (mc *memChunk) wait(ctx context.Context) error {
	if ctx == nil {
		<-mc.ready
		return mc.err
	}
	select {
	case <-mc.ready:
		return mc.err
	case <-ctx.Done():
		return fmt.Errorf("wait for chunk %s: %w", mc.key, ctx.Err())
	}
}

// release drops a reference; after the last one of a chunk out of the pool its slot is free.
func (p *memPool) release(mc *memChunk) {
	p.mu.Lock()
	defer p.mu.Unlock()
	mc.refs--
	if mc.refs == 0 && !mc.inPool {
		p.freeLocked(mc)
	}
}

// served records that a response sends bytes [from, to) of the chunk.
func (p *memPool) served(mc *memChunk, from, to int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !mc.served:
		mc.served, mc.lo, mc.hi = true, from, to
	case from < mc.hi && to > mc.lo:
		mc.reread = true
		mc.lo, mc.hi = min(mc.lo, from), max(mc.hi, to)
	case from == mc.hi:
		mc.hi = to
	case to == mc.lo:
		mc.lo = from
	default:
		mc.gap = true
		mc.lo, mc.hi = min(mc.lo, from), max(mc.hi, to)
	}
}

// bytes is the memory the pool's slots take now.
func (p *memPool) bytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(p.made) * p.slot
}

// rangeBytes returns the bytes of a range of a memory slot's file; ok false for any other
// file.
func (p *memPool) rangeBytes(f *os.File, pos, n int64) (b []byte, ok bool) {
	v, ok := p.byFile.Load(f)
	if !ok {
		return nil, false
	}
	data := v.(*memSlot).data
	if pos < 0 || n < 0 || pos+n > int64(len(data)) {
		return nil, false
	}
	return data[pos : pos+n], true
}

// close unmaps the free slots and those of chunks nobody holds, and refuses new chunks;
// held chunks' slots are unmapped when released.
func (p *memPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for el := p.lru.Front(); el != nil; {
		next := el.Next()
		if mc := el.Value.(*memChunk); mc.refs == 0 {
			p.removeLocked(mc)
			p.freeLocked(mc)
		}
		el = next
	}
	for _, s := range p.free {
		p.made--
		p.byFile.Delete(s.f)
		freeMemBuf(s.f, s.data)
	}
	p.free = nil
}

// heldChunk is a chunk a read holds: a memory chunk or an open disk cache file.
type heldChunk struct {
	f    *os.File
	data []byte    // the bytes of a memory chunk; nil for a disk chunk (read with f.ReadAt)
	mem  *memChunk // nil for a disk chunk
}

// readAt copies bytes of the chunk from position in.
func (h heldChunk) readAt(buf []byte, in int64) error {
	if h.data != nil {
		if in < 0 || in+int64(len(buf)) > int64(len(h.data)) {
			return fmt.Errorf("read of %d bytes at %d past the end of a %d-byte chunk", len(buf), in, len(h.data))
		}
		copy(buf, h.data[in:])
		return nil
	}
	_, err := h.f.ReadAt(buf, in)
	return err
}

// getChunk returns chunk key (size bytes, fetched by load on a miss) for a read that needs it
// now: from memory, from the disk cache, loaded into memory, or, when memory is all in use,
// loaded into the disk cache. hit says whether it was there (or on its way) already.
func (t *Tierer) getChunk(ctx context.Context, key string, size int64, load func(w io.Writer) error) (h heldChunk, hit bool, err error) {
	if mc := t.mem.lookup(key); mc != nil {
		if err := mc.wait(ctx); err == nil {
			return heldChunk{f: mc.f, data: mc.data, mem: mc}, true, nil
		}
		t.mem.release(mc) // a failed read-ahead: load it here
	}
	if t.mem.enabled(size) && !t.cache.hasOrLoading(key) {
		for {
			mc, fresh, spill := t.mem.reserve(key, size, true)
			if spill != nil {
				t.spill(spill)
				continue
			}
			if mc == nil {
				break // memory is all in use: the disk cache
			}
			if !fresh {
				if err := mc.wait(ctx); err != nil {
					t.mem.release(mc)
					return heldChunk{}, false, err
				}
				return heldChunk{f: mc.f, data: mc.data, mem: mc}, true, nil
			}
			if err := t.mem.fill(mc, memLoader(load)); err != nil {
				t.mem.release(mc)
				return heldChunk{}, false, err
			}
			return heldChunk{f: mc.f, data: mc.data, mem: mc}, false, nil
		}
	}
	f, hit, err := t.cache.open(key, load)
	if err != nil {
		return heldChunk{}, false, err
	}
	return heldChunk{f: f}, hit, nil
}

// memLoader adapts a chunk loader (a writer of exactly the chunk's bytes) to a memory chunk.
func memLoader(load func(w io.Writer) error) func(data []byte) error {
	return func(data []byte) error {
		w := &fixedWriter{buf: data}
		if err := load(w); err != nil {
			return err
		}
		if w.n != len(data) {
			return fmt.Errorf("chunk loader wrote %d of %d bytes", w.n, len(data))
		}
		return nil
	}
}

// fixedWriter writes into a buffer of fixed size; it is also an io.ReaderFrom, so io.Copy
// reads a GET body straight into the buffer.
type fixedWriter struct {
	buf []byte
	n   int
}

func (w *fixedWriter) Write(p []byte) (int, error) {
	if len(p) > len(w.buf)-w.n {
		return 0, fmt.Errorf("chunk loader wrote more than the chunk's %d bytes", len(w.buf))
	}
	w.n += copy(w.buf[w.n:], p)
	return len(p), nil
}

// ReadFrom reads r to its end into the buffer; more bytes than fit is an error.
func (w *fixedWriter) ReadFrom(r io.Reader) (int64, error) {
	start := w.n
	for {
		if w.n == len(w.buf) {
			var probe [1]byte
			n, err := r.Read(probe[:])
			if n > 0 {
				return int64(w.n - start), fmt.Errorf("chunk loader got more than the chunk's %d bytes", len(w.buf))
			}
			if err == io.EOF {
				return int64(w.n - start), nil
			}
			if err != nil {
				return int64(w.n - start), err
			}
			continue
		}
		n, err := r.Read(w.buf[w.n:])
		w.n += n
		if err == io.EOF {
			return int64(w.n - start), nil
		}
		if err != nil {
			return int64(w.n - start), err
		}
	}
}

// spill writes a chunk leaving memory without having been read whole to the disk cache, so
// a later read of it needs no GET, then releases it.
func (t *Tierer) spill(mc *memChunk) {
	defer t.mem.release(mc)
	f, _, err := t.cache.open(mc.key, func(w io.Writer) error {
		_, err := w.Write(mc.data)
		return err
	})
	if err != nil {
		t.log.Warn("keep a chunk in the disk cache", "chunk", mc.key, "err", err)
		return
	}
	f.Close()
	t.mem.spills.Add(1)
}

// readAheadGetBytes is the most one read-ahead GET asks for: consecutive chunks of a segment
// that memory can take are fetched with one ranged GET (two 4 MiB chunks by default), which
// costs the object store less per byte than a GET per chunk, and each chunk is available as
// soon as its bytes arrived.
const readAheadGetBytes = 8 << 20

// readAheadMem starts background GETs into memory for the next chunks that are neither in
// memory nor in the disk cache, as far as memory has room for them without evicting what a
// reader may still need (at most as many chunks as memory has slots) and fewer than
// cap(prefetchSlots) GETs are in flight.
func (r *remoteSegment) readAheadMem(c int64) {
	maxRun := max(1, int(readAheadGetBytes/r.chunk))
	var run []*memChunk
	var runSeg *remoteSegment
	var first int64
	start := func() {
		if len(run) > 0 {
			go runSeg.loadRun(first, run)
		}
		run = nil
	}
	defer start()
	seg := r
	for n := 0; n < r.t.mem.nslots; n, c = n+1, c+1 {
		if c*seg.chunk >= seg.meta.Size {
			start()
			if seg, c = seg.next, 0; seg == nil {
				return
			}
		}
		key := seg.chunkKey(c)
		if loaded, loading := r.t.mem.state(key); loaded || loading || r.t.cache.hasOrLoading(key) {
			start()
			continue
		}
		if len(run) == maxRun {
			start()
		}
		if len(run) == 0 {
			select {
			case r.t.prefetchSlots <- struct{}{}:
			default:
				return // enough GETs in flight
			}
		}
		mc, fresh, spill := r.t.mem.reserve(key, seg.chunkSize(c), false)
		for spill != nil { // a stale chunk read in part: rare
			r.t.spill(spill)
			mc, fresh, spill = r.t.mem.reserve(key, seg.chunkSize(c), false)
		}
		if mc != nil && !fresh { // it came in meanwhile
			r.t.mem.release(mc)
			if len(run) == 0 {
				<-r.t.prefetchSlots
			}
			start()
			continue
		}
		if mc == nil { // no room in memory
			if len(run) == 0 {
				<-r.t.prefetchSlots
			}
			return
		}
		if len(run) == 0 {
			runSeg, first = seg, c
		}
		run = append(run, mc)
	}
}

// loadRun fetches the consecutive chunks run, from chunk first on, with one ranged GET into
// their memory slots, then gives back its prefetch slot.
func (r *remoteSegment) loadRun(first int64, run []*memChunk) {
	defer func() { <-r.t.prefetchSlots }()
	off := first * r.chunk
	var n int64
	for _, mc := range run {
		n += mc.size
	}
	ctx, cancel := context.WithTimeout(context.Background(), chunkGetTimeout)
	defer cancel()
	body, err := r.t.store.Get(ctx, r.key, off, n)
	if err != nil {
		err = fmt.Errorf("get %s bytes %d-%d: %w", r.key, off, off+n-1, err)
	} else {
		defer body.Close()
	}
	for i, mc := range run {
		if err == nil {
			err = r.t.mem.prepare(mc)
		}
		if err == nil {
			if _, rerr := io.ReadFull(body, mc.slot.data[:mc.size]); rerr != nil {
				err = fmt.Errorf("get %s bytes %d-%d: chunk %d: %w", r.key, off, off+n-1, first+int64(i), rerr)
			} else {
				r.t.m.remoteGetBytes.Add(mc.size)
			}
		}
		if err != nil {
			r.t.log.Debug("read-ahead of a chunk failed", "chunk", mc.key, "err", err)
		}
		r.t.mem.finish(mc, err)
		r.t.mem.release(mc)
	}
}

// RangeBytes returns the bytes of a range of a read's result when they are in a memory
// chunk, and ok false for a range of any other file. The Kafka server writes such bytes with
// write(2), never with sendfile: memory slots are reused once released (see above). The
// bytes are valid until the read result is released.
func (t *Tierer) RangeBytes(fr commitlog.FileRange) (b []byte, ok bool) {
	if fr.File == nil {
		return nil, false
	}
	return t.mem.rangeBytes(fr.File, fr.Pos, fr.Len)
}
