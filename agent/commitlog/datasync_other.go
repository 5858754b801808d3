//go:build !linux

package commitlog

import "os"

// datasync flushes file data to the disk.
func datasync(f *os.File) error { return f.Sync() }
