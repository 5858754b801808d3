package agent

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzConfig feeds a whole YAML config file and SAMSA_* environment entries (one per line)
// through the loader, as LoadConfig does. Nothing may panic; a config that loads validates,
// and every scalar key shown as text (what error messages and `samsa agent --print-config`
// print) sets back to the same value: the key parsers and formatters agree.
func FuzzConfig(f *testing.F) {
	for _, s := range configSeeds(f) {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, doc, env string) {
		c := DefaultConfig()
		if err := c.applyYAML([]byte(doc)); err != nil {
			return
		}
		if err := c.applyEnv(strings.Split(env, "\n")); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		for i := range fields {
			fd := &fields[i]
			if fd.setNode != nil {
				continue // a mapping or list: YAML only, shown for messages
			}
			shown := fd.show(&c)
			again := c
			if err := fd.setChecked(&again, shown); err != nil {
				t.Fatalf("key %s: its value shown as %q does not set back: %v", fd.key, shown, err)
			}
			if got := fd.show(&again); got != shown {
				t.Fatalf("key %s: %q set back shows as %q", fd.key, shown, got)
			}
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("validated once, then not: %v", err)
		}
	})
}

// FuzzParseDuration: a duration that parses formats as a Go duration that parses to the same
// value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"500ms", "2s", "1m30s", "1500", " 7 ", "-1", "9223372036854", "9223372036855", "1h0m0s", "0", "1.5h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		again, err := ParseDuration(d.String())
		if err != nil || again != d {
			t.Fatalf("%q parsed as %v, which parses as %v, %v", s, time.Duration(d), time.Duration(again), err)
		}
	})
}

// FuzzTopicDefaults: SAMSA_TOPIC_DEFAULTS ("k=v,k2=v2", a piece without '=' continuing the
// previous value) parses into keys without spaces around them, and formats back to text that
// parses to the same map.
func FuzzTopicDefaults(f *testing.F) {
	for _, s := range topicDefaultsSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := parseTopicDefaults(s)
		if !ok {
			return
		}
		for k := range m {
			if k == "" || k != strings.TrimSpace(k) || strings.ContainsAny(k, "=,") {
				t.Fatalf("%q parsed key %q", s, k)
			}
		}
		text := formatTopicDefaults(m)
		again, ok := parseTopicDefaults(text)
		if !ok || !maps.Equal(again, m) {
			t.Fatalf("%q parsed as %q, formatted as %q, which parses as %q (%v)", s, m, text, again, ok)
		}
	})
}

var topicDefaultsSeeds = []string{"cleanup.policy=compact,delete,segment.bytes=1048576", " a = 1 ,b=2=3", ",x", "a=1,a=2",
	"a=,,", "  ", "k=v, ,w", "=v"}

// configSeeds are YAML files and environments: the firmware profiles, every section, bad values.
func configSeeds(tb testing.TB) map[string][2]string {
	seeds := map[string][2]string{
		"empty":     {"", ""},
		"null":      {"~\n", ""},
		"env_only":  {"", "SAMSA_FSYNC=always\nSAMSA_FSYNC_INTERVAL=250\nSAMSA_TOPIC_DEFAULTS=cleanup.policy=compact,delete,segment.bytes=1048576\nSAMSA_DISK_MIN_FREE_BYTES=1048576"},
		"sections":  {"disk:\n  min_free_bytes: 1048576\ncleaner:\ntiering:\n  endpoint: file:///var/samsa\nmemory:\n  max_bytes: 33554432\n", "SAMSA_LOG_LEVEL=debug"},
		"aliases":   {"fsync_interval: &d 2s\nretention_check_interval: *d\ntopic_defaults: {retention.ms: 1000, cleanup.policy: delete}\n", ""},
		"bad_types": {"kafka_addr: [1]\n", "SAMSA_NODE_ID=x"},
		"mqtt":      {issueMQTTYAML, ""},
	}
	profiles, err := filepath.Glob(filepath.Join("..", "firmware-configs", "*.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range profiles {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		seeds["profile_"+strings.TrimSuffix(filepath.Base(p), ".yaml")] = [2]string{string(data), ""}
	}
	return seeds
}

// TestWriteConfigFuzzCorpus rewrites testdata/fuzz/FuzzConfig, FuzzParseDuration and
// FuzzTopicDefaults when SAMSA_WRITE_FUZZ_CORPUS=1.
func TestWriteConfigFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SAMSA_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	write := func(target, name, content string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range configSeeds(t) {
		write("FuzzConfig", name, fmt.Sprintf("string(%q)\nstring(%q)\n", s[0], s[1]))
	}
	for i, s := range []string{"500ms", "1500", " 7 ", "9223372036855", "1h0m0s", "1.5h"} {
		write("FuzzParseDuration", fmt.Sprintf("seed%d", i), fmt.Sprintf("string(%q)\n", s))
	}
	for i, s := range topicDefaultsSeeds {
		write("FuzzTopicDefaults", fmt.Sprintf("seed%d", i), fmt.Sprintf("string(%q)\n", s))
	}
}
