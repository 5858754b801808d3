// Package testminio runs a real MinIO server for tests: one process per Start, on 127.0.0.1
// ports of its own, with a fresh data directory, killed when the test ends. Tests talk to it
// through the S3 API like to any S3 service; nothing is mocked.
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
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the MinIO module version the project tests against.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// readyTimeout bounds the wait for a starting server to become ready. A ready MinIO on a fresh
// directory takes about two seconds; the bound only keeps a broken server from hanging a test.
const readyTimeout = 90 * time.Second

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
	addr        string // 127.0.0.1:<port> of the S3 API
	consoleAddr string // 127.0.0.1:<port> of the (disabled) console
	certsDir    string // empty: keeps MinIO from reading ~/.minio/certs and turning on TLS
	out         *tailBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	err    error         // cmd's exit status, once exited is closed
}

// Start starts a MinIO server on free 127.0.0.1 ports with a data directory under
// t.TempDir() and waits until it serves S3 requests. The server is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{
		AccessKey: "samsa-test",
		SecretKey: "samsa-test-secret-key",
		Dir:       filepath.Join(dir, "data"),
		bin:       bin,
		certsDir:  filepath.Join(dir, "certs"),
		out:       &tailBuffer{max: 256 << 10},
	}
	for _, d := range []string{s.Dir, s.certsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("testminio: %v", err)
		}
	}
	t.Cleanup(s.Stop)
	// A port picked free can be taken before MinIO binds it; then try other ports.
	var err error
	for range 3 {
		s.addr, s.consoleAddr = freeAddr(t), freeAddr(t)
		s.Endpoint = "http://" + s.addr
		if err = s.start(); err == nil {
			return s
		}
		if !strings.Contains(s.Output(), "address already in use") {
			break
		}
	}
	t.Fatalf("testminio: %v\nminio output:\n%s", err, s.Output())
	return nil
}

// Binary returns the path of the MinIO binary: $SAMSA_MINIO_BIN, then minio in $(go env GOBIN)
// or $(go env GOPATH)/bin, then minio on PATH. When there is none it skips the test, or fails it if $CI is set.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SAMSA_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("testminio: SAMSA_MINIO_BIN: %v", err)
		}
		return p
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
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
		for _, dir := range dirs {
			p := filepath.Join(dir, "minio")
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p
			}
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	msg := "minio not installed: run bash .ci/test.sh, or go install github.com/minio/minio@" + Version + " (the first build takes minutes), or set SAMSA_MINIO_BIN"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// start runs the server process and waits until it is ready.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, "server", s.Dir,
		"--address", s.addr,
		"--console-address", s.consoleAddr,
		"--certs-dir", s.certsDir)
	cmd.Env = append(cleanEnv(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test binary
	fmt.Fprintf(s.out, "--- testminio: starting %s on %s\n", s.bin, s.addr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited, s.err = cmd, exited, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(exited)
	}()
	if err := s.waitReady(exited); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// waitReady polls the cluster health endpoint, which answers 200 only once the object layer,
// bucket metadata and IAM are up (/minio/health/live answers 200 earlier, with the header
// x-minio-server-status: offline).
func (s *Server) waitReady(exited <-chan struct{}) error {
	url := s.Endpoint + "/minio/health/cluster"
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			return fmt.Errorf("minio exited before it was ready: %v", err)
		case <-deadline.C:
			return fmt.Errorf("minio not ready at %s within %s", url, readyTimeout)
		case <-tick.C:
		}
	}
}

// Stop kills the server (SIGKILL, like a crash or a power cut of the storage host) and waits
// for it to exit. Data it acknowledged stays in Dir for Restart. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // an error means it has exited already
	<-exited
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

// cleanEnv is the test's environment without MINIO_* and AWS_* variables, which would
// change the server's configuration.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testminio: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (tb *tailBuffer) Write(p []byte) (int, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.b.Write(p)
	if over := tb.b.Len() - tb.max; over > 0 {
		tb.b.Next(over)
	}
	return len(p), nil
}

func (tb *tailBuffer) String() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.b.String()
}
