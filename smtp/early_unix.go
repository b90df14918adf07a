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
func early(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var buf [1]byte
	rc.Read(func(fd uintptr) bool {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	return n > 0
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
