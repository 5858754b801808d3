package benchkit

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testproc"
)

// RequireTool skips the test when find reports a needed program missing, or fails it when
// the CI environment variable is set (CI installs every tool).
func RequireTool(t testing.TB, find func() error) {
	t.Helper()
	if err := find(); err != nil {
		testproc.Missing(t, err.Error())
	}
}

// RunSmoke runs a benchmark's run with args under timeout (a bound on failure, not a
// timing) and returns what it printed on stdout; an error fails the test with its stderr.
func RunSmoke(t testing.TB, timeout time.Duration, run RunFunc, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	return stdout.String()
}

// CheckOutput fails the test for every want that out lacks, and if out shows NaN or Inf.
func CheckOutput(t testing.TB, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
		t.Errorf("output has NaN or Inf:\n%s", out)
	}
}

// ReadJSON decodes the JSON file at path into v, failing the test if it cannot.
func ReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("bad JSON in %s: %v", path, err)
	}
}
