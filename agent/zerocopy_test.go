package agent_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestFetchUsesSendfileSyscall runs the agent under strace and shows that the record bytes a
// consumer fetches leave through sendfile(2) from the segment file.
func TestFetchUsesSendfileSyscall(t *testing.T) {
	strace := requireTool(t, "strace")
	out := t.TempDir() + "/strace.out"
	dir := t.TempDir()
	// Check that ptrace works here (containers may forbid it).
	if err := exec.Command(strace, "-f", "-o", os.DevNull, "true").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("strace cannot trace here: %v", err)
		}
		t.Skipf("strace cannot trace here: %v", err)
	}
	p := startAgentProcess(t, dir)
	defer p.stop(t)
	// Attach to every thread of the running agent and wait until strace says so.
	tr := exec.Command(strace, "-f", "-e", "trace=sendfile", "-o", out, "-p", strconv.Itoa(p.cmd.Process.Pid))
	stderr, err := tr.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	attached := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "attached") {
				attached <- nil
				break
			}
		}
		io.Copy(io.Discard, stderr)
		attached <- sc.Err()
	}()
	if err := <-attached; err != nil {
		t.Fatal(err)
	}
	const n = 5000
	produceN(t, p.kafkaAddr, "zc", 0, n)
	consumeExactly(t, p.kafkaAddr, "zc", n)
	tr.Process.Signal(syscall.SIGINT) // detach
	tr.Wait()
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// e.g. "1234  sendfile(9, 12, [0] => [65536], 65536) = 65536"
	re := regexp.MustCompile(`sendfile\(\d+, \d+, .*\) = (\d+)`)
	var calls, sent int
	for _, line := range strings.Split(string(data), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			calls++
			k, _ := strconv.Atoi(m[1])
			sent += k
		}
	}
	st, err := os.Stat(filepath.Join(dir, "topics", "zc", "0", "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The consumer read the whole log once: every byte of the segment went out by sendfile.
	if calls == 0 || int64(sent) < st.Size() {
		t.Fatalf("sendfile calls %d sent %d bytes; the consumer fetched the whole %d-byte segment\n%s", calls, sent, st.Size(), data)
	}
	t.Logf("%d sendfile calls sent %d bytes", calls, sent)
}
