//go:build linux

package diskguard

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and unmounts it at cleanup. It
// needs root: locally the test is skipped without it, in CI (CI set) it fails.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a %d-byte tmpfs on %s: %v (CI runs the tests as root)", size, dir, err)
		}
		t.Skipf("mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file of n bytes (real pages on tmpfs).
func fill(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, n), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects log lines written from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

func metrics(g *Guard) string {
	var b bytes.Buffer
	g.WriteMetrics(&b)
	return b.String()
}

func wantMetric(t *testing.T, g *Guard, line string) {
	t.Helper()
	if m := metrics(g); !strings.Contains(m, line+"\n") {
		t.Fatalf("metrics lack %q:\n%s", line, m)
	}
}

func TestDiskGuardMinFreeBytes(t *testing.T) {
	mnt := mountTmpfs(t, 8<<20)
	log, logs := newLogger()
	g, err := New(Options{Dir: mnt, MinFreeBytes: 4 << 20, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Err(); err != nil {
		t.Fatalf("empty 8 MiB tmpfs with a 4 MiB limit: %v", err)
	}
	if free, total := g.Free(); total != 8<<20 || free != 8<<20 {
		t.Fatalf("Free() = %d, %d; want 8 MiB of 8 MiB", free, total)
	}
	label := `{path="` + mnt + `"}`
	wantMetric(t, g, "samsa_disk_total_bytes"+label+" 8388608")
	wantMetric(t, g, "samsa_disk_free_ratio"+label+" 1.000000")
	wantMetric(t, g, "samsa_disk_writes_refused"+label+" 0")
	wantMetric(t, g, "samsa_disk_min_free_bytes"+label+" 4194304")

	fill(t, filepath.Join(mnt, "filler"), 5<<20)
	if err := g.Check(); err != nil {
		t.Fatal(err)
	}
	err = g.Err()
	if !errors.Is(err, ErrLowDisk) {
		t.Fatalf("3 MiB free with a 4 MiB limit: Err() = %v, want ErrLowDisk", err)
	}
	for _, want := range []string{mnt, "3145728 bytes free", "37.50%", "disk.min_free_bytes 4194304"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	wantMetric(t, g, "samsa_disk_free_bytes"+label+" 3145728")
	wantMetric(t, g, "samsa_disk_writes_refused"+label+" 1")
	wantMetric(t, g, "samsa_disk_refusals_total"+label+" 1")
	if err := g.Check(); err != nil { // still low: no new transition, no new log line
		t.Fatal(err)
	}
	wantMetric(t, g, "samsa_disk_refusals_total"+label+" 1")
	if n := strings.Count(logs.String(), "disk space low"); n != 1 {
		t.Fatalf("%d warnings for one transition:\n%s", n, logs)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "limit_key=disk.min_free_bytes") ||
		!strings.Contains(l, "limit=4194304") || !strings.Contains(l, "free_bytes=3145728") {
		t.Fatalf("warning does not name the free bytes and the limit:\n%s", l)
	}

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); err != nil {
		t.Fatal(err)
	}
	if err := g.Err(); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	wantMetric(t, g, "samsa_disk_writes_refused"+label+" 0")
	wantMetric(t, g, "samsa_disk_refusals_total"+label+" 1")
	if !strings.Contains(logs.String(), "disk space available again") {
		t.Fatalf("no info line when writes resume:\n%s", logs)
	}
}

func TestDiskGuardMinFreePercent(t *testing.T) {
	mnt := mountTmpfs(t, 8<<20)
	fill(t, filepath.Join(mnt, "filler"), 6<<20) // 25% free
	log, logs := newLogger()
	g, err := New(Options{Dir: mnt, MinFreePercent: 30, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// Below the limit from the first poll: refused at once, and counted as a refusal.
	if err := g.Err(); !errors.Is(err, ErrLowDisk) || !strings.Contains(err.Error(), "below disk.min_free_percent 30") {
		t.Fatalf("25%% free with a 30%% limit: Err() = %v", err)
	}
	wantMetric(t, g, `samsa_disk_refusals_total{path="`+mnt+`"} 1`)
	wantMetric(t, g, `samsa_disk_min_free_ratio{path="`+mnt+`"} 0.300000`)
	if !strings.Contains(logs.String(), "limit_key=disk.min_free_percent limit=30") {
		t.Fatalf("warning does not name the percent limit:\n%s", logs)
	}
}

func TestDiskGuardDisabled(t *testing.T) {
	mnt := mountTmpfs(t, 1<<20)
	fill(t, filepath.Join(mnt, "filler"), 1<<20) // full
	g, err := New(Options{Dir: mnt})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Err(); err != nil {
		t.Fatalf("no limits, full filesystem: Err() = %v, want nil", err)
	}
	wantMetric(t, g, `samsa_disk_free_bytes{path="`+mnt+`"} 0`)
}

// TestDiskGuardBackgroundPoll: once started, the guard notices space going and coming back by
// itself. The waits are failure bounds, not timings.
func TestDiskGuardBackgroundPoll(t *testing.T) {
	mnt := mountTmpfs(t, 8<<20)
	log, _ := newLogger()
	g, err := New(Options{Dir: mnt, MinFreeBytes: 2 << 20, Interval: 5 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g.Start()
	g.Start() // no second loop
	defer g.Close()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("guard did not notice %s within 10s (failure bound)", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	fill(t, filepath.Join(mnt, "filler"), 7<<20)
	waitFor("the filesystem filling", func() bool { return g.Err() != nil })
	os.Remove(filepath.Join(mnt, "filler"))
	waitFor("space coming back", func() bool { return g.Err() == nil })
	g.Close()
	g.Close() // idempotent
}

// TestDiskGuardCheckFails: a poll that fails keeps the last state and is logged once.
func TestDiskGuardCheckFails(t *testing.T) {
	mnt := mountTmpfs(t, 4<<20)
	dir := filepath.Join(mnt, "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fill(t, filepath.Join(mnt, "filler"), 3<<20)
	log, logs := newLogger()
	g, err := New(Options{Dir: dir, MinFreeBytes: 2 << 20, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	refused := g.Err()
	if refused == nil {
		t.Fatal("1 MiB free with a 2 MiB limit: writes allowed")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(mnt, "filler")) // space is back, but the guard cannot see it
	for range 3 {
		if err := g.Check(); err == nil || !strings.Contains(err.Error(), dir) {
			t.Fatalf("check of a removed directory: %v, want an error naming it", err)
		}
	}
	if g.Err() != refused {
		t.Fatalf("a failing check changed the state: %v", g.Err())
	}
	if n := strings.Count(logs.String(), "disk space check failed"); n != 1 {
		t.Fatalf("%d log lines for one failing spell, want 1:\n%s", n, logs)
	}
	wantMetric(t, g, `samsa_disk_check_errors_total{path="`+dir+`"} 3`)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); err != nil {
		t.Fatal(err)
	}
	if err := g.Err(); err != nil {
		t.Fatalf("after the directory came back with space: %v", err)
	}
	if !strings.Contains(logs.String(), "disk space check works again") {
		t.Fatalf("recovery of the check not logged:\n%s", logs)
	}
}

func TestDiskGuardNewErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "no directory"},
		{Options{Dir: filepath.Join(dir, "missing")}, "missing"},
		{Options{Dir: dir, MinFreeBytes: -1}, "disk.min_free_bytes -1"},
		{Options{Dir: dir, MinFreePercent: 100}, "disk.min_free_percent 100"},
		{Options{Dir: dir, MinFreePercent: -0.5}, "disk.min_free_percent -0.5"},
		{Options{Dir: dir, MinFreePercent: math.NaN()}, "disk.min_free_percent NaN"},
		{Options{Dir: dir, Interval: -time.Second}, "interval -1s"},
	} {
		g, err := New(tc.opts)
		if err == nil {
			g.Close()
			t.Errorf("New(%+v) succeeded", tc.opts)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want it to say %q", tc.opts, err, tc.want)
		}
	}
}

func TestDiskGuardMetricsLabelEscaped(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, `a"b\c`)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	g, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if m := metrics(g); !strings.Contains(m, `{path="`+parent+`/a\"b\\c"}`) {
		t.Fatalf("label not escaped:\n%s", m)
	}
}
