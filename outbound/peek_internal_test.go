//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package outbound

import (
	"net"
	"testing"
	"time"
)

// TestPeerClosed: a delivery connection's peeker tells an open, quiet
// connection from one the next hop closed, without allocating.
func TestPeerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hop, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
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
