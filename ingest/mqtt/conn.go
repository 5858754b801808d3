package mqtt

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// connReadBuffer is the read buffer of a broker connection. paho reads a packet's fixed header
// byte by byte straight from the connection; a buffer turns those reads (three or more system
// calls per message) into one per buffer fill.
const connReadBuffer = 64 << 10

// openConn dials the broker like paho does (tcp/mqtt, ssl/tls/mqtts, ws/wss) and gives paho
// the connection with buffered reads. Unlike paho's own dialer it ignores ALL_PROXY and the
// other proxy variables for tcp:// and ssl:// (a gateway reaches its broker directly).
func openConn(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var (
		c   net.Conn
		err error
	)
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err = d.Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts":
		c, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
	case "ws", "wss":
		c, err = paho.NewWebsocket(uri.String(), o.TLSConfig, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	default:
		return nil, fmt.Errorf("unsupported broker scheme %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &bufConn{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer)}, nil
}

// bufConn is a net.Conn whose reads go through a buffer.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// sessionStore is paho's in-memory store without outgoing PUBLISH packets. paho keeps the
// publishes it has sent until they are acknowledged and, after a reconnect, sends them again
// from its store, in the store's (random) order and while the writer may still be writing the
// same packet (a data race on its DUP flag). The egress pipeline does not need that: after a
// reconnect it publishes again, in offset order, from the last acknowledged record
// (egress.go). Everything else (incoming QoS 1/2 state, subscriptions, PUBREL) is kept.
type sessionStore struct {
	paho.Store
}

func newSessionStore() *sessionStore { return &sessionStore{paho.NewMemoryStore()} }

// Put stores everything but outgoing publishes ("o." keys).
func (s *sessionStore) Put(key string, m packets.ControlPacket) {
	if _, ok := m.(*packets.PublishPacket); ok && strings.HasPrefix(key, "o.") {
		return
	}
	s.Store.Put(key, m)
}
