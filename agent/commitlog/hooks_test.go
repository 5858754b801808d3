package commitlog

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fsyncSpy records the fsyncs a Store makes and can block or fail them. Install it with
// spyFsync before Open.
type fsyncSpy struct {
	mu    sync.Mutex
	files []string // base names of fsynced files, in order
	dirs  []string
	// hold, when set, is called (without mu) before each file fsync; it may block.
	hold func(path string)
	// fail, when set, may fail a file fsync.
	fail func(path string) error
}

func spyFsync(t testing.TB) *fsyncSpy {
	t.Helper()
	spy := &fsyncSpy{}
	prev := defaultFsyncer
	defaultFsyncer = fsyncer{
		file: func(f *os.File) error {
			spy.mu.Lock()
			hold, fail := spy.hold, spy.fail
			spy.mu.Unlock()
			if hold != nil {
				hold(f.Name())
			}
			if fail != nil {
				if err := fail(f.Name()); err != nil {
					return err
				}
			}
			spy.mu.Lock()
			spy.files = append(spy.files, filepath.Base(f.Name()))
			spy.mu.Unlock()
			return datasync(f)
		},
		dir: func(dir string) error {
			if err := syncDir(dir); err != nil {
				return err
			}
			spy.mu.Lock()
			spy.dirs = append(spy.dirs, dir)
			spy.mu.Unlock()
			return nil
		},
	}
	t.Cleanup(func() { defaultFsyncer = prev })
	return spy
}

func (s *fsyncSpy) set(hold func(string), fail func(string) error) {
	s.mu.Lock()
	s.hold, s.fail = hold, fail
	s.mu.Unlock()
}

func (s *fsyncSpy) reset() {
	s.mu.Lock()
	s.files, s.dirs = nil, nil
	s.mu.Unlock()
}

// synced reports whether a file with that base name was fsynced.
func (s *fsyncSpy) synced(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if f == name {
			return true
		}
	}
	return false
}

func (s *fsyncSpy) dirSyncs(dir string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.dirs {
		if d == dir {
			n++
		}
	}
	return n
}

func (s *fsyncSpy) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "files [" + strings.Join(s.files, " ") + "] dirs [" + strings.Join(s.dirs, " ") + "]"
}

// segName is the base name of a segment file.
func segName(base int64, ext string) string { return filepath.Base(segmentPath("", base, ext)) }

// fillUntilSegments appends 1-record batches until the log has n segments (the last append
// opened the newest), returning the records appended.
func fillUntilSegments(t testing.TB, l *Log, n int, ts int64) int {
	t.Helper()
	count := 0
	for l.NumSegments() < n {
		if _, err := l.Append(makeBatch(t, 1, "f", ts+int64(count))); err != nil {
			t.Fatal(err)
		}
		count++
		if count > 100000 {
			t.Fatal("no roll")
		}
	}
	return count
}

// segmentBases lists the base offsets of a partition's segments.
func segmentBases(l *Log) []int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []int64
	for _, s := range l.segments {
		out = append(out, s.base)
	}
	return out
}

// batchBounds returns the positions where the batches of a segment file start, plus its end.
func batchBounds(t testing.TB, path string) []int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	var pos int64
	for pos < int64(len(data)) {
		out = append(out, pos)
		var size int
		for i := 8; i < 12; i++ {
			size = size<<8 | int(data[pos+int64(i)])
		}
		pos += int64(size) + 12
	}
	return append(out, pos)
}

func crash(t testing.TB, s *Store) {
	t.Helper()
	s.Close()
	if err := os.Remove(filepath.Join(s.Dir(), cleanMarker)); err != nil {
		t.Fatal(err)
	}
}
