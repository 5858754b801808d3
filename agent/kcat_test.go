package agent_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// requireTool skips when a Debian tool is missing locally; in CI (.ci/test.sh installs it) a
// missing tool fails the test.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (bash .ci/test.sh installs it)", name)
		}
		t.Skipf("%s not installed; run bash .ci/test.sh", name)
	}
	return path
}

func TestKcatMetadataProduceConsume(t *testing.T) {
	kcat := requireTool(t, "kcat")
	a := startAgent(t, t.TempDir(), nil)
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(kcat, append([]string{"-b", a.KafkaAddr()}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
		}
		return out.String()
	}
	var lines []string
	for i := 0; i < 500; i++ {
		lines = append(lines, fmt.Sprintf("key%d:value %d from kcat", i%7, i))
	}
	run(strings.Join(lines, "\n")+"\n", "-P", "-t", "kc", "-K", ":", "-z", "lz4")
	meta := run("", "-L", "-t", "kc")
	if !strings.Contains(meta, `topic "kc" with 1 partitions`) || !strings.Contains(meta, "leader 0") {
		t.Fatalf("kcat -L output:\n%s", meta)
	}
	out := run("", "-C", "-t", "kc", "-e", "-o", "beginning", "-f", "%k:%s\n")
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("kcat consumed %d lines, want %d", len(got), len(lines))
	}
	for i := range lines {
		if got[i] != lines[i] {
			t.Fatalf("line %d: got %q, want %q", i, got[i], lines[i])
		}
	}
}
