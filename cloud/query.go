package cloud

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/tiering/manifest"
)

// NoEnd is QueryOptions.ToOffset for "up to the end of the archive".
const NoEnd = int64(math.MaxInt64)

// Defaults of QueryOptions.
const (
	DefaultParallel  = 4
	DefaultChunkSize = 4 << 20
)

// QueryOptions select the records of a query. Ranges are half-open: offsets in
// [FromOffset, ToOffset) and timestamps in [Since, Until).
type QueryOptions struct {
	// Topic to read. Required.
	Topic string
	// Partitions to read, in any order (they are read in ascending order). Empty: all.
	Partitions []int32
	// FromOffset is the first offset to return (inclusive). Default 0.
	FromOffset int64
	// ToOffset is the offset to stop before (exclusive). Use NoEnd for no bound; the zero
	// value is an empty range and fails with ErrEmptyRange (see NewQueryOptions).
	ToOffset int64
	// Since is the earliest timestamp to return (inclusive). Zero: no bound.
	Since time.Time
	// Until is the timestamp to stop before (exclusive). Zero: no bound.
	Until time.Time
	// Key, when not nil, keeps only records whose key equals it byte for byte (an empty,
	// non-nil Key matches empty keys; a null key never matches).
	Key []byte
	// Limit stops the query after this many records. Zero: no limit.
	Limit int64
	// MaxLateness is an assumption that lets a query with Until stop reading early: no
	// record's timestamp is more than MaxLateness older than the newest timestamp of the
	// batches before it in its partition. With it, a partition is read up to the point where
	// that running maximum reaches Until+MaxLateness. Zero: no assumption; since timestamps
	// need not grow with offsets, Until then prunes nothing and a partition is read to its
	// end (or ToOffset). Since needs no assumption (see the package documentation).
	MaxLateness time.Duration
	// SkipCorrupt reports a corrupt batch or object to OnCorrupt and carries on past it,
	// instead of failing the query with a *CorruptError.
	SkipCorrupt bool
	// OnCorrupt, when set, is called with every corruption SkipCorrupt carries on past.
	OnCorrupt func(*CorruptError)
	// Parallel is the number of ranged GETs in flight (read ahead of the decoder).
	// Default DefaultParallel.
	Parallel int
	// ChunkSize is the largest ranged GET, in bytes; memory holds at most Parallel chunks.
	// Default DefaultChunkSize.
	ChunkSize int64
	// Decoders is the number of batches checked and decoded at once, each in a goroutine,
	// ahead of the goroutine that writes to the sink (records still come out in order);
	// memory holds up to 2×Decoders decoded batches. 1 decodes in the caller's goroutine
	// only. Default runtime.GOMAXPROCS(0).
	Decoders int
}

// NewQueryOptions returns options that select every record of topic.
func NewQueryOptions(topic string) QueryOptions {
	return QueryOptions{Topic: topic, ToOffset: NoEnd}
}

// validate checks the options and fills in defaults.
func (o *QueryOptions) validate() error {
	switch {
	case o.Topic == "":
		return fmt.Errorf("%w: topic is required", ErrBadConfig)
	case o.FromOffset < 0:
		return fmt.Errorf("%w: from offset %d is negative", ErrBadConfig, o.FromOffset)
	case o.ToOffset <= o.FromOffset:
		return fmt.Errorf("%w: offsets [%d, %d) select nothing", ErrEmptyRange, o.FromOffset, o.ToOffset)
	case !o.Since.IsZero() && !o.Until.IsZero() && !o.Since.Before(o.Until):
		return fmt.Errorf("%w: since %s is not before until %s", ErrEmptyRange,
			o.Since.UTC().Format(time.RFC3339Nano), o.Until.UTC().Format(time.RFC3339Nano))
	case o.Limit < 0:
		return fmt.Errorf("%w: limit %d is negative", ErrBadConfig, o.Limit)
	case o.MaxLateness < 0:
		return fmt.Errorf("%w: max lateness %s is negative", ErrBadConfig, o.MaxLateness)
	case o.Parallel < 0 || o.ChunkSize < 0 || o.Decoders < 0:
		return fmt.Errorf("%w: parallel %d, chunk size %d, decoders %d", ErrBadConfig, o.Parallel, o.ChunkSize, o.Decoders)
	}
	for _, p := range o.Partitions {
		if p < 0 {
			return fmt.Errorf("%w: partition %d is negative", ErrBadConfig, p)
		}
	}
	if o.Parallel == 0 {
		o.Parallel = DefaultParallel
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Decoders == 0 {
		o.Decoders = runtime.GOMAXPROCS(0)
	}
	o.ChunkSize = max(o.ChunkSize, 64<<10)
	return nil
}

// Record is one record a query returns. Key, Value and the header values alias the query's
// buffers and are valid only during the Sink call; copy what you keep. Nil Key or Value is
// null (a nil Value is a tombstone).
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64 // milliseconds since the epoch
	Key       []byte
	Value     []byte
	Headers   []batch.RecordHeader
}

// Time returns the record's timestamp as a time.Time in UTC.
func (r *Record) Time() time.Time { return time.UnixMilli(r.Timestamp).UTC() }

// Sink receives the records of a query, one at a time, in order. An error stops the query
// and comes back from Run as is.
type Sink interface {
	WriteRecord(r *Record) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(r *Record) error

// WriteRecord calls f(r).
func (f SinkFunc) WriteRecord(r *Record) error { return f(r) }

// CorruptError reports archived data that does not hold what the manifest says: a batch
// that fails its checks, an object shorter than listed, a missing object, a bad manifest.
type CorruptError struct {
	Key    string // the object, as a URL: endpoint/bucket/key or s3://bucket/key
	Pos    int64  // byte position in the object, -1 for the whole object
	Offset int64  // the batch's base offset when known, else -1
	After  int64  // the last good offset before it, -1 if none
	Err    error  // what is wrong
}

// Error describes the corruption on one line.
func (e *CorruptError) Error() string {
	var b strings.Builder
	b.WriteString("corrupt data in ")
	b.WriteString(e.Key)
	if e.Pos >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Pos)
	}
	switch {
	case e.Offset >= 0:
		fmt.Fprintf(&b, " (batch at offset %d)", e.Offset)
	case e.After >= 0:
		fmt.Fprintf(&b, " (after offset %d)", e.After)
	}
	b.WriteString(": ")
	b.WriteString(oneLine(e.Err.Error()))
	return b.String()
}

// Unwrap returns ErrCorrupt and the underlying error.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Stats describe a query's progress; every field only grows, except EstimatedBytes, which
// shrinks as indexes narrow the ranges to read.
type Stats struct {
	BytesFetched     int64 `json:"bytes_fetched"`     // response body bytes: manifests, indexes, log ranges
	Requests         int64 `json:"requests"`          // S3 requests sent
	EstimatedBytes   int64 `json:"estimated_bytes"`   // upper bound of the log bytes the query reads
	Records          int64 `json:"records"`           // records written to the sink
	Batches          int64 `json:"batches"`           // batches decoded
	Partitions       int64 `json:"partitions"`        // partitions with segments to read
	Segments         int64 `json:"segments"`          // segments read (some of their bytes)
	SegmentsPruned   int64 `json:"segments_pruned"`   // segments the manifest ruled out
	IndexesUnusable  int64 `json:"indexes_unusable"`  // index objects missing or bad (whole segment read)
	CorruptSkipped   int64 `json:"corrupt_skipped"`   // corruptions carried on past (SkipCorrupt)
	ArchivedSegments int64 `json:"archived_segments"` // segments the selected partitions' manifests list
}

// queryStats is the live, atomic form of Stats.
type queryStats struct {
	estimated, records, batches, partitions, segments, pruned, indexesUnusable, corrupt, archived atomic.Int64
}

// Query is one query on an archive: NewQuery checks its options, Run executes it once, Stats
// may be read at any time (for progress) from any goroutine.
type Query struct {
	a    *Archive
	opts QueryOptions
	n    Counters
	st   queryStats
	ran  atomic.Bool

	spare   []*decodeTask // decode tasks for reuse, used by the goroutine that runs the query
	written int64         // records written to the sink (st.records is updated once per batch)

	// Derived bounds, in milliseconds; math.MinInt64 / math.MaxInt64 when open.
	sinceMs, untilMs int64
	stopAtMax        int64 // running maximum timestamp at which a partition ends (MaxLateness), MaxInt64: never
}

// NewQuery checks opts (ErrBadConfig, ErrEmptyRange) and returns a query ready to Run.
func (a *Archive) NewQuery(opts QueryOptions) (*Query, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	q := &Query{a: a, opts: opts, sinceMs: math.MinInt64, untilMs: math.MaxInt64, stopAtMax: math.MaxInt64}
	q.n.parent = &a.total
	if !opts.Since.IsZero() {
		q.sinceMs = ceilMillis(opts.Since)
	}
	if !opts.Until.IsZero() {
		q.untilMs = ceilMillis(opts.Until)
		if opts.MaxLateness > 0 {
			lateMs := int64((opts.MaxLateness + time.Millisecond - 1) / time.Millisecond) // rounded up: stops later
			q.stopAtMax = satAdd(q.untilMs, lateMs)
		}
	}
	return q, nil
}

// Query runs a query to the end: NewQuery, then Run. It returns the final Stats also when it
// fails.
func (a *Archive) Query(ctx context.Context, opts QueryOptions, sink Sink) (Stats, error) {
	q, err := a.NewQuery(opts)
	if err != nil {
		return Stats{}, err
	}
	err = q.Run(ctx, sink)
	return q.Stats(), err
}

// Stats returns a snapshot of the query's progress.
func (q *Query) Stats() Stats {
	return Stats{
		BytesFetched:     q.n.Bytes.Load(),
		Requests:         q.n.Requests.Load(),
		EstimatedBytes:   q.st.estimated.Load(),
		Records:          q.st.records.Load(),
		Batches:          q.st.batches.Load(),
		Partitions:       q.st.partitions.Load(),
		Segments:         q.st.segments.Load(),
		SegmentsPruned:   q.st.pruned.Load(),
		IndexesUnusable:  q.st.indexesUnusable.Load(),
		CorruptSkipped:   q.st.corrupt.Load(),
		ArchivedSegments: q.st.archived.Load(),
	}
}

// ceilMillis converts t to milliseconds since the epoch, rounding up: a record at
// millisecond m is at or after t exactly when m >= ceilMillis(t).
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// satAdd adds without overflowing past MaxInt64.
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// errStopQuery ends a query early without error (Limit reached).
var errStopQuery = errors.New("query complete")

// Run executes the query and writes the records to sink: partitions in ascending order, one
// after the other, each in offset order. It fails with ErrUnknownTopic, ErrEmptyRange (when
// the manifests show nothing archived in the range), a *CorruptError (unless SkipCorrupt),
// the sink's error, or an S3 error. Run may be called once.
func (q *Query) Run(ctx context.Context, sink Sink) error { return q.run(ctx, sink, nil) }

// run is Run with a hook: planned, when set, is called once the manifests are read and pruned
// (Stats has Partitions, ArchivedSegments and EstimatedBytes) and before the first ranged
// GET; an error from it ends the query and comes back from run as is. The HTTP server uses
// it to answer with an error status until then, and to bound the work of a query.
func (q *Query) run(ctx context.Context, sink Sink, planned func() error) error {
	if !q.ran.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: a query runs once", ErrBadConfig)
	}
	parts, err := q.plan(ctx)
	if err != nil {
		return err
	}
	if planned != nil {
		if err := planned(); err != nil {
			return err
		}
	}
	err = q.scan(ctx, parts, sink)
	if errors.Is(err, errStopQuery) {
		return nil
	}
	return err
}

// partPlan is one partition to read: its manifest and the segments the manifest leaves.
type partPlan struct {
	m        *manifest.Manifest
	segments []segPlan
	from     int64 // max(FromOffset, the manifest's log start)
}

// segPlan is a segment the manifest could not rule out.
type segPlan struct {
	meta manifest.SegmentMeta
	// runMax is the largest MaxTimestamp of the partition's earlier segments (MinInt64 if
	// none): a lower bound of the running maximum timestamp at the segment's start.
	runMax int64
}

// plan reads the manifests of the selected partitions and prunes their segments with the
// offset and time bounds. It fails with ErrEmptyRange when nothing is left anywhere.
func (q *Query) plan(ctx context.Context) ([]*partPlan, error) {
	ms, err := q.a.partitions(ctx, q.opts.Topic, &q.n)
	if err != nil {
		return nil, err
	}
	if len(q.opts.Partitions) > 0 {
		ms, err = q.selectPartitions(ms)
		if err != nil {
			return nil, err
		}
	}
	var parts []*partPlan
	var segments int
	for _, m := range ms {
		p := q.prune(m)
		q.st.archived.Add(int64(len(m.Segments)))
		q.st.pruned.Add(int64(len(m.Segments) - len(p.segments)))
		if len(p.segments) > 0 {
			parts = append(parts, p)
			segments += len(p.segments)
			for _, s := range p.segments {
				q.st.estimated.Add(s.meta.Size)
			}
		}
	}
	if segments == 0 {
		return nil, fmt.Errorf("%w: nothing archived %s of topic %s (archived: %s)", ErrEmptyRange,
			q.describeRange(), q.opts.Topic, describeArchived(ms))
	}
	q.st.partitions.Store(int64(len(parts)))
	return parts, nil
}

// selectPartitions keeps the requested partitions, failing on one the archive lacks.
func (q *Query) selectPartitions(ms []*manifest.Manifest) ([]*manifest.Manifest, error) {
	var out []*manifest.Manifest
	for _, m := range ms {
		if slices.Contains(q.opts.Partitions, m.Partition) {
			out = append(out, m)
		}
	}
	for _, p := range q.opts.Partitions {
		if !slices.ContainsFunc(out, func(m *manifest.Manifest) bool { return m.Partition == p }) {
			var have []string
			for _, m := range ms {
				have = append(have, fmt.Sprint(m.Partition))
			}
			return nil, fmt.Errorf("%w: partition %d of topic %s is not in the archive (partitions: %s)",
				ErrUnknownTopic, p, q.opts.Topic, strings.Join(have, ", "))
		}
	}
	return out, nil
}

// prune keeps the segments of m that may hold records in range, in order.
//
// Offsets prune exactly. Since prunes a segment whose MaxTimestamp is below it. Until prunes
// only with MaxLateness: once the running maximum of the earlier segments reaches
// Until+MaxLateness, no later record can be before Until.
func (q *Query) prune(m *manifest.Manifest) *partPlan {
	p := &partPlan{m: m, from: max(q.opts.FromOffset, m.LogStartOffset)}
	runMax := int64(math.MinInt64)
	for _, s := range m.Segments {
		before := runMax
		runMax = max(runMax, s.MaxTimestamp)
		switch {
		case s.BaseOffset >= q.opts.ToOffset || before >= q.stopAtMax:
			return p
		case s.LastOffset < p.from || s.MaxTimestamp < q.sinceMs:
			continue
		}
		p.segments = append(p.segments, segPlan{meta: s, runMax: before})
	}
	return p
}

// describeRange renders the query's bounds for messages.
func (q *Query) describeRange() string {
	var parts []string
	if q.opts.FromOffset > 0 || q.opts.ToOffset != NoEnd {
		to := "end"
		if q.opts.ToOffset != NoEnd {
			to = fmt.Sprint(q.opts.ToOffset)
		}
		parts = append(parts, fmt.Sprintf("in offsets [%d, %s)", q.opts.FromOffset, to))
	}
	if !q.opts.Since.IsZero() || !q.opts.Until.IsZero() {
		since, until := "-", "-"
		if !q.opts.Since.IsZero() {
			since = q.opts.Since.UTC().Format(time.RFC3339Nano)
		}
		if !q.opts.Until.IsZero() {
			until = q.opts.Until.UTC().Format(time.RFC3339Nano)
		}
		parts = append(parts, fmt.Sprintf("in time [%s, %s)", since, until))
	}
	if len(parts) == 0 {
		return "at all"
	}
	return strings.Join(parts, " and ")
}

// describeArchived summarizes what the manifests hold, for an empty-range message.
func describeArchived(ms []*manifest.Manifest) string {
	var parts []string
	for _, m := range ms {
		if len(m.Segments) == 0 {
			parts = append(parts, fmt.Sprintf("partition %d empty", m.Partition))
			continue
		}
		first, maxTs := m.Segments[0].FirstTimestamp, int64(-1)
		for _, s := range m.Segments {
			maxTs = max(maxTs, s.MaxTimestamp)
		}
		parts = append(parts, fmt.Sprintf("partition %d offsets %d-%d, times %s..%s", m.Partition,
			m.StartOffset(), m.EndOffset()-1, FormatTimestamp(first), FormatTimestamp(maxTs)))
	}
	if len(parts) > 4 {
		parts = append(parts[:4], fmt.Sprintf("%d more partitions", len(parts)-4))
	}
	if len(parts) == 0 {
		return "no partitions"
	}
	return strings.Join(parts, "; ")
}
