package benchkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// samsaPackage is the agent's main package, built from the module the benchmark runs in.
const samsaPackage = "github.com/samsa-io/samsa/cmd/samsa"

// BuildSamsa compiles ./cmd/samsa of this module into bin with the go command's defaults.
func BuildSamsa(ctx context.Context, bin string) error {
	return goBuild(ctx, bin, nil)
}

// BuildSamsaRelease compiles ./cmd/samsa into bin the way cross-build.sh builds the release
// binaries, for this machine: CGO_ENABLED=0, -trimpath, -ldflags "-s -w".
func BuildSamsaRelease(ctx context.Context, bin string) error {
	return goBuild(ctx, bin, []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags", "-s -w")
}

func goBuild(ctx context.Context, bin string, env []string, flags ...string) error {
	args := append(append([]string{"build"}, flags...), "-o", bin, samsaPackage)
	cmd := exec.CommandContext(ctx, "go", args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/samsa: %w\n%s", err, out)
	}
	return nil
}
