package smtp

import (
	"net"
	"syscall"
)

// early reports whether the client has sent anything before the greeting,
// which RFC 5321 3.1 forbids and spam engines do to save time. It peeks at
// the socket without blocking and without consuming the bytes.
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
