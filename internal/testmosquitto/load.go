package testmosquitto

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Load describes QoS 1 traffic for PublishLoad: Clients paho clients publish PerTopic messages
// to each of Topics MQTT topics (topic i goes to client i % Clients). The payload of the n-th
// message of a topic is n in decimal, from 0, so a reader can check order and completeness per
// topic with CheckSequences.
type Load struct {
	Clients  int
	Topics   []string
	PerTopic int
	// ClientPrefix starts the client ids ("<prefix>-<i>").
	ClientPrefix string
}

// LoadResult counts what PublishLoad did.
type LoadResult struct {
	Published int64 // messages acknowledged by the broker (each counted once)
	Resent    int64 // publishes redone after a failure or a broker restart
}

// Topics returns n device topics "<prefix>/<i>/data".
func Topics(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s/dev-%03d/data", prefix, i)
	}
	return out
}

// publishTimeout bounds the wait for one acknowledgement before a publisher checks its
// connection and publishes again (a broker being restarted answers nothing meanwhile; a
// timeout that was too short only adds a duplicate).
const publishTimeout = 3 * time.Second

// recoverTimeout bounds how long a publisher waits for its connection to come back.
const recoverTimeout = 60 * time.Second

// maxAttempts bounds the publishes of one message.
const maxAttempts = 20

// PublishLoad publishes the load to url (tcp://...) and returns when the broker acknowledged
// every message. Each client publishes in rounds: message n of each of its topics, then waits
// for their acknowledgements, so that one message per topic is in flight. A publish that fails
// or gets no acknowledgement in time is made again once the connection is back: nothing is
// skipped, and a topic's next message is only published once the broker has its predecessor,
// so the first copies stay in order across reconnects (copies may repeat). It returns an error rather than fail the test, so that it can run in a goroutine.
func PublishLoad(url string, l Load) (LoadResult, error) {
	var res LoadResult
	var pub, resent atomic.Int64
	errs := make([]error, l.Clients)
	var wg sync.WaitGroup
	for c := range l.Clients {
		var mine []string
		for i := c; i < len(l.Topics); i += l.Clients {
			mine = append(mine, l.Topics[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, r, err := publishClient(url, fmt.Sprintf("%s-%d", l.ClientPrefix, c), mine, l.PerTopic)
			pub.Add(n)
			resent.Add(r)
			errs[c] = err
		}()
	}
	wg.Wait()
	res.Published, res.Resent = pub.Load(), resent.Load()
	return res, errors.Join(errs...)
}

func publishClient(url, id string, topics []string, perTopic int) (published, resent int64, err error) {
	if len(topics) == 0 {
		return 0, 0, nil
	}
	// paho must not send stored publishes again after a reconnect (in random order, racing
	// with its writer on the DUP flag): publishClient publishes again what the broker did not
	// acknowledge.
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).SetStore(publishlessStore{paho.NewMemoryStore()}).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).SetKeepAlive(10 * time.Second).SetWriteTimeout(publishTimeout)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(recoverTimeout) || tok.Error() != nil {
		return 0, 0, fmt.Errorf("publisher %s: connect: %v", id, tok.Error())
	}
	defer c.Disconnect(250)
	toks := make([]paho.Token, len(topics))
	for seq := range perTopic {
		payload := strconv.Itoa(seq)
		for i, t := range topics {
			toks[i] = c.Publish(t, 1, false, payload)
		}
		for i, t := range topics {
			for attempt := 1; !toks[i].WaitTimeout(publishTimeout) || toks[i].Error() != nil; attempt++ {
				if attempt >= maxAttempts {
					return published, resent, fmt.Errorf("publisher %s: %s seq %d not acknowledged after %d attempts: %v", id, t, seq, attempt, toks[i].Error())
				}
				deadline := time.Now().Add(recoverTimeout)
				for !c.IsConnectionOpen() && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond) // polling the connection state; bounded by recoverTimeout
				}
				// This round's publishes not yet acknowledged went with the connection too.
				for j := i; j < len(topics); j++ {
					if j == i || !acknowledged(toks[j]) {
						toks[j] = c.Publish(topics[j], 1, false, payload)
						resent++
					}
				}
			}
			published++
		}
	}
	return published, resent, nil
}

// SeqChecker checks records (key = MQTT topic, value = sequence number) against a load as
// they are read, in log order per key: the first copies of a topic's numbers must come in
// increasing order without gaps; repeats of numbers already seen (at-least-once redeliveries)
// are allowed and counted.
type SeqChecker struct {
	next     map[string]int
	perTopic int
	// Records and Duplicates count what Add saw.
	Records, Duplicates int
}

// NewSeqChecker checks the sequences of topics, perTopic messages each.
func NewSeqChecker(topics []string, perTopic int) *SeqChecker {
	c := &SeqChecker{next: make(map[string]int, len(topics)), perTopic: perTopic}
	for _, t := range topics {
		c.next[t] = 0
	}
	return c
}

// Add checks the next record of key; an error means a message was lost or reordered (or the
// record is not part of the load).
func (c *SeqChecker) Add(key, value string) error {
	c.Records++
	want, ok := c.next[key]
	if !ok {
		return fmt.Errorf("record %d: unexpected key %q", c.Records, key)
	}
	seq, err := strconv.Atoi(value)
	if err != nil {
		return fmt.Errorf("record %d of %q: value %q is not a sequence number", c.Records, key, value)
	}
	switch {
	case seq == want:
		c.next[key] = want + 1
	case seq < want:
		c.Duplicates++
	default:
		return fmt.Errorf("topic %q: %d follows %d (out of order or lost)", key, seq, want-1)
	}
	return nil
}

// Complete returns nil once every topic has all its numbers, or says what is missing.
func (c *SeqChecker) Complete() error {
	for t, n := range c.next {
		if n != c.perTopic {
			return fmt.Errorf("topic %q: %d of %d messages", t, n, c.perTopic)
		}
	}
	return nil
}

// CheckSequences runs a SeqChecker over records given as keys and values.
func CheckSequences(keys, values []string, topics []string, perTopic int) (*SeqChecker, error) {
	c := NewSeqChecker(topics, perTopic)
	for i := range keys {
		if err := c.Add(keys[i], values[i]); err != nil {
			return c, err
		}
	}
	return c, c.Complete()
}

// MustPublishLoad is PublishLoad that fails the test on error (call it from the test's
// goroutine).
func MustPublishLoad(t testing.TB, url string, l Load) LoadResult {
	t.Helper()
	res, err := PublishLoad(url, l)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// publishlessStore is paho's memory store without outgoing publishes, which paho would
// otherwise send again after every reconnect.
type publishlessStore struct{ paho.Store }

func (s publishlessStore) Put(key string, m packets.ControlPacket) {
	if _, ok := m.(*packets.PublishPacket); ok && strings.HasPrefix(key, "o.") {
		return
	}
	s.Store.Put(key, m)
}

// acknowledged reports whether a publish has completed without error, without waiting.
func acknowledged(t paho.Token) bool {
	select {
	case <-t.Done():
		return t.Error() == nil
	default:
		return false
	}
}
