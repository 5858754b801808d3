package kafka

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRequestBudgetBoundsMemoryAcrossConnections shows MaxQueuedBytes is shared by all
// connections: while one connection's large frame is half read, another's small request waits,
// and it is answered once the large frame is done.
func TestRequestBudgetBoundsMemoryAcrossConnections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.MaxQueuedBytes = 10000 })
	big := e.dial()
	const bigSize = 50000
	frame := binary.BigEndian.AppendUint32(nil, bigSize)
	frame = append(frame, 0, 3, 0, 1, 0, 0, 0, 1) // metadata v1 header start
	if _, err := big.Write(frame); err != nil {   // the rest of the frame comes later
		t.Fatal(err)
	}
	// Wait until the big frame holds the budget: the server is reading its body.
	waitFor(t, func() bool { return e.srv.m.queuedBytes.Load() == 10000 })

	small := e.dial()
	req := kmsg.NewPtrMetadataRequest()
	rawSend(t, small, req, 1, 7)
	waitFor(t, func() bool { return e.srv.m.queuedWaits.Load() == 1 })

	// Finish the big frame (a metadata request for all topics, zero-padded).
	if _, err := big.Write(make([]byte, bigSize-8)); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrMetadataResponse()
	rawRead(t, small, resp, 7)
	if len(resp.Brokers) != 1 {
		t.Fatalf("metadata after the budget freed: %+v", resp)
	}
}

// waitFor polls cond until it holds, failing after failAfter (a failure bound, not a timing).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
