package smtptest

import (
	"net"
	"testing"
)

// Loopback returns both ends of a TCP connection over loopback, closed
// when the test ends: for tests of what a socket shows (peeks, closes,
// what the peer has read) that a net.Pipe cannot show.
func Loopback(t testing.TB) (server, client net.Conn) {
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
