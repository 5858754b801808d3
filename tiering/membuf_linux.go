//go:build linux

package tiering

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// memBufsSupported reports whether chunks can be held in memory files here.
const memBufsSupported = true

// newMemBuf returns an anonymous memory file (memfd) of size bytes and a writable shared
// mapping of it: a reusable slot for chunks of remote segments, outside the Go heap. A GET
// body is read straight into the mapping, and the Kafka server copies it into the socket with
// write(2), never sendfile: the slot is overwritten by later chunks, and pages handed to a
// socket by sendfile could still be queued there.
func newMemBuf(size int64) (*os.File, []byte, error) {
	if size <= 0 {
		return nil, nil, fmt.Errorf("memory chunk of %d bytes", size)
	}
	fd, err := unix.MemfdCreate("samsa-chunk", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("size memory chunk to %d bytes: %w", size, err)
	}
	data, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("map memory chunk of %d bytes: %w", size, err)
	}
	// Allocate the pages in one call instead of one fault per page while the body is read
	// in (Linux 5.14+; older kernels fault them in, which is only slower).
	_ = unix.Madvise(data, unix.MADV_POPULATE_WRITE)
	return os.NewFile(uintptr(fd), "memfd:samsa-chunk"), data, nil
}

// freeMemBuf unmaps and closes a memory slot once no read result references it.
func freeMemBuf(f *os.File, data []byte) {
	if data != nil {
		_ = unix.Munmap(data)
	}
	if f != nil {
		f.Close()
	}
}
