package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/benchmarks/internal/benchkit"
)

// filter matches every device topic of the load ("bench/dev-NNN/data").
const filter = "bench/+/data"

// window is how many publishes each publisher keeps unacknowledged (QoS 1) or unwritten
// (QoS 0) before it waits for the oldest: full speed without unbounded memory.
const window = 1000

// stallTimeout fails a measurement when no message has arrived for this long (a message lost,
// e.g. a QoS 0 message dropped): a failure bound, not a timing.
const stallTimeout = 30 * time.Second

// measurement is one run of N messages from the publishers to the sink.
type measurement struct {
	Messages  int64   `json:"messages"` // arrived at the sink (subscriber count, or records in the log)
	Seconds   float64 `json:"seconds"`  // first arrival to the N-th
	MsgsPerS  float64 `json:"msgs_per_sec"`
	PublishS  float64 `json:"publish_seconds"` // first publish to the last publisher's end
	Mosquitto float64 `json:"mosquitto_cpu_seconds"`
	// Process is this process's CPU: publishers + the paho subscriber (ceiling), or
	// publishers + the in-process agent (samsa).
	Process float64 `json:"process_cpu_seconds"`
	// Acked is the bridge's messages_acked counter at the end (samsa only): every message
	// acknowledged to Mosquitto (QoS 1) or passed (QoS 0).
	Acked int64 `json:"acked,omitempty"`
}

// load is the publish side, shared by both sinks.
type load struct {
	url        string
	qos        byte
	messages   int64
	payload    []byte
	publishers int
	topics     []string
}

func newLoad(url string, o options, qos byte) *load {
	p := make([]byte, o.payload)
	rand.Read(p)
	t := make([]string, o.topics)
	for i := range t {
		t[i] = fmt.Sprintf("bench/dev-%03d/data", i)
	}
	return &load{url: url, qos: qos, messages: int64(o.messages), payload: p, publishers: o.publishers, topics: t}
}

// publish connects the publishers, then all publish their share at full speed; it returns
// when every publish is complete (QoS 1: acknowledged by Mosquitto; QoS 0: written).
func (l *load) publish(tag string) (time.Duration, error) {
	clients := make([]paho.Client, l.publishers)
	for i := range clients {
		opts := paho.NewClientOptions().AddBroker(l.url).SetClientID(fmt.Sprintf("bench-pub-%s-%d", tag, i)).
			SetCleanSession(true).SetAutoReconnect(false).SetWriteTimeout(stallTimeout)
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(stallTimeout) || tok.Error() != nil {
			return 0, fmt.Errorf("publisher %d: connect: %v", i, tok.Error())
		}
		clients[i] = c
		defer c.Disconnect(250)
	}
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range clients {
		n := l.messages / int64(len(clients))
		if int64(i) < l.messages%int64(len(clients)) {
			n++
		}
		var mine []string
		for j := i; j < len(l.topics); j += len(clients) {
			mine = append(mine, l.topics[j])
		}
		if len(mine) == 0 {
			mine = l.topics[i%len(l.topics) : i%len(l.topics)+1]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.publishOne(c, mine, n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func (l *load) publishOne(c paho.Client, topics []string, n int64) error {
	ring := make([]paho.Token, window)
	wait := func(t paho.Token) error {
		if !t.WaitTimeout(stallTimeout) {
			return fmt.Errorf("publish not complete after %s", stallTimeout)
		}
		return t.Error()
	}
	for k := range n {
		slot := &ring[k%window]
		if *slot != nil {
			if err := wait(*slot); err != nil {
				return err
			}
		}
		*slot = c.Publish(topics[k%int64(len(topics))], l.qos, false, l.payload)
	}
	for _, t := range ring {
		if t != nil {
			if err := wait(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// cpuMark is the CPU used so far by Mosquitto and by this process.
type cpuMark struct{ mosq, self float64 }

func markCPU(mosqPID int) cpuMark {
	m, _ := benchkit.ProcCPU(mosqPID)
	s, _ := benchkit.ProcCPU(os.Getpid())
	return cpuMark{m, s}
}

func (a cpuMark) add(r *measurement, mosqPID int) {
	b := markCPU(mosqPID)
	r.Mosquitto, r.Process = b.mosq-a.mosq, b.self-a.self
}

// ceiling measures a plain paho subscriber (same filter and QoS, automatic acknowledgements)
// that counts and discards the messages.
func ceiling(l *load, mosqPID int, tag string) (measurement, error) {
	var count atomic.Int64
	var first, last atomic.Int64 // unix ns
	done := make(chan struct{})
	opts := paho.NewClientOptions().AddBroker(l.url).SetClientID("bench-ceiling-" + tag).SetCleanSession(true).
		SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ paho.Client, _ paho.Message) {
			n := count.Add(1)
			if n == 1 {
				first.Store(time.Now().UnixNano())
			}
			if n == l.messages {
				last.Store(time.Now().UnixNano())
				close(done)
			}
		})
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(stallTimeout) || tok.Error() != nil {
		return measurement{}, fmt.Errorf("ceiling subscriber: connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	if tok := c.Subscribe(filter, l.qos, nil); !tok.WaitTimeout(stallTimeout) || tok.Error() != nil {
		return measurement{}, fmt.Errorf("ceiling subscriber: subscribe: %v", tok.Error())
	}
	cpu := markCPU(mosqPID)
	pubDur, err := l.publish(tag)
	if err != nil {
		return measurement{}, err
	}
	if err := waitDone(done, count.Load); err != nil {
		return measurement{}, fmt.Errorf("ceiling subscriber: %w", err)
	}
	r := measurement{Messages: count.Load(), PublishS: pubDur.Seconds()}
	cpu.add(&r, mosqPID)
	r.Seconds = float64(last.Load()-first.Load()) / 1e9
	r.MsgsPerS = float64(l.messages) / r.Seconds
	return r, nil
}

// waitDone waits for done, failing when count stops moving for stallTimeout.
func waitDone(done <-chan struct{}, count func() int64) error {
	prev, since := int64(-1), time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-tick.C:
		}
		if n := count(); n != prev {
			prev, since = n, time.Now()
		} else if time.Since(since) > stallTimeout {
			return fmt.Errorf("%d messages arrived, then none for %s", n, stallTimeout)
		}
	}
}

// createSession leaves a persistent session (clean session off) for clientID subscribed to
// filter at qos, so that the bridge's subscription exists before it connects.
func createSession(url, clientID string, qos byte) error {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(false))
	if tok := c.Connect(); !tok.WaitTimeout(stallTimeout) || tok.Error() != nil {
		return fmt.Errorf("create session %s: %v", clientID, tok.Error())
	}
	defer c.Disconnect(250)
	if tok := c.Subscribe(filter, qos, nil); !tok.WaitTimeout(stallTimeout) || tok.Error() != nil {
		return fmt.Errorf("create session %s: subscribe: %v", clientID, tok.Error())
	}
	return nil
}

// samsa measures an in-process agent whose bridge subscribes to the load at its QoS and
// appends every message to the topic "mqtt-bench": from the first record in the log to the
// N-th (the high watermark summed over the partitions; at QoS 1 a message is acknowledged to
// Mosquitto only once the high watermark covers it).
func samsa(ctx context.Context, l *load, o options, mosqPID int, tag string) (measurement, error) {
	dir, err := os.MkdirTemp(o.dir, "samsa-mqtt-bench-")
	if err != nil {
		return measurement{}, err
	}
	defer os.RemoveAll(dir)
	clientID := "samsa-bench-" + tag
	if err := createSession(l.url, clientID, l.qos); err != nil {
		return measurement{}, err
	}
	const topic = "mqtt-bench"
	cfg := agent.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.KafkaAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Fsync = o.fsync
	cfg.MQTT.Bridges = []agent.MQTTBridge{{
		Name: "bench", Broker: l.url, ClientID: clientID,
		Subscribe: []agent.MQTTSubscribe{{Filter: filter, QoS: int(l.qos), Topic: topic}},
	}}
	a, err := agent.New(cfg, slog.New(slog.NewTextHandler(o.logOut, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return measurement{}, err
	}
	if err := a.Start(); err != nil {
		return measurement{}, err
	}
	defer a.Shutdown(context.Background())
	metricsURL := "http://" + a.HTTPAddr() + "/metrics"
	if err := waitMetric(ctx, metricsURL, `samsa_mqtt_connected{bridge="bench"}`, 1); err != nil {
		return measurement{}, err
	}
	hw := func() int64 {
		t := a.Store().Topic(topic)
		if t == nil {
			return 0
		}
		var n int64
		for p := range t.NumPartitions() {
			n += t.Partition(p).HighWatermark()
		}
		return n
	}
	cpu := markCPU(mosqPID)
	var first, last time.Time
	done := make(chan struct{})
	var pollErr error
	go func() { // 1 ms polling of the high watermarks (an in-memory read under a lock)
		defer close(done)
		prev, since := int64(-1), time.Now()
		for {
			now := time.Now()
			n := hw()
			if n > 0 && first.IsZero() {
				first = now
			}
			if n >= l.messages {
				last = now
				return
			}
			if n != prev {
				prev, since = n, now
			} else if now.Sub(since) > stallTimeout {
				pollErr = fmt.Errorf("samsa: %d records in the log, then none for %s", n, stallTimeout)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	pubDur, err := l.publish(tag)
	if err != nil {
		return measurement{}, err
	}
	<-done
	if pollErr != nil {
		return measurement{}, pollErr
	}
	r := measurement{Messages: hw(), PublishS: pubDur.Seconds()}
	cpu.add(&r, mosqPID)
	r.Seconds = last.Sub(first).Seconds()
	r.MsgsPerS = float64(l.messages) / r.Seconds
	// Not timed: every message acknowledged to Mosquitto (or passed, at QoS 0).
	if err := waitMetric(ctx, metricsURL, `samsa_mqtt_messages_acked_total{bridge="bench"}`, l.messages); err != nil {
		return measurement{}, err
	}
	r.Acked = l.messages
	return r, nil
}

// waitMetric polls the agent's /metrics until sample has value want.
func waitMetric(ctx context.Context, url, sample string, want int64) error {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\d+)$`)
	deadline := time.Now().Add(stallTimeout)
	got := int64(-1)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := re.FindSubmatch(body); m != nil {
				got, _ = strconv.ParseInt(string(m[1]), 10, 64)
				if got == want {
					return nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("samsa: %s = %d, want %d after %s", sample, got, want, stallTimeout)
}
