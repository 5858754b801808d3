package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Connection settings that are not options.
const (
	connectTimeout    = 10 * time.Second
	pingTimeout       = 10 * time.Second
	subscribeTimeout  = 30 * time.Second
	disconnectQuiesce = 250 // ms paho waits for the DISCONNECT to be written
	initialBackoff    = time.Second
	warnInterval      = 30 * time.Second // repeated warnings of one kind are logged at most this often
)

// Bridge is one MQTT connection with its subscribe and publish rules. Create it with New,
// run it with Start and stop it with Close; it is safe for concurrent use.
type Bridge struct {
	c      *compiled
	opts   *Options
	log    *slog.Logger
	client paho.Client
	m      metrics

	closing    chan struct{} // closed when Close starts: no new message is admitted
	closeOnce  sync.Once
	started    atomic.Bool
	connLoop   chan struct{} // closed when the initial connect loop has returned
	connected1 chan struct{} // closed on the first successful connection
	firstOnce  sync.Once
	ready      chan struct{} // closed once connected and subscribed the first time
	readyOnce  sync.Once
	everConn   atomic.Bool

	ingest ingest
	egress egress

	connMu      sync.Mutex
	connEpoch   uint64        // incremented when a connection is lost: its publishes will never be acknowledged
	connChanged chan struct{} // closed and replaced when a connection is lost or made

	warnMu   sync.Mutex
	lastWarn map[string]time.Time // by a fixed kind of warning: bounded
}

// New checks opts, loads the TLS files and prepares a bridge; nothing connects until Start.
func New(opts Options) (*Bridge, error) {
	c, err := opts.compile()
	if err != nil {
		return nil, err
	}
	o := &c.opts
	if o.Store == nil {
		return nil, &optionsError{fmt.Sprintf("mqtt bridge %q: no Store", o.Name)}
	}
	if len(o.Publish) > 0 && o.Groups == nil {
		return nil, &optionsError{fmt.Sprintf("mqtt bridge %q: publish rules need Groups (the egress offsets)", o.Name)}
	}
	b := &Bridge{
		c:           c,
		opts:        o,
		log:         o.Logger.With("component", "mqtt", "bridge", o.Name),
		closing:     make(chan struct{}),
		connLoop:    make(chan struct{}),
		connected1:  make(chan struct{}),
		ready:       make(chan struct{}),
		connChanged: make(chan struct{}),
		lastWarn:    map[string]time.Time{},
	}
	po, err := b.clientOptions()
	if err != nil {
		return nil, fmt.Errorf("mqtt bridge %q: %w", o.Name, err)
	}
	b.client = paho.NewClient(po)
	b.ingest.init(b)
	b.egress.init(b)
	b.warnLoops()
	return b, nil
}

// warnLoops warns when a publish rule's MQTT topics (rendered with sample values) match a
// subscribe filter of the same bridge: its records would come back in as messages.
func (b *Bridge) warnLoops() {
	for _, p := range b.c.pubs {
		sample := string(p.mqttTopic.render(nil, &renderEnv{key: []byte("key"), topic: p.Topic}))
		for _, s := range b.c.subs {
			if matchFilter(s.Filter, sample) {
				b.log.Warn("a publish rule's MQTT topics match a subscribe filter of the same bridge: its records would come back in",
					"topic", p.Topic, "mqtt_topic", p.MQTTTopic, "filter", s.Filter)
			}
		}
	}
}

// Name returns the bridge's name.
func (b *Bridge) Name() string { return b.opts.Name }

// clientOptions builds paho's options: a persistent session under a fixed client id, manual
// acknowledgements, in-order delivery to one handler, automatic reconnects with backoff.
func (b *Bridge) clientOptions() (*paho.ClientOptions, error) {
	o := b.opts
	po := paho.NewClientOptions().
		AddBroker(o.Broker).
		SetClientID(o.ClientID).
		SetCleanSession(false).      // the broker keeps the subscriptions and unacknowledged messages
		SetAutoAckDisabled(true).    // acknowledged once the record is durable (ingest.go)
		SetOrderMatters(true).       // one handler call at a time, in the order received
		SetStore(newSessionStore()). // no re-sends of publishes by paho: egress re-publishes in order (conn.go)
		SetResumeSubs(false).        // onConnect subscribes on every connection; resuming stored ones would repeat them
		SetAutoReconnect(true).
		SetConnectRetry(false). // the first connection is retried by connectLoop, which logs why it fails
		SetMaxReconnectInterval(o.MaxReconnectInterval).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(pingTimeout).
		SetDefaultPublishHandler(b.ingest.onMessage).
		SetOnConnectHandler(b.onConnect).
		SetConnectionLostHandler(b.onConnectionLost).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) { b.m.connectAttempts.Add(1) }).
		SetCustomOpenConnectionFn(openConn)
	if o.Username != "" {
		po.SetUsername(o.Username).SetPassword(o.Password)
	}
	if brokerSchemes[schemeOf(o.Broker)] {
		cfg, err := tlsConfig(o.TLS)
		if err != nil {
			return nil, err
		}
		po.SetTLSConfig(cfg)
	}
	return po, nil
}

func schemeOf(broker string) string {
	for i := 0; i < len(broker); i++ {
		if broker[i] == ':' {
			return broker[:i]
		}
	}
	return ""
}

// tlsConfig loads the CA and client certificate files.
func tlsConfig(t TLSOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate in it", t.CA)
		}
		cfg.RootCAs = pool
	}
	if t.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls cert/key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Start starts the pipelines and connects in the background: a broker that cannot be reached
// is retried with backoff (and logged), not an error.
func (b *Bridge) Start() error {
	if !b.started.CompareAndSwap(false, true) {
		return fmt.Errorf("mqtt bridge %q: already started", b.opts.Name)
	}
	b.ingest.start()
	b.egress.start()
	go b.connectLoop()
	b.log.Info("mqtt bridge starting", "broker", b.opts.Broker, "client_id", b.opts.ClientID,
		"subscribe", len(b.c.subs), "publish", len(b.c.pubs))
	return nil
}

// connectLoop makes the first connection, retrying with backoff until it succeeds or the bridge
// closes. Later reconnects are paho's (auto-reconnect, same backoff cap).
func (b *Bridge) connectLoop() {
	defer close(b.connLoop)
	backoff := initialBackoff
	for {
		b.m.connectAttempts.Add(1)
		tok := b.client.Connect()
		select {
		case <-tok.Done():
		case <-b.closing:
			return
		}
		err := tok.Error()
		if err == nil {
			return
		}
		b.warn("connect", "mqtt bridge cannot connect; retrying", "broker", b.opts.Broker, "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-b.closing:
			return
		}
		backoff = min(2*backoff, b.opts.MaxReconnectInterval)
	}
}

// onConnect runs (in its own goroutine) on every successful connection: it (re)subscribes,
// which is harmless for a session the broker kept and needed for a new one.
func (b *Bridge) onConnect(c paho.Client) {
	b.m.connected.Store(true)
	b.connEvent(false)
	if b.everConn.Swap(true) {
		b.m.reconnects.Add(1)
		b.log.Info("mqtt bridge reconnected", "broker", b.opts.Broker)
	} else {
		b.log.Info("mqtt bridge connected", "broker", b.opts.Broker)
	}
	b.firstOnce.Do(func() { close(b.connected1) })
	if len(b.c.subs) == 0 {
		b.readyOnce.Do(func() { close(b.ready) })
		return
	}
	filters := make(map[string]byte, len(b.c.subs))
	for _, s := range b.c.subs {
		filters[s.Filter] = max(filters[s.Filter], s.QoS)
	}
	tok := c.SubscribeMultiple(filters, nil) // nil: every message goes to the default handler
	if !tok.WaitTimeout(subscribeTimeout) {
		b.log.Warn("mqtt subscribe not acknowledged in time; the connection is probably down", "timeout", subscribeTimeout)
		return
	}
	if err := tok.Error(); err != nil {
		b.log.Warn("mqtt subscribe failed", "err", err)
		return
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, q := range st.Result() {
			if q == 0x80 {
				b.log.Error("mqtt broker refused the subscription (check its ACLs)", "filter", f)
			}
		}
	}
	b.readyOnce.Do(func() { close(b.ready) })
}

func (b *Bridge) onConnectionLost(_ paho.Client, err error) {
	b.m.connected.Store(false)
	b.connEvent(true)
	b.log.Warn("mqtt connection lost; reconnecting", "broker", b.opts.Broker, "err", err)
}

// connEvent wakes the waiters of connState; lost starts a new epoch.
func (b *Bridge) connEvent(lost bool) {
	b.connMu.Lock()
	if lost {
		b.connEpoch++
	}
	close(b.connChanged)
	b.connChanged = make(chan struct{})
	b.connMu.Unlock()
}

// connState returns the connection epoch and a channel closed at the next connection event.
func (b *Bridge) connState() (uint64, <-chan struct{}) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	return b.connEpoch, b.connChanged
}

// Connected reports whether the bridge is connected to the broker now.
func (b *Bridge) Connected() bool { return b.m.connected.Load() }

// WaitConnected blocks until the bridge has connected and its subscriptions are acknowledged
// (the first time), ctx ends or the bridge closes. Messages published from then on reach the
// bridge's session.
func (b *Bridge) WaitConnected(ctx context.Context) error {
	select {
	case <-b.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closing:
		return errBridgeClosed
	}
}

var errBridgeClosed = errors.New("mqtt bridge closed")

// Close stops the bridge: no new MQTT message is admitted, batches are appended and, once
// durable, acknowledged (until ctx ends; what is left unacknowledged the broker delivers again
// on the next connection), publishing stops and the egress offsets are committed, then the
// client disconnects. Close the bridge before the store and the group coordinator.
func (b *Bridge) Close(ctx context.Context) error {
	var err error
	b.closeOnce.Do(func() {
		close(b.closing)
		if !b.started.Load() {
			return
		}
		err = errors.Join(b.egress.stop(ctx), b.ingest.stop(ctx))
		<-b.connLoop
		b.client.Disconnect(disconnectQuiesce)
		b.m.connected.Store(false)
		b.log.Info("mqtt bridge stopped")
	})
	return err
}

// warn logs a warning of a kind at most once per warnInterval.
func (b *Bridge) warn(kind, msg string, args ...any) {
	b.warnMu.Lock()
	now := time.Now()
	last, seen := b.lastWarn[kind]
	if seen && now.Sub(last) < warnInterval {
		b.warnMu.Unlock()
		return
	}
	b.lastWarn[kind] = now
	b.warnMu.Unlock()
	b.log.Warn(msg, args...)
}
