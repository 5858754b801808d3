package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/agent"
	"github.com/samsa-io/samsa/ingest/mqtt"
	"github.com/samsa-io/samsa/internal/testmosquitto"
)

// mqttFailAfter bounds every wait of the MQTT tests (a failure bound, not a timing assertion).
const mqttFailAfter = 45 * time.Second

// plantBridge is the bridge of the tests: device topics site/<dev>/data into telemetry (key:
// the MQTT topic), commands back out to devices/<key>/cmd.
func plantBridge(broker string) agent.MQTTBridge {
	return agent.MQTTBridge{
		Name:      "plant",
		Broker:    broker,
		Subscribe: []agent.MQTTSubscribe{{Filter: "site/+/data", QoS: 1, Topic: "telemetry", Key: "{mqtt_topic}"}},
		Publish:   []agent.MQTTPublish{{Topic: "commands", MQTTTopic: "devices/{key}/cmd", QoS: 1}},
	}
}

// plantYAML is plantBridge as a config file.
func plantYAML(broker string) string {
	return fmt.Sprintf(`fsync: always
default_partitions: 4
mqtt:
  bridges:
    - name: plant
      broker: %s
      subscribe:
        - {filter: "site/+/data", qos: 1, topic: telemetry}
`, broker)
}

// seqReader consumes a topic from the start with one franz-go client and feeds the records to
// a SeqChecker until the load is complete.
type seqReader struct {
	cl  *kgo.Client
	chk *testmosquitto.SeqChecker
}

func newSeqReader(t *testing.T, addr, topic string, topics []string, perTopic int) *seqReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &seqReader{cl: cl, chk: testmosquitto.NewSeqChecker(topics, perTopic)}
}

// readAll consumes until every message of the load has been seen; it fails the test on a lost
// or reordered message, or when the load is not complete within mqttFailAfter.
func (r *seqReader) readAll(t *testing.T, detail func() string) *testmosquitto.SeqChecker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mqttFailAfter)
	defer cancel()
	for r.chk.Complete() != nil {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("after %d records (%d duplicates): %v\n%s", r.chk.Records, r.chk.Duplicates, r.chk.Complete(), detail())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s-%d: %v", topic, p, err) })
		var bad error
		fs.EachRecord(func(rec *kgo.Record) {
			if err := r.chk.Add(string(rec.Key), string(rec.Value)); err != nil && bad == nil {
				bad = err
			}
		})
		if bad != nil {
			t.Fatalf("%v\n%s", bad, detail())
		}
	}
	return r.chk
}

// mqttMetric returns the value of a sample in the agent's /metrics, or -1.
func mqttMetric(t *testing.T, httpAddr, sample string) int64 {
	t.Helper()
	_, body := httpGet(t, "http://"+httpAddr+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

// waitMQTTMetric polls a sample until ok(value) holds (bounded by mqttFailAfter).
func waitMQTTMetric(t *testing.T, httpAddr, sample string, ok func(int64) bool) int64 {
	t.Helper()
	deadline := time.Now().Add(mqttFailAfter)
	for {
		v := mqttMetric(t, httpAddr, sample)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d after %s", sample, v, mqttFailAfter)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMQTTIngest100kOrderedPerDevice: 100k QoS 1 messages from 20 publishers over 100 device
// topics all land in the log, in order per device topic (checked by a franz-go consumer: per
// key, the sequence numbers increase without gaps), with no copies beyond the publishers' own
// resends; /metrics follows.
func TestMQTTIngest100kOrderedPerDevice(t *testing.T) {
	srv := testmosquitto.Start(t)
	srv.CreateSession(t, "samsa-plant", "site/+/data") // the bridge's session exists before the load
	a := startAgent(t, t.TempDir(), func(c *agent.Config) {
		c.DefaultPartitions = 4
		c.MQTT.Bridges = []agent.MQTTBridge{plantBridge(srv.URL)}
	})
	topics := testmosquitto.Topics("site", 100)
	perTopic := ingestPerTopic
	start := time.Now()
	res := testmosquitto.MustPublishLoad(t, srv.URL, testmosquitto.Load{Clients: 20, Topics: topics, PerTopic: perTopic, ClientPrefix: "pub"})
	t.Logf("published in %s", time.Since(start).Round(time.Millisecond))
	chk := newSeqReader(t, a.KafkaAddr(), "telemetry", topics, perTopic).readAll(t, func() string { return srv.Output() })
	total := int64(len(topics) * perTopic)
	t.Logf("%d messages published (%d resent) and read back in %s", res.Published, res.Resent, time.Since(start).Round(time.Millisecond))
	// The bridge adds no copies. A publisher that got no PUBACK in time (a loaded machine)
	// publishes again, and Mosquitto forwards both copies, as QoS 1 allows: at most Resent.
	if int64(chk.Duplicates) > res.Resent || int64(chk.Records-chk.Duplicates) != total {
		t.Fatalf("%d records, %d duplicates (publishers resent %d); want %d, duplicates only from resends",
			chk.Records, chk.Duplicates, res.Resent, total)
	}
	h := a.HTTPAddr()
	in := waitMQTTMetric(t, h, `samsa_mqtt_messages_acked_total{bridge="plant"}`, func(v int64) bool {
		return v >= total && v == mqttMetric(t, h, `samsa_mqtt_messages_in_total{bridge="plant"}`)
	})
	if in > total+res.Resent {
		t.Errorf("%d messages in for %d published and %d resent", in, total, res.Resent)
	}
	for sample, want := range map[string]int64{
		`samsa_mqtt_connected{bridge="plant"}`:                                 1,
		`samsa_mqtt_records_appended_total{bridge="plant"}`:                    in,
		`samsa_mqtt_in_flight_messages{bridge="plant"}`:                        0,
		`samsa_mqtt_reconnects_total{bridge="plant"}`:                          0,
		`samsa_mqtt_dropped_total{bridge="plant",reason="invalid_topic"}`:      0,
		`samsa_mqtt_out_lag_records{bridge="plant"}`:                           0,
		`samsa_mqtt_dropped_total{bridge="plant",reason="invalid_mqtt_topic"}`: 0,
	} {
		if got := mqttMetric(t, h, sample); got != want {
			t.Errorf("%s = %d, want %d", sample, got, want)
		}
	}
}

// TestMQTTIngestKill9LosesNothing: the agent (a subprocess, fsync: always) is killed with
// SIGKILL in the middle of the stream and restarted: every message is in the log, duplicates
// allowed (counted), the first copies in order per device topic.
func TestMQTTIngestKill9LosesNothing(t *testing.T) {
	srv := testmosquitto.Start(t)
	srv.CreateSession(t, "samsa-plant", "site/+/data")
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "samsa.yaml")
	if err := os.WriteFile(cfg, []byte(plantYAML(srv.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() *agentProcess {
		return startProcess(t, exec.Command(samsaBinary(t), "agent", "--config", cfg, "--data-dir", dir,
			"--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"))
	}
	p := run()
	topics := testmosquitto.Topics("site", 100)
	perTopic := crashPerTopic
	done := make(chan error, 1)
	go func() {
		_, err := testmosquitto.PublishLoad(srv.URL, testmosquitto.Load{Clients: 20, Topics: topics, PerTopic: perTopic, ClientPrefix: "pub"})
		done <- err
	}()
	// Kill once a good part of the stream is in the log (and acknowledged), not all of it.
	mid := int64(len(topics) * perTopic / 4)
	waitMQTTMetric(t, p.httpAddr, `samsa_mqtt_messages_acked_total{bridge="plant"}`, func(v int64) bool { return v >= mid })
	p.kill9(t)
	p2 := run()
	t.Cleanup(func() { p2.stop(t) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	chk := newSeqReader(t, p2.kafkaAddr, "telemetry", topics, perTopic).readAll(t, p2.Logs)
	t.Logf("after kill -9: %d records for %d messages, %d duplicates", chk.Records, len(topics)*perTopic, chk.Duplicates)
}

// TestMQTTIngestSurvivesMosquittoRestart: Mosquitto is restarted in the middle of the stream;
// the bridge reconnects and no QoS 1 message is lost.
func TestMQTTIngestSurvivesMosquittoRestart(t *testing.T) {
	srv := testmosquitto.Start(t)
	srv.CreateSession(t, "samsa-plant", "site/+/data")
	a := startAgent(t, t.TempDir(), func(c *agent.Config) {
		c.DefaultPartitions = 4
		c.MQTT.Bridges = []agent.MQTTBridge{plantBridge(srv.URL)}
		c.MQTT.Bridges[0].MaxReconnectInterval = agent.Duration(time.Second)
	})
	topics := testmosquitto.Topics("site", 100)
	perTopic := crashPerTopic
	done := make(chan error, 1)
	go func() {
		_, err := testmosquitto.PublishLoad(srv.URL, testmosquitto.Load{Clients: 20, Topics: topics, PerTopic: perTopic, ClientPrefix: "pub"})
		done <- err
	}()
	h := a.HTTPAddr()
	waitMQTTMetric(t, h, `samsa_mqtt_messages_acked_total{bridge="plant"}`, func(v int64) bool { return v >= int64(len(topics)*perTopic/4) })
	srv.Restart(t)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	chk := newSeqReader(t, a.KafkaAddr(), "telemetry", topics, perTopic).readAll(t, srv.Output)
	reconnects := waitMQTTMetric(t, h, `samsa_mqtt_reconnects_total{bridge="plant"}`, func(v int64) bool { return v >= 1 })
	t.Logf("after a mosquitto restart: %d records, %d duplicates, %d reconnects", chk.Records, chk.Duplicates, reconnects)
}

// TestMQTTEgressToMosquittoSub: records produced to commands reach a mosquitto_sub subscriber
// on devices/<key>/cmd, each once; the egress group's committed offsets reach the end; after a
// restart of the agent only the records produced since are published.
func TestMQTTEgressToMosquittoSub(t *testing.T) {
	srv := testmosquitto.Start(t)
	sub := srv.Subscribe(t, "devices/+/cmd")
	dir := t.TempDir()
	cfg := func(c *agent.Config) { c.MQTT.Bridges = []agent.MQTTBridge{plantBridge(srv.URL)} }
	a := startAgent(t, dir, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), mqttFailAfter)
	defer cancel()
	cl := newClient(t, a.KafkaAddr())
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "commands"); err != nil {
		t.Fatal(err)
	}
	produce := func(cl *kgo.Client, from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Topic: "commands", Key: fmt.Appendf(nil, "dev-%d", i%10), Value: fmt.Appendf(nil, "cmd-%d", i)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(cl, 0, 300)
	checkLines := func(lines []string, n int) {
		t.Helper()
		seen := map[string]bool{}
		for _, l := range lines {
			topic, payload, _ := strings.Cut(l, " ")
			i, err := strconv.Atoi(strings.TrimPrefix(payload, "cmd-"))
			if err != nil || topic != fmt.Sprintf("devices/dev-%d/cmd", i%10) {
				t.Fatalf("%q on %q", payload, topic)
			}
			if seen[payload] {
				t.Fatalf("%q delivered twice", payload)
			}
			seen[payload] = true
		}
		if len(seen) != n {
			t.Fatalf("%d distinct commands delivered, want %d", len(seen), n)
		}
	}
	checkLines(sub.WaitLines(300, mqttFailAfter), 300)
	// The committed offsets reach the end of every partition.
	group := mqtt.GroupID("plant")
	deadline := time.Now().Add(mqttFailAfter)
	for {
		ends, err := adm.ListEndOffsets(ctx, "commands")
		if err != nil {
			t.Fatal(err)
		}
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		caught := true
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := offs.Lookup("commands", e.Partition); !ok || o.At != e.Offset {
				caught = false
			}
		})
		if caught {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s offsets %v, log ends %v", group, offs, ends)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := mqttMetric(t, a.HTTPAddr(), `samsa_mqtt_messages_out_total{bridge="plant"}`); v != 300 {
		t.Fatalf("samsa_mqtt_messages_out_total = %d, want 300", v)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	a2 := startAgent(t, dir, cfg)
	cl2 := newClient(t, a2.KafkaAddr())
	produce(cl2, 300, 400)
	sub.WaitLines(400, mqttFailAfter)
	waitMQTTMetric(t, a2.HTTPAddr(), `samsa_mqtt_messages_out_total{bridge="plant"}`, func(v int64) bool { return v == 100 })
	waitMQTTMetric(t, a2.HTTPAddr(), `samsa_mqtt_out_lag_records{bridge="plant"}`, func(v int64) bool { return v == 0 })
	checkLines(sub.Lines(), 400) // nothing acknowledged before the restart came again
}

// crashPerTopic is the load of the fault tests: 100 device topics x 300 = 30k messages.
const crashPerTopic = 300

// TestMQTTBridgeInFlightBytesWithinMemoryBudget: memory.max_bytes lowers the bridges'
// max_in_flight_bytes to their share of the budget (an eighth, split between the bridges).
func TestMQTTBridgeInFlightBytesWithinMemoryBudget(t *testing.T) {
	srv := testmosquitto.Start(t)
	const budget = 64 << 20
	a := startAgent(t, t.TempDir(), func(c *agent.Config) {
		c.Memory.MaxBytes = budget
		c.MQTT.Bridges = []agent.MQTTBridge{plantBridge(srv.URL)}
	})
	if v := mqttMetric(t, a.HTTPAddr(), `samsa_mqtt_in_flight_limit_bytes{bridge="plant"}`); v != budget/8 {
		t.Fatalf("in-flight limit %d bytes with memory.max_bytes %d, want the MQTT share %d", v, budget, budget/8)
	}
}
