package testmosquitto

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Sub is a mosquitto_sub process (QoS 1, -v: "topic payload" lines) collecting what it
// receives.
type Sub struct {
	probe string
	cmd   *exec.Cmd

	mu    sync.Mutex
	lines []string
	wake  chan struct{}
}

// probePayload marks the messages Subscribe uses to learn that the subscription is active.
const probePayload = "__testmosquitto_probe__"

// Subscribe runs mosquitto_sub on filter and returns once the subscription is active (a probe
// message on a topic the filter matches has come back). It is stopped when the test ends.
func (s *Server) Subscribe(t testing.TB, filter string) *Sub {
	t.Helper()
	probe := strings.NewReplacer("+", "probe", "#", "probe").Replace(filter)
	sub := &Sub{probe: probe, wake: make(chan struct{})}
	sub.cmd = exec.Command(ClientTool(t, "mosquitto_sub"), "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port()),
		"-q", "1", "-v", "-t", filter)
	sub.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := sub.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.cmd.Start(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	t.Cleanup(func() { sub.cmd.Process.Kill(); sub.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			sub.mu.Lock()
			sub.lines = append(sub.lines, sc.Text())
			close(sub.wake)
			sub.wake = make(chan struct{})
			sub.mu.Unlock()
		}
	}()
	pub := ClientTool(t, "mosquitto_pub")
	deadline := time.Now().Add(readyTimeout)
	for {
		if err := exec.Command(pub, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port()), "-q", "1", "-t", probe, "-m", probePayload).Run(); err != nil {
			t.Fatalf("mosquitto_pub probe: %v", err)
		}
		if sub.wait(func(lines []string) bool {
			for _, l := range lines {
				if strings.HasSuffix(l, " "+probePayload) {
					return true
				}
			}
			return false
		}, 200*time.Millisecond) {
			return sub
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub on %q not receiving after %s", filter, readyTimeout)
		}
	}
}

// Lines returns the "topic payload" lines received so far, probes left out.
func (sub *Sub) Lines() []string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	var out []string
	for _, l := range sub.lines {
		if !strings.HasSuffix(l, " "+probePayload) {
			out = append(out, l)
		}
	}
	return out
}

// WaitLines waits until at least n lines (probes left out) have arrived or timeout passes
// (a failure bound), and returns the lines.
func (sub *Sub) WaitLines(n int, timeout time.Duration) []string {
	sub.wait(func([]string) bool { return len(sub.linesLocked()) >= n }, timeout)
	return sub.Lines()
}

func (sub *Sub) linesLocked() []string {
	var out []string
	for _, l := range sub.lines {
		if !strings.HasSuffix(l, " "+probePayload) {
			out = append(out, l)
		}
	}
	return out
}

// wait waits until ok(lines) holds (checked under the lock) or timeout passes.
func (sub *Sub) wait(ok func([]string) bool, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		sub.mu.Lock()
		done := ok(sub.lines)
		wake := sub.wake
		sub.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-wake:
		case <-deadline.C:
			return false
		}
	}
}

// CreateSession creates a persistent session (clean session off) for clientID subscribed to
// filters at QoS 1, then disconnects, as a bridge that has run before would leave it: from then
// on the broker keeps the matching messages for that client id until it connects.
func (s *Server) CreateSession(t testing.TB, clientID string, filters ...string) {
	t.Helper()
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.Port()), "-c", "-i", clientID, "-q", "1", "-E"}
	for _, f := range filters {
		args = append(args, "-t", f)
	}
	if out, err := exec.Command(ClientTool(t, "mosquitto_sub"), args...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_sub -E: %v\n%s", err, out)
	}
}
