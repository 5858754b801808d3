//go:build !linux

package kafka

import (
	"net"

	"github.com/samsa-io/samsa/agent/commitlog"
)

// sendfile is only implemented on Linux; elsewhere record bytes are copied.
func sendfile(net.Conn, commitlog.FileRange) (written int64, ok bool, err error) {
	return 0, false, nil
}
