package testproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LookPath returns name found on PATH, else the first regular file called name in one of dirs
// (e.g. /usr/sbin, which is not on a normal user's PATH). ok is false when there is none.
func LookPath(name string, dirs ...string) (path string, ok bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	return findIn(name, dirs)
}

// FindInGoBin returns the program name installed by `go install`: in $(go env GOBIN), else in
// the bin directory of each $(go env GOPATH) entry. ok is false when there is none (or no go
// command).
func FindInGoBin(name string) (path string, ok bool) {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", false
	}
	lines := strings.Split(string(out), "\n")
	var dirs []string
	if gobin := strings.TrimSpace(lines[0]); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if len(lines) > 1 {
		for _, gopath := range filepath.SplitList(strings.TrimSpace(lines[1])) {
			dirs = append(dirs, filepath.Join(gopath, "bin"))
		}
	}
	return findIn(name, dirs)
}

func findIn(name string, dirs []string) (string, bool) {
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, true
		}
	}
	return "", false
}

// Missing skips the test because a program it needs is not installed, or fails it when the
// CI environment variable is set (CI installs everything, so there a missing program is a
// broken setup, not a reason to skip).
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// EnvWithout returns this process's environment without the variables whose names start with
// one of prefixes (e.g. "MINIO_", "AWS_"), which would change a child's configuration.
func EnvWithout(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
				break
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}
