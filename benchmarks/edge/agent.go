package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// moduleRoot is the repository root (the directory of go.mod).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the samsa module (run from the repository)")
	}
	return filepath.Dir(gomod), nil
}

// buildSamsa builds ./cmd/samsa as cross-build.sh builds release binaries, for this machine.
func buildSamsa(ctx context.Context, root, work string) (string, error) {
	bin := filepath.Join(work, "samsa")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/samsa")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/samsa: %v\n%s", err, out)
	}
	return bin, nil
}

// agentProc is `samsa agent` running as a child process.
type agentProc struct {
	cmd       *exec.Cmd
	kafkaAddr string
	httpAddr  string
	exited    chan error
	logs      *tailBuffer
}

// startAgent starts `samsa agent --config profile` with its data in dir and listeners on
// random loopback ports, and waits until it logs that it is ready.
func startAgent(ctx context.Context, bin, profile, dir string) (*agentProc, error) {
	cmd := exec.Command(bin, "agent", "--config", profile, "--data-dir", dir,
		"--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "SAMSA_LOG_FORMAT=json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &agentProc{cmd: cmd, exited: make(chan error, 1), logs: &tailBuffer{max: 64 << 10}}
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(line, '\n'))
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["msg"] == "samsa agent ready" {
				select {
				case ready <- m:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.exited <- cmd.Wait()
	}()
	select {
	case m := <-ready:
		p.kafkaAddr, _ = m["kafka"].(string)
		p.httpAddr, _ = m["http"].(string)
		return p, nil
	case err := <-p.exited:
		return nil, fmt.Errorf("agent exited before it was ready: %v\n%s", err, p.logs)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		return nil, fmt.Errorf("agent not ready after a minute\n%s", p.logs)
	case <-ctx.Done():
		cmd.Process.Kill()
		return nil, ctx.Err()
	}
}

func (p *agentProc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and returns the exit error (nil: a clean shutdown).
func (p *agentProc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("agent did not stop within a minute of SIGTERM")
	}
}

// metrics scrapes the agent's /metrics: sample (name with labels) -> value.
func (p *agentProc) metrics() (map[string]float64, error) {
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
