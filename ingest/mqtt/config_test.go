package mqtt

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validOptions() Options {
	return Options{
		Name:      "plant",
		Broker:    "tcp://127.0.0.1:1883",
		Subscribe: []SubscribeRule{{Filter: "sensors/+/temp", QoS: 1, Topic: "telemetry"}},
		Publish:   []PublishRule{{Topic: "commands", MQTTTopic: "devices/{key}/cmd", QoS: 1}},
	}
}

func TestBridgeOptionsDefaults(t *testing.T) {
	o := validOptions().withDefaults()
	if o.ClientID != "samsa-plant" || o.Linger != DefaultLinger || o.MaxBatchBytes != DefaultMaxBatchBytes ||
		o.MaxInFlight != DefaultMaxInFlight || o.MaxInFlightBytes != DefaultMaxInFlightBytes || o.Compression != "lz4" ||
		o.KeepAlive != DefaultKeepAlive || o.MaxReconnectInterval != DefaultMaxReconnectInterval || o.DefaultPartitions != 1 ||
		o.Subscribe[0].Key != "{mqtt_topic}" || o.Publish[0].StartFrom != StartEarliest {
		t.Fatalf("defaults: %+v", o)
	}
	if err := validOptions().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestOptionsErrorsNameBridgeAndRule: every bad option is an error naming the bridge, the rule
// (by number and filter or topic) and what is wrong.
func TestBridgeOptionsErrorsNameBridgeAndRule(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"name", func(o *Options) { o.Name = "a b" }, `mqtt bridge "a b": name: "a b" contains ' '`},
		{"no broker", func(o *Options) { o.Broker = "" }, `mqtt bridge "plant": broker "": required`},
		{"scheme", func(o *Options) { o.Broker = "http://x:1" }, `broker "http://x:1": scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss`},
		{"port", func(o *Options) { o.Broker = "tcp://127.0.0.1" }, "a port is required"},
		{"bad port", func(o *Options) { o.Broker = "tcp://127.0.0.1:99999" }, `invalid port "99999"`},
		{"ws path", func(o *Options) { o.Broker = "tcp://h:1/mqtt" }, "a path is only allowed with ws://"},
		{"tls on tcp", func(o *Options) { o.TLS.CA = "ca.pem" }, `tls is set but the broker "tcp://127.0.0.1:1883" is not ssl://`},
		{"cert without key", func(o *Options) { o.Broker = "ssl://h:8883"; o.TLS.Cert = "c.pem" }, "cert and key go together"},
		{"password alone", func(o *Options) { o.Password = "x" }, "password is set without a username"},
		{"nothing", func(o *Options) { o.Subscribe, o.Publish = nil, nil }, "no subscribe and no publish rules"},
		{"filter", func(o *Options) { o.Subscribe[0].Filter = "a/#/b" }, `mqtt bridge "plant": subscribe rule 1 (filter "a/#/b"): filter: '#' must be`},
		{"qos", func(o *Options) { o.Subscribe[0].QoS = 3 }, `subscribe rule 1 (filter "sensors/+/temp"): qos 3: allowed: 0, 1, 2`},
		{"no topic", func(o *Options) { o.Subscribe[0].Topic = "" }, "subscribe rule 1 (filter \"sensors/+/temp\"): topic: required"},
		{"topic level", func(o *Options) { o.Subscribe[0].Topic = "plant-{4}" },
			`subscribe rule 1 (filter "sensors/+/temp"): topic "plant-{4}": {4}: the filter "sensors/+/temp" has only 3 level(s)`},
		{"topic placeholder", func(o *Options) { o.Subscribe[0].Topic = "t-{key}" }, `topic "t-{key}": unknown placeholder {key}`},
		{"topic slash", func(o *Options) { o.Subscribe[0].Topic = "{mqtt_topic}" }, `topic "{mqtt_topic}": {mqtt_topic} holds '/'`},
		{"key", func(o *Options) { o.Subscribe[0].Key = "{mqtt_topic" }, `subscribe rule 1 (filter "sensors/+/temp"): key "{mqtt_topic": unclosed '{'`},
		{"second rule", func(o *Options) {
			o.Subscribe = append(o.Subscribe, SubscribeRule{Filter: "x/+", Topic: "t", Key: "{3}"})
		}, `subscribe rule 2 (filter "x/+"): key "{3}": {3}: the filter "x/+" has only 2 level(s)`},
		{"publish topic", func(o *Options) { o.Publish[0].Topic = "a/b" }, `publish rule 1 (topic "a/b"): topic: invalid topic name`},
		{"mqtt_topic", func(o *Options) { o.Publish[0].MQTTTopic = "devices/+/{key}" }, `publish rule 1 (topic "commands"): mqtt_topic "devices/+/{key}": the text must be UTF-8 without '+'`},
		{"mqtt_topic placeholder", func(o *Options) { o.Publish[0].MQTTTopic = "d/{2}" }, `mqtt_topic "d/{2}": unknown placeholder {2}`},
		{"no mqtt_topic", func(o *Options) { o.Publish[0].MQTTTopic = "" }, "mqtt_topic: required"},
		{"publish qos", func(o *Options) { o.Publish[0].QoS = 7 }, "publish rule 1 (topic \"commands\"): qos 7"},
		{"start_from", func(o *Options) { o.Publish[0].StartFrom = "now" }, `start_from "now": allowed: earliest, latest`},
		{"duplicate publish", func(o *Options) { o.Publish = append(o.Publish, o.Publish[0]) }, `publish rule 2 (topic "commands"): the topic is already published by rule 1`},
		{"linger", func(o *Options) { o.Linger = time.Minute }, "linger 1m0s"},
		{"batch", func(o *Options) { o.MaxBatchBytes = 10 }, "max_batch_bytes 10"},
		{"in flight", func(o *Options) { o.MaxInFlight = 70000 }, "max_in_flight 70000"},
		{"in flight bytes", func(o *Options) { o.MaxInFlightBytes = 1 }, "max_in_flight_bytes 1"},
		{"compression", func(o *Options) { o.Compression = "brotli" }, `compression "brotli"`},
		{"keep alive", func(o *Options) { o.KeepAlive = time.Millisecond }, "keep_alive 1ms"},
		{"reconnect", func(o *Options) { o.MaxReconnectInterval = 2 * time.Hour }, "max_reconnect_interval 2h0m0s"},
	} {
		o := validOptions()
		c.mutate(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	for _, broker := range []string{"ssl://h:8883", "ws://h", "wss://h:443/mqtt", "mqtt://[::1]:1883", "tls://h:1"} {
		o := validOptions()
		o.Broker = broker
		if err := o.Validate(); err != nil {
			t.Errorf("broker %q: %v", broker, err)
		}
	}
}

// TestNewNeedsStoreAndGroups: the wiring is checked by New.
func TestBridgeNewNeedsStoreAndGroups(t *testing.T) {
	if _, err := New(validOptions()); err == nil || !strings.Contains(err.Error(), "no Store") {
		t.Fatalf("New without a store: %v", err)
	}
}
