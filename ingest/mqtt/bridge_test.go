package mqtt

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/agent/commitlog"
	"github.com/samsa-io/samsa/internal/testmosquitto"
)

func mosquittoPub(t *testing.T, srv *testmosquitto.Server, args ...string) {
	t.Helper()
	all := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port())}, args...)
	if out, err := exec.Command(testmosquitto.ClientTool(t, "mosquitto_pub"), all...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %v: %v\n%s", args, err, out)
	}
}

// keysValues splits records into keys and values for testmosquitto.CheckSequences.
func keysValues(recs []rec) (keys, values []string) {
	for _, r := range recs {
		keys, values = append(keys, r.key), append(values, r.value)
	}
	return keys, values
}

// TestIngestRecordsKeysAndHeaders: messages become records in the mapped topics, with the
// templates' keys and the mqtt.* headers; retained messages say so; a message whose topic
// renders to an invalid name is dropped and counted; lz4 is the batches' codec.
func TestBridgeIngestRecordsKeysAndHeaders(t *testing.T) {
	srv := testmosquitto.Start(t)
	store := openStore(t, "", nil)
	// A retained message is there before the bridge subscribes.
	mosquittoPub(t, srv, "-r", "-q", "1", "-t", "alerts/boiler/overheat", "-m", "hot")
	b := startBridge(t, Options{
		Name: "plant", Broker: srv.URL, Store: store, AutoCreateTopics: true, DefaultPartitions: 3,
		Subscribe: []SubscribeRule{
			{Filter: "sensors/+/temp", QoS: 1, Topic: "telemetry"},
			{Filter: "alerts/#", QoS: 1, Topic: "alerts-{2}", Key: "{3}"},
			{Filter: "sensors/#", QoS: 0, Topic: "other"}, // second match for sensors/+/temp: never used for it
		},
	})
	mosquittoPub(t, srv, "-q", "1", "-t", "sensors/dev1/temp", "-m", "21.5")
	mosquittoPub(t, srv, "-q", "0", "-t", "sensors/dev2/hum", "-m", "40")
	mosquittoPub(t, srv, "-q", "1", "-t", "alerts/bad name/x", "-m", "dropped")
	waitFor(t, 30*time.Second, "4 messages done", func() bool { return b.Stats().MessagesDone >= 4 })

	tel := readAll(t, store, "telemetry")
	if len(tel) != 1 || tel[0].key != "sensors/dev1/temp" || tel[0].value != "21.5" ||
		tel[0].headers["mqtt.topic"] != "sensors/dev1/temp" || tel[0].headers["mqtt.qos"] != "1" || tel[0].headers["mqtt.retain"] != "false" {
		t.Fatalf("telemetry: %+v", tel)
	}
	if want := partitionFor([]byte("sensors/dev1/temp"), 3); tel[0].partition != want {
		t.Fatalf("telemetry record in partition %d, Kafka's partitioner says %d", tel[0].partition, want)
	}
	al := readAll(t, store, "alerts-boiler")
	if len(al) != 1 || al[0].key != "overheat" || al[0].value != "hot" || al[0].headers["mqtt.retain"] != "true" {
		t.Fatalf("alerts-boiler: %+v", al)
	}
	other := readAll(t, store, "other")
	if len(other) != 1 || other[0].key != "sensors/dev2/hum" || other[0].headers["mqtt.qos"] != "0" {
		t.Fatalf("other: %+v", other)
	}
	st := b.Stats()
	if st.Dropped["invalid_topic"] != 1 || st.RecordsAppended != 3 || st.MessagesIn != 4 {
		t.Fatalf("stats: %+v", st)
	}
	// The batches are lz4-compressed RecordBatches.
	l := store.Topic("telemetry").Partition(tel[0].partition)
	res, err := l.Read(0, 1<<20, true, commitlog.ReadToHighWatermark)
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 61)
	_, err = res.Ranges[0].File.ReadAt(hdr, res.Ranges[0].Pos)
	res.Release()
	if err != nil || hdr[22]&7 != 3 { // attributes (int16 at byte 21), low 3 bits: codec 3 = lz4
		t.Fatalf("batch attributes %x, %v: want lz4", hdr[21:23], err)
	}
}

// TestIngestOrderPerDeviceTopic: many publishers over many device topics; every message lands
// once, in order per device topic (one key, one partition).
func TestBridgeIngestOrderPerDeviceTopic(t *testing.T) {
	srv := testmosquitto.Start(t)
	store := openStore(t, "", nil)
	b := startBridge(t, Options{
		Name: "order", Broker: srv.URL, Store: store, AutoCreateTopics: true, DefaultPartitions: 4,
		Subscribe: []SubscribeRule{{Filter: "site/+/data", QoS: 1, Topic: "telemetry"}},
	})
	topics := testmosquitto.Topics("site", 20)
	perTopic := 200
	testmosquitto.MustPublishLoad(t, srv.URL, testmosquitto.Load{Clients: 5, Topics: topics, PerTopic: perTopic, ClientPrefix: t.Name()})
	total := int64(len(topics) * perTopic)
	waitFor(t, 30*time.Second, "all messages acknowledged", func() bool { return b.Stats().MessagesDone >= total })
	keys, values := keysValues(readAll(t, store, "telemetry"))
	c, err := testmosquitto.CheckSequences(keys, values, topics, perTopic)
	if err != nil || c.Duplicates != 0 {
		t.Fatalf("%+v: %v", c, err)
	}
	if st := b.Stats(); st.InFlightIn != 0 || st.Batches >= total {
		t.Fatalf("stats after the load: %+v (want nothing in flight, fewer batches than messages)", st)
	}
}

// TestIngestStopsAcknowledgingWhileLogRefuses: while the disk guard refuses appends, the bridge
// retries, acknowledges nothing and stops reading at its in-flight bound; the broker keeps the
// messages, so after the bridge is closed and the disk has room again a new bridge (same
// session) appends every message.
func TestBridgeIngestStopsAcknowledgingWhileLogRefuses(t *testing.T) {
	srv := testmosquitto.Start(t)
	var full atomic.Bool
	refused := errors.New("disk full (test)")
	store := openStore(t, "", func() error {
		if full.Load() {
			return refused
		}
		return nil
	})
	opts := Options{
		Name: "guard", Broker: srv.URL, Store: store, AutoCreateTopics: true, MaxInFlight: 10,
		Subscribe: []SubscribeRule{{Filter: "site/+/data", QoS: 1, Topic: "telemetry"}},
	}
	b := startBridge(t, opts)
	full.Store(true)
	topics := testmosquitto.Topics("site", 4)
	perTopic := 50
	testmosquitto.MustPublishLoad(t, srv.URL, testmosquitto.Load{Clients: 2, Topics: topics, PerTopic: perTopic, ClientPrefix: t.Name()})
	waitFor(t, 30*time.Second, "the in-flight bound reached with appends refused", func() bool {
		st := b.Stats()
		return st.InFlightIn == 10 && st.AppendRetries > 0
	})
	st := b.Stats()
	if st.MessagesDone != 0 || st.RecordsAppended != 0 || st.MessagesIn > 10+1 {
		t.Fatalf("while refused: %+v (want nothing done and reading stopped at the bound)", st)
	}
	if recs := readAll(t, store, "telemetry"); len(recs) != 0 {
		t.Fatalf("%d records appended while the log refused writes", len(recs))
	}
	closeBridge(t, b) // gives up the refused appends: nothing was acknowledged
	full.Store(false)

	b2 := startBridge(t, opts)
	total := int64(len(topics) * perTopic)
	waitFor(t, 30*time.Second, "every message appended after the refusal", func() bool {
		return b2.Stats().MessagesDone >= total
	}, func() string { return fmt.Sprintf("stats %+v\nmosquitto:\n%s", b2.Stats(), srv.Output()) })
	keys, values := keysValues(readAll(t, store, "telemetry"))
	c, err := testmosquitto.CheckSequences(keys, values, topics, perTopic)
	if err != nil {
		t.Fatalf("%+v: %v", c, err)
	}
	t.Logf("after the refusal: %d records, %d duplicates", c.Records, c.Duplicates)
}

// TestEgressPublishesAndResumes: records of a topic reach mosquitto_sub on the mapped MQTT
// topics; the egress group's offsets follow the broker's acknowledgements, so a new bridge
// publishes only the records added since, none of the acknowledged ones again. Records without
// a key are skipped when the template uses {key}.
func TestBridgeEgressPublishesAndResumes(t *testing.T) {
	srv := testmosquitto.Start(t)
	store := openStore(t, "", nil)
	g := openGroups(t, store)
	if _, err := store.CreateTopic("commands", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	sub := srv.Subscribe(t, "devices/+/cmd")
	opts := Options{Name: "egress", Broker: srv.URL, Store: store, Groups: g,
		Publish: []PublishRule{{Topic: "commands", MQTTTopic: "devices/{key}/cmd", QoS: 1}}}
	b := startBridge(t, opts)
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			appendRecords(t, store, "commands", int32(i%2), fmt.Sprintf("dev-%d", i%5), fmt.Sprintf("cmd-%d", i))
		}
	}
	produce(0, 50)
	appendRecords(t, store, "commands", 0, "<nil>", "no key")
	lines := sub.WaitLines(50, 30*time.Second)
	if len(lines) != 50 {
		t.Fatalf("mosquitto_sub got %d lines, want 50: %q", len(lines), lines)
	}
	for _, l := range lines {
		topic, payload, _ := strings.Cut(l, " ")
		i, _ := strconv.Atoi(strings.TrimPrefix(payload, "cmd-"))
		if topic != fmt.Sprintf("devices/dev-%d/cmd", i%5) {
			t.Fatalf("%q arrived on %q", payload, topic)
		}
	}
	waitFor(t, 30*time.Second, "offsets committed up to the end", func() bool {
		o0, _ := fetchCommitted(g, GroupID("egress"), "commands", 0)
		o1, _ := fetchCommitted(g, GroupID("egress"), "commands", 1)
		return o0 == 26 && o1 == 25 && b.Stats().Lag == 0
	})
	if st := b.Stats(); st.MessagesOut != 50 || st.Dropped["null_key"] != 1 {
		t.Fatalf("stats: %+v", st)
	}
	closeBridge(t, b)

	produce(50, 70)
	b2 := startBridge(t, opts)
	sub.WaitLines(70, 30*time.Second)
	waitFor(t, 30*time.Second, "the new records published", func() bool { return b2.Stats().MessagesOut == 20 && b2.Stats().Lag == 0 })
	lines = sub.Lines()
	seen := map[string]int{}
	for _, l := range lines {
		seen[l]++
	}
	for l, n := range seen {
		if n != 1 {
			t.Errorf("%q delivered %d times", l, n)
		}
	}
	if len(lines) != 70 {
		slices.Sort(lines)
		t.Fatalf("got %d lines, want 70: %q", len(lines), lines)
	}
}

// TestBridgeTLSWebSocketsAndPasswords: the bridge connects over ssl:// with a private CA, a
// client certificate and a password, and over ws://; a wrong password keeps it retrying, not
// connected.
func TestBridgeTLSWebSocketsAndPasswords(t *testing.T) {
	srv := testmosquitto.StartWith(t, testmosquitto.Options{TLS: true, WebSockets: true, Users: map[string]string{"samsa": "s3cret"}})
	store := openStore(t, "", nil)
	for _, c := range []struct{ name, broker string }{{"tls", srv.TLSURL}, {"ws", srv.WSURL}} {
		o := Options{Name: c.name, Broker: c.broker, Username: "samsa", Password: "s3cret", Store: store, AutoCreateTopics: true,
			Subscribe: []SubscribeRule{{Filter: c.name + "/+", QoS: 1, Topic: "t-" + c.name}}}
		if c.name == "tls" {
			o.TLS = TLSOptions{CA: srv.CAFile, Cert: srv.ClientCertFile, Key: srv.ClientKeyFile}
		}
		b := startBridge(t, o)
		mosquittoPub(t, srv, "-u", "samsa", "-P", "s3cret", "-q", "1", "-t", c.name+"/x", "-m", "over "+c.name)
		waitFor(t, 30*time.Second, c.name+" message appended", func() bool { return b.Stats().MessagesDone == 1 })
		if recs := readAll(t, store, "t-"+c.name); len(recs) != 1 || recs[0].value != "over "+c.name {
			t.Fatalf("%s: %+v", c.name, recs)
		}
	}
	o := Options{Name: "wrong", Broker: srv.URL, Username: "samsa", Password: "nope", Store: store, MaxReconnectInterval: time.Second,
		Subscribe: []SubscribeRule{{Filter: "x", QoS: 1, Topic: "x"}}, Logger: testLog(t)}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer closeBridge(t, b)
	waitFor(t, 30*time.Second, "a second connection attempt", func() bool { return b.Stats().ConnectAttempts >= 2 })
	if b.Connected() {
		t.Fatal("connected with a wrong password")
	}
	if _, err := New(Options{Name: "badca", Broker: srv.TLSURL, TLS: TLSOptions{CA: srv.ClientKeyFile}, Store: store,
		Subscribe: o.Subscribe}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a key file as CA: %v", err)
	}
}

// TestBridgeEgressSurvivesBrokerRestart: Mosquitto restarts while records are being published;
// the bridge reconnects and publishes again from the last acknowledged record, so a subscriber
// with a persistent session gets every record. (Their order can break at the reconnect: a
// publish paho was holding when the connection dropped goes out first on the new one, ahead
// of the records published again; the test logs how many arrived early.)
func TestBridgeEgressSurvivesBrokerRestart(t *testing.T) {
	srv := testmosquitto.Start(t)
	store := openStore(t, "", nil)
	g := openGroups(t, store)
	if _, err := store.CreateTopic("commands", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	const devices, perDevice = 10, 300
	var topics []string
	for d := range devices {
		topics = append(topics, fmt.Sprintf("devices/dev-%d/cmd", d))
	}
	rec := startRecorder(t, srv, "recorder", "devices/+/cmd", topics, perDevice)
	b := startBridge(t, Options{Name: "egress", Broker: srv.URL, Store: store, Groups: g, MaxReconnectInterval: time.Second,
		Publish: []PublishRule{{Topic: "commands", MQTTTopic: "devices/{key}/cmd", QoS: 1}}})
	produce := func(from, to int) {
		for i := from; i < to; i += 100 {
			var kv []string
			for j := i; j < min(i+100, to); j++ {
				kv = append(kv, fmt.Sprintf("dev-%d", j%devices), strconv.Itoa(j/devices))
			}
			appendRecords(t, store, "commands", 0, kv...)
		}
	}
	half := devices * perDevice / 2
	produce(0, half)
	waitFor(t, 30*time.Second, "a third published", func() bool { return b.Stats().MessagesOut >= int64(half/3) })
	srv.Restart(t)
	produce(half, 2*half)
	rec.wait(t, 45*time.Second)
	waitFor(t, 30*time.Second, "lag 0", func() bool { return b.Stats().Lag == 0 })
	t.Logf("stats after the restart: %+v", b.Stats())
}
