package commitlog

import (
	"fmt"
	"os"
	"time"
)

// syncer is the partition's flusher goroutine. With fsync=always it is the group commit: while
// one fdatasync runs, further appends pile up and the next fdatasync covers them all. In the
// other modes it flushes on fsync_interval (interval mode), flush.ms and flush.messages.
func (l *Log) syncer() {
	defer close(l.done)
	cur := l.tickInterval()
	l.tick.Store(int64(cur))
	ticker := time.NewTicker(cur)
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.cfgCh:
			if d := l.tickInterval(); d != cur {
				cur = d
				ticker.Reset(d)
				l.tick.Store(int64(d))
			}
			continue
		case <-l.syncCh:
		case <-ticker.C:
			if !l.flushDue() {
				continue
			}
		}
		// A failed flush fails the log (see Flush): nothing to retry.
		l.Flush()
	}
}

// tickInterval is how often the syncer checks for time-based flushes.
func (l *Log) tickInterval() time.Duration {
	d := time.Second
	if l.store.opts.Fsync == FsyncInterval && l.store.opts.FsyncInterval > 0 {
		d = l.store.opts.FsyncInterval
	}
	if fm := l.config().FlushAge; fm > 0 && fm < d {
		d = fm
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// flushDue reports whether a time-based flush should run now.
func (l *Log) flushDue() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.unflushed == 0 && !l.dirDirty && l.flushed >= l.leo {
		return false
	}
	if l.store.opts.Fsync == FsyncInterval {
		return true
	}
	fm := l.config().FlushAge
	return fm > 0 && time.Since(l.dirtySince) >= fm
}

// Flush fsyncs everything appended so far (the active segment, segments sealed since the last
// flush with their indexes and, after a roll, the directory), then advances the durable end
// and, with fsync=always, the high watermark. Flushes run one at a time, so that one never
// relies on a directory fsync another has not finished.
//
// A failed fsync fails the log for good: after one, the kernel may have dropped the dirty
// pages, so a later fsync that succeeds proves nothing. Appends and waits then return
// ErrStorage; a restart recovers from what is on disk.
//
// Producer snapshots taken at rolls are written after the fsyncs, so a snapshot never
// describes data the disk might not hold.
func (l *Log) Flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	snaps, err := l.flush()
	if err == nil && len(snaps) > 0 {
		l.writeSnapshots(snaps)
	}
	return err
}

// flush is Flush without the snapshot writes, which it returns. Caller holds flushMu.
func (l *Log) flush() ([]pendingSnapshot, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, nil
	}
	if l.failed != nil {
		l.mu.Unlock()
		return nil, l.failed
	}
	target, seg, pos := l.leo, l.active(), l.active().size
	todo := l.flushTodoLocked()
	snaps := l.pendingSnaps
	l.pendingSnaps = nil
	dirDirty := l.dirDirty
	l.dirDirty = false
	l.unflushed = 0
	l.mu.Unlock()
	var err error
	for _, s := range todo {
		if err = s.syncFiles(l.fsyncFile, s != seg); err != nil {
			break
		}
	}
	if err == nil && dirDirty {
		if e := l.store.fsync.dir(l.dir); e != nil {
			err = fmt.Errorf("fsync dir %s: %w: %v", l.dir, ErrStorage, e)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range todo {
		if err == nil && s != seg {
			s.synced = true // sealed before the snapshot: nothing changed since
		}
		s.release()
	}
	if err != nil {
		l.failLocked(err)
	}
	if l.failed != nil { // this flush's fsync, or a roll's meanwhile, failed
		return nil, l.failed
	}
	if target > l.flushed {
		l.flushed = target
	}
	if l.store.opts.Fsync == FsyncAlways && !l.closed {
		l.setHWLocked(target, seg, pos)
	}
	return snaps, nil
}

// fsyncFile fdatasyncs one file, counted in the metrics.
func (l *Log) fsyncFile(f *os.File) error {
	start := time.Now()
	err := l.store.fsync.file(f)
	l.store.metrics.observeFsync(start)
	return err
}

// flushTodoLocked pins the segments a flush must fsync: the active one and the sealed ones not
// yet synced. Only the newest sealed segments can be unsynced (see rollLocked), so the walk
// from the end stops early instead of visiting every segment.
func (l *Log) flushTodoLocked() []*segment {
	var todo []*segment
	for i := len(l.segments) - 1; i >= 0; i-- {
		s := l.segments[i]
		if i < len(l.segments)-1 && s.synced {
			break
		}
		s.acquire()
		todo = append(todo, s)
	}
	return todo
}

// syncSealedLocked fsyncs a sealed segment and the directory with the log locked. rollLocked
// uses it only when the syncer has not caught up between two rolls.
func (l *Log) syncSealedLocked(s *segment) error {
	err := s.syncFiles(l.fsyncFile, true)
	if err == nil {
		if e := l.store.fsync.dir(l.dir); e != nil {
			err = fmt.Errorf("fsync dir %s: %w: %v", l.dir, ErrStorage, e)
		}
	}
	if err != nil {
		l.failLocked(err)
		return l.failed
	}
	s.synced = true
	return nil
}

// failLocked puts the log in the failed state and wakes waiters. Caller holds mu.
func (l *Log) failLocked(err error) {
	if l.failed != nil {
		return
	}
	l.failed = fmt.Errorf("%s-%d is offline after a failed fsync (restart to recover): %w", l.topic, l.partition, err)
	l.log.Error("fsync failed; the partition refuses appends until a restart recovers it", "err", err)
	close(l.hwCh)
	l.hwCh = make(chan struct{})
	l.hwChTaken.Store(false)
}

// close stops the syncer, flushes, trims and fsyncs the active segment's indexes and closes
// the files. Only the first call does anything.
func (l *Log) close() error {
	// A cleaner pass sees abort and gives up; retention passes are short. Either holds maintMu.
	l.abort.Store(true)
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return nil
	}
	l.closing = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	err := l.Flush()
	if err == nil {
		l.writeCloseSnapshot()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	close(l.hwCh) // wake waiters; they see closed
	l.hwCh = make(chan struct{})
	a := l.active()
	if e := a.finishTimeIndex(); e != nil && err == nil {
		err = e
	}
	if e := a.index.trim(); e != nil && err == nil {
		err = e
	}
	if e := a.tindex.trim(); e != nil && err == nil {
		err = e
	}
	if err == nil {
		// A clean start trusts these indexes: they must be on disk before the clean marker.
		err = a.syncFiles(l.fsyncFile, true)
	}
	l.closeSegmentsLocked()
	return err
}

func (l *Log) closeSegments() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeSegmentsLocked()
}

func (l *Log) closeSegmentsLocked() {
	for _, s := range l.segments {
		s.release()
	}
	l.segments = nil
}
