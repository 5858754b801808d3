package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request framing
//
//	int32  size              bytes that follow
//	int16  api_key
//	int16  api_version
//	int32  correlation_id
//	string client_id         int16 length, -1 = null (never compact, even in header v2)
//	tags                     header v2 only (flexible request versions): uvarint count,
//	                         then per field uvarint tag, uvarint size, bytes
//	...    request body
//
// Responses start with int32 size and int32 correlation_id; flexible
// responses (header v1) add an empty tag buffer, except ApiVersions, whose
// response header is always v0 so that any client can read it.

// minHeaderBytes is api key, version, correlation id and a client id length.
const minHeaderBytes = 2 + 2 + 4 + 2

// frameChunk bounds how much of a frame is allocated before its bytes have
// arrived, so a peer announcing a huge size and sending nothing costs little.
const frameChunk = 64 << 10

// request is one decoded request frame.
type request struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
	size     int          // bytes on the wire, size prefix included
	frame    []byte       // the frame (pooled); request fields may alias it
	msg      kmsg.Request // nil only for an ApiVersions request newer than we speak
	throttle int32        // set by a handler: mute the connection this many ms (throttle.go)
}

// frameError is a request the server cannot answer: the connection is closed.
type frameError struct {
	key, version int16 // -1 when not read yet
	reason       string
	cat          closeCause
}

func (e *frameError) Error() string {
	return fmt.Sprintf("api key %d version %d: %s", e.key, e.version, e.reason)
}

// errFrame builds a frameError.
func errFrame(cat closeCause, key, version int16, format string, args ...any) error {
	return &frameError{key: key, version: version, reason: fmt.Sprintf(format, args...), cat: cat}
}

// readRequest reads and decodes one request frame from r. It returns io.EOF
// on a clean end of stream between frames, a *frameError for a request that
// must close the connection, and other errors from r as they are.
func readRequest(r io.Reader, maxBytes int32) (*request, error) {
	frame, err := readFrame(r, maxBytes)
	if err != nil {
		return nil, err
	}
	req, err := parseRequest(frame)
	if err != nil {
		return nil, err
	}
	req.size = len(frame) + 4
	req.frame = frame
	return req, nil
}

// readFrame reads one size-prefixed frame and returns the bytes after the
// size. The api key and version are read before the size is judged, so the
// log of a refused frame can name them.
func readFrame(r io.Reader, maxBytes int32) ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	switch {
	case n < 0:
		return nil, errFrame(causeBadFrame, -1, -1, "negative frame size %d", n)
	case n < minHeaderBytes:
		return nil, errFrame(causeBadFrame, -1, -1, "frame of %d bytes is shorter than a request header", n)
	}
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if n > maxBytes {
			return nil, errFrame(causeTooLarge, -1, -1, "frame of %d bytes exceeds the %d byte limit (socket.request.max.bytes)", n, maxBytes)
		}
		return nil, fmt.Errorf("read request header: %w", noEOF(err))
	}
	key, version := int16(binary.BigEndian.Uint16(hdr[0:])), int16(binary.BigEndian.Uint16(hdr[2:]))
	if n > maxBytes {
		return nil, errFrame(causeTooLarge, key, version, "frame of %d bytes exceeds the %d byte limit (socket.request.max.bytes)", n, maxBytes)
	}
	// Take at most frameChunk before bytes arrive, so a peer announcing a huge size and
	// sending nothing costs little; then the rest in one step.
	buf := getFrameBuf(min(int(n), frameChunk))[:len(hdr)]
	copy(buf, hdr[:])
	first := min(int(n), frameChunk)
	m, err := io.ReadFull(r, buf[len(hdr):first])
	buf = buf[:len(hdr)+m]
	if err == nil && int(n) > first {
		whole := getFrameBuf(int(n))[:first]
		copy(whole, buf)
		putFrameBuf(buf)
		buf = whole
		m, err = io.ReadFull(r, buf[first:n])
		buf = buf[:first+m]
	}
	if err != nil {
		putFrameBuf(buf)
		return nil, fmt.Errorf("read %d byte frame (got %d): %w", n, len(buf), noEOF(err))
	}
	return buf, nil
}

// Frame buffers are pooled by power-of-two size class from 4 KiB to 16 MiB, so a steady
// stream of produce requests reuses memory instead of allocating a frame per request.
const (
	minPooledFrame = 4 << 10
	maxPooledFrame = 16 << 20
)

var framePools [13]sync.Pool // 4 KiB << i

// frameClass returns the pool index whose buffers hold n bytes, or -1 when n is too large.
func frameClass(n int) int {
	if n > maxPooledFrame {
		return -1
	}
	c := 0
	for size := minPooledFrame; size < n; size <<= 1 {
		c++
	}
	return c
}

// getFrameBuf returns a buffer of length n.
func getFrameBuf(n int) []byte {
	c := frameClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if b, ok := framePools[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, minPooledFrame<<c)
}

// putFrameBuf recycles a buffer from getFrameBuf; nothing may use it afterwards.
func putFrameBuf(b []byte) {
	c := frameClass(cap(b))
	if c < 0 || cap(b) != minPooledFrame<<c {
		return
	}
	b = b[:0]
	framePools[c].Put(&b)
}

// noEOF turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseRequest decodes the header and body of one frame (size prefix removed).
func parseRequest(frame []byte) (*request, error) {
	if len(frame) < minHeaderBytes {
		return nil, errFrame(causeBadFrame, -1, -1, "frame of %d bytes is shorter than a request header", len(frame))
	}
	be := binary.BigEndian
	req := &request{
		key:     int16(be.Uint16(frame[0:])),
		version: int16(be.Uint16(frame[2:])),
		corrID:  int32(be.Uint32(frame[4:])),
	}
	api, ok := lookupAPI(req.key)
	if !ok {
		return nil, errFrame(causeUnsupported, req.key, req.version, "unsupported api key %d (%s)", req.key, kmsg.NameForKey(req.key))
	}
	if req.version < api.min || req.version > api.max {
		if req.key == apiVersionsKey && req.version > api.max {
			return req, nil // answered with UNSUPPORTED_VERSION; the body may be a format we do not know
		}
		return nil, errFrame(causeUnsupported, req.key, req.version, "unsupported version %d of %s (we speak %d-%d)",
			req.version, kmsg.NameForKey(req.key), api.min, api.max)
	}
	msg := kmsg.RequestForKey(req.key)
	if msg == nil {
		return nil, errFrame(causeUnsupported, req.key, req.version, "no decoder for api key %d", req.key)
	}
	msg.SetVersion(req.version)
	rest := frame[8:]
	idLen := int16(be.Uint16(rest))
	rest = rest[2:]
	if idLen > 0 {
		if int(idLen) > len(rest) {
			return nil, errFrame(causeDecode, req.key, req.version, "client id length %d overruns the frame", idLen)
		}
		req.clientID = string(rest[:idLen])
		rest = rest[idLen:]
	}
	if msg.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, errFrame(causeDecode, req.key, req.version, "request header tags: %v", err)
		}
	}
	if err := checkShape(req.key, req.version, msg.IsFlexible(), rest); err != nil {
		return nil, errFrame(causeDecode, req.key, req.version, "decode %s v%d body: %v", kmsg.NameForKey(req.key), req.version, err)
	}
	if err := msg.ReadFrom(rest); err != nil {
		return nil, errFrame(causeDecode, req.key, req.version, "decode %s v%d body: %v", kmsg.NameForKey(req.key), req.version, err)
	}
	req.msg = msg
	return req, nil
}

// skipTags skips a tagged field buffer and returns what follows it.
func skipTags(b []byte) ([]byte, error) {
	n, used := binary.Uvarint(b)
	if used <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[used:]
	if n > uint64(len(b)) { // every tag needs at least two bytes
		return nil, fmt.Errorf("tag count %d overruns the frame", n)
	}
	for i := uint64(0); i < n; i++ {
		if _, used = binary.Uvarint(b); used <= 0 {
			return nil, errors.New("bad tag number")
		}
		b = b[used:]
		size, used := binary.Uvarint(b)
		if used <= 0 {
			return nil, errors.New("bad tag size")
		}
		b = b[used:]
		if size > uint64(len(b)) {
			return nil, fmt.Errorf("tag of %d bytes overruns the frame", size)
		}
		b = b[size:]
	}
	return b, nil
}

// appendResponse appends a whole response frame: size, header, body.
func appendResponse(dst []byte, corrID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corrID))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0) // header v1: no tags
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// produceKey is the Produce API key.
const produceKey = 0
