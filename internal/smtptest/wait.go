package smtptest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
)

// WaitTimeout bounds every wait of this file; it is wait.Timeout.
const WaitTimeout = wait.Timeout

// WaitReadable waits until the kernel holds bytes unread on c, without
// reading them: what the peer sent has arrived. The poller wakes it; it
// does not poll.
func WaitReadable(t testing.TB, c net.Conn) {
	t.Helper()
	sc, ok := c.(syscall.Conn)
	if !ok {
		t.Fatalf("WaitReadable: %T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(WaitTimeout))
	defer c.SetReadDeadline(time.Time{})
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, _ := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return n > 0 // false: wait until the socket is readable, then again
	})
	if err != nil {
		t.Fatalf("nothing to read on %v: %v", c.LocalAddr(), err)
	}
}

// Log is an io.Writer that keeps what is written to it (a process's
// standard error, a slog handler's output) and lets a test wait for a line.
type Log struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

// NewLog returns an empty Log.
func NewLog() *Log { return &Log{wake: make(chan struct{}, 1)} }

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf.Write(p)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// String returns all that was written.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Wait waits until a line written matches re and returns that line.
func (l *Log) Wait(t testing.TB, re string) string {
	t.Helper()
	rx := regexp.MustCompile(`(?m)^.*(?:` + re + `).*$`)
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		if m := rx.FindString(l.String()); m != "" {
			return m
		}
		select {
		case <-l.wake:
		case <-deadline.C:
			t.Fatalf("after %v, no line matches %q; written:\n%s", WaitTimeout, re, l.String())
		}
	}
}

// WaitPeerRead waits until the peer of the loopback TCP connection c has
// read all that was written to c: nothing unacknowledged in c's send
// queue, nothing unread in the peer's receive queue (from /proc/net/tcp;
// Linux, IPv4). A test that resets a connection after sending calls it
// first: a reset throws away what the peer had not read yet.
func WaitPeerRead(t testing.TB, c net.Conn) {
	t.Helper()
	wait.Until(t, fmt.Sprintf("the peer %v reads what %v sent", c.RemoteAddr(), c.LocalAddr()), func() bool {
		done, err := peerRead(c)
		if err != nil {
			t.Fatalf("WaitPeerRead: %v", err)
		}
		return done
	})
}

// peerRead reports whether the peer of c has read all that c sent.
func peerRead(c net.Conn) (bool, error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || local.IP.To4() == nil || remote.IP.To4() == nil {
		return false, fmt.Errorf("%v -> %v is not TCP over IPv4", c.LocalAddr(), c.RemoteAddr())
	}
	ours, theirs := procAddr(local), procAddr(remote)
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, err
	}
	found, done := 0, true
	for _, l := range strings.Split(string(b), "\n")[1:] {
		// sl local rem st tx_queue:rx_queue ...
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		tx, rx, _ := strings.Cut(f[4], ":")
		switch {
		case f[1] == ours && f[2] == theirs:
			done = done && strings.Trim(tx, "0") == ""
			found++
		case f[1] == theirs && f[2] == ours:
			done = done && strings.Trim(rx, "0") == ""
			found++
		}
	}
	if found != 2 {
		return false, fmt.Errorf("%v <-> %v: %d of its 2 ends in /proc/net/tcp", local, remote, found)
	}
	return done, nil
}

// procAddr writes a TCP address as /proc/net/tcp does: the IPv4 address
// as a 32-bit number in host byte order, then the port, in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(ip), a.Port)
}
