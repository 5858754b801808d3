package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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

// buildSamsa compiles ./cmd/samsa of this module into work and returns the binary's path.
func buildSamsa(ctx context.Context, work string) (string, error) {
	bin := filepath.Join(work, "bin", "samsa")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/samsa-io/samsa/cmd/samsa")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/samsa: %w\n%s", err, out)
	}
	return bin, nil
}

// tieringBlock is the agent's tiering: YAML block; nil starts an agent without tiering.
type tieringBlock struct {
	endpoint, bucket, prefix, region string
	accessKey, secretKey             string
	cacheBytes                       int64
}

// agentConfig writes the YAML config of one agent start.
func agentConfig(path, dataDir, logLevel string, t *tieringBlock) error {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %q\nkafka_addr: 127.0.0.1:0\nhttp_addr: 127.0.0.1:0\n", dataDir)
	fmt.Fprintf(&b, "log_format: json\nlog_level: %s\n", logLevel)
	// Local retention (local.retention.bytes of the topic) deletes uploaded local copies at
	// this pace; the default minute would make the benchmark wait.
	b.WriteString("retention_check_interval: 200ms\n")
	if t != nil {
		fmt.Fprintf(&b, "tiering:\n  endpoint: %q\n  bucket: %q\n  prefix: %q\n  region: %q\n", t.endpoint, t.bucket, t.prefix, t.region)
		fmt.Fprintf(&b, "  access_key_id: %q\n  secret_access_key: %q\n  cache_bytes: %d\n", t.accessKey, t.secretKey, t.cacheBytes)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// uploadEvent is one "segment uploaded" debug line of the agent's uploader.
type uploadEvent struct {
	At    time.Time     // when the manifest listing the segment had been written
	Base  int64         // the segment's base offset
	Bytes int64         // the .log bytes
	Took  time.Duration // the three PUTs and the manifest PUT
}

// agentProc is a `samsa agent` child process.
type agentProc struct {
	cmd      *exec.Cmd
	exited   chan error
	spawned  time.Time
	http     string
	kafka    string
	log      *tailBuffer
	httpc    *http.Client
	mu       sync.Mutex
	uploads  []uploadEvent
	tiering  time.Time // the agent's "tiering on" line: the uploader starts right after it
	readyAt  time.Time // the agent's "samsa agent ready" line
	warnings []string
}

// startAgent runs `samsa agent --config cfgPath` and waits for its ready line.
func startAgent(ctx context.Context, bin, cfgPath string) (*agentProc, error) {
	a := &agentProc{exited: make(chan error, 1), log: &tailBuffer{max: 64 << 10}, httpc: &http.Client{Timeout: 10 * time.Second}}
	a.cmd = exec.Command(bin, "agent", "--config", cfgPath)
	a.cmd.Env = cleanAgentEnv()
	a.cmd.SysProcAttr = childAttr()
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	a.cmd.Stdout = a.log
	a.spawned = time.Now()
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	ready := make(chan struct{})
	go a.readLog(stderr, ready)
	go func() { a.exited <- a.cmd.Wait() }()
	select {
	case <-ready:
		return a, nil
	case err := <-a.exited:
		return nil, fmt.Errorf("agent exited before ready: %v\n%s", err, a.log)
	case <-time.After(60 * time.Second):
		a.stop()
		return nil, fmt.Errorf("agent not ready after 60s\n%s", a.log)
	case <-ctx.Done():
		a.stop()
		return nil, ctx.Err()
	}
}

// cleanAgentEnv is the environment without SAMSA_* and AWS_* variables, which would override
// the config file.
func cleanAgentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SAMSA_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}

// logLine is what the benchmark reads of the agent's JSON log lines.
type logLine struct {
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
	Kafka string    `json:"kafka"`
	HTTP  string    `json:"http"`
	Base  int64     `json:"base"`
	Bytes int64     `json:"bytes"`
	Took  int64     `json:"took"` // slog writes a time.Duration as nanoseconds
}

// readLog keeps the log's tail, records upload events and reports the ready line.
func (a *agentProc) readLog(r io.Reader, ready chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		var l logLine
		if json.Unmarshal(line, &l) != nil {
			a.log.Write(append(line, '\n'))
			continue
		}
		if l.Msg != "segment uploaded" { // thousands of them: keep the tail readable
			a.log.Write(append(line, '\n'))
		}
		a.mu.Lock()
		switch {
		case l.Msg == "segment uploaded":
			a.uploads = append(a.uploads, uploadEvent{At: l.Time, Base: l.Base, Bytes: l.Bytes, Took: time.Duration(l.Took)})
		case l.Msg == "tiering on":
			a.tiering = l.Time
		case l.Msg == "samsa agent ready":
			a.readyAt = l.Time
			a.kafka, a.http = l.Kafka, l.HTTP
		case l.Level == "WARN" || l.Level == "ERROR":
			if len(a.warnings) < 20 {
				a.warnings = append(a.warnings, string(line))
			}
		}
		a.mu.Unlock()
		if !sent && l.Msg == "samsa agent ready" {
			close(ready)
			sent = true
		}
	}
}

func (a *agentProc) pid() int {
	if a == nil || a.cmd == nil || a.cmd.Process == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// events returns a copy of the upload events so far, the "tiering on" time and warnings.
func (a *agentProc) events() ([]uploadEvent, time.Time, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uploadEvent(nil), a.uploads...), a.tiering, append([]string(nil), a.warnings...)
}

// stop ends the agent with SIGTERM (a clean shutdown), or SIGKILL after 30 s.
func (a *agentProc) stop() error {
	if a == nil || a.cmd == nil || a.cmd.Process == nil {
		return nil
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.exited:
		a.exited <- err
		if err != nil {
			return fmt.Errorf("agent exit: %w\n%s", err, a.log)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		return errors.New("agent did not stop within 30s of SIGTERM; killed")
	}
}

// partStatus is one partition of GET /v1/tier/status.
type partStatus struct {
	LocalStart     int64  `json:"local_start_offset"`
	LocalEnd       int64  `json:"local_end_offset"`
	RemoteStart    int64  `json:"remote_start_offset"`
	RemoteEnd      int64  `json:"remote_end_offset"`
	RemoteSegments int    `json:"remote_segments"`
	BacklogSegs    int    `json:"backlog_segments"`
	ManifestLoaded bool   `json:"manifest_loaded"`
	LastError      string `json:"last_error"`
}

// status returns partition 0 of the topic from GET /v1/tier/status.
func (a *agentProc) status(ctx context.Context, topic string) (partStatus, error) {
	var body struct {
		Partitions []partStatus `json:"partitions"`
	}
	if err := a.getJSON(ctx, "/v1/tier/status?topic="+topic, &body); err != nil {
		return partStatus{}, err
	}
	if len(body.Partitions) != 1 {
		return partStatus{}, fmt.Errorf("tier status of %s: %d partitions, want 1", topic, len(body.Partitions))
	}
	return body.Partitions[0], nil
}

func (a *agentProc) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.http+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitStatus polls the tier status every 10 ms until done says so, and returns the time it
// first did and that status.
func (a *agentProc) waitStatus(ctx context.Context, topic string, timeout time.Duration, done func(partStatus) bool) (time.Time, partStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last partStatus
	var lastErr error
	for {
		st, err := a.status(ctx, topic)
		if err == nil && done(st) {
			return time.Now(), st, nil
		}
		if err == nil {
			last = st
		} else {
			lastErr = err
		}
		select {
		case err := <-a.exited:
			a.exited <- err
			return time.Time{}, last, fmt.Errorf("agent exited: %v\n%s", err, a.log)
		case <-ctx.Done():
			return time.Time{}, last, fmt.Errorf("tier status not reached within %s: last %+v (error %v)\n%s", timeout, last, lastErr, a.log)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// metrics scrapes /metrics into name -> value (samples without labels only).
func (a *agentProc) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.http+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.httpc.Do(req)
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
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
