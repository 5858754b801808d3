package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// samsaAgent is an agent under test: a child process (the normal case) or, with
// -samsa-inprocess, an agent.Agent inside this process so -cpuprofile sees the server.
type samsaAgent struct {
	kafka
	child  *benchkit.Agent
	inproc *agent.Agent
	ver    string
}

// buildSamsa compiles ./cmd/samsa of this module into work and returns the binary's path.
func buildSamsa(ctx context.Context, work string) (string, error) {
	bin := filepath.Join(work, "bin", "samsa")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built for an earlier fsync mode of this run
	}
	return bin, benchkit.BuildSamsa(ctx, bin)
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
	s := &samsaAgent{kafka: kafka{fetchMaxBytes: int32(o.fetchMaxBytes)}}
	if out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput(); err == nil {
		s.ver = strings.TrimSpace(string(out))
	}
	child, err := benchkit.StartAgent(ctx, bin, benchkit.AgentOptions{
		Args:    []string{"--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"},
		Env:     append(os.Environ(), "SAMSA_FSYNC="+fsync, "SAMSA_LOG_FORMAT=json", "SAMSA_LOG_LEVEL=info"),
		LogTail: 8 << 10, ReadyTimeout: 30 * time.Second, StopTimeout: 20 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	s.child, s.addr = child, child.KafkaAddr
	logf("samsa agent pid %d on %s (fsync=%s)", child.PID(), s.addr, fsync)
	return s, nil
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
		return nil, fmt.Errorf("in-process agent: %w", err)
	}
	if err := a.Start(); err != nil {
		return nil, fmt.Errorf("in-process agent: %w", err)
	}
	return &samsaAgent{kafka: kafka{addr: a.KafkaAddr(), fetchMaxBytes: int32(o.fetchMaxBytes)}, inproc: a, ver: "in-process"}, nil
}

func (s *samsaAgent) version() string { return s.ver }

func (s *samsaAgent) pid() int {
	if s.child == nil {
		return 0
	}
	return s.child.PID()
}

// close stops the agent with SIGTERM (a clean shutdown), or SIGKILL after 20 s.
func (s *samsaAgent) close() error {
	if s.inproc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return s.inproc.Shutdown(ctx)
	}
	if s.child == nil {
		return nil
	}
	return s.child.Stop()
}
