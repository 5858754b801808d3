package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/samsa-io/samsa/internal/testproc"
)

// natsJS is a nats-server child process with JetStream on, file storage under dir.
type natsJS struct {
	o    options
	proc *testproc.Process
	log  *testproc.TailBuffer
	url  string
	ver  string
	nc   *nats.Conn
}

// findNATSServer returns the nats-server binary: the flag, PATH, or Debian's location.
func findNATSServer(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, ok := testproc.LookPath("nats-server", "/usr/sbin"); ok {
		return p, nil
	}
	return "", errors.New("nats-server not found (apt-get install nats-server, or -nats-server PATH)")
}

func startJetStream(ctx context.Context, o options, dir string, logf func(string, ...any)) (system, error) {
	bin, err := findNATSServer(o.natsServer)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &natsJS{o: o, log: testproc.NewTailBuffer(8 << 10)}
	if out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput(); err == nil {
		s.ver = strings.TrimSpace(string(out))
	}
	cmd := exec.Command(bin, "-js", "-sd", filepath.Join(dir, "store"), "-a", "127.0.0.1", "-p", "-1",
		"--ports_file_dir", dir, "-n", "peers-bench")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if s.proc, err = testproc.Start(cmd, nil); err != nil { // dies with the benchmark
		return nil, err
	}
	portsFile := filepath.Join(dir, fmt.Sprintf("%s_%d.ports", filepath.Base(bin), s.proc.PID()))
	if s.url, err = waitPortsFile(ctx, s.proc, portsFile); err != nil {
		s.close()
		return nil, fmt.Errorf("%w\n%s", err, s.log)
	}
	if s.nc, err = nats.Connect(s.url, nats.MaxReconnects(0)); err != nil {
		s.close()
		return nil, fmt.Errorf("connect %s: %w", s.url, err)
	}
	logf("nats-server pid %d on %s", s.proc.PID(), s.url)
	return s, nil
}

// waitPortsFile waits for nats-server's ports file and returns its client URL.
func waitPortsFile(ctx context.Context, p *testproc.Process, path string) (string, error) {
	var url string
	err := p.WaitReady(ctx, 30*time.Second, 20*time.Millisecond, func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		var ports struct {
			Nats []string `json:"nats"`
		}
		if json.Unmarshal(data, &ports) != nil || len(ports.Nats) == 0 {
			return false
		}
		url = ports.Nats[0]
		return true
	})
	if errors.Is(err, testproc.ErrNotReady) {
		return "", fmt.Errorf("nats-server wrote no %s within 30s", path)
	}
	if err != nil {
		return "", fmt.Errorf("nats-server: %w", err)
	}
	return url, nil
}

func (s *natsJS) pid() int        { return s.proc.PID() }
func (s *natsJS) version() string { return s.ver }

func (s *natsJS) close() error {
	if s.nc != nil {
		s.nc.Close()
	}
	// nats-server exits 0 on SIGINT, 1 on SIGTERM.
	switch err := s.proc.Stop(syscall.SIGINT, 20*time.Second); {
	case errors.Is(err, testproc.ErrKilled):
		return errors.New("nats-server did not stop within 20s of SIGINT; killed")
	case err != nil:
		return fmt.Errorf("nats-server exit: %w\n%s", err, s.log)
	}
	return nil
}

// createStream makes a file-storage stream called name on the single subject name.
func (s *natsJS) createStream(ctx context.Context, js jetstream.JetStream, name string) error {
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:      name,
		Subjects:  []string{name},
		Storage:   jetstream.FileStorage,
		Replicas:  1,
		Retention: jetstream.LimitsPolicy,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return nil
}

// asyncErrors collects failures reported by the async publish error handler.
type asyncErrors struct {
	n     atomic.Int64
	first atomic.Value
}

func (a *asyncErrors) handler(_ jetstream.JetStream, _ *nats.Msg, err error) {
	if a.n.Add(1) == 1 {
		a.first.Store(err)
	}
}

func (a *asyncErrors) err(total int) error {
	if n := a.n.Load(); n > 0 {
		return fmt.Errorf("%d of %d publishes failed, first: %v", n, total, a.first.Load())
	}
	return nil
}

// produce publishes n messages with PublishAsync and waits for every PubAck
// (PublishAsyncComplete). One synchronous publish first, so the stream holds n+1.
func (s *natsJS) produce(ctx context.Context, m *meter, name string, size, n int) (throughput, error) {
	var errs asyncErrors
	js, err := jetstream.New(s.nc, jetstream.WithPublishAsyncMaxPending(s.o.jsMaxPending),
		jetstream.WithPublishAsyncErrHandler(errs.handler))
	if err != nil {
		return throughput{}, err
	}
	if err := s.createStream(ctx, js, name); err != nil {
		return throughput{}, err
	}
	value := payload(size)
	if _, err := js.Publish(ctx, name, value); err != nil {
		return throughput{}, fmt.Errorf("warm-up publish: %w", err)
	}
	m.begin()
	for i := range n {
		if err := publishAsync(ctx, js, name, value); err != nil {
			return throughput{}, fmt.Errorf("publish %d: %w", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return throughput{}, ctx.Err()
	}
	if err := errs.err(n); err != nil {
		return throughput{}, err
	}
	return newThroughput(m, n, size), nil
}

// consume reads the stream from the start with an ordered consumer (ack none), pulling
// -js-pull-batch messages at a time.
func (s *natsJS) consume(ctx context.Context, m *meter, name string, size, n int) (throughput, error) {
	m.begin()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return throughput{}, err
	}
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return throughput{}, fmt.Errorf("ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(s.o.jsPullBatch))
	if err != nil {
		return throughput{}, err
	}
	defer it.Stop()
	want := n + 1
	for got := 0; got < want; got++ {
		msg, err := it.Next()
		if err != nil {
			return throughput{}, fmt.Errorf("after %d of %d messages: %w", got, want, err)
		}
		if len(msg.Data()) != size {
			return throughput{}, fmt.Errorf("message %d has %d bytes, want %d", got, len(msg.Data()), size)
		}
	}
	return newThroughput(m, n, size), nil
}

// latency publishes asynchronously at a fixed rate; the ack handler maps each PubAck's stream
// sequence (1, 2, ... on a fresh stream with one publisher) back to the message.
func (s *natsJS) latency(ctx context.Context, m *meter, name string, p paceConfig) ([]time.Duration, error) {
	rec := newLatencyRecorder(p)
	js, err := jetstream.New(s.nc,
		jetstream.WithPublishAsyncMaxPending(s.o.jsMaxPending),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { rec.fail(err) }),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, _ *nats.Msg, ack *jetstream.PubAck) {
			rec.ack(int(ack.Sequence) - 1)
		}))
	if err != nil {
		return nil, err
	}
	if err := s.createStream(ctx, js, name); err != nil {
		return nil, err
	}
	value := payload(p.size)
	return rec.run(ctx, m, func(int) error { return publishAsync(ctx, js, name, value) })
}

// publishAsync is PublishAsync that, when the window is full and stays full for the stall
// wait (200 ms), tries again instead of failing: the benchmark wants every message in.
func publishAsync(ctx context.Context, js jetstream.JetStream, subject string, value []byte) error {
	for {
		_, err := js.PublishAsync(subject, value)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
