package smtptest

import (
	"bytes"
	"net"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// WaitTimeout bounds every wait of this file. It is generous: a wait
// asserts that something happens, never how fast.
const WaitTimeout = 20 * time.Second

// Eventually waits until cond holds, checking it every few milliseconds,
// and fails the test after WaitTimeout. It is for states that announce
// themselves by no event or line (a counter, a file, a listening port);
// where there is one, wait on it instead.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: never happened: %s", WaitTimeout, what)
		}
		<-tick.C
	}
}

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
