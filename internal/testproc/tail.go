package testproc

import (
	"bytes"
	"sync"
)

// TailBuffer is an io.Writer that keeps the last bytes written to it, for error messages about
// a process's output. It is safe for concurrent use.
type TailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

// NewTailBuffer returns a TailBuffer that keeps the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

// Write appends p and drops what is older than the last max bytes. It never fails.
func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
