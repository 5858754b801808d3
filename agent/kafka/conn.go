package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// Connection model
//
// Each connection has two goroutines. The reader decodes one request at a
// time and runs the quick part of its handler inline (a produce's appends
// happen here, so appends from one connection land in request order). A
// handler returns a reply slot; a handler that must wait (acks, fsync, fetch
// long-poll) returns a pending slot and completes it from its own goroutine.
// The writer takes slots from a bounded queue in request order, waits for
// each to be ready and writes it, so the next request is read and handled
// while earlier ones wait, yet responses go out strictly in order. The queue
// bound (Options.MaxInFlight) caps a connection's memory: when it is full the
// reader stops reading.

const (
	readBufferSize  = 4 << 10
	writeBufferSize = 16 << 10
	copyBufferSize  = 32 << 10
)

// errCloseConn is what a closing reply writes: the writer closes the connection.
var errCloseConn = errors.New("handler asked to close the connection")

// outbound is a response ready to be written.
type outbound interface {
	// write writes the whole response frame.
	write(w *respWriter) error
	// release frees what the response holds (file ranges); called exactly once.
	release()
}

// reply is one response slot in a connection's ordered write queue.
type reply struct {
	ready chan struct{} // closed once out is set
	out   outbound
}

// readyReply returns a slot that is already complete.
func readyReply(out outbound) *reply {
	r := &reply{ready: make(chan struct{}), out: out}
	close(r.ready)
	return r
}

// pendingReply returns a slot to be completed later with complete.
func pendingReply() *reply { return &reply{ready: make(chan struct{})} }

// complete sets the response of a pending slot; call once.
func (r *reply) complete(out outbound) {
	r.out = out
	close(r.ready)
}

// discard waits for the slot and releases it without writing.
func (r *reply) discard() {
	<-r.ready
	r.out.release()
}

// bytesOut is an encoded response.
type bytesOut []byte

func (b bytesOut) write(w *respWriter) error { return w.writeBytes(b) }
func (bytesOut) release()                    {}

// closeOut makes the writer close the connection after earlier responses.
type closeOut struct{}

func (closeOut) write(*respWriter) error { return errCloseConn }
func (closeOut) release()                {}

// kmsgReply encodes resp for request r as a ready reply and counts its
// errors. The response takes the request's version (an ApiVersions request
// too new to decode is answered in v0).
func (c *conn) kmsgReply(r *request, resp kmsg.Response) *reply {
	if resp == nil || reflect.ValueOf(resp).IsNil() {
		c.s.log.Error("kafka handler returned no response; closing connection", "remote", c.remote,
			"api", kmsg.NameForKey(r.key), "api_version", r.version)
		return readyReply(closeOut{})
	}
	if r.msg != nil {
		resp.SetVersion(r.version)
	}
	c.s.m.countResponseErrors(resp)
	return readyReply(bytesOut(appendResponse(nil, r.corrID, resp)))
}

// conn is one client connection.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	ctx    context.Context // cancelled when the connection is torn down
	cancel context.CancelFunc
	queue  chan *reply

	stopping  atomic.Bool // Shutdown asked the reader to stop
	closeOnce sync.Once
}

// newConn wraps an accepted connection.
func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		s:      s,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
		ctx:    ctx,
		cancel: cancel,
		queue:  make(chan *reply, s.opts.MaxInFlight),
	}
}

// serve runs the connection until it ends and closes it.
func (c *conn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	<-writerDone
	c.abort()
}

// stopReading makes the reader stop after the request it is handling; the
// writer then sends every queued response and the connection closes.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	_ = c.nc.SetReadDeadline(time.Now())
}

// abort tears the connection down now: pending handlers see ctx done.
func (c *conn) abort() {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.nc.Close()
	})
}

// readLoop reads and handles requests until the stream ends or fails; it
// closes the queue when it returns.
func (c *conn) readLoop() {
	defer close(c.queue)
	defer func() {
		if p := recover(); p != nil {
			c.s.m.closed(causePanic)
			c.s.log.Error("kafka handler panicked; closing connection", "remote", c.remote,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			c.abort()
		}
	}()
	br := bufio.NewReaderSize(c.nc, readBufferSize)
	for {
		held, err := c.reserveFrame(br)
		if err != nil {
			c.readFailed(err)
			return
		}
		req, err := readRequest(br, c.s.opts.MaxRequestBytes)
		if err != nil {
			c.releaseFrame(held)
			c.readFailed(err)
			return
		}
		c.s.m.request(req.key, req.size)
		rep, err := c.s.dispatch(c, req)
		// The frame's bytes are no longer needed once the handler's synchronous part (a
		// produce's append) is done; waiting parts keep only small state.
		c.releaseFrame(held)
		if req.key == produceKey {
			// Produce handlers keep nothing that aliases the frame (record bytes were
			// written by Append; names are copied), so its buffer can be reused.
			putFrameBuf(req.frame)
		}
		req.frame = nil
		if rep != nil && !c.enqueue(rep) {
			return
		}
		if err != nil {
			c.closeFor(err, req.key, req.version)
			return
		}
		if req.throttle > 0 && !c.mute(req.throttle) {
			return
		}
	}
}

// reserveFrame peeks at the next frame's size and takes that many bytes from the server-wide
// request budget (MaxQueuedBytes), waiting while other requests hold it. A frame larger than
// the whole budget takes all of it. Bad sizes take nothing: readRequest rejects them.
func (c *conn) reserveFrame(br *bufio.Reader) (int64, error) {
	head, err := br.Peek(4)
	if err != nil {
		return 0, err
	}
	n := int64(int32(binary.BigEndian.Uint32(head)))
	if n <= 0 || n > int64(c.s.opts.MaxRequestBytes) {
		return 0, nil
	}
	n = min(n, c.s.opts.MaxQueuedBytes)
	if !c.s.queued.TryAcquire(n) {
		c.s.m.queuedWaits.Add(1)
		if err := c.s.queued.Acquire(c.ctx, n); err != nil {
			return 0, err
		}
	}
	c.s.m.queuedBytes.Add(n)
	return n, nil
}

// releaseFrame gives back what reserveFrame took.
func (c *conn) releaseFrame(n int64) {
	if n > 0 {
		c.s.m.queuedBytes.Add(-n)
		c.s.queued.Release(n)
	}
}

// enqueue hands rep to the writer, waiting while MaxInFlight responses are
// queued. It returns false if the connection died meanwhile.
func (c *conn) enqueue(rep *reply) bool {
	select {
	case c.queue <- rep:
		return true
	case <-c.ctx.Done():
		rep.discard()
		return false
	}
}

// readFailed logs why reading stopped.
func (c *conn) readFailed(err error) {
	var fe *frameError
	switch {
	case errors.As(err, &fe):
		c.closeFor(err, fe.key, fe.version)
	case c.stopping.Load(), c.ctx.Err() != nil:
		// Shutdown or teardown: nothing to report.
	case errors.Is(err, io.EOF):
		c.s.log.Debug("kafka client closed the connection", "remote", c.remote)
	default:
		c.s.log.Debug("kafka connection read failed", "remote", c.remote, "err", err)
	}
}

// closeFor logs that the server closes the connection because of err.
func (c *conn) closeFor(err error, key, version int16) {
	cause := causeDecode
	var fe *frameError
	if errors.As(err, &fe) {
		cause = fe.cat
	} else if ce, ok := errors.AsType[*closeError](err); ok {
		cause = ce.cause
	}
	c.s.m.closed(cause)
	c.s.log.Warn("closing kafka connection", "remote", c.remote, "api_key", key,
		"api", kmsg.NameForKey(key), "api_version", version, "reason", err.Error())
}

// closeError is a handler's reason to close the connection after its reply.
type closeError struct {
	cause  closeCause
	reason string
}

func (e *closeError) Error() string { return e.reason }

// writeLoop writes replies in request order until the queue closes.
func (c *conn) writeLoop() {
	w := &respWriter{nc: c.nc, bw: bufio.NewWriterSize(c.nc, writeBufferSize), m: &c.s.m}
	defer func() {
		if p := recover(); p != nil {
			c.s.m.closed(causePanic)
			c.s.log.Error("kafka response writer panicked; closing connection", "remote", c.remote,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			c.abort()
		}
		for rep := range c.queue {
			rep.discard()
		}
	}()
	for rep := range c.queue {
		select {
		case <-rep.ready:
		case <-c.ctx.Done():
			rep.discard()
			return
		}
		err := rep.out.write(w)
		rep.out.release()
		if err == nil && len(c.queue) == 0 {
			err = w.flush()
		}
		if err != nil {
			c.writeFailed(err, w)
			return
		}
	}
	if err := w.flush(); err != nil {
		c.writeFailed(err, w)
	}
}

// writeFailed logs a failed write and tears the connection down.
func (c *conn) writeFailed(err error, w *respWriter) {
	switch {
	case errors.Is(err, errCloseConn):
		_ = w.flush() // the responses before the close still go out
	case c.ctx.Err() != nil:
	default:
		c.s.m.closed(causeWrite)
		c.s.log.Debug("kafka response write failed; closing connection", "remote", c.remote, "err", err)
	}
	c.abort()
}

// respWriter writes response frames: small parts through a buffer, file
// ranges with sendfile (or a copy when the connection cannot take it).
type respWriter struct {
	nc      net.Conn
	bw      *bufio.Writer
	m       *metrics
	copyBuf []byte
}

func (w *respWriter) writeBytes(p []byte) error {
	n, err := w.bw.Write(p)
	w.m.bytesOut.Add(uint64(n))
	return err
}

func (w *respWriter) flush() error { return w.bw.Flush() }

// writeRange sends a file range: zero-copy when possible.
func (w *respWriter) writeRange(fr commitlog.FileRange) error {
	if fr.Len <= 0 {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		return err
	}
	n, ok, err := sendfile(w.nc, fr)
	w.m.bytesOut.Add(uint64(n))
	if ok {
		return err
	}
	return w.copyRange(fr)
}

// writeMem sends record bytes held in a reused memory buffer (tiered data): write(2) copies
// them into the socket (or the buffered writer), so the buffer may be reused once the
// response is released.
func (w *respWriter) writeMem(p []byte) error {
	n, err := w.bw.Write(p)
	w.m.bytesOut.Add(uint64(n))
	memoryRecordBytes.Add(uint64(n))
	return err
}

// copyRange sends a file range by pread and write.
func (w *respWriter) copyRange(fr commitlog.FileRange) error {
	if fr.File == nil {
		return errors.New("file range without a file")
	}
	if w.copyBuf == nil {
		w.copyBuf = make([]byte, copyBufferSize)
	}
	for done := int64(0); done < fr.Len; {
		chunk := w.copyBuf[:min(int64(len(w.copyBuf)), fr.Len-done)]
		n, err := fr.File.ReadAt(chunk, fr.Pos+done)
		if n < len(chunk) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read %s at %d: %w", fileName(fr.File), fr.Pos+done, err)
		}
		m, err := w.nc.Write(chunk)
		copiedRecordBytes.Add(uint64(m))
		w.m.bytesOut.Add(uint64(m))
		if err != nil {
			return err
		}
		done += int64(n)
	}
	return nil
}

func fileName(f *os.File) string {
	if f == nil {
		return "<nil>"
	}
	return f.Name()
}
