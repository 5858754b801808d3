package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent"
)

// startTieredAgent runs an agent whose tiering endpoint is a directory (file://), with fast
// retention passes, until the test ends. It returns the agent and the archive directory.
func startTieredAgent(t *testing.T) (*agent.Agent, string) {
	t.Helper()
	archive := t.TempDir()
	cfg := agent.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RetentionCheckInterval = agent.Duration(100 * time.Millisecond)
	cfg.Tiering.Endpoint = "file://" + archive
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := agent.New(cfg, log)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatalf("agent Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("agent Shutdown: %v", err)
		}
	})
	return a, archive
}

// tierStatusJSON reads GET /v1/tier/status?topic=topic.
func tierStatusJSON(t *testing.T, httpAddr, topic string) agent.TierStatusResponse {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/v1/tier/status?topic=" + topic)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %s (%s): %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	var st agent.TierStatusResponse
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return st
}

// TestTierStatusEndToEnd: a tiered topic on a file:// endpoint uploads its closed segments,
// drops the local copies past local.retention.bytes, and `samsa tier status` shows both ranges;
// every record is still consumed from offset 0.
func TestTierStatusEndToEnd(t *testing.T) {
	a, archive := startTieredAgent(t)
	b, h := a.KafkaAddr(), a.HTTPAddr()
	mustCLI(t, "", "topic", "create", "cold", "--brokers", b, "--config", "remote.storage.enable=true",
		"--config", "segment.bytes=1024", "--config", "local.retention.bytes=1")
	mustCLI(t, "", "topic", "create", "plain", "--brokers", b, "--partitions", "2")

	var keys []string
	for round := range 6 { // one produce request (at least one batch) each: several segments
		var ks []string
		for i := range 40 {
			ks = append(ks, fmt.Sprintf("k%d-%02d", round, i))
		}
		produceLines(t, b, "cold", ks)
		keys = append(keys, ks...)
	}

	// Bounded wait (a failure bound, not a timing assertion) for the uploads and local deletes.
	var p0 struct {
		LocalStart, LocalEnd, RemoteStart, RemoteEnd int64
		Segs                                         int
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := tierStatusJSON(t, h, "cold")
		if len(st.Partitions) != 1 {
			t.Fatalf("partitions %+v", st.Partitions)
		}
		p := st.Partitions[0]
		if p.RemoteSegments > 0 && p.LocalStart > 0 && p.BacklogSegs == 0 && p.RemoteStart == 0 && p.RemoteEnd >= p.LocalStart {
			p0.LocalStart, p0.LocalEnd, p0.RemoteStart, p0.RemoteEnd, p0.Segs = p.LocalStart, p.LocalEnd, p.RemoteStart, p.RemoteEnd, p.RemoteSegments
			if p.LocalEnd != int64(len(keys)) || p.LastError != "" {
				t.Fatalf("status %+v", p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not uploaded and locally deleted after 60s: %+v", p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(archive, "cold", "0", "manifest.json")); err != nil {
		t.Fatalf("no manifest in the archive directory: %v", err)
	}

	out := mustCLI(t, "", "tier", "status", "cold", "--http", h)
	t.Logf("samsa tier status cold:\n%s", out)
	rs := rows(out)
	if len(rs) != 2 || strings.Join(rs[0], " ") != "TOPIC PARTITION LOCAL LOCAL-BYTES REMOTE REMOTE-SEGS REMOTE-BYTES BACKLOG LAST-ERROR" {
		t.Fatalf("table:\n%s", out)
	}
	// Sizes print as "1.2 KiB": two fields each.
	r := rs[1]
	if len(r) != 12 || r[0] != "cold" || r[1] != "0" ||
		r[2] != fmt.Sprintf("%d..%d", p0.LocalStart, p0.LocalEnd) ||
		r[5] != fmt.Sprintf("%d..%d", p0.RemoteStart, p0.RemoteEnd) || r[6] != fmt.Sprint(p0.Segs) ||
		r[9] != "0/0" || r[10] != "B" || r[11] != "-" {
		t.Fatalf("row %q, want local %d..%d remote %d..%d in %d segments\n%s", r,
			p0.LocalStart, p0.LocalEnd, p0.RemoteStart, p0.RemoteEnd, p0.Segs, out)
	}

	// Without a topic: every tiered topic ($SAMSA_HTTP names the agent), not the plain one.
	t.Setenv("SAMSA_HTTP", "http://"+h+"/")
	out = mustCLI(t, "", "tier", "status")
	if rs := rows(out); len(rs) != 2 || rs[1][0] != "cold" {
		t.Fatalf("all topics:\n%s", out)
	}
	if out := mustCLI(t, "", "tier", "status", "plain"); out != "topic \"plain\" is not tiered (remote.storage.enable is not true)\n" {
		t.Fatalf("plain topic: %q", out)
	}
	code, _, stderr := cli(t, "", "tier", "status", "nope")
	if code != exitError || stderr != fmt.Sprintf("samsa: agent at http://%s: unknown topic \"nope\"\n", h) {
		t.Fatalf("unknown topic: exit %d, %q", code, stderr)
	}

	metrics := httpGet(t, "http://"+h+"/metrics")
	for _, want := range []string{"\nsamsa_tier_store_reachable 1\n", "\nsamsa_tier_upload_lag_segments 0\n", "\nsamsa_tier_uploads_total "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", strings.TrimSpace(want))
		}
	}

	// Everything is still readable from offset 0, the older part from the archive.
	recs := consumeJSON(t, "--brokers", b, "--topic", "cold", "--from", "beginning", "--count", fmt.Sprint(len(keys)))
	if len(recs) != len(keys) {
		t.Fatalf("consumed %d records, want %d", len(recs), len(keys))
	}
	for i, r := range recs {
		if r.Offset != int64(i) || r.Key == nil || *r.Key != keys[i] || r.Value == nil || *r.Value != "value-of-"+keys[i] {
			t.Fatalf("record %d: %s", i, r.line)
		}
	}
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestTierStatusErrors: one clear line for an agent without tiering, an agent that is not
// there, and command-line mistakes.
func TestTierStatusErrors(t *testing.T) {
	a := startTestAgent(t)
	h := a.HTTPAddr()
	code, _, stderr := cli(t, "", "tier", "status", "--http", h)
	if want := fmt.Sprintf("samsa: agent at http://%s: tiering is off on this agent (tiering.endpoint is not set)\n", h); code != exitError || stderr != want {
		t.Errorf("tiering off: exit %d, %q, want %q", code, stderr, want)
	}
	if got := httpGet(t, "http://"+h+"/v1/tier/status"); got != "{\n  \"error\": \"tiering is off on this agent (tiering.endpoint is not set)\"\n}\n" {
		t.Errorf("tiering off JSON: %q", got)
	}

	ln := listenAndClose(t)
	code, _, stderr = cli(t, "", "tier", "status", "--http", ln)
	if code != exitError || !strings.HasPrefix(stderr, "samsa: agent at http://"+ln+" unreachable: dial tcp "+ln+": connect: connection refused") ||
		strings.Count(stderr, "\n") != 1 {
		t.Errorf("unreachable: exit %d, %q", code, stderr)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tier"}, "Usage:"},
		{[]string{"tier", "stats"}, `samsa tier: unknown sub-command "stats" (want status)`},
		{[]string{"tier", "status", "a", "b"}, `samsa tier status: unexpected argument "b" (one topic at most)`},
		{[]string{"tier", "status", "--http", "ftp://x"}, `samsa tier status: --http "ftp://x": want host:port or an http(s) URL`},
		{[]string{"tier", "status", "--timeout", "0s"}, `samsa tier status: --timeout must be positive, got 0s`},
	} {
		code, _, stderr := cli(t, "", tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
	if code, stdout, stderr := cli(t, "", "tier", "status", "-h"); code != exitOK || !strings.Contains(stdout+stderr, "BACKLOG") {
		t.Errorf("-h: exit %d, %q", code, stdout+stderr)
	}
	if code, stdout, _ := cli(t, "", "help", "tier", "status"); code != exitOK || !strings.Contains(stdout, "Usage: samsa tier status") {
		t.Errorf("help tier status: exit %d, %q", code, stdout)
	}
}

// listenAndClose returns a loopback address nothing listens on (any more).
func listenAndClose(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
