package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestArmBinariesUnderQemu cross-builds the agent for 32-bit ARM (armv7: pread indexes) and
// arm64 (mmap indexes), runs each under qemu-user-static, and produces, consumes, kills -9 and
// recovers through it with franz-go; then the ARM binary's own `samsa produce` and `samsa
// consume` (under qemu too) and kcat on the host go through it, and a SIGTERM stops it cleanly:
// exit status 0, and the next start finds the clean-shutdown marker.
func TestArmBinariesUnderQemu(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds take a while")
	}
	for _, target := range []struct{ goarch, goarm, qemu string }{
		{"arm", "7", "qemu-arm-static"},
		{"arm64", "", "qemu-aarch64-static"},
	} {
		t.Run(target.goarch+target.goarm, func(t *testing.T) {
			qemu := requireTool(t, target.qemu)
			bin := filepath.Join(t.TempDir(), "samsa")
			build := exec.Command("go", "build", "-o", bin, "../cmd/samsa")
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+target.goarch, "GOARM="+target.goarm)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("cross-build: %v\n%s", err, out)
			}
			dir := t.TempDir()
			start := func() *agentProcess {
				return startProcess(t, exec.Command(qemu, bin, "agent", "--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"), "SAMSA_FSYNC=always")
			}
			p := start()
			const n = 3000
			produceN(t, p.kafkaAddr, "arm", 0, n)
			p.kill9(t)
			p = start()
			produceN(t, p.kafkaAddr, "arm", n, n)
			if err := p.stop(t); err != nil {
				t.Fatalf("stop: %v\n%s", err, p.Logs())
			}
			p = start()
			consumeExactly(t, p.kafkaAddr, "arm", 2*n)
			armCLIRoundTrip(t, qemu, bin, p.kafkaAddr)
			if err := p.stop(t); err != nil || !strings.Contains(p.Logs(), "samsa agent stopped cleanly") {
				t.Fatalf("stop: %v\n%s", err, p.Logs())
			}
			p = start()
			defer p.stop(t)
			if !strings.Contains(p.Logs(), `"clean_shutdown":true`) {
				t.Fatalf("restart after SIGTERM did not find the clean-shutdown marker:\n%s", p.Logs())
			}
		})
	}
}

// armCLIRoundTrip produces lines with the ARM binary's `samsa produce` and reads them back
// with its `samsa consume`, both under qemu, and with kcat on the host when installed.
func armCLIRoundTrip(t *testing.T, qemu, bin, addr string) {
	t.Helper()
	run := func(stdin, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, out.String(), errb.String())
		}
		return out.String()
	}
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("k%d\tline %d from samsa produce on arm", i%5, i))
	}
	want := strings.Join(lines, "\n") + "\n"
	run(want, qemu, bin, "produce", "--brokers", addr, "--topic", "cli", "--key-separator", "\t")
	got := run("", qemu, bin, "consume", "--brokers", addr, "--topic", "cli", "--format", "kv", "--count", "200")
	if got != want {
		t.Fatalf("samsa consume on arm read:\n%s\nwant:\n%s", got, want)
	}
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat not installed (bash .ci/test.sh installs it)")
		}
		t.Log("kcat not installed: skipping the kcat round trip")
		return
	}
	run("host-key:from kcat\n", kcat, "-b", addr, "-P", "-t", "cli", "-K", ":")
	out := run("", kcat, "-b", addr, "-C", "-t", "cli", "-e", "-o", "beginning", "-f", "%k\t%s\n")
	if out != want+"host-key\tfrom kcat\n" {
		t.Fatalf("kcat read:\n%s", out)
	}
}

// produceN produces values v<from>..v<from+n-1> with acks=all and fails on any error.
func produceN(t *testing.T, addr, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure bound only
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("k%d", (from+i)%17)), Value: []byte(fmt.Sprintf("v%d", from+i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeExactly reads partition 0 from the start and checks values v0..v<n-1> at offsets 0..n-1.
func consumeExactly(t *testing.T, addr, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure bound only
	defer cancel()
	next := 0
	for next < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", next, n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(next) || string(r.Value) != fmt.Sprintf("v%d", next) {
				t.Fatalf("offset %d value %q, want offset %d value v%d", r.Offset, r.Value, next, next)
			}
			next++
		})
	}
}
