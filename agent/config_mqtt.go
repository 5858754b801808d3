package agent

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/samsa-io/samsa/ingest/mqtt"
)

// MQTTConfig is the YAML block mqtt: the MQTT bridges (package ingest/mqtt). It has one key,
// mqtt.bridges, a list of bridges, each a mapping:
//
//	mqtt:
//	  bridges:
//	    - name: plant                      # required: logs, metrics, consumer group samsa-mqtt-plant
//	      broker: tcp://127.0.0.1:1883     # also ssl://, ws://, wss://
//	      client_id: samsa-plant           # default samsa-<name>; fixed, so the broker keeps the session
//	      username: ""                     # and password
//	      tls: {ca: "", cert: "", key: ""} # PEM files for ssl:// and wss://
//	      subscribe:
//	        - filter: sensors/+/temp
//	          qos: 1                       # default 1
//	          topic: telemetry             # template: {mqtt_topic}, {1}, {2}, ...
//	          key: "{mqtt_topic}"          # the default
//	      publish:
//	        - topic: commands
//	          mqtt_topic: "devices/{key}/cmd"  # template: {key}, {topic}, {partition}, {offset}
//	          qos: 1                       # default 1
//	          retain: false
//	          start_from: earliest         # or latest: where a partition without committed offset starts
//	      linger: 5ms                      # batching: wait for more messages this long
//	      max_batch_bytes: 1048576         # ... or until a partition's batch is this large
//	      compression: lz4                 # none, gzip, snappy, lz4, zstd
//	      max_in_flight: 1000              # messages received and not yet acknowledged (and publishes per partition)
//	      max_in_flight_bytes: 16777216    # their payload bytes
//	      keep_alive: 30s
//	      max_reconnect_interval: 10s      # cap of the reconnect backoff
//
// The block is read from the YAML file only: there is no environment variable or flag for it
// (SAMSA_MQTT_BRIDGES is refused with a message saying so). Every bridge is checked at load
// time; an error names the bridge and the rule, e.g.
// `mqtt bridge "plant": subscribe rule 1 (filter "sensors/+/temp"): topic "plant-{4}": ...`.
type MQTTConfig struct {
	Bridges []MQTTBridge `yaml:"bridges"`
}

// MQTTBridge is one bridge of the mqtt: block; see MQTTConfig and mqtt.Options for the keys.
// Zero values mean the defaults of mqtt.Options.
type MQTTBridge struct {
	Name                 string          `yaml:"name"`
	Broker               string          `yaml:"broker"`
	ClientID             string          `yaml:"client_id"`
	Username             string          `yaml:"username"`
	Password             Secret          `yaml:"password"`
	TLS                  MQTTTLS         `yaml:"tls"`
	Subscribe            []MQTTSubscribe `yaml:"subscribe"`
	Publish              []MQTTPublish   `yaml:"publish"`
	Linger               Duration        `yaml:"linger"`
	MaxBatchBytes        int             `yaml:"max_batch_bytes"`
	MaxInFlight          int             `yaml:"max_in_flight"`
	MaxInFlightBytes     int64           `yaml:"max_in_flight_bytes"`
	Compression          string          `yaml:"compression"`
	KeepAlive            Duration        `yaml:"keep_alive"`
	MaxReconnectInterval Duration        `yaml:"max_reconnect_interval"`
}

// MQTTTLS are PEM file paths for an ssl:// or wss:// broker.
type MQTTTLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// MQTTSubscribe is a subscribe rule: MQTT messages of filter to records of topic.
type MQTTSubscribe struct {
	Filter string `yaml:"filter"`
	QoS    int    `yaml:"qos"` // default 1
	Topic  string `yaml:"topic"`
	Key    string `yaml:"key"` // default "{mqtt_topic}"
}

// MQTTPublish is a publish rule: records of topic to MQTT messages on mqtt_topic.
type MQTTPublish struct {
	Topic     string `yaml:"topic"`
	MQTTTopic string `yaml:"mqtt_topic"`
	QoS       int    `yaml:"qos"` // default 1
	Retain    bool   `yaml:"retain"`
	StartFrom string `yaml:"start_from"` // default earliest
}

// Options converts the bridge to mqtt.Options, without the agent's wiring (Store, Groups,
// topic creation, logger).
func (b MQTTBridge) Options() mqtt.Options {
	o := mqtt.Options{
		Name:                 b.Name,
		Broker:               b.Broker,
		ClientID:             b.ClientID,
		Username:             b.Username,
		Password:             b.Password.Reveal(),
		TLS:                  mqtt.TLSOptions{CA: b.TLS.CA, Cert: b.TLS.Cert, Key: b.TLS.Key},
		Linger:               b.Linger.Duration(),
		MaxBatchBytes:        b.MaxBatchBytes,
		MaxInFlight:          b.MaxInFlight,
		MaxInFlightBytes:     b.MaxInFlightBytes,
		Compression:          b.Compression,
		KeepAlive:            b.KeepAlive.Duration(),
		MaxReconnectInterval: b.MaxReconnectInterval.Duration(),
	}
	for _, s := range b.Subscribe {
		o.Subscribe = append(o.Subscribe, mqtt.SubscribeRule{Filter: s.Filter, QoS: qosByte(s.QoS), Topic: s.Topic, Key: s.Key})
	}
	for _, p := range b.Publish {
		o.Publish = append(o.Publish, mqtt.PublishRule{Topic: p.Topic, MQTTTopic: p.MQTTTopic, QoS: qosByte(p.QoS),
			Retain: p.Retain, StartFrom: p.StartFrom})
	}
	return o
}

// qosByte maps a QoS outside 0..2 to 3, which mqtt.Options.Validate refuses (checkQoS names
// the value first).
func qosByte(q int) byte {
	if q < 0 || q > 2 {
		return 3
	}
	return byte(q)
}

const mqttBridgesKey = "mqtt.bridges"

// mqttFields is the mqtt: block's key: a list, set only from YAML.
var mqttFields = []field{{
	key:     mqttBridgesKey,
	allowed: "a YAML list of bridges (name, broker, subscribe, publish, ...), set in the config file only: there is no environment variable or flag for it",
	set:     func(*Config, string) bool { return false },
	setNode: setMQTTBridges,
	valid:   func(*Config) bool { return true }, // validateMQTT names the bridge and rule
	show:    func(c *Config) string { return fmt.Sprintf("%d bridges", len(c.MQTT.Bridges)) },
}}

// setMQTTBridges decodes the list strictly (unknown keys are errors naming the line) and
// checks every bridge.
func setMQTTBridges(c *Config, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("%w: a YAML %s (allowed: a list of bridges, each a mapping with name, broker, subscribe, publish, ...)",
			ErrInvalidValue, nodeKind(n))
	}
	var bridges []MQTTBridge
	for i, item := range n.Content {
		var b MQTTBridge
		if err := decodeStrict(item, &b); err != nil {
			return fmt.Errorf("bridge %d (line %d): %w", i+1, item.Line, err)
		}
		bridges = append(bridges, b)
		if err := checkMQTTBridges(bridges); err != nil {
			return fmt.Errorf("bridge %d (line %d): %w", i+1, item.Line, err)
		}
	}
	c.MQTT.Bridges = bridges
	return nil
}

// validateMQTT checks every bridge (Validate calls it; the YAML path checked them already).
func (c Config) validateMQTT() error {
	if err := checkMQTTBridges(c.MQTT.Bridges); err != nil {
		return fmt.Errorf("config key %q: %w", mqttBridgesKey, err)
	}
	return nil
}

// checkMQTTBridges checks each bridge's options, and that names and client ids are unique (two
// connections with one client id would take the session from each other).
func checkMQTTBridges(bridges []MQTTBridge) error {
	names, ids := map[string]int{}, map[string]int{}
	for i, b := range bridges {
		if err := checkQoS(b); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidValue, err)
		}
		if err := b.Options().Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidValue, err)
		}
		if prev, dup := names[b.Name]; dup {
			return fmt.Errorf("%w: bridges %d and %d are both named %q", ErrInvalidValue, prev, i+1, b.Name)
		}
		names[b.Name] = i + 1
		id := b.ClientID
		if id == "" {
			id = "samsa-" + b.Name
		}
		if prev, dup := ids[id]; dup {
			return fmt.Errorf("%w: bridges %d and %d use the client id %q (each needs its own MQTT session)", ErrInvalidValue, prev, i+1, id)
		}
		ids[id] = i + 1
	}
	return nil
}

func checkQoS(b MQTTBridge) error {
	for i, s := range b.Subscribe {
		if s.QoS < 0 || s.QoS > 2 {
			return fmt.Errorf("mqtt bridge %q: subscribe rule %d (filter %q): qos %d: allowed: 0, 1, 2", b.Name, i+1, s.Filter, s.QoS)
		}
	}
	for i, p := range b.Publish {
		if p.QoS < 0 || p.QoS > 2 {
			return fmt.Errorf("mqtt bridge %q: publish rule %d (topic %q): qos %d: allowed: 0, 1, 2", b.Name, i+1, p.Topic, p.QoS)
		}
	}
	return nil
}

// Defaults that YAML decoding puts in list items before their keys: QoS 1.
var (
	defaultMQTTSubscribe = MQTTSubscribe{QoS: 1}
	defaultMQTTPublish   = MQTTPublish{QoS: 1}
)

// decodeStrict decodes a YAML mapping into the struct dst points to, by yaml tags: unknown or
// repeated keys are errors naming the line; nested structs and lists of structs are decoded the
// same way (list items start from their defaults).
func decodeStrict(n *yaml.Node, dst any) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: want a mapping of the keys %s", ErrInvalidValue, strings.Join(yamlKeys(t), ", "))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if val.Kind == yaml.AliasNode && val.Alias != nil {
			val = val.Alias
		}
		fi := slices.Index(yamlKeys(t), k.Value)
		if fi < 0 {
			return fmt.Errorf("unknown key %q (line %d); allowed: %s", k.Value, k.Line, strings.Join(yamlKeys(t), ", "))
		}
		if prev, dup := seen[k.Value]; dup {
			return fmt.Errorf("key %q repeated (lines %d and %d)", k.Value, prev, k.Line)
		}
		seen[k.Value] = k.Line
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			continue
		}
		if err := decodeField(val, v.Field(fi)); err != nil {
			return fmt.Errorf("key %q (line %d): %w", k.Value, val.Line, err)
		}
	}
	return nil
}

// decodeField decodes one value: a struct (strictly), a list of structs, or a scalar.
func decodeField(n *yaml.Node, f reflect.Value) error {
	switch {
	case f.Kind() == reflect.Struct:
		return decodeStrict(n, f.Addr().Interface())
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%w: a YAML %s; want a list", ErrInvalidValue, nodeKind(n))
		}
		list := reflect.MakeSlice(f.Type(), 0, len(n.Content))
		for i, item := range n.Content {
			elem := reflect.New(f.Type().Elem())
			switch p := elem.Interface().(type) {
			case *MQTTSubscribe:
				*p = defaultMQTTSubscribe
			case *MQTTPublish:
				*p = defaultMQTTPublish
			}
			if err := decodeStrict(item, elem.Interface()); err != nil {
				return fmt.Errorf("rule %d (line %d): %w", i+1, item.Line, err)
			}
			list = reflect.Append(list, elem.Elem())
		}
		f.Set(list)
		return nil
	case n.Kind != yaml.ScalarNode:
		return fmt.Errorf("%w: a YAML %s; want a single value", ErrInvalidValue, nodeKind(n))
	}
	if err := n.Decode(f.Addr().Interface()); err != nil {
		return fmt.Errorf("%w: %q: %s", ErrInvalidValue, n.Value, yamlTypeError(err))
	}
	return nil
}

// yamlTypeError shortens yaml.v3's "yaml: unmarshal errors:\n  line 3: cannot unmarshal ...".
func yamlTypeError(err error) string {
	s := err.Error()
	if _, after, ok := strings.Cut(s, "cannot unmarshal "); ok {
		return "cannot read " + after
	}
	return strings.TrimSpace(strings.TrimPrefix(s, "yaml: unmarshal errors:"))
}

// yamlKeys lists a struct's yaml keys in field order.
func yamlKeys(t reflect.Type) []string {
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i], _, _ = strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
	}
	return keys
}
