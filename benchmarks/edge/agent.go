package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
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
func buildSamsa(ctx context.Context, work string) (string, error) {
	bin := filepath.Join(work, "samsa")
	return bin, benchkit.BuildSamsaRelease(ctx, bin)
}

// startAgent starts `samsa agent --config profile` with its data in dir and listeners on
// random loopback ports, and waits until it logs that it is ready.
func startAgent(ctx context.Context, bin, profile, dir string) (*benchkit.Agent, error) {
	return benchkit.StartAgent(ctx, bin, benchkit.AgentOptions{
		Args: []string{"--config", profile, "--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"},
		Env:  append(os.Environ(), "SAMSA_LOG_FORMAT=json"),
		// Generous: the device profiles may fsync every write on a slow disk.
		ReadyTimeout: time.Minute, StopTimeout: time.Minute,
	})
}

// agentMetrics scrapes the agent's /metrics: sample (name with labels) -> value.
func agentMetrics(a *benchkit.Agent) (map[string]float64, error) {
	resp, err := http.Get("http://" + a.HTTPAddr + "/metrics")
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
