package smtptest

import (
	"net"
	"strconv"
	"testing"
)

// ListenSamePort opens TCP listeners on one free port on each of the given
// loopback addresses ("127.0.0.2", "127.0.0.3", ...), so that a test can
// stand several mail hosts behind one delivery port, as MX hosts are. The
// listeners are closed when the test ends.
func ListenSamePort(t testing.TB, ips ...string) (int, []net.Listener) {
	t.Helper()
	for try := 0; try < 50; try++ {
		first, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				break // taken on that address: another port
			}
			lns = append(lns, ln)
		}
		if len(lns) == len(ips) {
			t.Cleanup(func() {
				for _, ln := range lns {
					ln.Close()
				}
			})
			return port, lns
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	t.Fatalf("no free port on all of %v", ips)
	return 0, nil
}
