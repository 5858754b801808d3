package agent

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// issueMQTTYAML is the configuration of the MQTT bridge issue, verbatim.
const issueMQTTYAML = `mqtt:
  bridges:
    - name: plant
      broker: tcp://127.0.0.1:1883      # also ssl:// and ws://
      client_id: samsa-plant
      username: ""                       # password, tls: {ca, cert, key}
      subscribe:
        - filter: sensors/+/temp
          qos: 1
          topic: telemetry               # template, e.g. "plant-{1}"
          key: "{mqtt_topic}"            # default; "{2}" = second topic level
      publish:
        - topic: commands
          mqtt_topic: "devices/{key}/cmd"
          qos: 1
          retain: false
`

func TestMQTTConfigIssueExample(t *testing.T) {
	c, err := LoadConfig(writeFile(t, issueMQTTYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []MQTTBridge{{
		Name: "plant", Broker: "tcp://127.0.0.1:1883", ClientID: "samsa-plant",
		Subscribe: []MQTTSubscribe{{Filter: "sensors/+/temp", QoS: 1, Topic: "telemetry", Key: "{mqtt_topic}"}},
		Publish:   []MQTTPublish{{Topic: "commands", MQTTTopic: "devices/{key}/cmd", QoS: 1}},
	}}
	if !reflect.DeepEqual(c.MQTT.Bridges, want) {
		t.Fatalf("bridges = %+v\nwant %+v", c.MQTT.Bridges, want)
	}
	if len(DefaultConfig().MQTT.Bridges) != 0 {
		t.Fatal("bridges by default")
	}
}

func TestMQTTConfigEveryKeyAndDefaults(t *testing.T) {
	c, err := LoadConfig(writeFile(t, `mqtt:
  bridges:
    - name: a
      broker: ssl://broker.local:8883
      username: gw
      password: hunter2
      tls: {ca: /etc/ca.pem, cert: /etc/c.pem, key: /etc/k.pem}
      subscribe:
        - {filter: "sensors/#", topic: "plant-{2}", key: "{3}"}
      publish:
        - {topic: cmds, mqtt_topic: "d/{key}", qos: 0, retain: true, start_from: latest}
      linger: 20ms
      max_batch_bytes: 65536
      compression: zstd
      max_in_flight: 50
      max_in_flight_bytes: 1048576
      keep_alive: 1m
      max_reconnect_interval: 30s
    - name: b
      broker: ws://127.0.0.1:9001/mqtt
      subscribe: [{filter: x, topic: x}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.MQTT.Bridges[0], c.MQTT.Bridges[1]
	if a.Password != "hunter2" || a.TLS.Key != "/etc/k.pem" || a.Linger != Duration(20*time.Millisecond) || a.MaxBatchBytes != 65536 ||
		a.Compression != "zstd" || a.MaxInFlight != 50 || a.MaxInFlightBytes != 1<<20 || a.KeepAlive != Duration(time.Minute) ||
		a.MaxReconnectInterval != Duration(30*time.Second) || a.Subscribe[0].QoS != 1 || a.Publish[0].QoS != 0 ||
		!a.Publish[0].Retain || a.Publish[0].StartFrom != "latest" {
		t.Fatalf("bridge a: %+v", a)
	}
	o := a.Options()
	if o.Password != "hunter2" || o.Linger != 20*time.Millisecond || o.Subscribe[0].Key != "{3}" || o.Publish[0].StartFrom != "latest" {
		t.Fatalf("options: %+v", o)
	}
	if s := fmt.Sprintf("%v %+v", a, a); strings.Contains(s, "hunter2") {
		t.Fatalf("the password is printed: %s", s)
	}
	if b.Subscribe[0].QoS != 1 || b.ClientID != "" || b.Options().Validate() != nil {
		t.Fatalf("bridge b: %+v", b)
	}
}

// TestMQTTConfigErrors: a bad bridge is a config error naming the file line, the bridge and
// the rule.
func TestMQTTConfigErrors(t *testing.T) {
	base := func(rules string) string {
		return "mqtt:\n  bridges:\n    - name: plant\n      broker: tcp://127.0.0.1:1883\n" + rules
	}
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"bad filter", base("      subscribe:\n        - {filter: \"a/#/b\", topic: t}\n"),
			`key "mqtt.bridges" (line 3): bridge 1 (line 3): invalid value: mqtt bridge "plant": subscribe rule 1 (filter "a/#/b"): filter: '#' must be a whole level and the last one`},
		{"bad topic template", base("      subscribe:\n        - {filter: x/y, topic: t}\n        - {filter: \"sensors/+/temp\", topic: \"plant-{7}\"}\n"),
			`mqtt bridge "plant": subscribe rule 2 (filter "sensors/+/temp"): topic "plant-{7}": {7}: the filter "sensors/+/temp" has only 3 level(s)`},
		{"bad key template", base("      subscribe:\n        - {filter: x, topic: t, key: \"{device}\"}\n"),
			`subscribe rule 1 (filter "x"): key "{device}": unknown placeholder {device}`},
		{"bad mqtt_topic", base("      publish:\n        - {topic: commands, mqtt_topic: \"devices/{partiton}\"}\n"),
			`mqtt bridge "plant": publish rule 1 (topic "commands"): mqtt_topic "devices/{partiton}": unknown placeholder {partiton}`},
		{"qos", base("      subscribe:\n        - {filter: x, topic: t, qos: 5}\n"), `subscribe rule 1 (filter "x"): qos 5: allowed: 0, 1, 2`},
		{"unknown bridge key", base("      subscrib: []\n"),
			`bridge 1 (line 3): unknown key "subscrib" (line 5); allowed: name, broker, client_id, username, password, tls, subscribe, publish,`},
		{"unknown rule key", base("      subscribe:\n        - filter: x\n          topik: t\n"),
			`bridge 1 (line 3): key "subscribe" (line 6): rule 1 (line 6): unknown key "topik" (line 7); allowed: filter, qos, topic, key`},
		{"unknown tls key", base("      tls: {ca: x, crt: y}\n"), `key "tls" (line 5): unknown key "crt"`},
		{"repeated key", base("      broker: tcp://x:1\n"), `key "broker" repeated (lines 4 and 5)`},
		{"wrong type", base("      max_in_flight: lots\n"), `key "max_in_flight" (line 5): invalid value: "lots": cannot read !!str`},
		{"scalar list", "mqtt:\n  bridges: plant\n", `key "mqtt.bridges" (line 2): invalid value "plant" (allowed: a YAML list of bridges`},
		{"mapping list", "mqtt:\n  bridges: {name: plant}\n", `invalid value: a YAML mapping (allowed: a list of bridges`},
		{"unknown mqtt key", "mqtt:\n  bridge: []\n", `unknown key "bridge" in mqtt: (line 2); allowed keys there: bridges`},
		{"no broker", "mqtt:\n  bridges:\n    - name: plant\n      subscribe: [{filter: x, topic: t}]\n", `mqtt bridge "plant": broker "": required`},
		{"duplicate name", "mqtt:\n  bridges:\n    - {name: a, broker: \"tcp://h:1\", subscribe: [{filter: x, topic: t}]}\n    - {name: a, broker: \"tcp://h:2\", subscribe: [{filter: x, topic: t}]}\n",
			`bridge 2 (line 4): invalid value: bridges 1 and 2 are both named "a"`},
		{"duplicate client id", "mqtt:\n  bridges:\n    - {name: a, client_id: gw, broker: \"tcp://h:1\", subscribe: [{filter: x, topic: t}]}\n    - {name: b, client_id: gw, broker: \"tcp://h:1\", subscribe: [{filter: x, topic: t}]}\n",
			`bridges 1 and 2 use the client id "gw"`},
	} {
		_, err := LoadConfig(writeFile(t, c.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant an error containing %s", c.name, err, c.want)
		}
	}
}

func TestMQTTConfigNotFromEnvironment(t *testing.T) {
	_, err := LoadConfig("", []string{"SAMSA_MQTT_BRIDGES=[]"})
	if err == nil || !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), "set in the config file only") {
		t.Fatalf("SAMSA_MQTT_BRIDGES: %v", err)
	}
	c := DefaultConfig()
	c.MQTT.Bridges = []MQTTBridge{{Name: "x", Broker: "tcp://h:1", Subscribe: []MQTTSubscribe{{Filter: "a/#/b", Topic: "t", QoS: 1}}}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `config key "mqtt.bridges": invalid value: mqtt bridge "x": subscribe rule 1`) {
		t.Fatalf("Validate of a bad bridge: %v", err)
	}
}

// TestREADMEMQTTExampleLoads: the README's MQTT bridge example is a configuration the agent
// accepts.
func TestREADMEMQTTExampleLoads(t *testing.T) {
	cfg := loadREADMEExample(t, "### MQTT bridge")
	if len(cfg.MQTT.Bridges) == 0 || len(cfg.MQTT.Bridges[0].Subscribe) == 0 || len(cfg.MQTT.Bridges[0].Publish) == 0 {
		t.Fatalf("README MQTT example read as %+v", cfg.MQTT)
	}
}

// FuzzMQTTConfig: decoding any YAML never panics, and a document that decodes has mqtt bridges
// that validate (every bridge is checked while it is decoded).
func FuzzMQTTConfig(f *testing.F) {
	f.Add(issueMQTTYAML)
	f.Add("mqtt:\n  bridges:\n    - {name: a, broker: \"ws://h\", subscribe: [{filter: \"#\", topic: t, key: \"{9}\"}], linger: 1ms}\n")
	f.Add("mqtt:\n  bridges:\n    - &b {name: a, broker: \"tcp://h:1\", publish: [{topic: c, mqtt_topic: \"d/{key}\"}]}\n    - *b\n")
	f.Add("mqtt:\n  bridges: [[1, 2], {tls: [x]}]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		c := DefaultConfig()
		if err := c.applyYAML([]byte(doc)); err != nil {
			return
		}
		if err := c.validateMQTT(); err != nil {
			t.Fatalf("decoded but invalid: %v\n%s", err, doc)
		}
		for _, b := range c.MQTT.Bridges {
			if err := b.Options().Validate(); err != nil {
				t.Fatalf("bridge %q: %v", b.Name, err)
			}
		}
	})
}
