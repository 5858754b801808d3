package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/agent"
)

// samsaAgent is an agent under test: a child process (the normal case) or, with
// -samsa-inprocess, an agent.Agent inside this process so -cpuprofile sees the server.
type samsaAgent struct {
	kafka
	cmd     *exec.Cmd
	exited  chan error
	inproc  *agent.Agent
	ver     string
	stderrT *tailBuffer
}

// buildSamsa compiles ./cmd/samsa of this module into work and returns the binary's path.
func buildSamsa(ctx context.Context, work string) (string, error) {
	bin := filepath.Join(work, "bin", "samsa")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built for an earlier fsync mode of this run
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/samsa-io/samsa/cmd/samsa")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/samsa: %w\n%s", err, out)
	}
	return bin, nil
}

func startSamsa(ctx context.Context, o options, work, dir, fsync string, logf func(string, ...any)) (system, error) {
	if o.inProcess {
		return startSamsaInProcess(o, dir, fsync)
	}
	bin := o.samsaBin
	if bin == "" {
		logf("building samsa (go build ./cmd/samsa)")
		var err error
		if bin, err = buildSamsa(ctx, work); err != nil {
			return nil, err
		}
	}
	s := &samsaAgent{kafka: kafka{fetchMaxBytes: int32(o.fetchMaxBytes)}, exited: make(chan error, 1), stderrT: &tailBuffer{max: 8 << 10}}
	if out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput(); err == nil {
		s.ver = strings.TrimSpace(string(out))
	}
	s.cmd = exec.Command(bin, "agent", "--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	s.cmd.Env = append(os.Environ(), "SAMSA_FSYNC="+fsync, "SAMSA_LOG_FORMAT=json", "SAMSA_LOG_LEVEL=info")
	s.cmd.SysProcAttr = childAttr()
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	ready := make(chan string, 1)
	go s.readLog(stderr, ready)
	go func() { s.exited <- s.cmd.Wait() }()
	select {
	case addr := <-ready:
		s.addr = addr
	case err := <-s.exited:
		return nil, fmt.Errorf("agent exited before ready: %v\n%s", err, s.stderrT)
	case <-time.After(30 * time.Second):
		s.close()
		return nil, fmt.Errorf("agent not ready after 30s\n%s", s.stderrT)
	case <-ctx.Done():
		s.close()
		return nil, ctx.Err()
	}
	logf("samsa agent pid %d on %s (fsync=%s)", s.cmd.Process.Pid, s.addr, fsync)
	return s, nil
}

// readLog keeps the agent's log tail and reports the Kafka address from the ready line.
func (s *samsaAgent) readLog(r io.Reader, ready chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		s.stderrT.Write(append(line, '\n'))
		if sent {
			continue
		}
		var m struct {
			Msg   string `json:"msg"`
			Kafka string `json:"kafka"`
		}
		if json.Unmarshal(line, &m) == nil && m.Msg == "samsa agent ready" && m.Kafka != "" {
			ready <- m.Kafka
			sent = true
		}
	}
}

func startSamsaInProcess(o options, dir, fsync string) (system, error) {
	cfg := agent.DefaultConfig()
	cfg.DataDir = dir
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Fsync = fsync
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := agent.New(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := a.Start(); err != nil {
		return nil, err
	}
	return &samsaAgent{kafka: kafka{addr: a.KafkaAddr(), fetchMaxBytes: int32(o.fetchMaxBytes)}, inproc: a, ver: "in-process"}, nil
}

func (s *samsaAgent) version() string { return s.ver }

func (s *samsaAgent) pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// close stops the agent with SIGTERM (a clean shutdown), or SIGKILL after 20 s.
func (s *samsaAgent) close() error {
	if s.inproc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return s.inproc.Shutdown(ctx)
	}
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err
		if err != nil {
			return fmt.Errorf("agent exit: %w\n%s", err, s.stderrT)
		}
		return nil
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		return errors.New("agent did not stop within 20s of SIGTERM; killed")
	}
}

// childAttr makes a server die with the benchmark if the benchmark dies first.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = bytes.Clone(t.b[len(t.b)-t.max:])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
