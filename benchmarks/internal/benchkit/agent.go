package benchkit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/internal/testproc"
)

// AgentOptions say how StartAgent runs `samsa agent`. The agent must log JSON (log_format:
// json in its config, or SAMSA_LOG_FORMAT=json): its "samsa agent ready" line gives its
// addresses.
type AgentOptions struct {
	// Args follow "agent" on the command line.
	Args []string
	// Env is the agent's whole environment; nil means this process's.
	Env []string
	// LogTail is how many bytes of the agent's output Log keeps (default 64 KiB).
	LogTail int
	// ReadyTimeout bounds the wait for the ready line (default 60 s).
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before it kills the agent (default 30 s).
	StopTimeout time.Duration
	// OnLog, when set, sees every line the agent logs, in order, and returns whether Log keeps
	// it (e.g. false for lines that come by the thousand).
	OnLog func(line []byte) (keep bool)
}

// Agent is a `samsa agent` child process that has logged that it is ready.
type Agent struct {
	// KafkaAddr and HTTPAddr are the listeners from the ready line.
	KafkaAddr, HTTPAddr string
	// Log holds the tail of the agent's output, for error messages.
	Log *testproc.TailBuffer
	// Started is when the process was started.
	Started time.Time

	proc        *testproc.Process
	stopTimeout time.Duration
}

// readyLine is what StartAgent reads of the agent's log lines.
type readyLine struct {
	Msg   string `json:"msg"`
	Kafka string `json:"kafka"`
	HTTP  string `json:"http"`
}

// StartAgent runs `bin agent` with o and waits until the agent logs that it is ready. The agent
// is killed if this process dies first.
func StartAgent(ctx context.Context, bin string, o AgentOptions) (*Agent, error) {
	if o.LogTail == 0 {
		o.LogTail = 64 << 10
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 30 * time.Second
	}
	a := &Agent{Log: testproc.NewTailBuffer(o.LogTail), stopTimeout: o.StopTimeout}
	cmd := exec.Command(bin, append([]string{"agent"}, o.Args...)...)
	cmd.Env = o.Env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Stdout = a.Log
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	ready := make(chan readyLine, 1)
	a.Started = time.Now()
	a.proc, err = testproc.Start(cmd, func() { a.readLog(stderr, o.OnLog, ready) })
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(o.ReadyTimeout)
	defer t.Stop()
	select {
	case l := <-ready:
		a.KafkaAddr, a.HTTPAddr = l.Kafka, l.HTTP
		return a, nil
	case <-a.proc.Exited():
		return nil, fmt.Errorf("agent exited before ready: %v\n%s", a.proc.ExitErr(), a.Log)
	case <-t.C:
		a.Stop()
		return nil, fmt.Errorf("agent not ready after %s\n%s", o.ReadyTimeout, a.Log)
	case <-ctx.Done():
		a.Stop()
		return nil, ctx.Err()
	}
}

// readLog passes the agent's log lines to onLog and the kept ones to Log, and sends the first
// ready line that names a Kafka address. It reads to the end of the output.
func (a *Agent) readLog(r io.Reader, onLog func([]byte) bool, ready chan<- readyLine) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		if onLog == nil || onLog(line) {
			a.Log.Write(append(line, '\n'))
		}
		if sent {
			continue
		}
		var l readyLine
		if json.Unmarshal(line, &l) == nil && l.Msg == "samsa agent ready" && l.Kafka != "" {
			ready <- l
			sent = true
		}
	}
	io.Copy(io.Discard, r) // a line too long for the scanner: keep the agent from blocking
}

// PID is the agent's process id.
func (a *Agent) PID() int { return a.proc.PID() }

// Exited is closed once the agent has exited.
func (a *Agent) Exited() <-chan struct{} { return a.proc.Exited() }

// ExitErr is the agent's exit status once it has exited (nil for a clean exit).
func (a *Agent) ExitErr() error { return a.proc.ExitErr() }

// Stop stops the agent with SIGTERM (a clean shutdown), or SIGKILL after the stop timeout, and
// returns nil only for a clean exit.
func (a *Agent) Stop() error {
	err := a.proc.Stop(syscall.SIGTERM, a.stopTimeout)
	switch {
	case errors.Is(err, testproc.ErrKilled):
		return fmt.Errorf("agent did not stop within %s of SIGTERM; killed", a.stopTimeout)
	case err != nil:
		return fmt.Errorf("agent exit: %w\n%s", err, a.Log)
	}
	return nil
}
