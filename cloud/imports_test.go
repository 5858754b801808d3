package cloud_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportGraph: the cloud side imports the batch codec and the bucket layout, never the
// agent or the tiering engine (DESIGN.md: cloud imports only agent/commitlog/batch and the
// tiering manifest). Test-only imports (the agent that makes test archives) do not count.
func TestImportGraph(t *testing.T) {
	const module = "github.com/samsa-io/samsa/"
	allowed := map[string]bool{
		module + "agent/commitlog/batch": true,
		module + "tiering/manifest":      true,
	}
	for _, pattern := range []string{"./...", "../cmd/samsa-cloud"} {
		out, err := exec.Command("go", "list", "-deps", pattern).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pattern, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s: %q", pattern, deps)
		}
		for _, dep := range deps {
			switch {
			case !strings.HasPrefix(dep, module), allowed[dep],
				strings.HasPrefix(dep, module+"cloud"), dep == module+"cmd/samsa-cloud":
			default:
				t.Errorf("%s depends on %s", pattern, dep)
			}
		}
		for _, banned := range []string{module + "agent", module + "tiering"} {
			for _, dep := range deps {
				if dep == banned {
					t.Errorf("%s depends on %s", pattern, banned)
				}
			}
		}
	}
}
