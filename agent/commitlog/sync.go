package commitlog

import (
	"fmt"
	"time"
)

// syncer is the partition's flusher goroutine. With fsync=always it is the group commit: while
// one fdatasync runs, further appends pile up and the next fdatasync covers them all. In the
// other modes it flushes on fsync_interval (interval mode), flush.ms and flush.messages.
func (l *Log) syncer() {
	defer close(l.done)
	ticker := time.NewTicker(l.tickInterval())
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.syncCh:
		case <-ticker.C:
			if !l.flushDue() {
				continue
			}
		}
		if err := l.Flush(); err != nil {
			l.log.Error("fsync failed; acknowledgements wait until it succeeds", "err", err)
			select {
			case <-l.stop:
				return
			case <-time.After(100 * time.Millisecond):
				l.kickSyncer()
			}
		}
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

// Flush fsyncs everything appended so far (the segments not yet synced and, after a roll, the
// directory), then advances the durable end and, with fsync=always, the high watermark.
func (l *Log) Flush() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	target, flushed := l.leo, l.flushed
	seg, pos := l.active(), l.active().size
	var todo []*segment
	for _, s := range l.segments {
		if s.next > flushed || s == seg {
			s.acquire()
			todo = append(todo, s)
		}
	}
	dirDirty := l.dirDirty
	l.dirDirty = false
	recs := l.unflushed
	l.unflushed = 0
	l.mu.Unlock()
	var err error
	for _, s := range todo {
		if err == nil {
			start := time.Now()
			e := datasync(s.file)
			l.store.metrics.observeFsync(start)
			if e != nil {
				err = fmt.Errorf("fsync %s: %w: %v", s.path, ErrStorage, e)
			}
		}
		s.release()
	}
	if err == nil && dirDirty {
		if e := syncDir(l.dir); e != nil {
			err = fmt.Errorf("fsync dir %s: %w: %v", l.dir, ErrStorage, e)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.dirDirty = l.dirDirty || dirDirty
		l.unflushed += recs
		return err
	}
	if target > l.flushed {
		l.flushed = target
	}
	if l.store.opts.Fsync == FsyncAlways && !l.closed {
		l.setHWLocked(target, seg, pos)
	}
	return nil
}

// close stops the syncer, flushes, trims the active segment's indexes and closes the files.
func (l *Log) close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	err := l.Flush()
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
