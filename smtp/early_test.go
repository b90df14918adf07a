//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package smtp

import (
	"net"
	"testing"
	"time"
)

// loopbackPair returns both ends of a TCP connection over loopback.
func loopbackPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}

// TestEarly: a session sees what its client sent and it has not read,
// without reading it, and looks without allocating once it has looked.
func TestEarly(t *testing.T) {
	server, client := loopbackPair(t)
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
