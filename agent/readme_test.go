package agent

import (
	"os"
	"strings"
	"testing"
)

// loadREADMEExample loads, through the real loader, the first yaml block after the README
// heading (a line starting with it) and fails the test if it is missing or does not load.
func loadREADMEExample(t *testing.T, heading string) Config {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), heading)
	if !ok {
		t.Fatalf("README has no %q section", heading)
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatalf("README's %q section has no yaml block", heading)
	}
	block, _, _ = strings.Cut(block, "```")
	cfg, err := LoadConfig(writeFile(t, block), nil)
	if err != nil {
		t.Fatalf("the README's example under %q does not load: %v", heading, err)
	}
	return cfg
}

// The configuration example in the README must be one the agent accepts: every key known,
// every value valid.
func TestREADMEConfigurationExampleLoads(t *testing.T) {
	cfg := loadREADMEExample(t, "## Configuration")
	if cfg.Disk.MinFreeBytes != 268435456 || cfg.Cleaner.DedupeBufferBytes != 16777216 {
		t.Fatalf("README example read as disk %+v cleaner %+v", cfg.Disk, cfg.Cleaner)
	}
}
