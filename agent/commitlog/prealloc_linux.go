package commitlog

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// fallocate gives f real blocks for its first size bytes, extending it to size. It returns
// errors.ErrUnsupported when the filesystem cannot preallocate, and ENOSPC when it has no
// room.
func fallocate(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		switch err {
		case unix.EINTR: // a signal (the Go runtime sends them) interrupted a long allocation
			continue
		case unix.EOPNOTSUPP, unix.ENOSYS:
			return errors.ErrUnsupported
		}
		return err
	}
}
