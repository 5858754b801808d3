package benchkit

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFormatInt(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", 99999.5: "100,000",
		-1234: "-1,234", -999: "-999", 123456: "123,456"} {
		if got := FormatInt(v); got != want {
			t.Errorf("FormatInt(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 100: "100B", 1024: "1KiB", 1536 << 10: "1536KiB", 16 << 20: "16MiB",
		3 << 30: "3GiB", 1<<20 + 1: "1048577B"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512MiB": 512 << 20, "4 KiB": 4 << 10, "1GiB": 1 << 30,
		"64MB": 64e6, "2KB": 2000, "100B": 100, "1.5MiB": 3 << 19, "0.5GB": 5e8} {
		if got, err := ParseBytes(s); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-1", "1TB", "MiB", "x1", "-2KiB", "1e30GiB"} {
		if got, err := ParseBytes(s); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", s, got)
		}
	}
}

func TestBytesVar(t *testing.T) {
	n := int64(16 << 20)
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	BytesVar(fs, &n, "size", "a size")
	if def := fs.Lookup("size").DefValue; def != "16MiB" {
		t.Errorf("default shown as %q", def)
	}
	if err := fs.Parse([]string{"-size", "2GiB"}); err != nil || n != 2<<30 {
		t.Errorf("-size 2GiB: %d, %v", n, err)
	}
	if err := fs.Parse([]string{"-size", "lots"}); err == nil {
		t.Error("-size lots accepted")
	}
}

func TestPluralMiBMedian(t *testing.T) {
	if Plural(1, "round") != "1 round" || Plural(0, "round") != "0 rounds" || Plural(3, "warning") != "3 warnings" {
		t.Error("Plural")
	}
	if MiB(3<<19) != 1.5 {
		t.Error("MiB")
	}
	v := []float64{5, 1, 3}
	if Median(nil) != 0 || Median(v) != 3 || Median([]float64{4, 1, 3, 2}) != 2.5 || v[0] != 5 {
		t.Errorf("Median: %v", v)
	}
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{\n  \"a\": 1\n}\n" {
		t.Errorf("wrote %q", b)
	}
	var got map[string]int
	ReadJSON(t, path, &got)
	if got["a"] != 1 {
		t.Errorf("read back %v", got)
	}
	if err := WriteJSON(filepath.Join(t.TempDir(), "no", "dir.json"), 1); err == nil {
		t.Error("WriteJSON into a missing directory succeeded")
	}
}

func TestParseStatCPU(t *testing.T) {
	line := "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 0 0"
	if got, err := parseStatCPU("stat", line); err != nil || got != 3 {
		t.Errorf("parseStatCPU = %v, %v; want 3 s", got, err)
	}
	for _, bad := range []string{"no paren", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s 0"} {
		if _, err := parseStatCPU("stat", bad); err == nil {
			t.Errorf("parseStatCPU(%q) accepted", bad)
		}
	}
	if v, err := ProcCPU(os.Getpid()); err != nil || v < 0 {
		t.Errorf("ProcCPU(self) = %v, %v", v, err)
	}
}

func TestParseMachineBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal: idle and iowait are not busy.
	if got, err := parseMachineBusy("cpu  100 20 30 5000 700 4 6 40 0 0"); err != nil || got != 2 {
		t.Errorf("parseMachineBusy = %v, %v; want 2 s", got, err)
	}
	if _, err := parseMachineBusy("intr 1 2 3"); err == nil {
		t.Error("parseMachineBusy accepted a wrong line")
	}
}

func TestCPUSince(t *testing.T) {
	s := TakeCPU(0, os.Getpid())
	for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
	}
	u, ok := s.Since(0, os.Getpid())
	if !ok || len(u.Procs) != 2 || u.Procs[0] != 0 || u.Procs[1] < 0 || u.Self < 0 || u.OtherCores < 0 {
		t.Errorf("Since = %+v, %v", u, ok)
	}
	if _, ok := s.Since(0); ok {
		t.Error("Since with other pids than the snapshot's succeeded")
	}
	if _, ok := TakeCPU(-1, 1<<30).Since(-1, 1<<30); ok {
		t.Error("Since of a process that does not exist succeeded")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t 512 kB\nRssFile:\t 256 kB\nRssShmem:\t 0 kB\nThreads: 3\n"
	m, err := parseStatus("status", []byte(status))
	if err != nil || m != (ProcMemory{RSS: 1 << 20, HWM: 2 << 20, Anon: 512 << 10, File: 256 << 10}) {
		t.Errorf("parseStatus = %+v, %v", m, err)
	}
	if _, err := parseStatus("status", []byte("VmRSS: 1 kB\n")); err == nil {
		t.Error("parseStatus without VmHWM accepted")
	}
	if _, err := parseStatus("status", []byte("VmHWM: x kB\n")); err == nil {
		t.Error("parseStatus of a bad number accepted")
	}
}

func TestMemSampler(t *testing.T) {
	s := StartMemSampler(os.Getpid(), time.Millisecond)
	if _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	p := s.Stop()
	if p.Err != nil || p.Samples < 2 || p.RSS <= 0 || p.Anon <= 0 {
		t.Errorf("peaks %+v", p)
	}
	if q := s.Stop(); q.Samples != p.Samples {
		t.Errorf("second Stop sampled again: %+v", q)
	}
	gone := StartMemSampler(1<<30, time.Millisecond).Stop()
	if gone.Err == nil || gone.Samples != 0 || !errors.Is(gone.Err, os.ErrNotExist) {
		t.Errorf("peaks of a missing process: %+v", gone)
	}
}

func TestDescribeMachine(t *testing.T) {
	m := DescribeMachine("peers", []string{"-records", "10"})
	if m.Command != "go run ./benchmarks/peers -records 10" || m.NProc < 1 || !strings.HasPrefix(m.GoVersion, "go") || m.Date == "" {
		t.Errorf("machine %+v", m)
	}
	if DescribeMachine("x", nil).Command != "go run ./benchmarks/x" {
		t.Error("command without arguments")
	}
	if fs := FilesystemOf(t.TempDir()); fs != "" && !strings.Contains(fs, " on /") {
		t.Errorf("FilesystemOf = %q", fs)
	}
}

func TestWorkDir(t *testing.T) {
	parent := t.TempDir()
	dir, remove, err := WorkDir(parent, "x-", false)
	if err != nil {
		t.Fatal(err)
	}
	remove()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("not removed: %v", err)
	}
	dir, remove, err = WorkDir(parent, "x-", true)
	if err != nil {
		t.Fatal(err)
	}
	remove()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("kept directory gone: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 1, "")
	if err := ParseFlags(fs, []string{"-n", "2"}); err != nil || *n != 2 {
		t.Errorf("ParseFlags: %d, %v", *n, err)
	}
	if err := ParseFlags(fs, []string{"-n", "3", "extra"}); err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Errorf("ParseFlags with an argument: %v", err)
	}
	if err := ParseFlags(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("ParseFlags -h: %v", err)
	}
}
