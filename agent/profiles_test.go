package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/membudget"
)

// profilesDir holds the device profiles and the systemd unit.
const profilesDir = "../firmware-configs"

// deviceProfiles are the profiles firmware-configs/ must ship.
var deviceProfiles = []string{
	"raspberry-pi-zero-2w.yaml", "raspberry-pi-3.yaml", "raspberry-pi-4.yaml", "raspberry-pi-5.yaml",
	"industrial-gateway-256mb.yaml", "x86-edge-server.yaml",
}

// TestDeviceProfiles loads every profile through the real config loader, which rejects any
// unknown key or bad value, checks their topic defaults with the commit log's own validation,
// checks that each sets a memory budget whose shares hold the buffers it configures (so
// nothing is lowered behind the reader's back), and that the commented tiering and MQTT
// examples load too once uncommented.
func TestDeviceProfiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(profilesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, want := range deviceProfiles {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("firmware-configs/%s is missing", want)
		}
	}
	readme, err := os.ReadFile(filepath.Join(profilesDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(profilesDir, name)
			cfg, err := agent.LoadConfig(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := commitlog.ValidateTopicConfigs(cfg.TopicDefaults); err != nil {
				t.Fatalf("topic_defaults: %v", err)
			}
			checkProfileBudget(t, cfg)
			if cfg.DataDir != "/var/lib/samsa" || cfg.HostMetrics.Interval == 0 {
				t.Errorf("data_dir %q (want the unit's /var/lib/samsa), host_metrics.interval %s", cfg.DataDir, cfg.HostMetrics.Interval)
			}
			if !strings.Contains(string(readme), name) {
				t.Errorf("README.md does not mention %s", name)
			}
			checkProfileExamples(t, path)
		})
	}
}

// checkProfileBudget checks the profile's buffers fit the shares of its memory budget.
func checkProfileBudget(t *testing.T, cfg agent.Config) {
	t.Helper()
	b, err := membudget.New(membudget.Options{MaxBytes: cfg.Memory.MaxBytes, ThrottlePercent: cfg.Memory.ThrottlePercent})
	if err != nil || !b.Enabled() {
		t.Fatalf("memory.max_bytes %d: every profile sets a budget (%v)", cfg.Memory.MaxBytes, err)
	}
	for _, c := range []struct {
		key   string
		v     int64
		share membudget.Share
	}{
		{"queued_max_request_bytes", int64(cfg.QueuedMaxRequestBytes), membudget.Requests},
		{"socket_request_max_bytes", int64(cfg.SocketRequestMaxBytes), membudget.Requests},
		{"cleaner.dedupe_buffer_bytes", cfg.Cleaner.DedupeBufferBytes, membudget.Cleaner},
	} {
		if b.Limit(c.share, c.v) != c.v {
			t.Errorf("%s %d is above the budget's %s share %d", c.key, c.v, c.share, b.Share(c.share))
		}
	}
}

// checkProfileExamples uncomments each "# --- example: NAME" block of the profile, appends it
// and loads the result. The mqtt block is checked once the agent knows the mqtt: key.
func checkProfileExamples(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		name, ok := strings.CutPrefix(lines[i], "# --- example: ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		found[name] = true
		var block []string
		for i++; i < len(lines) && lines[i] != "# --- end ---"; i++ {
			if !strings.HasPrefix(lines[i], "# ") {
				t.Fatalf("example %s: line %q is not a commented YAML line", name, lines[i])
			}
			block = append(block, strings.TrimPrefix(lines[i], "# "))
		}
		p := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(p, []byte(string(data)+"\n"+strings.Join(block, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := agent.LoadConfig(p, nil)
		switch {
		case err != nil && name == "mqtt" && strings.Contains(err.Error(), `unknown key "mqtt"`):
			t.Logf("the mqtt example is not checked: this agent has no mqtt: block yet")
		case err != nil:
			t.Errorf("the %s example does not load once uncommented: %v", name, err)
		}
	}
	if !found["tiering"] || !found["mqtt"] {
		t.Errorf("examples found %v, want tiering and mqtt", found)
	}
}

// TestSystemdUnit checks firmware-configs/samsa.service with systemd-analyze verify (with
// ExecStart pointed at a freshly built samsa, which verify requires to exist), and that it
// carries the settings the README promises.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(profilesDir, "samsa.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{"StateDirectory=samsa", "LimitNOFILE=", "MemoryMax=", "Restart=on-failure",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
		"ExecStart=/usr/local/bin/samsa agent --config /etc/samsa/samsa.yaml"} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("samsa.service lacks %q", want)
		}
	}
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	p := filepath.Join(t.TempDir(), "samsa.service")
	unit = strings.ReplaceAll(unit, "/usr/local/bin/samsa", samsaBinary(t))
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", p).CombinedOutput()
	if err != nil || strings.Contains(string(out), "samsa.service") { // other lines are about the host's units
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
