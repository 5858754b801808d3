//go:build !linux

package tiering

import (
	"errors"
	"os"
)

// memBufsSupported reports whether chunks can be held in memory files here: only on Linux
// (memfd); elsewhere every chunk goes through the disk cache.
const memBufsSupported = false

func newMemBuf(int64) (*os.File, []byte, error) {
	return nil, nil, errors.New("memory chunks need Linux (memfd)")
}

func freeMemBuf(f *os.File, _ []byte) {
	if f != nil {
		f.Close()
	}
}
