//go:build !linux && !darwin && !freebsd

package control

import (
	"errors"
	"net"
)

// peerUID is not implemented here, so every connection is refused: the
// control socket fails closed rather than trusting the file's mode alone.
func peerUID(*net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials are not implemented on this system")
}
