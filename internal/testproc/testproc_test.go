package testproc

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestTailBuffer(t *testing.T) {
	b := NewTailBuffer(5)
	for _, s := range []string{"ab", "cd", "efg"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "cdefg" {
		t.Errorf("kept %q, want %q", got, "cdefg")
	}
}

func TestLookPath(t *testing.T) {
	if p, ok := LookPath("sh"); !ok || !filepath.IsAbs(p) {
		t.Errorf("LookPath(sh) = %q, %v", p, ok)
	}
	dir := t.TempDir()
	want := filepath.Join(dir, "samsa-no-such-tool")
	if err := os.WriteFile(want, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, ok := LookPath("samsa-no-such-tool", filepath.Join(dir, "missing"), dir); !ok || p != want {
		t.Errorf("LookPath in dirs = %q, %v; want %q", p, ok, want)
	}
	if p, ok := LookPath("sub", dir); ok {
		t.Errorf("LookPath found the directory %q", p)
	}
}

func TestEnvWithout(t *testing.T) {
	t.Setenv("TESTPROC_DROP_ME", "1")
	t.Setenv("TESTPROC_KEEP", "1")
	env := strings.Join(EnvWithout("TESTPROC_DROP", "AWS_"), "\n")
	if strings.Contains(env, "TESTPROC_DROP_ME=") || !strings.Contains(env, "TESTPROC_KEEP=1") {
		t.Errorf("EnvWithout kept or dropped the wrong variables:\n%s", env)
	}
}

func TestFreeAddr(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	ln.Close()
}

func TestStopGraceful(t *testing.T) {
	p, err := Start(exec.Command("sleep", "30"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.PID() <= 0 || p.ExitErr() != nil {
		t.Fatalf("pid %d, exit %v", p.PID(), p.ExitErr())
	}
	err = p.Stop(syscall.SIGTERM, 10*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || errors.Is(err, ErrKilled) {
		t.Errorf("Stop = %v, want the exit status of a signalled process", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Error("Exited not closed after Stop")
	}
	if err2 := p.Stop(syscall.SIGTERM, time.Second); err2 != err {
		t.Errorf("second Stop = %v, want %v", err2, err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	cmd := exec.Command("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	p, err := Start(cmd, func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-ready // the trap is set
	if err := p.Stop(syscall.SIGTERM, 200*time.Millisecond); !errors.Is(err, ErrKilled) {
		t.Errorf("Stop = %v, want ErrKilled", err)
	}
}

// TestReadBeforeWait checks that the reader sees all of the output and that the exit status
// is there once Exited is closed.
func TestReadBeforeWait(t *testing.T) {
	cmd := exec.Command("sh", "-c", "for i in 1 2 3; do echo line$i; done; exit 3")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	p, err := Start(cmd, func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	var ee *exec.ExitError
	if !errors.As(p.ExitErr(), &ee) || ee.ExitCode() != 3 || strings.Join(lines, ",") != "line1,line2,line3" {
		t.Errorf("exit %v, lines %q", p.ExitErr(), lines)
	}
}

func TestWaitReady(t *testing.T) {
	p, err := Start(exec.Command("sleep", "30"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	var calls atomic.Int32
	if err := p.WaitReady(context.Background(), 10*time.Second, time.Millisecond, func() bool { return calls.Add(1) == 3 }); err != nil {
		t.Errorf("WaitReady = %v", err)
	}
	if err := p.WaitReady(context.Background(), 20*time.Millisecond, time.Millisecond, func() bool { return false }); !errors.Is(err, ErrNotReady) {
		t.Errorf("WaitReady never ready = %v, want ErrNotReady", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.WaitReady(ctx, 10*time.Second, time.Millisecond, func() bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitReady cancelled = %v", err)
	}
	q, err := Start(exec.Command("false"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.WaitReady(context.Background(), 10*time.Second, time.Millisecond, func() bool { return false }); !errors.Is(err, ErrExitedEarly) {
		t.Errorf("WaitReady of an exited process = %v, want ErrExitedEarly", err)
	}
}

func TestFindInGoBin(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	want := filepath.Join(dir, "samsa-testproc-tool")
	if err := os.WriteFile(want, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOBIN", dir)
	if p, ok := FindInGoBin("samsa-testproc-tool"); !ok || p != want {
		t.Errorf("FindInGoBin = %q, %v; want %q", p, ok, want)
	}
	if p, ok := FindInGoBin("samsa-testproc-no-such-tool"); ok {
		t.Errorf("FindInGoBin found %q", p)
	}
}
