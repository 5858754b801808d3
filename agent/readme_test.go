package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The configuration example in the README must be one the agent accepts: every key known,
// every value valid.
func TestREADMEConfigurationExampleLoads(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "## Configuration")
	if !ok {
		t.Fatal("README has no Configuration section")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("README's Configuration section has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	path := filepath.Join(t.TempDir(), "samsa.yaml")
	if err := os.WriteFile(path, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, nil)
	if err != nil {
		t.Fatalf("the README's configuration example does not load: %v", err)
	}
	if cfg.Disk.MinFreeBytes != 268435456 || cfg.Cleaner.DedupeBufferBytes != 16777216 {
		t.Fatalf("README example read as disk %+v cleaner %+v", cfg.Disk, cfg.Cleaner)
	}
}
