package syslog

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitDropped(t *testing.T, s *Server, n uint64) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for s.Dropped() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Dropped() = %d, want %d", s.Dropped(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// With Senders, only the listed addresses are heard, over UDP and TCP
// (127.0.0.2 is another sender on loopback), and a line is filed under the
// host name configured for its sender, whatever host it claims.
func TestSenders(t *testing.T) {
	var logged lockedBuffer
	s := &Server{Senders: []Sender{{Addr: netip.MustParseAddr("127.0.0.1"), Host: "esa1.mapped.example"}},
		Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	msgs := startServer(t, s)
	addr := s.LocalAddr().String()
	other := &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}

	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			dropped := s.Dropped()
			var from net.Addr = other
			if proto == "tcp" {
				from = &net.TCPAddr{IP: other.IP}
			}
			bad, err := (&net.Dialer{LocalAddr: from}).Dial(proto, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			if _, err := bad.Write([]byte(octets(withHost))); err != nil && proto == "udp" {
				t.Fatal(err)
			}
			if proto == "tcp" {
				// Closed at once: with what was sent unread, by a reset.
				bad.SetReadDeadline(time.Now().Add(patience))
				if n, err := bad.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("the connection of a sender not allowed: read %d, %v; want it closed", n, err)
				}
			}
			waitDropped(t, s, dropped+1)

			good, err := net.Dial(proto, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer good.Close()
			if _, err := good.Write([]byte(octets(withHost) + "\n")); err != nil {
				t.Fatal(err)
			}
			m := recv(t, msgs)
			if m.Host != "esa1.mapped.example" || m.Peer.Addr() != netip.MustParseAddr("127.0.0.1") || !strings.HasSuffix(m.Line, "queued for delivery") {
				t.Errorf("got %+v, want the line filed under esa1.mapped.example from 127.0.0.1", m)
			}
			if got := drain(msgs); len(got) != 0 {
				t.Errorf("a sender not allowed was heard: %+v", got)
			}
		})
	}
	// Two drops within a minute: one log line.
	if n := strings.Count(logged.String(), "sender not allowed"); n != 1 {
		t.Errorf("%d log lines of drops, want 1:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "peer=127.0.0.2:") {
		t.Errorf("the drop's log line does not name the sender:\n%s", logged.String())
	}
}

// A sender listed without a host name is trusted to name itself.
func TestSenderWithoutHost(t *testing.T) {
	s := &Server{Senders: []Sender{{Addr: netip.MustParseAddr("127.0.0.1")}}}
	msgs := startServer(t, s)
	c, err := net.Dial("udp", s.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(withHost)); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, msgs); m.Host != "esa1.example.com" {
		t.Errorf("Host %q, want the header's esa1.example.com", m.Host)
	}
}
