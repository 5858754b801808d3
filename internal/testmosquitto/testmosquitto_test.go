package testmosquitto_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/samsa-io/samsa/internal/testmosquitto"
)

// run runs a mosquitto client tool and returns its output; -W bounds every wait of the tools.
func run(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testmosquitto.ClientTool(t, tool), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRestartKeepsQoS1Session: a message queued for an offline persistent QoS 1 session
// survives a restart of the broker, which comes back on the same port.
func TestMQTTBrokerRestartKeepsQoS1Session(t *testing.T) {
	srv := testmosquitto.Start(t)
	sub := []string{"-h", "127.0.0.1", "-p", port(srv), "-c", "-i", "keeper", "-q", "1", "-t", "keep/me"}
	run(t, "mosquitto_sub", append(sub, "-E")...) // create the session, then disconnect
	run(t, "mosquitto_pub", "-h", "127.0.0.1", "-p", port(srv), "-q", "1", "-t", "keep/me", "-m", "survives")
	addr := srv.Addr

	srv.Restart(t)
	if srv.Addr != addr {
		t.Fatalf("address changed across restart: %s, was %s", srv.Addr, addr)
	}
	// -C 1: exit after one message; -W 20: failure bound.
	if got := run(t, "mosquitto_sub", append(sub, "-C", "1", "-W", "20")...); strings.TrimSpace(got) != "survives" {
		t.Fatalf("after restart got %q, want the queued message", got)
	}
	srv.Stop()
	srv.Stop() // idempotent
	if c, err := net.Dial("tcp", srv.Addr); err == nil {
		c.Close()
		t.Fatal("stopped broker accepts connections")
	}
}

// TestTLSAndPasswords: the TLS listener serves a certificate the generated CA verifies, and
// with Users set only known users with the right password get in.
func TestMQTTBrokerTLSAndPasswords(t *testing.T) {
	srv := testmosquitto.StartWith(t, testmosquitto.Options{TLS: true, WebSockets: true,
		Users: map[string]string{"dev": "secret"}})
	if srv.WSURL == "" || srv.TLSURL == "" || srv.CAFile == "" {
		t.Fatalf("listeners missing: %+v", srv)
	}
	_, tlsPort, _ := net.SplitHostPort(strings.TrimPrefix(srv.TLSURL, "ssl://"))
	run(t, "mosquitto_pub", "-h", "127.0.0.1", "-p", tlsPort, "--cafile", srv.CAFile,
		"--cert", srv.ClientCertFile, "--key", srv.ClientKeyFile, "-u", "dev", "-P", "secret", "-q", "1", "-t", "x", "-m", "y")
	out, err := exec.Command(testmosquitto.ClientTool(t, "mosquitto_pub"), "-h", "127.0.0.1", "-p", port(srv),
		"-u", "dev", "-P", "wrong", "-q", "1", "-t", "x", "-m", "y").CombinedOutput()
	if err == nil {
		t.Fatalf("a wrong password was accepted: %s", out)
	}
}

func port(s *testmosquitto.Server) string { _, p, _ := net.SplitHostPort(s.Addr); return p }

// TestSeqChecker: repeats of earlier numbers are duplicates; a gap or a reordering is an error;
// Complete wants every number of every topic.
func TestMQTTBrokerSeqChecker(t *testing.T) {
	c := testmosquitto.NewSeqChecker([]string{"a", "b"}, 3)
	for _, kv := range [][2]string{{"a", "0"}, {"b", "0"}, {"a", "1"}, {"a", "0"}, {"a", "1"}, {"a", "2"}, {"b", "1"}} {
		if err := c.Add(kv[0], kv[1]); err != nil {
			t.Fatalf("%v: %v", kv, err)
		}
	}
	if c.Duplicates != 2 || c.Records != 7 || c.Complete() == nil {
		t.Fatalf("%+v, complete: %v", c, c.Complete())
	}
	if err := c.Add("b", "2"); err != nil || c.Complete() != nil {
		t.Fatalf("%v %v", err, c.Complete())
	}
	for _, bad := range [][2]string{{"a", "5"}, {"c", "0"}, {"a", "x"}} {
		c := testmosquitto.NewSeqChecker([]string{"a"}, 9)
		if err := c.Add(bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestPublishLoadAndSubscribe: the load generator's messages reach a subscriber, and a
// persistent session created beforehand keeps them for its client.
func TestMQTTBrokerPublishLoadAndSubscribe(t *testing.T) {
	srv := testmosquitto.Start(t)
	sub := srv.Subscribe(t, "load/+/data")
	topics := testmosquitto.Topics("load", 3)
	res := testmosquitto.MustPublishLoad(t, srv.URL, testmosquitto.Load{Clients: 2, Topics: topics, PerTopic: 10, ClientPrefix: "p"})
	if res.Published != 30 {
		t.Fatalf("%+v", res)
	}
	lines := sub.WaitLines(30, 20*time.Second)
	var keys, values []string
	for _, l := range lines {
		k, v, _ := strings.Cut(l, " ")
		keys, values = append(keys, k), append(values, v)
	}
	if c, err := testmosquitto.CheckSequences(keys, values, topics, 10); err != nil || c.Duplicates != 0 {
		t.Fatalf("%+v: %v", c, err)
	}
}

// TestMQTTBrokerLoadKeepsOrderAcrossRestart: with the broker restarted in the middle of the
// load, a subscriber with a persistent session still gets every message, the first copies in
// order per topic (what the bridge tests rely on to blame the bridge, not the load).
func TestMQTTBrokerLoadKeepsOrderAcrossRestart(t *testing.T) {
	srv := testmosquitto.Start(t)
	srv.CreateSession(t, "recorder", "site/+/data")
	topics := testmosquitto.Topics("site", 20)
	chk := testmosquitto.NewSeqChecker(topics, 300)
	var mu sync.Mutex
	var bad error
	got := make(chan struct{}, 1)
	o := paho.NewClientOptions().AddBroker(srv.URL).SetClientID("recorder").SetCleanSession(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond)
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		mu.Lock()
		if err := chk.Add(m.Topic(), string(m.Payload())); err != nil && bad == nil {
			bad = err
		}
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	})
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	done := make(chan error, 1)
	go func() {
		_, err := testmosquitto.PublishLoad(srv.URL, testmosquitto.Load{Clients: 4, Topics: topics, PerTopic: 300, ClientPrefix: "pub"})
		done <- err
	}()
	deadline := time.After(60 * time.Second) // failure bound
	restarted := false
	for {
		mu.Lock()
		n, dups, complete, err := chk.Records, chk.Duplicates, chk.Complete(), bad
		mu.Unlock()
		switch {
		case err != nil:
			t.Fatal(err)
		case complete == nil:
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			t.Logf("%d records, %d duplicates", n, dups)
			return
		case !restarted && n >= 2000:
			srv.Restart(t)
			restarted = true
		}
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("after 60s: %v", complete)
		}
	}
}

// TestMQTTBrokerPID: the broker's process id is that of the mosquitto started with its
// configuration, and 0 once it is stopped.
func TestMQTTBrokerPID(t *testing.T) {
	srv := testmosquitto.Start(t)
	pid := srv.PID()
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(srv.Dir, "mosquitto.conf")) {
		t.Errorf("pid %d: cmdline %q, %v", pid, cmdline, err)
	}
	srv.Stop()
	if srv.PID() != 0 {
		t.Errorf("pid %d after Stop", srv.PID())
	}
}
