package kafka

import (
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/groups"
)

// Group requests
//
// The group APIs (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
// OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete) are answered by the
// agent's groups.Coordinator. The calls that wait (a JoinGroup until the join phase ends, a
// follower's SyncGroup until the leader's, commits and deletions until their records are
// durable) answer through a callback: groupCall turns it into a pending reply, so the
// connection keeps reading while they wait. A waiting call whose connection dies is dropped
// (the member's session runs out as in Kafka); one still waiting when the server drains is
// answered NOT_COORDINATOR so the client looks for the coordinator again after the restart.
// Without a coordinator (Options.Groups nil) every group API answers COORDINATOR_NOT_AVAILABLE.

// groupWait collects a coordinator's answer, before or after the handler returned.
type groupWait struct {
	mu       sync.Mutex
	answered kmsg.Response       // an answer that came before the handler returned
	finish   func(kmsg.Response) // set once the handler returned a pending reply
}

func (w *groupWait) answer(resp kmsg.Response) {
	w.mu.Lock()
	finish := w.finish
	if finish == nil {
		w.answered = resp
	}
	w.mu.Unlock()
	if finish != nil {
		finish(resp)
	}
}

// groupCall runs call, which answers through the callback it is given, and returns the reply
// slot: a ready one when the answer came at once. onDrain, when not nil, makes the answer
// when the server drains before the call is answered.
func (s *Server) groupCall(c *conn, r *request, onDrain func() kmsg.Response, call func(done func(kmsg.Response))) *reply {
	w := &groupWait{}
	call(w.answer)
	w.mu.Lock()
	if w.answered != nil {
		resp := w.answered
		w.mu.Unlock()
		return c.kmsgReply(r, resp)
	}
	rep := pendingReply()
	stop := make(chan struct{})
	var once sync.Once
	complete := func(out outbound) {
		once.Do(func() {
			close(stop)
			rep.complete(out)
		})
	}
	w.finish = func(resp kmsg.Response) { complete(c.kmsgReply(r, resp).out) }
	w.mu.Unlock()
	var drain <-chan struct{}
	if onDrain != nil {
		drain = s.draining
	}
	go func() {
		select {
		case <-stop:
		case <-c.ctx.Done():
			complete(closeOut{}) // the connection is gone; nothing will be written
		case <-drain:
			complete(c.kmsgReply(r, onDrain()).out)
		}
	}()
	return rep
}

// groupClient describes the connection for the coordinator: the client id and the peer's
// address as Kafka shows it ("/127.0.0.1").
func (c *conn) groupClient(r *request) groups.Client {
	host := c.remote
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return groups.Client{ID: r.clientID, Host: "/" + host}
}

// noCoordinator answers a group request when the server has no coordinator.
func noCoordinator(c *conn, r *request, resp kmsg.Response) *reply {
	setTopError(resp, kerr.CoordinatorNotAvailable.Code)
	return c.kmsgReply(r, resp)
}

// setTopError sets the error code of a group response that has one at the top level (the
// others carry it per entry; their handlers fill them).
func setTopError(resp kmsg.Response, code int16) {
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		r.ErrorCode, r.Generation = code, -1
	case *kmsg.SyncGroupResponse:
		r.ErrorCode = code
	case *kmsg.HeartbeatResponse:
		r.ErrorCode = code
	case *kmsg.LeaveGroupResponse:
		r.ErrorCode = code
	case *kmsg.OffsetDeleteResponse:
		r.ErrorCode = code
	}
}
