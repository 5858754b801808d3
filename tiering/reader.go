package tiering

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// Reads of uploaded segments. A read finds the segment in the manifest, its start position
// with the uploaded offset index, and serves whole batches from chunks of the segment fetched
// with ranged GETs: file ranges of memory chunks (readahead.go) or of disk cache files
// (cache.go), so the Kafka server sends them with sendfile like local data. A read answers
// with the batches that the chunks at hand hold instead of waiting for the next chunk, and
// the readAheadChunks chunks after it are fetched ahead, into the next segment too.

// RemoteStart is the first offset in object storage for a partition, or -1 when there is
// none. For a remote.storage.enable topic whose manifest is not known yet (the object store
// has been unreachable since the start and no local copy of the manifest exists) it is an
// error wrapping commitlog.ErrStorage: retriable, so a consumer waits instead of being
// reset past the offsets in the bucket.
func (t *Tierer) RemoteStart(topic string, partition int32) (int64, error) {
	if m := t.lookup(topic, partition); m != nil {
		return m.StartOffset(), nil
	}
	if top := t.logs.Topic(topic); top != nil && top.Config().RemoteStorageEnable {
		return -1, fmt.Errorf("tiered state of %s-%d not loaded yet (object store unreachable?): %w", topic, partition, commitlog.ErrStorage)
	}
	return -1, nil
}

// RemoteLastOffset is the last offset in object storage (Kafka's latest tiered offset,
// KIP-1005), or -1 when there is none.
func (t *Tierer) RemoteLastOffset(topic string, partition int32) int64 {
	if m := t.lookup(topic, partition); m != nil && len(m.Segments) > 0 {
		return m.EndOffset() - 1
	}
	return -1
}

// Read returns whole batches from object storage starting with the one that holds offset (or
// the first one after it), at most maxBytes (at least one batch when minOne). Offsets below
// the remote start are commitlog.ErrOffsetOutOfRange; an empty result means object storage
// has nothing at or after offset.
func (t *Tierer) Read(ctx context.Context, topic string, partition int32, offset, maxBytes int64, minOne bool) (commitlog.ReadResult, error) {
	m := t.lookup(topic, partition)
	if m == nil || m.StartOffset() < 0 || offset < m.StartOffset() {
		return commitlog.ReadResult{}, fmt.Errorf("remote read of %s-%d at %d: %w", topic, partition, offset, commitlog.ErrOffsetOutOfRange)
	}
	i := m.Find(offset)
	if i < 0 {
		return commitlog.ReadResult{}, nil
	}
	seg := m.Segments[i]
	rs := t.openSegment(ctx, topic, partition, seg)
	if i+1 < len(m.Segments) {
		rs.next = &remoteSegment{t: t, meta: m.Segments[i+1], chunk: rs.chunk,
			key: m.Segments[i+1].Key(t.cfg.Prefix, topic, partition, ".log")}
	}
	res, err := rs.read(offset, maxBytes, minOne)
	if err != nil {
		rs.release()
		t.m.remoteReadErrors.Add(1)
		return commitlog.ReadResult{}, fmt.Errorf("remote read of %s-%d at %d: %w", topic, partition, offset, err)
	}
	t.m.remoteReads.Add(1)
	t.m.remoteReadBytes.Add(res.Bytes)
	return res, nil
}

// remoteSegment reads one uploaded segment through the chunk caches. Chunks it got stay held
// until release.
type remoteSegment struct {
	t      *Tierer
	ctx    context.Context
	key    string // the .log object
	meta   SegmentMeta
	ixKey  string
	tixKey string
	chunk  int64
	held   map[int64]heldChunk
	next   *remoteSegment // the following segment, for read-ahead across the boundary
	ahead  int64          // after a read: the chunk read-ahead starts from again on release
}

func (t *Tierer) openSegment(ctx context.Context, topic string, partition int32, seg SegmentMeta) *remoteSegment {
	return &remoteSegment{t: t, ctx: ctx, meta: seg, chunk: t.cfg.ChunkBytes, held: map[int64]heldChunk{}, ahead: -1,
		key:    seg.Key(t.cfg.Prefix, topic, partition, ".log"),
		ixKey:  seg.Key(t.cfg.Prefix, topic, partition, ".index"),
		tixKey: seg.Key(t.cfg.Prefix, topic, partition, ".timeindex")}
}

// release lets the held chunks go. After a read it also resumes the read-ahead: memory the
// response held may now take the chunks that did not fit while it was being sent.
func (r *remoteSegment) release() {
	for _, h := range r.held {
		if h.mem != nil {
			r.t.mem.release(h.mem)
		} else {
			h.f.Close()
		}
	}
	r.held = nil
	if r.ahead >= 0 {
		c := r.ahead
		r.ahead = -1
		r.readAhead(c)
	}
}

// chunkKey names chunk c of the segment in the caches.
func (r *remoteSegment) chunkKey(c int64) string { return fmt.Sprintf("%s#%d", r.key, c) }

// chunkSize is the size of chunk c.
func (r *remoteSegment) chunkSize(c int64) int64 { return min(r.chunk, r.meta.Size-c*r.chunk) }

// chunkAt returns chunk c, fetching it on a miss.
func (r *remoteSegment) chunkAt(c int64) (heldChunk, error) {
	if h, ok := r.held[c]; ok {
		return h, nil
	}
	h, hit, err := r.t.getChunk(r.ctx, r.chunkKey(c), r.chunkSize(c), r.loader(c))
	if err != nil {
		return heldChunk{}, err
	}
	if hit {
		r.t.m.cacheHits.Add(1)
	} else {
		r.t.m.cacheMisses.Add(1)
	}
	r.held[c] = h
	return h, nil
}

// chunkGetTimeout bounds one chunk GET (a read's own context may end it earlier).
const chunkGetTimeout = 2 * time.Minute

// loader fetches chunk c with one ranged GET.
func (r *remoteSegment) loader(c int64) func(w io.Writer) error {
	return func(w io.Writer) error {
		off := c * r.chunk
		n := min(r.chunk, r.meta.Size-off)
		ctx, cancel := context.WithTimeout(context.Background(), chunkGetTimeout)
		defer cancel()
		if r.ctx != nil {
			stop := context.AfterFunc(r.ctx, cancel)
			defer stop()
		}
		body, err := r.t.store.Get(ctx, r.key, off, n)
		if err != nil {
			return fmt.Errorf("get %s bytes %d-%d: %w", r.key, off, off+n-1, err)
		}
		defer body.Close()
		got, err := io.Copy(w, body)
		if err != nil {
			return fmt.Errorf("get %s bytes %d-%d: %w", r.key, off, off+n-1, err)
		}
		if got != n {
			return fmt.Errorf("get %s bytes %d-%d: %d bytes came back", r.key, off, off+n-1, got)
		}
		r.t.m.remoteGetBytes.Add(got)
		return nil
	}
}

// readAt fills buf from position pos of the segment, across chunks.
func (r *remoteSegment) readAt(buf []byte, pos int64) error {
	if pos < 0 || pos+int64(len(buf)) > r.meta.Size {
		return fmt.Errorf("%w: read of %d bytes at %d past the end of %s (%d bytes)", commitlog.ErrCorrupt, len(buf), pos, r.key, r.meta.Size)
	}
	for len(buf) > 0 {
		c := pos / r.chunk
		h, err := r.chunkAt(c)
		if err != nil {
			return err
		}
		in := pos - c*r.chunk
		n := min(int64(len(buf)), r.chunk-in)
		if err := h.readAt(buf[:n], in); err != nil {
			return fmt.Errorf("read cached chunk %d of %s: %w", c, r.key, err)
		}
		buf, pos = buf[n:], pos+n
	}
	return nil
}

// header reads the batch header at pos.
func (r *remoteSegment) header(pos int64) (batch.Header, error) {
	var b [batch.HeaderSize]byte
	if err := r.readAt(b[:], pos); err != nil {
		return batch.Header{}, err
	}
	h, err := batch.ParseHeader(b[:])
	if err != nil {
		return h, fmt.Errorf("%w: %s position %d: %v", commitlog.ErrCorrupt, r.key, pos, err)
	}
	if int64(h.Size()) > r.meta.Size-pos {
		return h, fmt.Errorf("%w: %s position %d: batch of %d bytes runs past the end", commitlog.ErrCorrupt, r.key, pos, h.Size())
	}
	return h, nil
}

// index returns the segment's uploaded offset or time index, from memory or one GET.
func (r *remoteSegment) index(key string, size int64) ([]byte, error) {
	if data, ok := r.t.idx.get(key); ok {
		return data, nil
	}
	if size == 0 {
		return nil, nil
	}
	data, err := r.t.getAll(r.ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get index %s: %w", key, err)
	}
	r.t.idx.put(key, data)
	return data, nil
}

// position returns the file position of a batch at or before offset, from the offset index.
func (r *remoteSegment) position(offset int64) (int64, error) {
	if offset <= r.meta.BaseOffset {
		return 0, nil
	}
	ix, err := r.index(r.ixKey, r.meta.IndexSize)
	if err != nil {
		return 0, err
	}
	n := len(ix) / 8
	rel := offset - r.meta.BaseOffset
	i := sort.Search(n, func(i int) bool { return int64(binary.BigEndian.Uint32(ix[i*8:])) > rel }) - 1
	if i < 0 {
		return 0, nil
	}
	pos := int64(binary.BigEndian.Uint32(ix[i*8+4:]))
	if pos >= r.meta.Size {
		return 0, fmt.Errorf("%w: index %s points at %d, past the segment's %d bytes", commitlog.ErrCorrupt, r.ixKey, pos, r.meta.Size)
	}
	return pos, nil
}

// read finds the whole batches for a read and returns them as ranges of chunk files.
func (r *remoteSegment) read(offset, maxBytes int64, minOne bool) (commitlog.ReadResult, error) {
	pos, err := r.position(offset)
	if err != nil {
		return commitlog.ReadResult{}, err
	}
	start := int64(-1)
	for pos < r.meta.Size {
		h, err := r.header(pos)
		if err != nil {
			return commitlog.ReadResult{}, err
		}
		if h.LastOffset() >= offset {
			start = pos
			break
		}
		pos += int64(h.Size())
	}
	if start < 0 {
		r.release()
		return commitlog.ReadResult{}, nil
	}
	stop := start
	for stop < r.meta.Size {
		if stop > start && !r.cached(stop, min(stop+batch.HeaderSize, r.meta.Size)) {
			break // answer with what is at hand; read-ahead is fetching the rest
		}
		h, err := r.header(stop)
		if err != nil {
			return commitlog.ReadResult{}, err
		}
		next := stop + int64(h.Size())
		if next-start > maxBytes && !(stop == start && minOne) {
			break
		}
		if stop > start && !r.cached(stop, next) {
			break
		}
		stop = next
	}
	if stop == start {
		r.release()
		return commitlog.ReadResult{}, nil
	}
	var ranges []commitlog.FileRange
	for p := start; p < stop; {
		c := p / r.chunk
		h, err := r.chunkAt(c)
		if err != nil {
			return commitlog.ReadResult{}, err
		}
		in := p - c*r.chunk
		n := min(stop-p, r.chunk-in)
		if h.mem != nil {
			r.t.mem.served(h.mem, in, in+n)
		}
		ranges = append(ranges, commitlog.FileRange{File: h.f, Pos: in, Len: n})
		p += n
	}
	r.ahead = (stop-1)/r.chunk + 1
	r.readAhead(r.ahead)
	return commitlog.RangesResult(ranges, r.release), nil
}

// readAheadChunks is how many chunks after a read are fetched in the background, into the
// next segment when the read ends near its segment's end.
const readAheadChunks = 4

// cached reports whether the bytes [from, to) are in chunks this read holds, memory has
// loaded or the disk cache has.
func (r *remoteSegment) cached(from, to int64) bool {
	for c := from / r.chunk; c*r.chunk < to; c++ {
		if _, ok := r.held[c]; ok {
			continue
		}
		key := r.chunkKey(c)
		if loaded, _ := r.t.mem.state(key); !loaded && !r.t.cache.has(key) {
			return false
		}
	}
	return true
}

// readAhead starts background loads of the readAheadChunks chunks from chunk c on: into
// memory (readAheadMem), or, without memory chunks, into the disk cache.
func (r *remoteSegment) readAhead(c int64) {
	if r.t.mem.nslots > 0 {
		r.readAheadMem(c)
		return
	}
	seg := r
	for n := 0; n < readAheadChunks && seg != nil; n++ {
		if c*seg.chunk >= seg.meta.Size {
			seg, c = seg.next, 0
			if seg == nil {
				return
			}
		}
		seg.prefetch(c)
		c++
	}
}

// prefetch loads chunk c into the disk cache in the background if the segment has it, so a
// consumer reading on finds it cached.
func (r *remoteSegment) prefetch(c int64) {
	if c*r.chunk >= r.meta.Size {
		return
	}
	key := r.chunkKey(c)
	if r.t.cache.hasOrLoading(key) {
		return
	}
	load := (&remoteSegment{t: r.t, key: r.key, meta: r.meta, chunk: r.chunk}).loader(c)
	select {
	case r.t.prefetchSlots <- struct{}{}:
	default:
		return // enough loads in flight
	}
	go func() {
		defer func() { <-r.t.prefetchSlots }()
		f, _, err := r.t.cache.open(key, load)
		if err == nil {
			f.Close()
		}
	}()
}

// OffsetForTimestamp finds, in object storage, the first record at or after the remote start
// whose timestamp is >= ts. found=false: none there.
func (t *Tierer) OffsetForTimestamp(ctx context.Context, topic string, partition int32, ts int64) (offset, timestamp int64, found bool, err error) {
	m := t.lookup(topic, partition)
	if m == nil {
		return -1, -1, false, nil
	}
	from := m.StartOffset()
	for _, seg := range m.Segments {
		if seg.MaxTimestamp < ts || seg.EndOffset() <= from {
			continue
		}
		rs := t.openSegment(ctx, topic, partition, seg)
		offset, timestamp, found, err = rs.findTimestamp(ts, from)
		rs.release()
		if err != nil || found {
			return offset, timestamp, found, err
		}
	}
	return -1, -1, false, nil
}

// findTimestamp scans the segment, from the time index's hint, for the first record at or
// after offset from with a timestamp >= ts.
func (r *remoteSegment) findTimestamp(ts, from int64) (offset, timestamp int64, found bool, err error) {
	startOffset := max(from, r.meta.BaseOffset)
	tix, err := r.index(r.tixKey, r.meta.TimeIndexSize)
	if err != nil {
		return 0, 0, false, err
	}
	// Entry (T, O): every batch before O has timestamps <= T. The last entry with T < ts
	// says no record before O can match.
	for i := len(tix)/12 - 1; i >= 0; i-- {
		if int64(binary.BigEndian.Uint64(tix[i*12:])) < ts {
			startOffset = max(startOffset, r.meta.BaseOffset+int64(binary.BigEndian.Uint32(tix[i*12+8:])))
			break
		}
	}
	pos, err := r.position(startOffset)
	if err != nil {
		return 0, 0, false, err
	}
	var buf []byte
	for pos < r.meta.Size {
		h, err := r.header(pos)
		if err != nil {
			return 0, 0, false, err
		}
		if h.MaxTimestamp >= ts && h.LastOffset() >= from {
			buf = append(buf[:0], make([]byte, h.Size())...)
			if err := r.readAt(buf, pos); err != nil {
				return 0, 0, false, err
			}
			err := batch.Records(buf, func(rec *batch.Record) error {
				if rec.Offset >= from && rec.Timestamp >= ts {
					offset, timestamp, found = rec.Offset, rec.Timestamp, true
					return errFound
				}
				return nil
			})
			if found {
				return offset, timestamp, true, nil
			}
			if err != nil {
				return 0, 0, false, fmt.Errorf("%w: %s position %d: %v", commitlog.ErrCorrupt, r.key, pos, err)
			}
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}

var errFound = errors.New("found")
