package commitlog

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync flushes file data (not all metadata) to the disk.
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
