package mqtt

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
)

// fuzzMessage is an MQTT message as paho hands it to the bridge: plain data.
type fuzzMessage struct {
	topic    string
	payload  []byte
	qos      byte
	retained bool
}

func (m *fuzzMessage) Duplicate() bool   { return false }
func (m *fuzzMessage) Qos() byte         { return m.qos }
func (m *fuzzMessage) Retained() bool    { return m.retained }
func (m *fuzzMessage) Topic() string     { return m.topic }
func (m *fuzzMessage) MessageID() uint16 { return 1 }
func (m *fuzzMessage) Payload() []byte   { return m.payload }
func (m *fuzzMessage) Ack()              {}

// FuzzIngestMessage maps arbitrary MQTT messages (topic, payload, QoS, retain flag as a broker
// may send them) to records through a fuzzed subscribe rule, followed by a catch-all rule.
// Nothing may panic; a message that is not dropped goes to a valid Kafka topic with the key its
// rule's template renders; and its record, built and parsed back as the batcher and a consumer
// do, holds the payload and the mqtt.* headers unchanged.
func FuzzIngestMessage(f *testing.F) {
	for _, s := range ingestSeeds() {
		f.Add(s.filter, s.topic, s.key, s.mqttTopic, s.payload, s.qos, s.retained)
	}
	f.Fuzz(func(t *testing.T, filter, topicTmpl, keyTmpl, mqttTopic string, payload []byte, qos byte, retained bool) {
		catchAll := SubscribeRule{Filter: "#", Topic: "mqtt-{1}", Key: "{mqtt_topic}"}
		opts := Options{Name: "fuzz", Broker: "tcp://127.0.0.1:1", Subscribe: []SubscribeRule{{Filter: filter, Topic: topicTmpl, Key: keyTmpl}, catchAll}}
		c, err := opts.compile()
		if err != nil {
			opts.Subscribe = opts.Subscribe[1:]
			if c, err = opts.compile(); err != nil {
				t.Fatalf("the catch-all rule does not compile: %v", err)
			}
		}
		b := &Bridge{c: c, opts: &c.opts, log: slog.New(slog.DiscardHandler), lastWarn: map[string]time.Time{}}
		in := &ingest{b: b}
		msg := &fuzzMessage{topic: mqttTopic, payload: payload, qos: qos, retained: retained}
		m := &inMsg{msg: msg, ts: 1_700_000_000_000}
		in.route(m)
		var rule *compiledSub
		for i := range c.subs {
			if matchFilter(c.subs[i].Filter, mqttTopic) {
				rule = &c.subs[i]
				break
			}
		}
		switch {
		case rule == nil:
			if m.drop != dropNoRule {
				t.Fatalf("%q matches no rule, but drop = %v", mqttTopic, m.drop)
			}
			return
		case m.drop == dropInvalidTopic:
			if commitlog.ValidateTopicName(m.topic) == nil {
				t.Fatalf("%q dropped for topic %q, which is valid", mqttTopic, m.topic)
			}
			return
		case m.drop != 0:
			t.Fatalf("%q matched filter %q but was dropped (%v)", mqttTopic, rule.Filter, m.drop)
		}
		if err := commitlog.ValidateTopicName(m.topic); err != nil {
			t.Fatalf("%q mapped to topic %q: %v", mqttTopic, m.topic, err)
		}
		if want := rule.key.render(nil, &renderEnv{mqttTopic: mqttTopic}); !bytes.Equal(m.key, want) {
			t.Fatalf("%q mapped to key %q, the template renders %q", mqttTopic, m.key, want)
		}
		checkIngestRecord(t, c.codec, m, msg)
	})
}

// checkIngestRecord builds m's record as the batcher does and checks what a consumer reads.
func checkIngestRecord(t *testing.T, codec batch.Codec, m *inMsg, msg *fuzzMessage) {
	bld := batch.NewBuilder(batch.BuildOptions{ProducerID: -1, Codec: codec})
	addRecord(bld, m, nil)
	data, err := bld.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if _, err := batch.Validate(data); err != nil {
		t.Fatalf("the built batch does not validate: %v", err)
	}
	n := 0
	err = batch.Records(data, func(r *batch.Record) error {
		n++
		if !bytes.Equal(r.Key, m.key) || r.Value == nil || !bytes.Equal(r.Value, msg.payload) || r.Timestamp != m.ts {
			return fmt.Errorf("record key %q value %q ts %d, want %q %q %d", r.Key, r.Value, r.Timestamp, m.key, msg.payload, m.ts)
		}
		want := map[string]string{"mqtt.topic": msg.topic, "mqtt.qos": fmt.Sprint(min(msg.qos, 2)), "mqtt.retain": fmt.Sprint(msg.retained)}
		if len(r.Headers) != len(want) {
			return fmt.Errorf("headers %v", r.Headers)
		}
		for _, h := range r.Headers {
			if v, ok := want[h.Key]; !ok || string(h.Value) != v {
				return fmt.Errorf("header %s=%q, want %q", h.Key, h.Value, v)
			}
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("%d records: %v", n, err)
	}
}

// ingestSeed is one FuzzIngestMessage input.
type ingestSeed struct {
	filter, topic, key, mqttTopic string
	payload                       []byte
	qos                           byte
	retained                      bool
}

func ingestSeeds() map[string]ingestSeed {
	return map[string]ingestSeed{
		"level_topic":   {"sensors/+/temp", "plant-{2}", "{mqtt_topic}", "sensors/a1/temp", []byte(`{"c":21.5}`), 1, false},
		"multi_level":   {"devices/#", "telemetry", "{2}", "devices/d7/x/y", []byte("raw"), 0, true},
		"level_missing": {"a/#", "t-{3}", "{3}", "a", nil, 2, false},
		"invalid_topic": {"+", "{1}", "{mqtt_topic}", "..", []byte{}, 1, false},
		"catch_all":     {"x/+", "t", "", "other/topic/\u00e9", []byte{0, 1, 2}, 7, true},
		"empty_levels":  {"+/+", "{1}{2}", "k{1}", "/", []byte("v"), 1, false},
	}
}

// TestWriteIngestFuzzCorpus rewrites testdata/fuzz/FuzzIngestMessage when
// SAMSA_WRITE_FUZZ_CORPUS=1.
func TestWriteIngestFuzzCorpus(t *testing.T) {
	if os.Getenv("SAMSA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SAMSA_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzIngestMessage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range ingestSeeds() {
		content := fmt.Sprintf("go test fuzz v1\nstring(%q)\nstring(%q)\nstring(%q)\nstring(%q)\n[]byte(%q)\nbyte(%q)\nbool(%v)\n",
			s.filter, s.topic, s.key, s.mqttTopic, s.payload, s.qos, s.retained)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
