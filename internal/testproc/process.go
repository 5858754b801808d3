package testproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a started child process whose exit is watched in the background.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's result, written before exited is closed
}

// Start starts cmd so that it is killed when this process dies first (unless cmd.SysProcAttr
// is set already), and waits for it in the background.
//
// When cmd's output is read through a pipe (cmd.StdoutPipe, cmd.StderrPipe), pass the function
// that reads it to the end as read: Start runs it in the background and calls cmd.Wait only
// after it returns, as os/exec requires. Otherwise pass nil.
func Start(cmd *exec.Cmd, read func()) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		if read != nil {
			read()
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr is the process's exit status as cmd.Wait reports it (nil for exit code 0). It is
// nil while the process runs.
func (p *Process) ExitErr() error {
	select {
	case <-p.exited:
		return p.err
	default:
		return nil
	}
}

// ErrKilled says that a process did not exit within its grace period after the stop signal
// and was killed.
var ErrKilled = errors.New("did not exit in time after the stop signal; killed")

// Stop sends sig, waits up to grace for the process to exit, kills it (SIGKILL) after that,
// and returns its exit status, or ErrKilled when it had to be killed. Stopping an exited
// process returns its exit status again.
func (p *Process) Stop(sig os.Signal, grace time.Duration) error {
	_ = p.cmd.Process.Signal(sig) // an error means it has exited already
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.err
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return ErrKilled
	}
}

// Kill kills the process (SIGKILL) and waits for it to exit.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Errors of WaitReady.
var (
	// ErrExitedEarly says the process exited before it was ready.
	ErrExitedEarly = errors.New("exited before it was ready")
	// ErrNotReady says the process was not ready within the timeout.
	ErrNotReady = errors.New("not ready in time")
)

// WaitReady calls ready every interval until it returns true. It fails with ErrExitedEarly
// (and the exit status) once the process has exited, with ErrNotReady after timeout, or with
// ctx's error.
func (p *Process) WaitReady(ctx context.Context, timeout, interval time.Duration, ready func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %v", ErrExitedEarly, p.err)
		case <-deadline.C:
			return ErrNotReady
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago. Another
// process may take it before the caller binds it; callers retry on "address already in use".
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
