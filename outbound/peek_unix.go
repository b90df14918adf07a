//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package outbound

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the next hop has closed (or reset) an idle
// connection, or sent something unasked (a 421 before it closes, a TLS
// alert): either way it cannot carry a transaction. It peeks at the socket
// without blocking and without consuming anything: one recvfrom.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
			// Nothing to read: open and quiet.
		case err != nil, n >= 0:
			// An error (ECONNRESET), EOF (0) or unasked bytes.
			closed = true
		}
		return true
	})
	return closed || err != nil
}
