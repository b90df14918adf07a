//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package outbound

import (
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
)

// TestPeerClosed: a delivery connection's peeker tells an open, quiet
// connection from one the next hop closed, without allocating.
func TestPeerClosed(t *testing.T) {
	hop, c := smtptest.Loopback(t)
	p := newPeeker(c)
	if p.peerClosed() {
		t.Fatal("an open connection looks closed")
	}
	if !raceEnabled {
		if n := testing.AllocsPerRun(10, func() { p.peerClosed() }); n != 0 {
			t.Errorf("peerClosed allocates %v times", n)
		}
	}
	hop.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !p.peerClosed() {
		if time.Now().After(deadline) {
			t.Fatal("a connection the next hop closed looks open")
		}
		time.Sleep(time.Millisecond)
	}
}
