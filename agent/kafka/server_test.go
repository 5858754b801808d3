package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestApiVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	nc := e.dial()
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "samsa-test", "1"
		resp := rawRoundTrip[*kmsg.ApiVersionsResponse](t, nc, req, v, int32(v))
		if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(supportedAPIs) {
			t.Fatalf("v%d: error %d, %d keys", v, resp.ErrorCode, len(resp.ApiKeys))
		}
		for i, k := range resp.ApiKeys {
			if a := supportedAPIs[i]; k.ApiKey != a.key || k.MinVersion != a.min || k.MaxVersion != a.max {
				t.Errorf("v%d key %d: %+v", v, i, k)
			}
		}
	}
	// Too new: UNSUPPORTED_VERSION in a v0 response naming our range, and
	// the connection stays open.
	req := kmsg.NewPtrApiVersionsRequest()
	rawSend(t, nc, req, 5, 50)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	rawRead(t, nc, resp, 50)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 1 ||
		resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("too new: %+v", resp)
	}
	again := rawRoundTrip[*kmsg.ApiVersionsResponse](t, nc, kmsg.NewPtrApiVersionsRequest(), 3, 51)
	if again.ErrorCode != 0 {
		t.Fatalf("after downgrade: error %d", again.ErrorCode)
	}
}

// TestUnsupportedRequestsClose checks that an unknown api key or version
// closes the connection with a logged reason, like Kafka.
func TestUnsupportedRequestsClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	nc := e.dial()
	rawSend(t, nc, kmsg.NewPtrSASLHandshakeRequest(), 1, 1)
	expectClosed(t, nc)
	if _, ok := e.logs.find("closing kafka connection", "unsupported api key 17"); !ok {
		t.Errorf("no log of the unsupported key:\n%s", e.logs.dump())
	}
	nc = e.dial()
	rawSend(t, nc, kmsg.NewPtrFetchRequest(), 3, 1)
	expectClosed(t, nc)
	if _, ok := e.logs.find("unsupported version 3 of Fetch"); !ok {
		t.Errorf("no log of the unsupported version:\n%s", e.logs.dump())
	}
}

// TestBadFramesCloseOnlyThatConnection sends an oversized frame, a negative
// size and an undecodable body on three connections while a client keeps
// working on a fourth.
func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.MaxRequestBytes = 64 << 10 })
	e.topic("survivor", 1, nil)
	cl := e.client()
	produceSync(t, cl, &kgo.Record{Topic: "survivor", Value: []byte("before")})

	huge := e.dial()
	hdr := binary.BigEndian.AppendUint32(nil, 1<<20)
	hdr = append(hdr, 0, 0, 0, 9, 0, 0, 0, 1) // produce v9 header start
	if _, err := huge.Write(append(hdr, make([]byte, 1000)...)); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, huge)
	if line, ok := e.logs.find("closing kafka connection", "exceeds the 65536 byte limit"); !ok {
		t.Errorf("oversized frame not logged:\n%s", e.logs.dump())
	} else if !strings.Contains(line, "remote=127.0.0.1:") {
		t.Errorf("log line lacks the remote address: %s", line)
	}

	neg := e.dial()
	if _, err := neg.Write([]byte{0xff, 0xff, 0xff, 0xfe}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, neg)

	garbage := e.dial()
	frame := frameOf(kmsg.NewPtrMetadataRequest(), 9, 1)
	frame = append(frame[:len(frame)-1], 0x7f) // topics count that overruns the frame
	if _, err := garbage.Write(frame); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, garbage)
	if _, ok := e.logs.find("closing kafka connection", "api=Metadata", "decode"); !ok {
		t.Errorf("undecodable request not logged:\n%s", e.logs.dump())
	}

	produceSync(t, cl, &kgo.Record{Topic: "survivor", Value: []byte("after")})
	cons := e.client(kgo.ConsumeTopics("survivor"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := consumeN(t, cons, 2); string(got[1].Value) != "after" {
		t.Fatalf("consumed %q", got[1].Value)
	}
	var m bytes.Buffer
	e.srv.WriteMetrics(&m)
	for _, want := range []string{
		`samsa_kafka_connection_closes_total{reason="frame_too_large"} 1`,
		`samsa_kafka_connection_closes_total{reason="bad_frame"} 1`,
		`samsa_kafka_connection_closes_total{reason="decode"} 1`,
		`samsa_kafka_requests_total{api="Produce"}`,
		`samsa_kafka_requests_total{api="Fetch"}`,
		"samsa_kafka_connections ",
		"samsa_kafka_bytes_in_total ",
	} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, m.String())
		}
	}
}

// TestShutdownAnswersInFlight parks a fetch, shuts down and checks the fetch
// is answered before the connection closes and Serve returns nil.
func TestShutdownAnswersInFlight(t *testing.T) {
	t.Parallel()
	parked, hook := parkedHook()
	e := newEnv(t, nil, hook)
	tp := e.topic("drain", 1, nil)
	nc := e.dial()
	rawSend(t, nc, fetchReq("drain", tp.ID(), 300_000, 1, 1<<20, 1<<20, map[int32]int64{0: 0}), 16, 1)
	waitParked(t, parked)
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctxFor(t)) }()
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 16
	rawRead(t, nc, resp, 1)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.HighWatermark != 0 {
		t.Errorf("drained fetch: %+v", p)
	}
	expectClosed(t, nc)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	<-e.served
	if e.serveErr != nil {
		t.Fatalf("serve: %v", e.serveErr)
	}
	if _, err := net.DialTimeout("tcp", e.addr, 5*time.Second); err == nil {
		t.Error("still accepting after shutdown")
	}
}

// TestShutdownDeadline checks that a shutdown whose ctx ends closes the
// connections anyway and reports the ctx error.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.topic("stuck", 1, nil)
	nc := e.dial()
	// A connection that never reads its responses and keeps a request half sent.
	if _, err := nc.Write([]byte{0, 0, 0, 100, 0, 3}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) && err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	expectClosed(t, nc)
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.MaxConnections = 1 })
	first := e.dial()
	rawRoundTrip[*kmsg.ApiVersionsResponse](t, first, kmsg.NewPtrApiVersionsRequest(), 3, 1)
	second := e.dial()
	expectClosed(t, second)
	if _, ok := e.logs.find("too many connections"); !ok {
		t.Errorf("refusal not logged:\n%s", e.logs.dump())
	}
	rawRoundTrip[*kmsg.ApiVersionsResponse](t, first, kmsg.NewPtrApiVersionsRequest(), 3, 2)
}

func TestNewServerValidates(t *testing.T) {
	if _, err := NewServer(Options{}); err == nil {
		t.Error("no store: no error")
	}
}
