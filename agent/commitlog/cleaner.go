package commitlog

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// The log cleaner compacts topics whose cleanup.policy includes compact, like Kafka's: one
// background goroutine per store picks the partition with the largest dirty ratio (bytes not
// yet compacted over all compactable bytes), maps every key of the dirty part to its latest
// offset in a fixed-size key map, then rewrites the closed segments from the log start with
// only the latest record per key (see clean.go; swap.go makes the rewrite crash-safe).
//
// What may be compacted: closed, fsynced segments wholly below the high watermark and, with
// min.compaction.lag.ms, whose newest record is at least that old. A partition is due when
// its dirty ratio reaches min.cleanable.dirty.ratio, when dirty data is older than
// max.compaction.lag.ms, or when a tombstone it keeps has outlived delete.retention.ms.

// cleanerCheckpointName is the partition file with the cleaner's progress.
const cleanerCheckpointName = "cleaner-checkpoint.json"

// cleanerCheckpoint is what the cleaner remembers about a partition across restarts.
type cleanerCheckpoint struct {
	// FirstDirty: offsets below it have been compacted (keys mapped) at least once.
	FirstDirty int64 `json:"first_dirty"`
	// TombstoneDeadline (Unix ms) is when the oldest tombstone kept by the last pass may go;
	// 0 when it kept none.
	TombstoneDeadline int64 `json:"tombstone_deadline_ms,omitempty"`
	// GapsBelow: segments with a base below it may have been rewritten with offset gaps.
	// Raised before each rewrite commits, so recovery never mistakes compaction for damage.
	GapsBelow int64 `json:"gaps_below,omitempty"`
	// Cleaned says when offsets were first compacted: the offsets below Cleaned[i].End (and
	// at or above Cleaned[i-1].End) at Cleaned[i].AtMs. A tombstone is kept delete.retention.ms
	// after that first pass (Kafka's delete horizon, KIP-534), so a consumer that reads from
	// the start within delete.retention.ms sees every delete.
	Cleaned []cleanedRange `json:"cleaned,omitempty"`

	// unchecked: loaded from a file without a checksum (written by an earlier version).
	unchecked bool
}

// cleanedRange is one entry of cleanerCheckpoint.Cleaned.
type cleanedRange struct {
	End  int64 `json:"end"`
	AtMs int64 `json:"at_ms"`
}

// maxCleanedRanges bounds cleanerCheckpoint.Cleaned: past it the two oldest entries merge
// into the later one, which only makes tombstones stay longer.
const maxCleanedRanges = 32

// firstCleanedAt returns when offset was first compacted (Unix ms), or -1 if it never was.
func (ck *cleanerCheckpoint) firstCleanedAt(offset int64) int64 {
	i := sort.Search(len(ck.Cleaned), func(i int) bool { return ck.Cleaned[i].End > offset })
	if i == len(ck.Cleaned) {
		return -1
	}
	return ck.Cleaned[i].AtMs
}

// clampTo forgets progress past end (a recovery cut the log below it: the offsets from end
// on will hold new, uncompacted records). A checkpoint past end that no checksum vouches for
// may instead be a damaged digit: it is replaced by resetCleanerCheckpoint(end), which cannot
// make a tombstone go early.
func (ck *cleanerCheckpoint) clampTo(end int64) (changed bool) {
	if ck.unchecked && (ck.FirstDirty > end || ck.GapsBelow > end ||
		len(ck.Cleaned) > 0 && ck.Cleaned[len(ck.Cleaned)-1].End > end) {
		*ck = resetCleanerCheckpoint(end)
		return true
	}
	if ck.FirstDirty > end {
		ck.FirstDirty, changed = end, true
	}
	if ck.GapsBelow > end {
		ck.GapsBelow, changed = end, true
	}
	for i, r := range ck.Cleaned {
		if r.End > end {
			ck.Cleaned = append(ck.Cleaned[:i:i], cleanedRange{End: end, AtMs: r.AtMs})
			return true
		}
	}
	return changed
}

// markCleaned records that offsets below end were compacted at nowMs (those not already).
func (ck *cleanerCheckpoint) markCleaned(end, nowMs int64) {
	if n := len(ck.Cleaned); n > 0 && ck.Cleaned[n-1].End >= end {
		return
	}
	ck.Cleaned = append(ck.Cleaned, cleanedRange{End: end, AtMs: nowMs})
	if len(ck.Cleaned) > maxCleanedRanges {
		ck.Cleaned = append(ck.Cleaned[:0:0], ck.Cleaned[1:]...)
	}
}

// cleanerRetryBase is the first back-off of a partition whose pass failed.
const cleanerRetryBase = time.Second

// errCleanAborted stops a pass whose log is closing or whose store is stopping.
var errCleanAborted = errors.New("cleaning aborted")

// cleaner is the store's log cleaner.
type cleaner struct {
	store *Store
	stop  chan struct{}
	done  chan struct{}
	kick  chan struct{}

	passMu sync.Mutex // one pass at a time (the goroutine, RunCleaner)
	keys   *keyMap    // the pass's key map: sized by its dirty records, at most the budget
	// throttle state for Options.CleanerIOBytesPerSecond
	ioStart time.Time
	ioBytes int64

	passes            atomic.Int64
	errors            atomic.Int64
	bytesRead         atomic.Int64
	bytesWritten      atomic.Int64
	recordsRemoved    atomic.Int64
	tombstonesRemoved atomic.Int64
	segmentsRewritten atomic.Int64
	progressDone      atomic.Int64
	progressTotal     atomic.Int64
	lastPassNanos     atomic.Int64
	uncleanable       atomic.Int64
}

// startMaintenance starts the retention janitor and the log cleaner.
func (s *Store) startMaintenance() {
	s.janitorStop, s.janitorDone, s.janitorKick = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	go s.janitor()
	s.cleaner = &cleaner{store: s, stop: make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1)}
	go s.cleaner.run()
}

// stopMaintenance stops both; a cleaner pass in progress is abandoned (its output deleted).
func (s *Store) stopMaintenance() {
	close(s.janitorStop)
	<-s.janitorDone
	close(s.cleaner.stop)
	<-s.cleaner.done
}

// RunCleaner compacts, now, every partition that is due, and returns the first error.
func (s *Store) RunCleaner() error {
	var first error
	for {
		cleaned, err := s.cleaner.cleanOne()
		if err != nil && first == nil {
			first = err
		}
		if !cleaned && err == nil {
			return first // nothing (else) due; a failed partition waits out its back-off
		}
	}
}

// KickCleaner asks the cleaner to look for due partitions now.
func (s *Store) KickCleaner() {
	select {
	case s.cleaner.kick <- struct{}{}:
	default:
	}
}

func (c *cleaner) run() {
	defer close(c.done)
	timer := time.NewTimer(c.store.opts.CleanerBackoff)
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		case <-c.kick:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		for {
			cleaned, err := c.cleanOne()
			if !cleaned && err == nil || c.stopping() {
				break
			}
		}
		timer.Reset(c.store.opts.CleanerBackoff)
	}
}

func (c *cleaner) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// cleanOne compacts the due partition with the largest dirty ratio. cleaned=false: none was due.
func (c *cleaner) cleanOne() (cleaned bool, err error) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	now := c.store.opts.Now()
	var best *Log
	bestScore := -1.0
	for _, l := range c.store.allLogs() {
		if !l.config().Compacts() || l.uncleanable.Load() || now.Before(l.cleanRetryAt) {
			continue
		}
		if !l.maintMu.TryLock() {
			continue
		}
		p, err := l.planClean(now)
		l.maintMu.Unlock()
		if err != nil || !p.due {
			continue
		}
		if p.score > bestScore {
			best, bestScore = l, p.score
		}
	}
	if best == nil {
		return false, nil
	}
	start := time.Now()
	err = c.cleanLog(best, now)
	c.lastPassNanos.Store(int64(time.Since(start)))
	c.progressDone.Store(0)
	c.progressTotal.Store(0)
	if errors.Is(err, errCleanAborted) {
		return false, nil
	}
	if err != nil {
		c.errors.Add(1)
		if errors.Is(err, ErrCorrupt) {
			best.uncleanable.Store(true)
			c.uncleanable.Add(1)
			best.log.Error("partition is corrupt; the cleaner skips it until a restart", "err", err)
			return false, err
		}
		// Back off this partition (doubling, at most 30 minutes) so the others still get
		// compacted.
		best.cleanFailures = min(best.cleanFailures+1, 20)
		delay := min(cleanerRetryBase<<best.cleanFailures, 30*time.Minute)
		best.cleanRetryAt = now.Add(delay)
		best.log.Error("log cleaner pass failed; retrying this partition later", "retry_in", delay, "err", err)
		return false, err
	}
	best.cleanFailures, best.cleanRetryAt = 0, time.Time{}
	c.passes.Add(1)
	return true, nil
}

// cleanPlan is what a cleaner pass may work on.
type cleanPlan struct {
	segs       []*segment // sealed, fsynced segments below the HW (and the lag), from the start
	firstDirty int64
	dirtyBytes int64
	totalBytes int64
	due        bool
	score      float64 // dirty ratio, or more than 1 when forced by a lag or a tombstone
}

// planClean looks at what may be compacted now. Caller holds maintMu.
func (l *Log) planClean(now time.Time) (cleanPlan, error) {
	ck, err := l.cleanerCheckpoint()
	if err != nil {
		return cleanPlan{}, err
	}
	cfg := l.config()
	nowMs := now.UnixMilli()
	l.mu.RLock()
	p := cleanPlan{firstDirty: max(ck.FirstDirty, l.logStart)}
	if l.closed || l.closing {
		l.mu.RUnlock()
		return p, nil
	}
	for i, s := range l.segments[:len(l.segments)-1] {
		if !s.synced || s.next > l.hw {
			break
		}
		if cfg.MinCompactionLagMs > 0 && s.maxTs > nowMs-cfg.MinCompactionLagMs {
			break
		}
		p.segs = l.segments[:i+1]
		p.totalBytes += s.size
		if s.next > p.firstDirty {
			p.dirtyBytes += s.size
		}
	}
	l.mu.RUnlock()
	if p.totalBytes == 0 {
		return p, nil
	}
	p.score = float64(p.dirtyBytes) / float64(p.totalBytes)
	switch {
	case p.dirtyBytes > 0 && p.score >= cfg.MinCleanableDirtyRatio:
		p.due = true
	case p.dirtyBytes > 0 && cfg.MaxCompactionLagMs < math.MaxInt64 && l.firstDirtyTimestamp(p) < nowMs-cfg.MaxCompactionLagMs:
		p.due, p.score = true, 2
	case ck.TombstoneDeadline > 0 && nowMs >= ck.TombstoneDeadline:
		p.due, p.score = true, 1.5
	}
	return p, nil
}

// firstDirtyTimestamp is the max timestamp of the first batch of the first segment with dirty
// data (as Kafka: with LogAppendTime it is the append time, not a producer's clock).
func (l *Log) firstDirtyTimestamp(p cleanPlan) int64 {
	for _, s := range p.segs {
		if s.next <= p.firstDirty {
			continue
		}
		var buf [batch.HeaderSize]byte
		h, err := s.readHeader(0, s.size, &buf)
		if err != nil {
			return math.MaxInt64
		}
		return h.MaxTimestamp
	}
	return math.MaxInt64
}

// resetCleanerCheckpoint is what replaces a damaged checkpoint: the whole log is compacted
// again (first_dirty 0), tombstones are kept delete.retention.ms from that pass (no cleaned
// ranges: none can go early), and any segment with a base below gapsBelow may have offset
// gaps (a compacted segment must not be cut as damaged). openLog first gets it with gapsBelow
// MaxInt64, for the recovery that does not know the log end yet, and clampTo then lowers
// gapsBelow to the recovered end and saves it.
func resetCleanerCheckpoint(gapsBelow int64) cleanerCheckpoint {
	return cleanerCheckpoint{GapsBelow: gapsBelow}
}

// cleanerCheckpoint loads the partition's cleaner checkpoint (once). A file that fails its
// checks is a warning and yields resetCleanerCheckpoint; a file written by an earlier version
// (no checksum) is rewritten with one. Only a failed read is an error (retried on the next
// call). Caller holds maintMu.
func (l *Log) cleanerCheckpoint() (cleanerCheckpoint, error) {
	if l.cleanCkLoaded {
		return l.cleanCk, nil
	}
	path := filepath.Join(l.dir, cleanerCheckpointName)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return cleanerCheckpoint{}, fmt.Errorf("read %s: %w", path, err)
	default:
		ck, err := decodeCleanerCheckpoint(data)
		switch {
		case err != nil:
			l.log.Warn("cleaner checkpoint damaged; ignoring it: the whole log is compacted again, tombstones are kept delete.retention.ms from then, and this recovery accepts offset gaps in every segment",
				"file", path, "problem", err)
			ck = resetCleanerCheckpoint(math.MaxInt64)
		case ck.unchecked:
			l.upgradeCleanerCheckpoint(path, ck)
		}
		l.cleanCk = ck
	}
	l.cleanCkLoaded = true
	return l.cleanCk, nil
}

// upgradeCleanerCheckpoint rewrites a checkpoint of an earlier version with a checksum. The
// loaded one stays marked unchecked until it is saved again: clampTo still distrusts it.
func (l *Log) upgradeCleanerCheckpoint(path string, ck cleanerCheckpoint) {
	data, err := encodeCleanerCheckpoint(ck)
	if err == nil {
		err = writeFileAtomic(path, data, 0o644)
	}
	if err != nil {
		l.log.Warn("could not add a checksum to the cleaner checkpoint; it stays in the old format", "file", path, "err", err)
	}
}

// saveCleanerCheckpoint records a pass's progress. Caller holds maintMu.
func (l *Log) saveCleanerCheckpoint(ck cleanerCheckpoint) error {
	path := filepath.Join(l.dir, cleanerCheckpointName)
	data, err := encodeCleanerCheckpoint(ck)
	if err != nil {
		return fmt.Errorf("save cleaner checkpoint %s: %w", path, err)
	}
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("save cleaner checkpoint %s: %w", path, err)
	}
	ck.unchecked = false
	l.cleanCk, l.cleanCkLoaded = ck, true
	return nil
}

// throttle sleeps as needed to keep the cleaner's I/O under CleanerIOBytesPerSecond.
func (c *cleaner) throttle(l *Log, n int64) {
	limit := c.store.opts.CleanerIOBytesPerSecond
	if limit <= 0 {
		return
	}
	now := time.Now()
	if c.ioStart.IsZero() || now.Sub(c.ioStart) > time.Second {
		c.ioStart, c.ioBytes = now, 0
	}
	c.ioBytes += n
	ahead := time.Duration(float64(c.ioBytes)/float64(limit)*float64(time.Second)) - now.Sub(c.ioStart)
	for end := now.Add(ahead); ahead > 0 && !l.abort.Load(); ahead = time.Until(end) {
		select { // wake at least every 50ms to see a closing log
		case <-time.After(min(ahead, 50*time.Millisecond)):
		case <-c.stop:
			return
		}
	}
}

// writeMetrics writes the cleaner's metrics in Prometheus text format.
func (c *cleaner) writeMetrics(w io.Writer) {
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	counter("samsa_cleaner_passes_total", "Compaction passes completed.", c.passes.Load())
	counter("samsa_cleaner_errors_total", "Compaction passes that failed.", c.errors.Load())
	counter("samsa_cleaner_read_bytes_total", "Bytes the cleaner read.", c.bytesRead.Load())
	counter("samsa_cleaner_written_bytes_total", "Bytes the cleaner wrote.", c.bytesWritten.Load())
	counter("samsa_cleaner_removed_records_total", "Records removed because a later record has the same key.", c.recordsRemoved.Load())
	counter("samsa_cleaner_removed_tombstones_total", "Tombstones removed after delete.retention.ms.", c.tombstonesRemoved.Load())
	counter("samsa_cleaner_rewritten_segments_total", "Segments replaced by compacted ones.", c.segmentsRewritten.Load())
	gauge("samsa_cleaner_uncleanable_partitions", "Partitions the cleaner skips after finding corrupt data.", float64(c.uncleanable.Load()))
	ratio := 0.0
	if t := c.progressTotal.Load(); t > 0 {
		ratio = float64(c.progressDone.Load()) / float64(t)
	}
	gauge("samsa_cleaner_pass_progress_ratio", "Progress of the pass in flight (0 when idle).", ratio)
	gauge("samsa_cleaner_last_pass_seconds", "Duration of the last pass.", time.Duration(c.lastPassNanos.Load()).Seconds())
}
