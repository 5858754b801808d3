package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The MinIO module version the project tests against (internal/testminio.Version). The
// benchmark starts the same binary as the tests, with its own small starter: testminio needs
// a testing.TB.
const minioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// errNoMinio says the MinIO binary was not found; the smoke test skips on it (fails under CI).
var errNoMinio = errors.New("minio not installed: run bash .ci/test.sh, or go install github.com/minio/minio@" +
	minioVersion + " (the first build takes minutes), or set SAMSA_MINIO_BIN")

// findMinio returns the MinIO binary like internal/testminio does: -minio, then
// $SAMSA_MINIO_BIN, then minio in $(go env GOBIN) or $(go env GOPATH)/bin, then PATH.
func findMinio(flagPath string) (string, error) {
	for _, p := range []string{flagPath, os.Getenv("SAMSA_MINIO_BIN")} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("minio binary: %w", err)
			}
			return p, nil
		}
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
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errNoMinio
}

// minioServer is one MinIO server process on 127.0.0.1 with a data directory under the
// benchmark's work directory.
type minioServer struct {
	bin       string
	addr      string // 127.0.0.1:<port> of the S3 API
	endpoint  string // http://addr
	accessKey string
	secretKey string
	dir       string
	out       *tailBuffer

	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	err    error
}

// startMinio starts MinIO on free ports and waits until /minio/health/cluster answers 200.
func startMinio(bin, work string) (*minioServer, error) {
	s := &minioServer{bin: bin, accessKey: "samsa-bench", secretKey: "samsa-bench-secret-key",
		dir: filepath.Join(work, "minio", "data"), out: &tailBuffer{max: 64 << 10}}
	certs := filepath.Join(work, "minio", "certs") // an empty certs dir: plain HTTP, not ~/.minio/certs
	for _, d := range []string{s.dir, certs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var err error
	for range 3 { // a port picked free can be taken before MinIO binds it
		var console string
		if s.addr, err = freeAddr(); err != nil {
			return nil, err
		}
		if console, err = freeAddr(); err != nil {
			return nil, err
		}
		s.endpoint = "http://" + s.addr
		if err = s.start(certs, console); err == nil {
			return s, nil
		}
		if !strings.Contains(s.out.String(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("%w\nminio output:\n%s", err, s.out)
}

func (s *minioServer) start(certs, console string) error {
	cmd := exec.Command(s.bin, "server", s.dir, "--address", s.addr, "--console-address", console, "--certs-dir", certs)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "MINIO_ROOT_USER="+s.accessKey, "MINIO_ROOT_PASSWORD="+s.secretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.exited)
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(s.endpoint + "/minio/health/cluster"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			s.mu.Lock()
			defer s.mu.Unlock()
			return fmt.Errorf("minio exited before it was ready: %v", s.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.stop()
	return fmt.Errorf("minio not ready at %s within 90s", s.endpoint)
}

func (s *minioServer) pid() int {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// stop kills the server and waits for it.
func (s *minioServer) stop() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// version asks the binary for its version line.
func (s *minioServer) version() string {
	out, err := exec.Command(s.bin, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// client returns a minio-go client built the way tiering.NewS3Store builds the agent's:
// minio.DefaultTransport, static V4 keys, the region given, automatic bucket lookup (path
// style for a custom endpoint).
func (s *minioServer) client(region string) (*minio.Client, error) {
	u, err := url.Parse(s.endpoint)
	if err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		return nil, err
	}
	return minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.accessKey, s.secretKey, ""),
		Secure:       false,
		Transport:    tr,
		Region:       region,
		BucketLookup: minio.BucketLookupAuto,
	})
}

// createBucket creates the bucket the agent and the ceiling loops use.
func (s *minioServer) createBucket(ctx context.Context, bucket, region string) error {
	c, err := s.client(region)
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// childAttr makes a server die with the benchmark if the benchmark dies first.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = bytes.Clone(t.b[len(t.b)-t.max:])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
