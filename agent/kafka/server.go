// Package kafka serves the Kafka wire protocol in front of a commitlog.Store.
//
// Requests are decoded and responses encoded with franz-go's pkg/kmsg, except
// Fetch responses, which are encoded by hand (fetch_encode.go) so the record
// bytes go from segment files to the socket with sendfile(2). There is one
// file per API key; conn.go explains the per-connection pipelining.
package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/semaphore"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Server speaks the Kafka wire protocol in front of a commitlog.Store.
type Server struct {
	opts  Options
	store *commitlog.Store
	log   *slog.Logger
	m     metrics
	th    throttleStats

	queued *semaphore.Weighted // bytes of requests in memory, over all connections

	draining chan struct{} // closed by Shutdown: long polls answer now

	testHookLongPoll func() // tests: called when a fetch starts to long-poll

	mu        sync.Mutex
	shutdown  bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	connWG    sync.WaitGroup
}

// NewServer checks opts and returns a server ready to Serve.
func NewServer(opts Options) (*Server, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &Server{
		opts:      opts,
		store:     opts.Store,
		log:       opts.Logger,
		queued:    semaphore.NewWeighted(opts.MaxQueuedBytes),
		draining:  make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}, nil
}

// Serve accepts connections on ln and serves each in its own goroutines. It
// returns nil after Shutdown, or the accept error that stopped it. Serve may
// be called for several listeners.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isShutdown() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors and the like: back off and keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("kafka accept failed; retrying", "addr", ln.Addr().String(), "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.startConn(nc)
	}
}

func (s *Server) isShutdown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// startConn registers and serves an accepted connection, or refuses it.
func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	if s.shutdown || len(s.conns) >= s.opts.MaxConnections {
		shutdown := s.shutdown
		s.mu.Unlock()
		if !shutdown {
			s.m.connsRejected.Add(1)
			s.log.Warn("kafka connection refused: too many connections", "remote", nc.RemoteAddr().String(),
				"max_connections", s.opts.MaxConnections)
		}
		_ = nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()

	s.m.connsOpen.Add(1)
	s.m.connsTotal.Add(1)
	go func() {
		defer s.connWG.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.m.connsOpen.Add(-1)
		}()
		c.serve()
	}()
}

// Shutdown stops accepting, lets in-flight requests finish and their
// responses be written, then closes the connections. Long-polling fetches
// answer at once with what they have. If ctx ends first, the remaining
// connections are closed without their responses and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shutdown {
		s.shutdown = true
		close(s.draining)
		for ln := range s.listeners {
			_ = ln.Close()
		}
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.stopReading()
	}
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.abort()
	}
	<-done
	return ctx.Err()
}

// dispatch runs the handler of one request and returns its reply slot (nil
// when the request gets no response, like an acks=0 produce). A non-nil
// error closes the connection after the reply.
func (s *Server) dispatch(c *conn, r *request) (*reply, error) {
	ctx := c.ctx
	switch req := r.msg.(type) {
	case nil:
		return c.kmsgReply(r, apiVersionsTooNew()), nil
	case *kmsg.ApiVersionsRequest:
		return c.kmsgReply(r, s.handleApiVersions(req)), nil
	case *kmsg.MetadataRequest:
		return c.kmsgReply(r, s.handleMetadata(ctx, req)), nil
	case *kmsg.ProduceRequest:
		return s.handleProduce(c, r, req)
	case *kmsg.FetchRequest:
		return s.handleFetch(c, r, req), nil
	case *kmsg.ListOffsetsRequest:
		return c.kmsgReply(r, s.handleListOffsets(ctx, req)), nil
	case *kmsg.CreateTopicsRequest:
		return c.kmsgReply(r, s.handleCreateTopics(ctx, req)), nil
	case *kmsg.DeleteTopicsRequest:
		return c.kmsgReply(r, s.handleDeleteTopics(ctx, req)), nil
	case *kmsg.DeleteRecordsRequest:
		return c.kmsgReply(r, s.handleDeleteRecords(ctx, req)), nil
	case *kmsg.CreatePartitionsRequest:
		return c.kmsgReply(r, s.handleCreatePartitions(ctx, req)), nil
	case *kmsg.DescribeConfigsRequest:
		return c.kmsgReply(r, s.handleDescribeConfigs(ctx, req)), nil
	case *kmsg.DescribeLogDirsRequest:
		return c.kmsgReply(r, s.handleDescribeLogDirs(ctx, req)), nil
	case *kmsg.IncrementalAlterConfigsRequest:
		return c.kmsgReply(r, s.handleIncrementalAlterConfigs(ctx, req)), nil
	case *kmsg.DescribeClusterRequest:
		return c.kmsgReply(r, s.handleDescribeCluster(ctx, req)), nil
	case *kmsg.InitProducerIDRequest:
		return c.kmsgReply(r, s.handleInitProducerID(ctx, req)), nil
	case *kmsg.FindCoordinatorRequest:
		return c.kmsgReply(r, s.handleFindCoordinator(req)), nil
	case *kmsg.JoinGroupRequest:
		return s.handleJoinGroup(c, r, req), nil
	case *kmsg.SyncGroupRequest:
		return s.handleSyncGroup(c, r, req), nil
	case *kmsg.HeartbeatRequest:
		return s.handleHeartbeat(c, r, req), nil
	case *kmsg.LeaveGroupRequest:
		return s.handleLeaveGroup(c, r, req), nil
	case *kmsg.OffsetCommitRequest:
		return s.handleOffsetCommit(c, r, req), nil
	case *kmsg.OffsetFetchRequest:
		return c.kmsgReply(r, s.handleOffsetFetch(req)), nil
	case *kmsg.ListGroupsRequest:
		return c.kmsgReply(r, s.handleListGroups(req)), nil
	case *kmsg.DescribeGroupsRequest:
		return c.kmsgReply(r, s.handleDescribeGroups(req)), nil
	case *kmsg.DeleteGroupsRequest:
		return s.handleDeleteGroups(c, r, req), nil
	case *kmsg.OffsetDeleteRequest:
		return s.handleOffsetDelete(c, r, req), nil
	}
	return nil, &closeError{cause: causeUnsupported, reason: "no handler for this api key"}
}
