package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// segJob is a segment to read: the byte range of its .log object that the indexes leave.
type segJob struct {
	part       *partPlan
	seg        segPlan
	key        string      // the .log object key
	url        string      // the .log object, for messages
	start, end int64       // byte range [start, end) of the .log object to read
	oidx       offsetIndex // nil when not loaded
	oidxTried  bool        // the offset index was asked for (loaded or unusable)
	err        error       // planning failed (the context ended)
}

// chunk is one ranged GET of a job's range, fetched ahead of the decoder.
type chunk struct {
	job     *segJob
	off     int64 // object position
	length  int64
	last    bool // the job's last chunk
	holdSem bool // a fetch slot is held until the chunk is consumed
	done    chan struct{}
	data    []byte
	total   int64 // object size from Content-Range, -1 unknown
	err     error
	// Decode tasks whose batches lie in data (see decode.go): refs counts them, retired is
	// set once the stream moved past the chunk; the last of the two releases it (f, used
	// by the scanner's goroutine only).
	f       *fetcher
	refs    int
	retired bool
}

// unref drops a decode task's reference, releasing the chunk when the stream is past it.
func (c *chunk) unref() {
	if c.refs--; c.refs == 0 && c.retired {
		c.f.release(c)
	}
}

// retire marks a chunk the stream is past, releasing it unless a decode task holds it.
func (c *chunk) retire() {
	c.retired = true
	if c.refs == 0 {
		c.f.release(c)
	}
}

// fetcher runs a query's ranged GETs, at most Parallel at a time, reusing chunk buffers.
type fetcher struct {
	q    *Query
	sem  chan struct{}
	bufs chan []byte
	wg   sync.WaitGroup
}

func (f *fetcher) start(ctx context.Context, c *chunk) {
	c.done = make(chan struct{})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(c.done)
		var buf []byte
		select {
		case buf = <-f.bufs:
		default:
		}
		c.data, c.total, c.err = f.q.a.client.getRangeRetry(ctx, c.job.key, c.off, c.length, buf, &f.q.n)
	}()
}

// release frees a chunk's slot and buffer once its fetch has ended.
func (f *fetcher) release(c *chunk) {
	if c.holdSem {
		<-c.done
		c.holdSem = false
		if c.data != nil {
			select {
			case f.bufs <- c.data[:0]:
			default:
			}
		}
		c.data = nil
		<-f.sem
	}
}

// scan reads the planned segments: a producer plans each segment (its indexes give the byte
// range) and issues ranged GETs in order, at most Parallel ahead; the caller's goroutine
// decodes the chunks in that order and writes the records.
func (q *Query) scan(ctx context.Context, parts []*partPlan, sink Sink) error {
	ctx, cancel := context.WithCancel(ctx)
	f := &fetcher{q: q, sem: make(chan struct{}, q.opts.Parallel), bufs: make(chan []byte, q.opts.Parallel)}
	out := make(chan *chunk, q.opts.Parallel)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(out)
		q.produce(ctx, parts, f, out)
	}()
	defer func() {
		cancel()
		for range out { // unblock the producer
		}
		f.wg.Wait()
	}()
	var cur *partPlan
	stopped := false
	for {
		var c *chunk
		select {
		case next, ok := <-out:
			if !ok {
				return ctx.Err()
			}
			c = next
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.job.err != nil {
			return c.job.err
		}
		if c.job.part != cur {
			cur, stopped = c.job.part, false
		}
		cs := &chunkStream{ctx: ctx, f: f, out: out}
		if !stopped {
			q.st.segments.Add(1)
			sc := q.newScanner(ctx, c.job, sink)
			stop, err := sc.run(cs.begin(c))
			if err != nil {
				f.release(cs.cur)
				return err
			}
			stopped = stop
		} else {
			cs.begin(c)
		}
		if err := cs.drain(); err != nil {
			return err
		}
	}
}

// produce plans each segment and issues its chunks, in order.
func (q *Query) produce(ctx context.Context, parts []*partPlan, f *fetcher, out chan<- *chunk) {
	send := func(c *chunk) bool {
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, p := range parts {
		for _, s := range p.segments {
			job := q.planJob(ctx, p, s)
			if job.err != nil || job.start >= job.end {
				c := &chunk{job: job, last: true, done: make(chan struct{}), total: -1}
				close(c.done)
				if !send(c) || job.err != nil {
					return
				}
				continue
			}
			for off := job.start; off < job.end; off += q.opts.ChunkSize {
				select {
				case f.sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				n := min(q.opts.ChunkSize, job.end-off)
				c := &chunk{job: job, off: off, length: n, last: off+n >= job.end, holdSem: true, f: f}
				f.start(ctx, c)
				if !send(c) {
					return
				}
			}
		}
	}
}

// planJob narrows a segment to the byte range the query needs, with its indexes:
//
//   - FromOffset: the offset index's last entry at or below it;
//   - Since: the time index's last entry below it (batches before its offset are older), then
//     the offset index's last entry at or below that offset;
//   - ToOffset: the offset index's first entry at or above it (every batch before it ends there);
//   - Until with MaxLateness: the time index's first entry at or above Until+MaxLateness, then
//     the offset index's first entry at or above its offset.
//
// A missing or bad index leaves the whole segment to read (and counts in IndexesUnusable).
func (q *Query) planJob(ctx context.Context, p *partPlan, s segPlan) *segJob {
	meta := s.meta
	key := meta.Key(q.a.prefix, p.m.Topic, p.m.Partition, ".log")
	job := &segJob{part: p, seg: s, key: key, url: q.a.client.url(key), end: meta.Size}
	base, lastRel := meta.BaseOffset, meta.LastOffset-meta.BaseOffset
	needFrom := p.from > base
	needTo := q.opts.ToOffset <= meta.LastOffset
	// The time index can skip a start only when a batch begins before Since: its entries are
	// running maxima, at least the first batch's MaxTimestamp, which is at least the segment's
	// FirstTimestamp. It can end the range only if the segment's maximum reaches the bound.
	needSince := q.sinceMs != math.MinInt64 && meta.FirstTimestamp < q.sinceMs
	needStop := q.stopAtMax != math.MaxInt64 && meta.MaxTimestamp >= q.stopAtMax
	if !needFrom && !needTo && !needSince && !needStop {
		return job
	}
	oidx, err := q.loadOffsetIndex(ctx, job)
	if ctx.Err() != nil {
		job.err = ctx.Err()
		return job
	}
	if err != nil {
		return job
	}
	if needFrom {
		job.start = max(job.start, oidx.floor(p.from-base))
	}
	if needTo {
		if pos, ok := oidx.ceil(q.opts.ToOffset - base); ok {
			job.end = min(job.end, pos)
		}
	}
	if needSince || needStop {
		tidx, err := q.loadTimeIndex(ctx, p.m, meta, lastRel)
		if ctx.Err() != nil {
			job.err = ctx.Err()
			return job
		}
		if err == nil && needSince {
			if rel, ok := tidx.skipBefore(q.sinceMs); ok {
				job.start = max(job.start, oidx.floor(rel))
			}
		}
		if err == nil && needStop {
			if rel, ok := tidx.reaching(q.stopAtMax); ok {
				if pos, ok := oidx.ceil(rel); ok {
					job.end = min(job.end, pos)
				}
			}
		}
	}
	job.end = max(job.end, job.start)
	q.st.estimated.Add(-(meta.Size - (job.end - job.start)))
	return job
}

// loadOffsetIndex reads and parses a job's .index object once. An index the manifest lists
// as empty is an empty index; a missing or bad one is an error (counted in IndexesUnusable).
func (q *Query) loadOffsetIndex(ctx context.Context, job *segJob) (offsetIndex, error) {
	if job.oidxTried {
		if job.oidx == nil {
			return nil, ErrBadIndex
		}
		return job.oidx, nil
	}
	job.oidxTried = true
	meta := job.seg.meta
	if meta.IndexSize == 0 {
		job.oidx = offsetIndex{}
		return job.oidx, nil
	}
	key := meta.Key(q.a.prefix, job.part.m.Topic, job.part.m.Partition, ".index")
	data, err := q.a.client.get(ctx, key, &q.n)
	if err == nil && int64(len(data)) != meta.IndexSize {
		err = fmt.Errorf("%w: %s is %d bytes, the manifest lists %d", ErrBadIndex, key, len(data), meta.IndexSize)
	}
	var x offsetIndex
	if err == nil {
		x, err = parseOffsetIndex(data, meta.Size, meta.LastOffset-meta.BaseOffset)
	}
	if err != nil {
		q.st.indexesUnusable.Add(1)
		return nil, err
	}
	job.oidx = x
	return x, nil
}

// loadTimeIndex reads and parses a segment's .timeindex object.
func (q *Query) loadTimeIndex(ctx context.Context, m *manifest.Manifest, meta manifest.SegmentMeta, lastRel int64) (timeIndex, error) {
	if meta.TimeIndexSize == 0 {
		return timeIndex{}, nil
	}
	key := meta.Key(q.a.prefix, m.Topic, m.Partition, ".timeindex")
	data, err := q.a.client.get(ctx, key, &q.n)
	if err == nil && int64(len(data)) != meta.TimeIndexSize {
		err = fmt.Errorf("%w: %s is %d bytes, the manifest lists %d", ErrBadIndex, key, len(data), meta.TimeIndexSize)
	}
	var x timeIndex
	if err == nil {
		x, err = parseTimeIndex(data, lastRel)
	}
	if err != nil {
		q.st.indexesUnusable.Add(1)
		return nil, err
	}
	return x, nil
}

// chunkStream reads one job's chunks in order as an io.Reader.
type chunkStream struct {
	ctx   context.Context
	f     *fetcher
	out   <-chan *chunk
	cur   *chunk
	buf   []byte // unread bytes of cur
	short bool   // cur came back shorter than asked: the object ends early
	total int64  // the object's size from the first chunk, -1 unknown
	err   error
}

// begin makes c, the job's first chunk, current and returns the stream.
func (cs *chunkStream) begin(c *chunk) *chunkStream {
	cs.total = -1
	cs.setCurrent(c)
	if cs.err == nil {
		cs.total = c.total
	}
	return cs
}

func (cs *chunkStream) setCurrent(c *chunk) {
	cs.cur = c
	select {
	case <-c.done:
	case <-cs.ctx.Done():
		cs.err = cs.ctx.Err()
		return
	}
	if c.err != nil {
		cs.err = c.err
		return
	}
	cs.buf = c.data
	cs.short = int64(len(c.data)) < c.length
}

// Read implements io.Reader over the job's chunks.
func (cs *chunkStream) Read(p []byte) (int, error) {
	for len(cs.buf) == 0 {
		if cs.err != nil {
			return 0, cs.err
		}
		if cs.short || cs.cur.last {
			return 0, io.EOF
		}
		if err := cs.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, cs.buf)
	cs.buf = cs.buf[n:]
	return n, nil
}

// next retires the current chunk and takes the job's next one.
func (cs *chunkStream) next() error {
	cs.cur.retire()
	select {
	case c, ok := <-cs.out:
		if !ok {
			cs.err = cs.ctx.Err()
			if cs.err == nil {
				cs.err = errors.New("chunk stream ended inside a segment")
			}
			return cs.err
		}
		if c.job != cs.cur.job {
			cs.err = errors.New("chunks out of order")
			return cs.err
		}
		cs.setCurrent(c)
		return cs.err
	case <-cs.ctx.Done():
		cs.err = cs.ctx.Err()
		return cs.err
	}
}

// drain consumes the job's remaining chunks, releasing their slots.
func (cs *chunkStream) drain() error {
	for !cs.cur.last {
		cs.f.release(cs.cur)
		select {
		case c, ok := <-cs.out:
			if !ok {
				return cs.ctx.Err()
			}
			if c.job != cs.cur.job {
				return errors.New("chunks out of order")
			}
			cs.cur = c
		case <-cs.ctx.Done():
			return cs.ctx.Err()
		}
	}
	cs.f.release(cs.cur)
	return nil
}

// scanner decodes one segment's byte range: batch framing here, checks and decoding in
// decodeTasks (see decode.go), then in order the offset checks, filters and the sink.
type scanner struct {
	q        *Query
	job      *segJob
	sink     Sink
	rec      Record
	runMax   int64 // lower bound of the partition's running maximum timestamp
	nextOff  int64 // the next batch must start at or after this offset
	lastGood int64 // last offset of the last good batch, -1 none
	pending  []*decodeTask
	env      decodeEnv            // what the decode goroutines share
	jw       lineSink             // the sink when it takes JSON lines encoded by the decoders
	hdrs     []batch.RecordHeader // a record's headers, for the sink
	keys     keyCache             // header keys of streamed records
	// loadIndex returns the segment's offset index for a resync, nil when there is none.
	loadIndex func() offsetIndex
}

func (q *Query) newScanner(ctx context.Context, job *segJob, sink Sink) *scanner {
	s := &scanner{
		q: q, job: job, sink: sink, runMax: job.seg.runMax, nextOff: job.seg.meta.BaseOffset, lastGood: -1,
		rec: Record{Topic: job.part.m.Topic, Partition: job.part.m.Partition},
		loadIndex: func() offsetIndex {
			x, _ := q.loadOffsetIndex(ctx, job)
			return x
		},
	}
	s.env = decodeEnv{
		filter: recordFilter{from: job.part.from, to: q.opts.ToOffset, since: q.sinceMs, until: q.untilMs,
			key: q.opts.Key, byKey: q.opts.Key != nil},
		topic: job.part.m.Topic, partition: job.part.m.Partition,
	}
	if jw, ok := sink.(lineSink); ok && jw.takesLines() {
		s.jw, s.env.jsonl = jw, true
	}
	return s
}

// run decodes the job's range from r, which starts at job.start. It returns stop=true when
// the partition needs no more reading (ToOffset or the MaxLateness bound reached). Batches
// are decoded ahead (up to window) and applied in order; before a framing or read error is
// reported, the batches before it are applied, so records and errors keep their order.
func (s *scanner) run(r io.Reader) (stop bool, err error) {
	defer s.dropPending()
	meta := s.job.seg.meta
	if cs, ok := r.(*chunkStream); ok && cs.err == nil && cs.total >= 0 && cs.total != meta.Size {
		return false, s.corrupt(-1, -1, fmt.Errorf("the object is %d bytes, the manifest lists %d", cs.total, meta.Size))
	}
	cs, _ := r.(*chunkStream)
	var head [sizePrefixLen]byte
	for pos := s.job.start; pos < s.job.end; {
		if t, size := s.inChunk(cs, pos); t != nil { // the usual case: no copy
			s.submit(t)
			if len(s.pending) >= s.window() {
				if stop, err := s.applyNext(); stop || err != nil {
					return stop, err
				}
			}
			pos += int64(size)
			continue
		}
		n, err := io.ReadFull(r, head[:])
		if err != nil {
			if stop, aerr := s.applyAll(); stop || aerr != nil {
				return stop, aerr
			}
			return false, s.readFailed(pos, int64(n), err)
		}
		_, size, err := batch.PeekSize(head[:])
		if err == nil && int64(size) > s.job.end-pos {
			err = fmt.Errorf("a batch of %d bytes at byte %d runs past byte %d", size, pos, s.job.end)
		}
		if err != nil {
			if stop, aerr := s.applyAll(); stop || aerr != nil {
				return stop, aerr
			}
			if err := s.corrupt(pos, -1, err); err != nil {
				return false, err
			}
			next := s.resync(pos + int64(len(head)))
			if _, err := io.CopyN(io.Discard, r, next-pos-int64(len(head))); err != nil {
				return false, s.readFailed(pos+int64(len(head)), 0, err)
			}
			pos = next
			continue
		}
		t := s.q.newTask()
		if cap(t.buf) < size {
			t.buf = make([]byte, size)
		}
		t.raw = t.buf[:size]
		copy(t.raw, head[:])
		if n, err := io.ReadFull(r, t.raw[len(head):]); err != nil {
			s.q.putTask(t)
			if stop, aerr := s.applyAll(); stop || aerr != nil {
				return stop, aerr
			}
			return false, s.readFailed(pos, int64(len(head)+n), err)
		}
		t.pos = pos
		s.submit(t)
		if len(s.pending) >= s.window() {
			if stop, err := s.applyNext(); stop || err != nil {
				return stop, err
			}
		}
		pos += int64(size)
	}
	return s.applyAll()
}

// inChunk returns a task for the batch at pos when it lies whole in the current chunk of cs
// (nil otherwise, and for any other reader): the task decodes it from the chunk's buffer.
func (s *scanner) inChunk(cs *chunkStream, pos int64) (*decodeTask, int) {
	if cs == nil || len(cs.buf) < sizePrefixLen {
		return nil, 0
	}
	_, size, err := batch.PeekSize(cs.buf)
	if err != nil || size > len(cs.buf) || int64(size) > s.job.end-pos {
		return nil, 0 // run reports it, or reads it across chunks
	}
	t := s.q.newTask()
	t.raw, t.ref, t.pos = cs.buf[:size:size], cs.cur, pos
	cs.cur.refs++
	cs.buf = cs.buf[size:]
	return t, size
}

// resync returns where decoding can pick up after losing the framing: the first indexed batch
// at or after from, or the end of the range.
func (s *scanner) resync(from int64) int64 {
	var x offsetIndex
	if s.loadIndex != nil {
		x = s.loadIndex()
	}
	if pos, ok := x.after(from - 1); ok && pos < s.job.end {
		return pos
	}
	return s.job.end
}

// readFailed handles a read that ended early: the object is shorter than listed or gone
// (corrupt: the rest of the segment is skipped), or the read failed (an error).
func (s *scanner) readFailed(pos, got int64, err error) error {
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return s.corrupt(pos, -1, fmt.Errorf("the object ends at byte %d, the manifest lists %d bytes", pos+got, s.job.seg.meta.Size))
	case errors.Is(err, ErrNotFound):
		return s.corrupt(-1, -1, fmt.Errorf("the object is missing: %w", err))
	}
	return err
}

// corrupt reports a corruption: as the error to fail with, or (SkipCorrupt) to OnCorrupt,
// returning nil to carry on.
func (s *scanner) corrupt(pos, offset int64, err error) error {
	ce := &CorruptError{Key: s.job.url, Pos: pos, Offset: offset, After: s.lastGood, Err: err}
	if !s.q.opts.SkipCorrupt {
		return ce
	}
	s.q.st.corrupt.Add(1)
	if s.q.opts.OnCorrupt != nil {
		s.q.opts.OnCorrupt(ce)
	}
	return nil
}

// headerBase returns the base offset field of a batch that failed its checks, or -1 when b
// is too short to have one.
func headerBase(b []byte) int64 {
	if h, err := batch.ParseHeader(b); err == nil {
		return h.BaseOffset
	}
	return -1
}
