package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/internal/testproc"
)

// perfRecorder samples a process's stacks with perf(1) (-perf): where the agent spends its CPU
// during a measurement. Read the result with `perf report -i FILE` or turn it into a flame graph.
type perfRecorder struct {
	proc *testproc.Process
	path string
	out  *testproc.TailBuffer
}

// startPerf attaches `perf record -g` to pid, writing dir/name.perf.data; it returns nil when dir is empty.
func startPerf(dir, name string, pid int) (*perfRecorder, error) {
	if dir == "" || pid <= 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &perfRecorder{path: filepath.Join(dir, name+".perf.data"), out: testproc.NewTailBuffer(8 << 10)}
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", p.path)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	var err error
	if p.proc, err = testproc.Start(cmd, nil); err != nil {
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
	err := p.proc.Stop(syscall.SIGINT, 30*time.Second)
	if errors.Is(err, testproc.ErrKilled) {
		return fmt.Errorf("perf record did not stop\n%s", p.out)
	}
	if _, serr := os.Stat(p.path); serr != nil {
		return fmt.Errorf("perf record: %v %v\n%s", err, serr, p.out)
	}
	return nil
}
