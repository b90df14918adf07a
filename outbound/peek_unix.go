//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package outbound

import (
	"errors"
	"net"
	"syscall"
)

// peeker looks at a delivery connection's socket without reading it: made
// once with the connection, because the RawConn, and the function run in
// it with what that captures, were heap objects at each look, one for
// every message the connection carries.
type peeker struct {
	rc     syscall.RawConn // nil: no socket to look at
	fn     func(fd uintptr) bool
	closed bool
	buf    [1]byte
}

func newPeeker(c net.Conn) *peeker {
	p := &peeker{}
	if sc, ok := c.(syscall.Conn); ok {
		p.rc, _ = sc.SyscallConn()
	}
	p.fn = p.recv
	return p
}

// peerClosed reports whether the next hop has closed (or reset) an idle
// connection, or sent something unasked (a 421 before it closes, a TLS
// alert): either way it cannot carry a transaction. It peeks at the socket
// without blocking and without consuming anything: one recvfrom.
func (p *peeker) peerClosed() bool {
	if p.rc == nil {
		return false
	}
	p.closed = false
	err := p.rc.Read(p.fn)
	return p.closed || err != nil
}

func (p *peeker) recv(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
		// Nothing to read: open and quiet.
	case err != nil, n >= 0:
		// An error (ECONNRESET), EOF (0) or unasked bytes.
		p.closed = true
	}
	return true
}
