//go:build linux

package kafka

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// maxSendfileChunk bounds one sendfile(2) call (Linux moves at most ~2 GiB per call).
const maxSendfileChunk = 1 << 30

// sendfile sends fr to nc with sendfile(2), the file bytes never entering user
// space. It passes an explicit offset, so concurrent fetches sharing the
// *os.File never race on its position, and it waits for writability through
// the runtime poller on EAGAIN (so write deadlines and Close still work).
//
// ok is false when nc cannot take sendfile (not a socket with a file
// descriptor, or the kernel refused before any byte moved); the caller then
// copies. Once bytes have moved, errors are returned with ok true.
func sendfile(nc net.Conn, fr commitlog.FileRange) (written int64, ok bool, err error) {
	sc, isSC := nc.(syscall.Conn)
	if !isSC || fr.File == nil {
		return 0, false, nil
	}
	out, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	in, err := fr.File.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var serr error
	cerr := in.Control(func(infd uintptr) {
		werr := out.Write(func(outfd uintptr) bool {
			for written < fr.Len {
				off := fr.Pos + written
				n, err := unix.Sendfile(int(outfd), int(infd), &off, int(min(fr.Len-written, maxSendfileChunk)))
				if n > 0 {
					written += int64(n)
				}
				switch {
				case errors.Is(err, unix.EAGAIN):
					return false // wait until the socket is writable
				case errors.Is(err, unix.EINTR):
					continue
				case err != nil:
					serr = err
					return true
				case n == 0:
					serr = fmt.Errorf("segment file ends before position %d: %w", off, io.ErrUnexpectedEOF)
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	sendfileBytes.Add(uint64(written))
	if serr != nil && written == 0 && unsupportedSendfile(serr) {
		return 0, false, nil
	}
	if serr != nil {
		return written, true, fmt.Errorf("sendfile %s [%d,+%d): %w", fr.File.Name(), fr.Pos, fr.Len, serr)
	}
	return written, true, nil
}

// unsupportedSendfile reports errors meaning "this pair of descriptors cannot
// sendfile", as opposed to a failed connection.
func unsupportedSendfile(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP)
}
