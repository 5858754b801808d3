package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// perfRecorder samples a process's stacks with perf(1) (-perf): where the agent spends its CPU
// during a measurement. Read the result with `perf report -i FILE` or turn it into a flame graph.
type perfRecorder struct {
	cmd  *exec.Cmd
	path string
	out  *tailBuffer
}

// startPerf attaches `perf record -g` to pid, writing dir/name.perf.data; it returns nil when dir is empty.
func startPerf(dir, name string, pid int) (*perfRecorder, error) {
	if dir == "" || pid <= 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &perfRecorder{path: filepath.Join(dir, name+".perf.data"), out: &tailBuffer{max: 8 << 10}}
	p.cmd = exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", p.path)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("-perf: %w", err)
	}
	time.Sleep(200 * time.Millisecond) // attaching takes a moment
	return p, nil
}

// stop ends the recording and waits for perf to write its file.
func (p *perfRecorder) stop() error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if _, serr := os.Stat(p.path); serr != nil {
			return fmt.Errorf("perf record: %v %v\n%s", err, serr, p.out)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("perf record did not stop\n%s", p.out)
	}
}
