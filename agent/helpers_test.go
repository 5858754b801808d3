package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent"
)

// startAgent runs an in-process agent on free loopback ports with its data in dir.
func startAgent(t testing.TB, dir string, mutate func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.DefaultConfig()
	cfg.DataDir = dir
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := agent.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return a
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// samsaBinary builds cmd/samsa once per test binary.
func samsaBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "samsa-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "samsa")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/samsa").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// agentProcess is an agent running as a subprocess.
type agentProcess struct {
	cmd       *exec.Cmd
	kafkaAddr string
	httpAddr  string
	exited    chan error
	logs      *strings.Builder
	logsMu    *sync.Mutex
}

// startAgentProcess starts `samsa agent` on free ports with extra environment and waits until
// it logs that it is ready.
func startAgentProcess(t testing.TB, dir string, env ...string) *agentProcess {
	t.Helper()
	cmd := exec.Command(samsaBinary(t), "agent", "--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	return startProcess(t, cmd, env...)
}

// startProcess starts an agent command and waits until it logs that it is ready.
func startProcess(t testing.TB, cmd *exec.Cmd, env ...string) *agentProcess {
	t.Helper()
	cmd.Env = append(os.Environ(), append([]string{"SAMSA_LOG_FORMAT=json"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProcess{cmd: cmd, exited: make(chan error, 1), logs: &strings.Builder{}, logsMu: &sync.Mutex{}}
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.logsMu.Lock()
			p.logs.WriteString(line + "\n")
			p.logsMu.Unlock()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "samsa agent ready" {
				ready <- m
			}
		}
		io.Copy(io.Discard, stderr)
		p.exited <- cmd.Wait()
	}()
	select {
	case m := <-ready:
		p.kafkaAddr, _ = m["kafka"].(string)
		p.httpAddr, _ = m["http"].(string)
	case err := <-p.exited:
		t.Fatalf("agent exited before ready: %v\n%s", err, p.Logs())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("agent not ready after 60s (failure bound)\n%s", p.Logs())
	}
	return p
}

// Logs returns what the agent logged so far.
func (p *agentProcess) Logs() string {
	p.logsMu.Lock()
	defer p.logsMu.Unlock()
	return p.logs.String()
}

// kill9 kills the agent with SIGKILL and waits for it.
func (p *agentProcess) kill9(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and returns the exit error.
func (p *agentProcess) stop(t testing.TB) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return err
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("agent did not stop within 60s of SIGTERM (failure bound)\n%s", p.Logs())
		return nil
	}
}
