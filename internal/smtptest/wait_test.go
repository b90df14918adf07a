package smtptest

import (
	"io"
	"testing"
	"time"
)

// TestWaitPeerRead: bytes in the peer's receive queue are not read yet;
// once the peer reads them, the wait ends.
func TestWaitPeerRead(t *testing.T) {
	s, c := Loopback(t)
	if done, err := peerRead(c); err != nil || !done {
		t.Fatalf("nothing sent: read %v, %v", done, err)
	}
	if _, err := c.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	WaitReadable(t, s) // arrived
	if done, err := peerRead(c); err != nil || done {
		t.Fatalf("10 bytes unread: read %v, %v", done, err)
	}
	s.SetReadDeadline(time.Now().Add(WaitTimeout))
	if _, err := io.ReadFull(s, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	WaitPeerRead(t, c)
}

// TestLogWait: Wait returns the whole line that matches, written in
// pieces by another goroutine.
func TestLogWait(t *testing.T) {
	l := NewLog()
	go func() {
		l.Write([]byte("first line\nsecond "))
		l.Write([]byte("line, the one\nthird"))
	}()
	if got := l.Wait(t, `the one`); got != "second line, the one" {
		t.Errorf("Wait returned %q", got)
	}
}
