package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// minioServer is a MinIO process on 127.0.0.1 with a fresh data directory.
type minioServer struct {
	cmd       *exec.Cmd
	exited    chan struct{}
	endpoint  string
	accessKey string
	secretKey string
	version   string
	out       *os.File
}

// findMinIO returns the MinIO binary: the flag, $SAMSA_MINIO_BIN, GOBIN, GOPATH/bin, PATH.
func findMinIO(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p := os.Getenv("SAMSA_MINIO_BIN"); p != "" {
		return p, nil
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(string(out), "\n")
		dirs := []string{strings.TrimSpace(lines[0])}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
		for _, d := range dirs {
			if d == "" {
				continue
			}
			if fi, err := os.Stat(filepath.Join(d, "minio")); err == nil && !fi.IsDir() {
				return filepath.Join(d, "minio"), nil
			}
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errMinIOMissing
}

var errMinIOMissing = errors.New("minio not installed: run bash .ci/test.sh, or go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c, or set SAMSA_MINIO_BIN")

// freePort returns a 127.0.0.1 address that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startMinIO starts MinIO on free ports with its data under dir and waits until it is ready.
func startMinIO(ctx context.Context, bin, cpus, dir string) (*minioServer, error) {
	bin, err := findMinIO(bin)
	if err != nil {
		return nil, err
	}
	data, certs := filepath.Join(dir, "minio"), filepath.Join(dir, "minio-certs")
	for _, d := range []string{data, certs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &minioServer{endpoint: "http://" + addr, accessKey: "cloudscan", secretKey: "cloudscan-secret-key", exited: make(chan struct{})}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		s.version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if s.out, err = os.Create(filepath.Join(dir, "minio.out")); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "server", data, "--address", addr, "--console-address", console, "--certs-dir", certs)
	if cpus != "" {
		taskset, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("-minio-cpus needs taskset (util-linux): %w", err)
		}
		s.cmd = exec.Command(taskset, append([]string{"-c", cpus}, s.cmd.Args...)...)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") && !strings.HasPrefix(kv, "AWS_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	s.cmd.Env = append(s.cmd.Env, "MINIO_ROOT_USER="+s.accessKey, "MINIO_ROOT_PASSWORD="+s.secretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		out, _ := os.ReadFile(s.out.Name())
		return nil, fmt.Errorf("%w\nminio output:\n%s", err, out)
	}
	return s, nil
}

func (s *minioServer) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.NewTimer(90 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(s.endpoint + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errors.New("minio exited before it was ready")
		case <-deadline.C:
			return errors.New("minio not ready within 90s")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *minioServer) stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.out.Close()
}

// cpuSeconds returns MinIO's user+system CPU time from /proc/PID/stat.
func (s *minioServer) cpuSeconds() float64 { return procCPU(s.cmd.Process.Pid) }

// procCPU returns a process's utime+stime in seconds (clock ticks of 1/100 s).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}
