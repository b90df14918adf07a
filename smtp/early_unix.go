//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package smtp

import (
	"net"
	"syscall"
)

// early reports whether the client has sent anything the session has not
// read: before the greeting, which RFC 5321 3.1 forbids and spam engines do
// to save time, or after a command it had to wait for the reply to. It
// peeks at the socket without blocking and without consuming the bytes.
func (s *Session) early() bool {
	p := s.peek
	if p == nil {
		p = &peeker{}
		if sc, ok := s.raw.(syscall.Conn); ok {
			p.rc, _ = sc.SyscallConn()
		}
		p.fn = p.recv
		s.peek = p
	}
	if p.rc == nil {
		return false
	}
	p.n = 0
	p.rc.Read(p.fn)
	return p.n > 0
}

// peeker is a session's means to peek at its socket, made at its first
// peek and kept: the RawConn, and the function run in it with what that
// captures, were heap objects at each of a session's three peeks.
type peeker struct {
	rc  syscall.RawConn // nil: the connection has no socket to peek at
	fn  func(fd uintptr) bool
	n   int
	buf [1]byte
}

func (p *peeker) recv(fd uintptr) bool {
	p.n, _, _ = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true
}

// discardPending reads and throws away what the client has sent that is
// waiting in the socket, without blocking, up to max bytes, and returns how
// much. A session waiting for a command reads only a small lead first
// (awaitInput), so the rest of what a client pipelined may still be there.
func discardPending(c net.Conn, max int) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var buf [4096]byte
	total := 0
	rc.Read(func(fd uintptr) bool {
		for total < max {
			n, _, err := syscall.Recvfrom(int(fd), buf[:min(len(buf), max-total)], syscall.MSG_DONTWAIT)
			if n <= 0 || err != nil {
				break
			}
			total += n
		}
		return true
	})
	return total
}
