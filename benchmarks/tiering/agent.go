package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
	"github.com/samsa-io/samsa/internal/testproc"
)

// buildSamsa compiles ./cmd/samsa of this module into work and returns the binary's path.
func buildSamsa(ctx context.Context, work string) (string, error) {
	bin := filepath.Join(work, "bin", "samsa")
	return bin, benchkit.BuildSamsa(ctx, bin)
}

// tieringBlock is the agent's tiering: YAML block; nil starts an agent without tiering.
type tieringBlock struct {
	endpoint, bucket, prefix, region string
	accessKey, secretKey             string
	cacheBytes, readAheadBytes       int64
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
		fmt.Fprintf(&b, "  read_ahead_bytes: %d\n", t.readAheadBytes)
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
	*benchkit.Agent
	spawned  time.Time
	http     string
	kafka    string
	httpc    *http.Client
	mu       sync.Mutex
	uploads  []uploadEvent
	tiering  time.Time // the agent's "tiering on" line: the uploader starts right after it
	readyAt  time.Time // the agent's "samsa agent ready" line
	warnings []string
}

// startAgent runs `samsa agent --config cfgPath` and waits for its ready line.
func startAgent(ctx context.Context, bin, cfgPath string) (*agentProc, error) {
	a := &agentProc{httpc: &http.Client{Timeout: 10 * time.Second}}
	var err error
	a.Agent, err = benchkit.StartAgent(ctx, bin, benchkit.AgentOptions{
		Args: []string{"--config", cfgPath},
		// Without SAMSA_* and AWS_* variables, which would override the config file.
		Env:          testproc.EnvWithout("SAMSA_", "AWS_"),
		LogTail:      64 << 10,
		ReadyTimeout: 60 * time.Second,
		StopTimeout:  30 * time.Second,
		OnLog:        a.onLog,
	})
	if err != nil {
		return nil, err
	}
	a.spawned, a.kafka, a.http = a.Started, a.KafkaAddr, a.HTTPAddr
	return a, nil
}

// logLine is what the benchmark reads of the agent's JSON log lines.
type logLine struct {
	Time  time.Time `json:"time"`
	Level string    `json:"level"`
	Msg   string    `json:"msg"`
	Base  int64     `json:"base"`
	Bytes int64     `json:"bytes"`
	Took  int64     `json:"took"` // slog writes a time.Duration as nanoseconds
}

// onLog records upload events, the "tiering on" and ready times and warnings, and keeps all
// but the "segment uploaded" lines (thousands of them) in the log tail.
func (a *agentProc) onLog(line []byte) bool {
	var l logLine
	if json.Unmarshal(line, &l) != nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case l.Msg == "segment uploaded":
		a.uploads = append(a.uploads, uploadEvent{At: l.Time, Base: l.Base, Bytes: l.Bytes, Took: time.Duration(l.Took)})
		return false
	case l.Msg == "tiering on":
		a.tiering = l.Time
	case l.Msg == "samsa agent ready":
		a.readyAt = l.Time
	case l.Level == "WARN" || l.Level == "ERROR":
		if len(a.warnings) < 20 {
			a.warnings = append(a.warnings, string(line))
		}
	}
	return true
}

func (a *agentProc) pid() int {
	if a == nil || a.Agent == nil {
		return 0
	}
	return a.PID()
}

// events returns a copy of the upload events so far, the "tiering on" time and warnings.
func (a *agentProc) events() ([]uploadEvent, time.Time, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uploadEvent(nil), a.uploads...), a.tiering, append([]string(nil), a.warnings...)
}

// stop ends the agent with SIGTERM (a clean shutdown), or SIGKILL after 30 s.
func (a *agentProc) stop() error {
	if a == nil || a.Agent == nil {
		return nil
	}
	return a.Stop()
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
		case <-a.Exited():
			return time.Time{}, last, fmt.Errorf("agent exited: %v\n%s", a.ExitErr(), a.Log)
		case <-ctx.Done():
			return time.Time{}, last, fmt.Errorf("tier status not reached within %s: last %+v (error %v)\n%s", timeout, last, lastErr, a.Log)
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
