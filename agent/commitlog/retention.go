package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// logStartName is the partition file that keeps a log start offset moved by DeleteRecords
// (or by retention) across restarts: Kafka's log-start-offset-checkpoint, one per partition.
const logStartName = "log-start-offset"

// deletedBelowName is the partition file that keeps the offset DeleteRecords last moved the
// start to, which on a tiered log may lie below the local log start (in object storage).
const deletedBelowName = "delete-records-offset"

// Deletes reports whether cleanup.policy includes delete.
func (c *TopicConfig) Deletes() bool { return c.policyDelete }

// Compacts reports whether cleanup.policy includes compact.
func (c *TopicConfig) Compacts() bool { return c.policyCompact }

// DeleteRecordsBefore moves the log start offset up to offset (Kafka's DeleteRecords): records
// below it are no longer served, and segments wholly below it are deleted by the next
// retention pass. offset -1 means the high watermark. It returns the log start offset after
// the call (Kafka's low watermark); an offset above the high watermark is ErrOffsetOutOfRange.
// The new start is on disk before the call returns.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return -1, fmt.Errorf("delete records of %s-%d: %w", l.topic, l.partition, ErrClosed)
	}
	if offset == -1 {
		offset = l.hw
	}
	if offset < 0 || offset > l.hw {
		start, hw := l.logStart, l.hw
		l.mu.Unlock()
		return -1, fmt.Errorf("delete records of %s-%d before %d (log %d..%d, high watermark %d): %w", l.topic, l.partition, offset, start, l.leo, hw, ErrOffsetOutOfRange)
	}
	start, floor := l.logStart, l.deletedBelow
	l.mu.Unlock()
	if offset <= floor && offset <= start {
		return start, nil
	}
	// On disk first: a start that readers saw must not move back after a restart. The
	// floor is saved even below the local start, where a tiered log's object storage
	// still holds the records.
	if err := l.saveDeletedBelowLocked(offset); err != nil {
		return -1, err
	}
	l.mu.Lock()
	l.deletedBelow = max(l.deletedBelow, offset)
	l.mu.Unlock()
	if offset <= start {
		l.store.metrics.recordsDeletedByRequest.Add(1)
		l.log.Info("records deleted by request below the local log start", "deleted_below", offset, "log_start_offset", start)
		return start, nil
	}
	if err := l.saveLogStartLocked(offset); err != nil {
		return -1, err
	}
	l.mu.Lock()
	l.logStart = max(l.logStart, offset)
	l.mu.Unlock()
	l.store.metrics.recordsDeletedByRequest.Add(1)
	l.log.Info("log start moved by request", "log_start_offset", offset)
	l.store.kickJanitor()
	return offset, nil
}

// saveLogStartLocked persists a log start offset. Caller holds startMu, which orders the
// writes.
func (l *Log) saveLogStartLocked(start int64) error {
	if err := writeOffsetFile(filepath.Join(l.dir, logStartName), start); err != nil {
		return fmt.Errorf("save log start offset of %s-%d: %w: %v", l.topic, l.partition, ErrStorage, err)
	}
	return nil
}

// loadLogStart restores a log start offset saved inside the first segment (or past segments a
// crash kept from being deleted). A saved start past the log end (recovery cut the unsynced
// tail below it after a power loss) is kept, as Kafka does: the log restarts empty at the
// saved start, so no offset a client saw deleted is handed out again. That deletes every
// segment, so only a value whose checksum matched may do it: a file that fails its check is
// ignored, and so is a bare number (an earlier version's file) past the end, which may be a
// damaged digit. Called by openLog before the log is shared.
func (l *Log) loadLogStart() error {
	path := filepath.Join(l.dir, logStartName)
	n, checked, ok := l.readOffsetFile(path, "log start offset", "the log starts at its first segment")
	if !ok {
		return nil
	}
	if n > l.leo {
		if !checked {
			l.log.Warn("log start offset file without a checksum (an earlier version's) is past the recovered log end; ignored: the log starts at its first segment",
				"file", path, "saved", n, "log_end", l.leo)
			return nil
		}
		l.log.Warn("saved log start offset is past the recovered log end; the log restarts empty there", "file", path, "saved", n, "log_end", l.leo)
		return l.restartAtLocked(n)
	}
	if n > l.logStart {
		l.logStart = n
	}
	if !checked {
		l.upgradeOffsetFile(path, n)
	}
	return nil
}

// RecordsDeletedBelow is the offset DeleteRecords last moved the log start to (0 if never).
// Unlike LogStartOffset it may lie below the local log start: a tiered log's readers of
// object storage must not serve records below it either.
func (l *Log) RecordsDeletedBelow() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.deletedBelow
}

// saveDeletedBelowLocked persists DeleteRecords' floor. Caller holds startMu.
func (l *Log) saveDeletedBelowLocked(offset int64) error {
	if err := writeOffsetFile(filepath.Join(l.dir, deletedBelowName), offset); err != nil {
		return fmt.Errorf("save delete-records offset of %s-%d: %w: %v", l.topic, l.partition, ErrStorage, err)
	}
	return nil
}

// loadDeletedBelow restores DeleteRecords' floor; a file that fails its check is a warning
// (the local log start still holds), and so is a bare number (an earlier version's file) past
// the log end: raising the start to the end would have retention delete every segment. Called
// by openLog before the log is shared.
func (l *Log) loadDeletedBelow() {
	path := filepath.Join(l.dir, deletedBelowName)
	n, checked, ok := l.readOffsetFile(path, "delete-records offset", "only the local log start limits reads")
	if !ok {
		return
	}
	if n > l.leo && !checked {
		l.log.Warn("delete-records offset file without a checksum (an earlier version's) is past the recovered log end; ignored: only the local log start limits reads",
			"file", path, "saved", n, "log_end", l.leo)
		return
	}
	l.deletedBelow = n
	if n > l.logStart { // a crash came between saving the floor and the log start
		l.logStart = min(n, l.leo)
	}
	if !checked {
		l.upgradeOffsetFile(path, n)
	}
}

// writeOffsetFile atomically replaces the offset file at path with one holding offset.
func writeOffsetFile(path string, offset int64) error {
	return writeFileAtomic(path, encodeOffsetFile(offset), 0o644)
}

// readOffsetFile reads the offset file at path (what names what it holds, fallback what a
// missing value means, for the warnings). ok is false when there is no usable value: no file,
// one that cannot be read, or one whose content fails its check, which is treated as absent.
// checked is false for a bare number, an earlier version's file.
func (l *Log) readOffsetFile(path, what, fallback string) (offset int64, checked, ok bool) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, false
	}
	if err != nil {
		l.log.Warn(what+" file unreadable; "+fallback, "file", path, "err", err)
		return 0, false, false
	}
	offset, checked, err = decodeOffsetFile(data)
	if err != nil {
		l.log.Warn(what+" file damaged; ignored: "+fallback, "file", path, "problem", err)
		return 0, false, false
	}
	return offset, checked, true
}

// upgradeOffsetFile rewrites an earlier version's offset file, whose value loaded, with a
// checksum. A failure leaves the old file, which still loads.
func (l *Log) upgradeOffsetFile(path string, offset int64) {
	if err := writeOffsetFile(path, offset); err != nil {
		l.log.Warn("could not add a checksum to an offset file; it stays in the old format", "file", path, "err", err)
	}
}

// restartAtLocked replaces every segment with one empty segment at offset start.
func (l *Log) restartAtLocked(start int64) error {
	ns, err := createSegment(l.dir, start, l.config(), l.store.usePread())
	if err != nil {
		return fmt.Errorf("restart %s-%d at offset %d: %w", l.topic, l.partition, start, err)
	}
	for _, s := range l.segments {
		s.release()
		if s.base != start {
			if err := removeSegmentFiles(l.dir, s.base); err != nil {
				return err
			}
		}
	}
	l.segments = []*segment{ns}
	l.logStart, l.leo, l.hw, l.flushed = start, start, start, start
	l.hwSeg, l.hwPos = ns, 0
	if err := l.store.fsync.dir(l.dir); err != nil {
		return fmt.Errorf("fsync dir %s: %w: %v", l.dir, ErrStorage, err)
	}
	return nil
}

// applyRetention deletes the oldest closed segments that retention.ms, retention.bytes or the
// log start offset (DeleteRecords) have made deletable, never data at or above the high
// watermark. Time retention also rolls an expired active segment so it can go. A pass that
// finds the cleaner (or another pass) working on the log skips it unless wait is set; the
// next tick retries.
func (l *Log) applyRetention(now time.Time, wait bool) {
	if wait {
		l.maintMu.Lock()
	} else if !l.maintMu.TryLock() {
		return
	}
	defer l.maintMu.Unlock()
	l.startMu.Lock()
	defer l.startMu.Unlock()
	cfg := l.config()
	l.mu.Lock()
	if l.closed || l.closing {
		l.mu.Unlock()
		return
	}
	gone, reason := l.retainLocked(cfg, now)
	if len(gone) == 0 {
		l.mu.Unlock()
		return
	}
	l.segments = l.segments[len(gone):]
	if b := l.segments[0].base; b > l.logStart {
		l.logStart = b
	}
	for _, s := range gone {
		if s == l.hwSeg { // the high watermark was at its end: the next segment's start
			l.hwSeg, l.hwPos = l.segments[0], 0
		}
	}
	l.mu.Unlock()
	if err := l.saveLogStartLocked(l.LogStartOffset()); err != nil {
		l.log.Warn("retention could not save the log start offset; a restart may show deleted offsets as missing files", "err", err)
	}
	var bytes int64
	for _, s := range gone {
		bytes += s.size
		if err := removeSegmentFiles(l.dir, s.base); err != nil {
			l.log.Warn("remove expired segment", "file", s.path, "err", err)
		}
		s.release() // readers still holding it keep the open files
	}
	if err := l.store.fsync.dir(l.dir); err != nil {
		l.log.Warn("fsync partition dir after retention", "err", err)
	}
	m := &l.store.metrics
	m.retentionSegments.Add(int64(len(gone)))
	m.retentionBytes.Add(bytes)
	l.log.Info("retention deleted segments", "reason", reason, "segments", len(gone), "bytes", bytes,
		"log_start_offset", l.LogStartOffset())
}

// retainLocked picks the prefix of segments to delete and says why. Caller holds mu.
//
// For a remote.storage.enable topic, local.retention.ms/bytes (and, under disk pressure, any
// amount) delete only local copies already in object storage (below TieredEnd); retention.ms
// still deletes expired data whether uploaded or not, and retention.bytes is applied by the
// tiering side to the whole log.
func (l *Log) retainLocked(cfg *TopicConfig, now time.Time) ([]*segment, string) {
	const never = int64(-1) << 62
	nowMs := now.UnixMilli()
	var total int64
	for _, s := range l.segments {
		total += s.size
	}
	cutoff, excess := never, int64(-1)
	localCutoff, localExcess := never, int64(-1)
	tiered, pressure := cfg.RemoteStorageEnable, false
	if cfg.Deletes() {
		if cfg.RetentionMs >= 0 {
			cutoff = nowMs - cfg.RetentionMs
		}
		if cfg.RetentionBytes >= 0 && !tiered {
			excess = total - cfg.RetentionBytes
		}
		if tiered {
			ms, bytes := cfg.localRetention()
			if ms >= 0 {
				localCutoff = nowMs - ms
			}
			if bytes >= 0 {
				localExcess = total - bytes
			}
			pressure = l.store.opts.UnderPressure != nil && l.store.opts.UnderPressure()
		}
	}
	uploaded := l.tieredEnd.Load()
	segs := l.segments
	n, reason := 0, ""
	for ; n < len(segs); n++ {
		s := segs[n]
		if s.next > l.hw || s.size == 0 {
			break // never unreplicated (or, here, undurable) data; never an empty segment
		}
		last := n == len(segs)-1
		maxTs := s.maxTs
		if maxTs < 0 && (cutoff != never || localCutoff != never) {
			maxTs = s.modTime() // batches without timestamps: the file's age, as Kafka does
		}
		why := ""
		switch {
		case s.next <= l.logStart:
			why = "log start offset"
		case maxTs < cutoff:
			why = "retention.ms"
		case excess >= 0 && excess-s.size >= 0:
			why = "retention.bytes"
		case !last && s.next <= uploaded && pressure:
			why = "disk guard (uploaded)"
		case !last && s.next <= uploaded && maxTs < localCutoff:
			why = "local.retention.ms (uploaded)"
		case !last && s.next <= uploaded && localExcess >= 0 && localExcess-s.size >= 0:
			why = "local.retention.bytes (uploaded)"
		}
		if why == "" {
			break
		}
		excess -= s.size
		localExcess -= s.size
		if reason == "" {
			reason = why
		}
		if last {
			// The active segment goes only by time (or start offset), as in Kafka: roll first so
			// the log keeps an active segment.
			if why == "retention.bytes" || !l.rollForRetentionLocked(cfg) {
				break
			}
			segs = l.segments
		}
	}
	return segs[:n], reason
}

// modTime is the segment file's modification time in Unix ms (-1 if unknown).
func (s *segment) modTime() int64 {
	st, err := s.file.Stat()
	if err != nil {
		return -1
	}
	return st.ModTime().UnixMilli()
}

// rollForRetentionLocked rolls the active segment so that retention can delete it. Caller holds
// mu; the active segment lies wholly below the high watermark.
func (l *Log) rollForRetentionLocked(cfg *TopicConfig) bool {
	if l.failed != nil {
		return false
	}
	if err := l.rollLocked(cfg); err != nil {
		l.log.Warn("roll for retention", "err", err)
		return false
	}
	a := l.active()
	if l.hw == l.leo {
		l.hwSeg, l.hwPos = a, 0
	}
	return true
}

// janitor runs retention on every partition every RetentionCheckInterval, and at once when
// kicked (DeleteRecords).
func (s *Store) janitor() {
	defer close(s.janitorDone)
	t := time.NewTicker(s.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.janitorStop:
			return
		case <-t.C:
		case <-s.janitorKick:
		}
		now := s.opts.Now()
		for _, l := range s.allLogs() {
			select {
			case <-s.janitorStop:
				return
			default:
			}
			l.applyRetention(now, false)
		}
	}
}

// KickRetention asks for a retention pass now (the disk guard, when space runs low).
func (s *Store) KickRetention() { s.kickJanitor() }

// kickJanitor asks for a retention pass now.
func (s *Store) kickJanitor() {
	select {
	case s.janitorKick <- struct{}{}:
	default:
	}
}

// RunRetention runs one retention pass over every partition now, waiting for passes in
// progress (tests, admin tools).
func (s *Store) RunRetention() {
	now := s.opts.Now()
	for _, l := range s.allLogs() {
		l.applyRetention(now, true)
	}
}

// allLogs lists every partition log.
func (s *Store) allLogs() []*Log {
	var out []*Log
	for _, t := range s.Topics() {
		t.mu.RLock()
		out = append(out, t.parts...)
		t.mu.RUnlock()
	}
	return out
}
