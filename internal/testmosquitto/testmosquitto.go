// Package testmosquitto runs a real Mosquitto broker (Debian's mosquitto package) for tests:
// one process per Start, on 127.0.0.1 ports of its own, with a generated configuration file and
// a persistence directory under t.TempDir(), stopped when the test ends. Tests talk to it with
// paho clients or Debian's mosquitto_pub and mosquitto_sub; nothing is mocked.
//
// The broker keeps QoS 1 and 2 sessions across Restart: persistence is on, and Stop sends
// SIGTERM, on which Mosquitto writes its database (Kill is the SIGKILL variant, which loses what
// Mosquitto had not saved). The default configuration suits bridge tests: up to 1000 QoS 1/2
// messages in flight per client (Mosquitto's default is 20) and no limit on the messages queued
// for an offline client (the default drops them beyond 1000).
//
// Around the broker: PublishLoad drives many QoS 1 publishers (paho) over many device topics
// with sequence-numbered payloads, SeqChecker checks order and completeness per topic wherever
// the messages end up, Subscribe runs a mosquitto_sub that collects what arrives, and
// CreateSession leaves a persistent session for a client id. Launch starts a broker outside a
// test (benchmarks).
//
// The binary is found through $SAMSA_MOSQUITTO_BIN, then mosquitto on PATH, then
// /usr/sbin/mosquitto (Debian's path, not on a normal user's PATH). Without it a test is
// skipped, or fails when the CI environment variable is set: bash .ci/test.sh installs the
// mosquitto and mosquitto-clients packages.
package testmosquitto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testproc"
)

// readyTimeout bounds the wait for a starting broker to accept connections (it takes a few
// milliseconds; the bound only keeps a broken broker from hanging a test).
const readyTimeout = 30 * time.Second

// stopTimeout bounds the wait for a broker to exit after SIGTERM before it is killed.
const stopTimeout = 30 * time.Second

// Options change the broker's configuration. The zero value is what Start uses.
type Options struct {
	// WebSockets adds a MQTT-over-WebSockets listener (Server.WSURL).
	WebSockets bool
	// TLS adds a TLS listener (Server.TLSURL) with a certificate for 127.0.0.1 signed by a CA
	// generated for the test (Server.CAFile). Clients may present a certificate signed by the
	// same CA (Server.ClientCertFile, Server.ClientKeyFile) but need not.
	TLS bool
	// Users, when not empty, turns anonymous access off and accepts these usernames with their
	// passwords (written with mosquitto_passwd).
	Users map[string]string
	// MaxInflightMessages is Mosquitto's max_inflight_messages. 0 means 1000.
	MaxInflightMessages int
	// Extra is appended to the generated configuration file.
	Extra string
}

// Server is a running (or stopped) Mosquitto broker.
type Server struct {
	// Addr is the MQTT listener, "127.0.0.1:<port>"; URL is "tcp://" + Addr.
	Addr string
	URL  string
	// WSURL is "ws://127.0.0.1:<port>" with Options.WebSockets, else "".
	WSURL string
	// TLSURL is "ssl://127.0.0.1:<port>" with Options.TLS, else "".
	TLSURL string
	// CAFile, ClientCertFile and ClientKeyFile are PEM files, with Options.TLS.
	CAFile, ClientCertFile, ClientKeyFile string
	// Dir holds the configuration file and the persistence database; it survives Stop and
	// Restart.
	Dir string

	bin   string
	conf  string
	addrs []string // every listener, polled for readiness
	out   *testproc.TailBuffer

	mu   sync.Mutex
	proc *testproc.Process // nil when stopped
}

// Start starts a broker with the default options. It is stopped when the test ends.
func Start(t testing.TB) *Server { t.Helper(); return StartWith(t, Options{}) }

// StartWith starts a broker with opts on free 127.0.0.1 ports and waits until every listener
// accepts connections. It is stopped when the test ends.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Binary(t)
	s, err := Launch(bin, t.TempDir(), opts)
	if s != nil {
		t.Cleanup(s.Stop)
	}
	if err != nil {
		out := ""
		if s != nil {
			out = s.Output()
		}
		t.Fatalf("testmosquitto: %v\nmosquitto output:\n%s", err, out)
	}
	return s
}

// Launch starts the mosquitto binary bin with opts on free 127.0.0.1 ports, its files in dir,
// and waits until every listener accepts connections: StartWith for programs that are not tests
// (benchmarks). The caller stops it. On an error the returned Server (if any) holds the output.
func Launch(bin, dir string, opts Options) (*Server, error) {
	s := &Server{Dir: dir, bin: bin, out: testproc.NewTailBuffer(256 << 10)}
	if opts.TLS {
		if err := s.writeCerts(); err != nil {
			return nil, err
		}
	}
	var pwFile string
	if len(opts.Users) > 0 {
		pwFile = filepath.Join(s.Dir, "passwd")
		if err := writePasswords(pwFile, opts.Users); err != nil {
			return nil, err
		}
	}
	// A port picked free can be taken before Mosquitto binds it; then try other ports.
	var err error
	for range 3 {
		if err = s.pickPorts(opts); err != nil {
			return s, err
		}
		if err = s.writeConfig(opts, pwFile); err != nil {
			return s, err
		}
		if err = s.start(); err == nil {
			return s, nil
		}
		if !strings.Contains(s.Output(), "in use") {
			break
		}
	}
	return s, err
}

// FindBinary returns the mosquitto binary Binary would use, or an error saying how to get one.
func FindBinary() (string, error) {
	if p := os.Getenv("SAMSA_MOSQUITTO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SAMSA_MOSQUITTO_BIN: %w", err)
		}
		return p, nil
	}
	if p, ok := testproc.LookPath("mosquitto", "/usr/sbin"); ok {
		return p, nil
	}
	return "", errors.New("mosquitto not installed: run bash .ci/test.sh or apt-get install mosquitto mosquitto-clients, or set SAMSA_MOSQUITTO_BIN")
}

// Binary returns the path of the mosquitto binary: $SAMSA_MOSQUITTO_BIN, then mosquitto on
// PATH, then /usr/sbin/mosquitto. When there is none it skips the test, or fails it if $CI is
// set.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := FindBinary()
	if err != nil {
		if os.Getenv("SAMSA_MOSQUITTO_BIN") != "" {
			t.Fatalf("testmosquitto: %v", err)
		}
		testproc.Missing(t, err.Error())
	}
	return p
}

// ClientTool returns the path of mosquitto_pub, mosquitto_sub or mosquitto_passwd (package
// mosquitto-clients or mosquitto), skipping or failing the test like Binary when it is missing.
func ClientTool(t testing.TB, name string) string {
	t.Helper()
	if p, ok := testproc.LookPath(name, "/usr/bin", "/usr/sbin"); ok {
		return p
	}
	testproc.Missing(t, name+" not installed: run bash .ci/test.sh or apt-get install mosquitto mosquitto-clients")
	return ""
}

func (s *Server) pickPorts(opts Options) error {
	addrs := make([]string, 1+btoi(opts.WebSockets)+btoi(opts.TLS))
	for i := range addrs {
		a, err := testproc.FreeAddr()
		if err != nil {
			return err
		}
		addrs[i] = a
	}
	s.Addr, s.URL, s.addrs = addrs[0], "tcp://"+addrs[0], addrs
	next := 1
	if opts.WebSockets {
		s.WSURL = "ws://" + addrs[next]
		next++
	}
	if opts.TLS {
		s.TLSURL = "ssl://" + addrs[next]
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeConfig writes mosquitto.conf for the chosen ports.
func (s *Server) writeConfig(opts Options, pwFile string) error {
	inflight := opts.MaxInflightMessages
	if inflight == 0 {
		inflight = 1000
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# generated by internal/testmosquitto\nper_listener_settings false\n")
	if pwFile != "" {
		fmt.Fprintf(&b, "allow_anonymous false\npassword_file %s\n", pwFile)
	} else {
		fmt.Fprintf(&b, "allow_anonymous true\n")
	}
	fmt.Fprintf(&b, "persistence true\npersistence_location %s/\n", s.Dir)
	fmt.Fprintf(&b, "max_inflight_messages %d\nmax_queued_messages 0\nset_tcp_nodelay true\n", inflight)
	fmt.Fprintf(&b, "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	if os.Getuid() == 0 {
		b.WriteString("user root\n") // keep access to the temp dir; the default would switch to "mosquitto"
	}
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	fmt.Fprintf(&b, "\nlistener %s 127.0.0.1\n", port(s.Addr))
	if s.WSURL != "" {
		fmt.Fprintf(&b, "\nlistener %s 127.0.0.1\nprotocol websockets\n", port(strings.TrimPrefix(s.WSURL, "ws://")))
	}
	if s.TLSURL != "" {
		fmt.Fprintf(&b, "\nlistener %s 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate false\n",
			port(strings.TrimPrefix(s.TLSURL, "ssl://")), s.CAFile,
			filepath.Join(s.Dir, "server.pem"), filepath.Join(s.Dir, "server-key.pem"))
	}
	if opts.Extra != "" {
		b.WriteString("\n" + opts.Extra + "\n")
	}
	s.conf = filepath.Join(s.Dir, "mosquitto.conf")
	return os.WriteFile(s.conf, []byte(b.String()), 0o644)
}

// writePasswords writes a Mosquitto password file with mosquitto_passwd.
func writePasswords(path string, users map[string]string) error {
	tool, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		tool = "/usr/bin/mosquitto_passwd"
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return err
	}
	for u, p := range users {
		if out, err := exec.Command(tool, "-b", path, u, p).CombinedOutput(); err != nil {
			return fmt.Errorf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	return nil
}

// start runs the broker and waits until it accepts connections on every listener.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	fmt.Fprintf(s.out, "--- testmosquitto: starting %s on %s\n", s.bin, strings.Join(s.addrs, ", "))
	p, err := testproc.Start(cmd, nil) // dies with the test binary
	if err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	next := 0 // listeners before it accept
	err = p.WaitReady(context.Background(), readyTimeout, 10*time.Millisecond, func() bool {
		for ; next < len(s.addrs); next++ {
			c, err := net.DialTimeout("tcp", s.addrs[next], time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
	if err != nil {
		s.Kill()
		if errors.Is(err, testproc.ErrNotReady) {
			return fmt.Errorf("mosquitto not accepting on %s within %s", s.addrs[next], readyTimeout)
		}
		return fmt.Errorf("mosquitto: %w", err)
	}
	return nil
}

// Stop stops the broker with SIGTERM (it saves its persistence database on the way out; SIGKILL
// after 30 s) and waits for it to exit. Stopping a stopped broker does nothing.
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

// Kill stops the broker with SIGKILL: what it had not saved is lost, as in a crash.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.Stop(sig, stopTimeout) // the exit status of a stopped broker says nothing
	fmt.Fprintf(s.out, "--- testmosquitto: stopped (%v)\n", sig)
}

// PID is the broker's process id, or 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.PID()
}

// Restart stops the broker if it runs (SIGTERM, so sessions and queued QoS 1/2 messages are
// saved) and starts it again on the same ports and directory. Call it from the test's goroutine.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("testmosquitto: restart: %v\nmosquitto output:\n%s", err, s.Output())
	}
}

// Output returns the last 256 KiB of what the broker logged, across restarts.
func (s *Server) Output() string { return s.out.String() }

// Port returns the MQTT listener's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}
