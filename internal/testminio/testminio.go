// Package testminio runs a real MinIO server for tests: one process per Start, on 127.0.0.1
// ports of its own, with a fresh data directory, killed when the test ends. Tests talk to it
// through the S3 API like to any S3 service; nothing is mocked. Launch starts one outside a
// test (benchmarks).
//
// The binary is built once with
//
//	go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//
// (bash .ci/test.sh does it; the first build takes minutes) and found through
// $SAMSA_MINIO_BIN, then $(go env GOBIN) or $(go env GOPATH)/bin, then PATH. Without it a test is skipped,
// or fails when the CI environment variable is set.
//
// MinIO always listens on every loopback address (127.0.0.1 and ::1) of the port it is given,
// never on other interfaces. It serves plain HTTP: the tests need no TLS.
package testminio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/samsa-io/samsa/internal/testproc"
)

// Version is the MinIO module version the project tests against.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// readyTimeout bounds the wait for a starting server to become ready. A ready MinIO on a fresh
// directory takes about two seconds; the bound only keeps a broken server from hanging a test.
const readyTimeout = 90 * time.Second

// ErrNotInstalled says that no MinIO binary was found, and how to get one.
var ErrNotInstalled = errors.New("minio not installed: run bash .ci/test.sh, or go install github.com/minio/minio@" +
	Version + " (the first build takes minutes), or set SAMSA_MINIO_BIN")

// Server is a running (or stopped) MinIO server.
type Server struct {
	// Endpoint is the S3 endpoint URL, "http://127.0.0.1:<port>".
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey string
	SecretKey string
	// Dir is the data directory; it survives Stop and Restart.
	Dir string

	bin         string
	prefix      []string // LaunchOptions.CommandPrefix
	addr        string   // 127.0.0.1:<port> of the S3 API
	consoleAddr string   // 127.0.0.1:<port> of the (disabled) console
	certsDir    string   // empty: keeps MinIO from reading ~/.minio/certs and turning on TLS
	out         *testproc.TailBuffer

	mu   sync.Mutex
	proc *testproc.Process // nil when stopped
}

// LaunchOptions change how Launch runs MinIO. The zero value is what Start uses.
type LaunchOptions struct {
	// CommandPrefix runs MinIO under another program, e.g. {"taskset", "-c", "0"}.
	CommandPrefix []string
}

// Start starts a MinIO server on free 127.0.0.1 ports with a data directory under
// t.TempDir() and waits until it serves S3 requests. The server is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch(Binary(t), t.TempDir(), LaunchOptions{})
	if s != nil {
		t.Cleanup(s.Stop)
	}
	if err != nil {
		t.Fatalf("testminio: %v", err)
	}
	return s
}

// Launch starts the MinIO binary bin on free 127.0.0.1 ports with its data and certs
// directories under dir, and waits until it serves S3 requests: Start for programs that are not
// tests (benchmarks). The caller stops it. The error includes what MinIO printed.
func Launch(bin, dir string, opts LaunchOptions) (*Server, error) {
	s := &Server{
		AccessKey: "samsa-test",
		SecretKey: "samsa-test-secret-key",
		Dir:       filepath.Join(dir, "data"),
		bin:       bin,
		prefix:    opts.CommandPrefix,
		certsDir:  filepath.Join(dir, "certs"),
		out:       testproc.NewTailBuffer(256 << 10),
	}
	for _, d := range []string{s.Dir, s.certsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// A port picked free can be taken before MinIO binds it; then try other ports.
	var err error
	for range 3 {
		if s.addr, err = testproc.FreeAddr(); err != nil {
			return nil, err
		}
		if s.consoleAddr, err = testproc.FreeAddr(); err != nil {
			return nil, err
		}
		s.Endpoint = "http://" + s.addr
		if err = s.start(); err == nil {
			return s, nil
		}
		if !strings.Contains(s.Output(), "address already in use") {
			break
		}
	}
	return s, fmt.Errorf("%w\nminio output:\n%s", err, s.Output())
}

// FindBinary returns explicit when it is not empty (it must exist), else the MinIO binary:
// $SAMSA_MINIO_BIN, then minio in $(go env GOBIN) or $(go env GOPATH)/bin, then minio on PATH.
// It returns ErrNotInstalled when there is none.
func FindBinary(explicit string) (string, error) {
	for _, p := range []string{explicit, os.Getenv("SAMSA_MINIO_BIN")} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("minio binary: %w", err)
			}
			return p, nil
		}
	}
	if p, ok := testproc.FindInGoBin("minio"); ok {
		return p, nil
	}
	if p, ok := testproc.LookPath("minio"); ok {
		return p, nil
	}
	return "", ErrNotInstalled
}

// Binary returns the path of the MinIO binary FindBinary finds. When there is none it skips
// the test, or fails it if $CI is set; a $SAMSA_MINIO_BIN naming a missing file fails it.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := FindBinary("")
	if errors.Is(err, ErrNotInstalled) {
		testproc.Missing(t, err.Error())
	}
	if err != nil {
		t.Fatalf("testminio: %v", err)
	}
	return p
}

// start runs the server process and waits until it is ready.
func (s *Server) start() error {
	args := append(append([]string(nil), s.prefix...), s.bin, "server", s.Dir,
		"--address", s.addr,
		"--console-address", s.consoleAddr,
		"--certs-dir", s.certsDir)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(testproc.EnvWithout("MINIO_", "AWS_"),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	fmt.Fprintf(s.out, "--- testminio: starting %s on %s\n", s.bin, s.addr)
	p, err := testproc.Start(cmd, nil) // dies with the test binary
	if err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	// The cluster health endpoint answers 200 only once the object layer, bucket metadata and
	// IAM are up (/minio/health/live answers 200 earlier, with the header
	// x-minio-server-status: offline).
	url := s.Endpoint + "/minio/health/cluster"
	client := &http.Client{Timeout: 5 * time.Second}
	err = p.WaitReady(context.Background(), readyTimeout, 20*time.Millisecond, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		s.Stop()
		return fmt.Errorf("minio at %s: %w", url, err)
	}
	return nil
}

// PID is the server's process id, or 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.PID()
}

// Stop kills the server (SIGKILL, like a crash or a power cut of the storage host) and waits
// for it to exit. Data it acknowledged stays in Dir for Restart. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.Kill()
	fmt.Fprintf(s.out, "--- testminio: stopped\n")
}

// Restart stops the server if it runs and starts it again on the same port and data
// directory, and waits until it is ready. Call it from the test's goroutine.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("testminio: restart: %v\nminio output:\n%s", err, s.Output())
	}
}

// Version asks the binary for its version line ("" when it cannot say).
func (s *Server) Version() string {
	out, err := exec.Command(s.bin, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// CreateBucket creates a bucket; it fails the test if that fails.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	c, err := s.Client()
	if err != nil {
		t.Fatalf("testminio: %v", err)
	}
	if err := c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("testminio: create bucket %q: %v\nminio output:\n%s", name, err, s.Output())
	}
}

// Client returns a minio-go client with the root credentials, for tests that look at the
// bucket directly.
func (s *Server) Client() (*minio.Client, error) {
	c, err := minio.New(s.addr, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: false,
	})
	if err != nil {
		return nil, fmt.Errorf("minio client for %s: %w", s.Endpoint, err)
	}
	return c, nil
}

// Output returns the last 256 KiB of what the server printed, across restarts, for failure
// messages.
func (s *Server) Output() string { return s.out.String() }
