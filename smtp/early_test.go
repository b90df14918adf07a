//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package smtp

import (
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
)

// TestEarly: a session sees what its client sent and it has not read,
// without reading it, and looks without allocating once it has looked.
func TestEarly(t *testing.T) {
	server, client := smtptest.Loopback(t)
	s := NewSession(server, nil, Config{})
	if s.early() {
		t.Fatal("early before the client sent anything")
	}
	if !raceEnabled {
		if n := testing.AllocsPerRun(10, func() { s.early() }); n != 0 {
			t.Errorf("early allocates %v times", n)
		}
	}
	if _, err := client.Write([]byte("EHLO x\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !s.early() {
		if time.Now().After(deadline) {
			t.Fatal("the client's bytes never showed")
		}
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, 16)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := server.Read(buf); err != nil || string(buf[:n]) != "EHLO x\r\n" {
		t.Fatalf("after the peeks the socket gave %q, %v", buf[:n], err)
	}
}
