package mqtt

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/agent/commitlog/batch"
	"github.com/samsa-io/samsa/agent/groups"
)

// ErrInvalidOptions is matched (errors.Is) by every error Options.Validate and New return
// for bad options.
var ErrInvalidOptions = errors.New("invalid mqtt bridge options")

// optionsError is a bad option, described as `mqtt bridge "plant": subscribe rule 1 (...): ...`.
type optionsError struct{ msg string }

func (e *optionsError) Error() string        { return e.msg }
func (e *optionsError) Is(target error) bool { return target == ErrInvalidOptions }

// Options configure one bridge: one MQTT connection (one persistent session) with its
// subscribe rules (MQTT -> topics) and publish rules (topics -> MQTT). Zero values of the
// tuning fields mean their documented defaults.
type Options struct {
	// Name identifies the bridge in logs, metrics (bridge="...") and the egress consumer group
	// (GroupID). Required; letters, digits, '.', '_' and '-'.
	Name string
	// Broker is the MQTT broker URL: tcp://host:port (also mqtt://), ssl://host:port (also
	// tls://, mqtts://), ws://host[:port][/path] or wss://... Required.
	Broker string
	// ClientID is the MQTT client id, fixed so that the broker keeps the session (clean
	// session off) across reconnects and restarts. Default "samsa-" + Name.
	ClientID string
	// Username and Password authenticate to the broker when Username is not "".
	Username string
	Password string
	// TLS configures ssl:// and wss:// connections.
	TLS TLSOptions
	// Subscribe maps MQTT messages into topics. A message goes to the first rule whose filter
	// matches its topic.
	Subscribe []SubscribeRule
	// Publish maps records of topics to MQTT messages.
	Publish []PublishRule

	// Linger is how long a batch waits for more messages before it is appended (Kafka's
	// linger.ms). Default 5ms; at most 10s.
	Linger time.Duration
	// MaxBatchBytes caps a batch (uncompressed records, per partition; also capped by the
	// topic's max.message.bytes). Default 1 MiB; 1 KiB to 64 MiB.
	MaxBatchBytes int
	// MaxInFlight bounds the MQTT messages received but not yet acknowledged (being batched,
	// appended or made durable), and the records published but not yet acknowledged by the
	// broker per partition. When it is reached the bridge stops reading from the broker until
	// acknowledgements free room. Default 1000; 1 to 65535 (MQTT packet ids).
	MaxInFlight int
	// MaxInFlightBytes bounds the payload bytes of the MQTT messages in flight (one message is
	// always admitted). Default 16 MiB; 64 KiB to 1 GiB.
	MaxInFlightBytes int64
	// Compression is the codec of the batches: none, gzip, snappy, lz4 or zstd. Default lz4.
	Compression string
	// KeepAlive is the MQTT keep-alive interval. Default 30s; 1s to 18h.
	KeepAlive time.Duration
	// MaxReconnectInterval caps the backoff between connection attempts (it starts at 1s and
	// doubles). Default 10s; 1s to 1h.
	MaxReconnectInterval time.Duration

	// Store is the commit log the bridge appends to and reads from. Required.
	Store *commitlog.Store
	// Groups keeps the egress consumer group's committed offsets. Required with Publish rules.
	Groups *groups.Coordinator
	// AutoCreateTopics lets the bridge create a topic a subscribe rule maps a message to,
	// with DefaultPartitions partitions (default 1). Without it a message for a missing topic
	// waits (unacknowledged) until the topic exists.
	AutoCreateTopics  bool
	DefaultPartitions int32
	// Logger receives the bridge's logs. Default slog.Default().
	Logger *slog.Logger
}

// TLSOptions are PEM file paths for ssl:// and wss:// brokers.
type TLSOptions struct {
	// CA is a file of CA certificates trusted besides the system roots. Default "".
	CA string
	// Cert and Key are a client certificate and its key (both or neither). Default "".
	Cert string
	Key  string
}

// SubscribeRule maps the MQTT messages of a filter to records.
type SubscribeRule struct {
	// Filter is the MQTT topic filter subscribed to ('+' and '#' wildcards). Required.
	Filter string
	// QoS is the subscription's maximum QoS: 0, 1 or 2. Messages at QoS 1 and 2 are
	// acknowledged only once their record is durable; QoS 0 messages may be lost.
	QoS byte
	// Topic is the topic template, e.g. "telemetry" or "plant-{2}". Required.
	Topic string
	// Key is the record key template. Default "{mqtt_topic}", which keeps the messages of one
	// MQTT topic in order in one partition.
	Key string
}

// PublishRule maps the records of a topic to MQTT messages.
type PublishRule struct {
	// Topic is the topic whose records are published (a name, not a template). Required;
	// at most one rule per topic in a bridge.
	Topic string
	// MQTTTopic is the MQTT topic template, e.g. "devices/{key}/cmd". Required.
	MQTTTopic string
	// QoS of the published messages: 0, 1 or 2. The consumer group's offset moves past a
	// record only once the broker acknowledged it (PUBACK, or PUBCOMP at QoS 2; at QoS 0 once
	// written to the connection).
	QoS byte
	// Retain sets the MQTT retain flag on the published messages.
	Retain bool
	// StartFrom is where a partition without a committed offset starts: "earliest" (the log
	// start, Kafka Connect's default for sinks) or "latest" (records appended from now on).
	// Default "earliest".
	StartFrom string
}

// Defaults and limits of Options.
const (
	DefaultLinger               = 5 * time.Millisecond
	DefaultMaxBatchBytes        = 1 << 20
	DefaultMaxInFlight          = 1000
	DefaultMaxInFlightBytes     = 16 << 20
	DefaultCompression          = "lz4"
	DefaultKeepAlive            = 30 * time.Second
	DefaultMaxReconnectInterval = 10 * time.Second
	DefaultKey                  = "{mqtt_topic}"

	maxLinger           = 10 * time.Second
	minBatchBytes       = 1 << 10
	maxBatchBytes       = 64 << 20
	maxInFlight         = 65535
	MinInFlightBytes    = 64 << 10 // the smallest max_in_flight_bytes accepted
	maxInFlightBytes    = 1 << 30
	minKeepAlive        = time.Second
	maxKeepAlive        = 18 * time.Hour // MQTT's 65535 s
	minReconnectBackoff = time.Second
	maxReconnectBackoff = time.Hour
)

// Values of PublishRule.StartFrom.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// GroupID is the consumer group whose committed offsets track a bridge's egress:
// "samsa-mqtt-" + the bridge name. Kafka tools show its lag (kadm, samsa group describe).
func GroupID(bridge string) string { return "samsa-mqtt-" + bridge }

// withDefaults returns o with every zero tuning field set to its default.
func (o Options) withDefaults() Options {
	if o.ClientID == "" && o.Name != "" {
		o.ClientID = "samsa-" + o.Name
	}
	o.Subscribe = slices.Clone(o.Subscribe)
	for i := range o.Subscribe {
		if o.Subscribe[i].Key == "" {
			o.Subscribe[i].Key = DefaultKey
		}
	}
	o.Publish = slices.Clone(o.Publish)
	for i := range o.Publish {
		if o.Publish[i].StartFrom == "" {
			o.Publish[i].StartFrom = StartEarliest
		}
	}
	setDefault(&o.Linger, DefaultLinger)
	setDefault(&o.MaxBatchBytes, DefaultMaxBatchBytes)
	setDefault(&o.MaxInFlight, DefaultMaxInFlight)
	setDefault(&o.MaxInFlightBytes, DefaultMaxInFlightBytes)
	setDefault(&o.Compression, DefaultCompression)
	setDefault(&o.KeepAlive, DefaultKeepAlive)
	setDefault(&o.MaxReconnectInterval, DefaultMaxReconnectInterval)
	setDefault(&o.DefaultPartitions, 1)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate checks the options (after defaults) except Store and Groups, which New checks. The
// error names the bridge and the rule:
//
//	mqtt bridge "plant": subscribe rule 1 (filter "sensors/+/temp"): topic "plant-{3}": {3}: the filter "sensors/+/temp" has only ... level(s)
func (o Options) Validate() error {
	_, err := o.compile()
	return err
}

// compiled is what a valid Options turns into: parsed templates and the codec.
type compiled struct {
	opts  Options
	subs  []compiledSub
	pubs  []compiledPub
	codec batch.Codec
}

type compiledSub struct {
	SubscribeRule
	topic, key template
}

type compiledPub struct {
	PublishRule
	mqttTopic template
}

// compile applies the defaults, checks everything and parses the templates.
func (o Options) compile() (*compiled, error) {
	o = o.withDefaults()
	bad := func(format string, args ...any) error {
		return &optionsError{fmt.Sprintf("mqtt bridge %q: ", o.Name) + fmt.Sprintf(format, args...)}
	}
	if err := checkName(o.Name); err != nil {
		return nil, bad("name: %v", err)
	}
	if err := checkBroker(o.Broker); err != nil {
		return nil, bad("broker %q: %v", o.Broker, err)
	}
	if o.ClientID == "" || len(o.ClientID) > maxTopicLen || !validUTF8NoNUL(o.ClientID) {
		return nil, bad("client_id %q: must be 1 to 65535 bytes of UTF-8", o.ClientID)
	}
	if o.Username == "" && o.Password != "" {
		return nil, bad("password is set without a username")
	}
	if err := o.checkTLS(); err != nil {
		return nil, bad("%v", err)
	}
	if err := o.checkTuning(); err != nil {
		return nil, bad("%v", err)
	}
	codec, ok := parseCodec(o.Compression)
	if !ok {
		return nil, bad("compression %q: allowed: none, gzip, snappy, lz4, zstd", o.Compression)
	}
	if len(o.Subscribe) == 0 && len(o.Publish) == 0 {
		return nil, bad("no subscribe and no publish rules: the bridge would do nothing")
	}
	c := &compiled{opts: o, codec: codec}
	for i, r := range o.Subscribe {
		cs, err := compileSub(r)
		if err != nil {
			return nil, bad("subscribe rule %d (filter %q): %v", i+1, r.Filter, err)
		}
		c.subs = append(c.subs, cs)
	}
	seen := map[string]int{}
	for i, r := range o.Publish {
		cp, err := compilePub(r)
		if err != nil {
			return nil, bad("publish rule %d (topic %q): %v", i+1, r.Topic, err)
		}
		if prev, dup := seen[r.Topic]; dup {
			return nil, bad("publish rule %d (topic %q): the topic is already published by rule %d (one rule per topic: they share the consumer group's offsets)", i+1, r.Topic, prev)
		}
		seen[r.Topic] = i + 1
		c.pubs = append(c.pubs, cp)
	}
	return c, nil
}

func compileSub(r SubscribeRule) (compiledSub, error) {
	if err := ValidateFilter(r.Filter); err != nil {
		return compiledSub{}, fmt.Errorf("filter: %v", err)
	}
	if r.QoS > 2 {
		return compiledSub{}, fmt.Errorf("qos %d: allowed: 0, 1, 2", r.QoS)
	}
	if r.Topic == "" {
		return compiledSub{}, errors.New("topic: required (a topic name or template such as plant-{2})")
	}
	cs := compiledSub{SubscribeRule: r}
	var err error
	if cs.topic, err = parseTemplate(r.Topic, ingestVars, true); err == nil {
		if err = cs.topic.checkLevels(r.Filter); err == nil {
			err = cs.topic.checkKafkaTopic(r.Filter)
		}
	}
	if err != nil {
		return compiledSub{}, fmt.Errorf("topic %q: %v", r.Topic, err)
	}
	if cs.key, err = parseTemplate(r.Key, ingestVars, true); err == nil {
		err = cs.key.checkLevels(r.Filter)
	}
	if err != nil {
		return compiledSub{}, fmt.Errorf("key %q: %v", r.Key, err)
	}
	return cs, nil
}

func compilePub(r PublishRule) (compiledPub, error) {
	if err := commitlog.ValidateTopicName(r.Topic); err != nil {
		return compiledPub{}, fmt.Errorf("topic: %v", err)
	}
	if r.QoS > 2 {
		return compiledPub{}, fmt.Errorf("qos %d: allowed: 0, 1, 2", r.QoS)
	}
	if r.StartFrom != StartEarliest && r.StartFrom != StartLatest {
		return compiledPub{}, fmt.Errorf("start_from %q: allowed: earliest, latest", r.StartFrom)
	}
	if r.MQTTTopic == "" {
		return compiledPub{}, errors.New("mqtt_topic: required (an MQTT topic or template such as devices/{key}/cmd)")
	}
	cp := compiledPub{PublishRule: r}
	var err error
	if cp.mqttTopic, err = parseTemplate(r.MQTTTopic, egressVars, false); err == nil {
		err = cp.mqttTopic.checkMQTTTopic()
	}
	if err != nil {
		return compiledPub{}, fmt.Errorf("mqtt_topic %q: %v", r.MQTTTopic, err)
	}
	return cp, nil
}

// checkName allows names that fit a metric label and a group id without escaping.
func checkName(name string) error {
	if name == "" || len(name) > 200 {
		return errors.New("required, at most 200 characters")
	}
	for i := 0; i < len(name); i++ {
		if !kafkaTopicChar(name[i]) {
			return fmt.Errorf("%q contains %q (allowed: letters, digits, '.', '_', '-')", name, name[i])
		}
	}
	return nil
}

// brokerSchemes are the URL schemes paho dials, by whether they use TLS.
var brokerSchemes = map[string]bool{"tcp": false, "mqtt": false, "ssl": true, "tls": true, "mqtts": true, "ws": false, "wss": true}

func checkBroker(s string) error {
	if s == "" {
		return errors.New("required, such as tcp://127.0.0.1:1883")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if _, ok := brokerSchemes[u.Scheme]; !ok {
		return errors.New("scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss")
	}
	if u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want scheme://host:port, without user or query")
	}
	ws := u.Scheme == "ws" || u.Scheme == "wss"
	if !ws && u.Path != "" {
		return errors.New("a path is only allowed with ws:// and wss://")
	}
	port := u.Port()
	if port == "" {
		if ws {
			return nil
		}
		return errors.New("a port is required, such as :1883 (:8883 for TLS)")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("invalid port %q", port)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return err
	}
	return nil
}

func (o *Options) checkTLS() error {
	u, _ := url.Parse(o.Broker)
	secure := brokerSchemes[u.Scheme]
	t := o.TLS
	if !secure && (t.CA != "" || t.Cert != "" || t.Key != "") {
		return fmt.Errorf("tls is set but the broker %q is not ssl://, tls://, mqtts:// or wss://", o.Broker)
	}
	if (t.Cert == "") != (t.Key == "") {
		return errors.New("tls: cert and key go together (set both or neither)")
	}
	return nil
}

func (o *Options) checkTuning() error {
	switch {
	case o.Linger < 0 || o.Linger > maxLinger:
		return fmt.Errorf("linger %s: allowed: 1ns to %s", o.Linger, maxLinger)
	case o.MaxBatchBytes < minBatchBytes || o.MaxBatchBytes > maxBatchBytes:
		return fmt.Errorf("max_batch_bytes %d: allowed: %d to %d", o.MaxBatchBytes, minBatchBytes, maxBatchBytes)
	case o.MaxInFlight < 1 || o.MaxInFlight > maxInFlight:
		return fmt.Errorf("max_in_flight %d: allowed: 1 to %d", o.MaxInFlight, maxInFlight)
	case o.MaxInFlightBytes < MinInFlightBytes || o.MaxInFlightBytes > maxInFlightBytes:
		return fmt.Errorf("max_in_flight_bytes %d: allowed: %d to %d", o.MaxInFlightBytes, MinInFlightBytes, maxInFlightBytes)
	case o.KeepAlive < minKeepAlive || o.KeepAlive > maxKeepAlive:
		return fmt.Errorf("keep_alive %s: allowed: %s to %s", o.KeepAlive, minKeepAlive, maxKeepAlive)
	case o.MaxReconnectInterval < minReconnectBackoff || o.MaxReconnectInterval > maxReconnectBackoff:
		return fmt.Errorf("max_reconnect_interval %s: allowed: %s to %s", o.MaxReconnectInterval, minReconnectBackoff, maxReconnectBackoff)
	case o.DefaultPartitions < 1:
		return fmt.Errorf("default partitions %d: at least 1", o.DefaultPartitions)
	}
	return nil
}

func parseCodec(s string) (batch.Codec, bool) {
	for _, c := range []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd} {
		if strings.EqualFold(s, c.String()) {
			return c, true
		}
	}
	return 0, false
}

func validUTF8NoNUL(s string) bool { return checkTopicText(s) == nil }
