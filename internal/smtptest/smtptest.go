// Package smtptest holds what mailgate's tests use to talk to real things
// on loopback: a raw line-level SMTP client that can misbehave on purpose
// (reset, half-close, pipeline anything), a DNS server answering from a
// zone, a certificate authority for TLS, and an event sink to wait on for
// the mail log's lines.
package smtptest

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// Conn is a raw SMTP client: it writes exactly what it is told and reads
// replies whole, so a test can pipeline, send garbage, reset or go silent.
type Conn struct {
	T testing.TB
	C net.Conn
	R *bufio.Reader
}

// Dial connects to addr from the loopback address from ("" for the
// kernel's choice), with a deadline of 30 seconds for the whole exchange.
func Dial(t testing.TB, addr, from string) *Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return New(t, c)
}

// New wraps an open connection.
func New(t testing.TB, c net.Conn) *Conn {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &Conn{T: t, C: c, R: bufio.NewReader(c)}
}

// Send writes s as it is.
func (c *Conn) Send(s string) {
	c.T.Helper()
	if _, err := c.C.Write([]byte(s)); err != nil {
		c.T.Fatalf("write %q: %v", s, err)
	}
}

// Reply reads one reply, its lines joined by "\n".
func (c *Conn) Reply() string {
	c.T.Helper()
	var lines []string
	for {
		l, err := c.R.ReadString('\n')
		if err != nil {
			c.T.Fatalf("read reply (after %q): %v", lines, err)
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// Expect reads a reply and fails the test unless it begins with prefix.
func (c *Conn) Expect(prefix string) string {
	c.T.Helper()
	r := c.Reply()
	if !strings.HasPrefix(r, prefix) {
		c.T.Fatalf("reply %q, want %q...", r, prefix)
	}
	return r
}

// Cmd sends one command line and expects a reply beginning with prefix.
func (c *Conn) Cmd(line, prefix string) string {
	c.T.Helper()
	c.Send(line + "\r\n")
	return c.Expect(prefix)
}

// Reset closes with an RST (SO_LINGER 0), as a firewall cutting the
// connection looks to the other side.
func (c *Conn) Reset() {
	if tc, ok := c.C.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.C.Close()
}

// StartTLS runs the client side of the handshake after the server's 220,
// trusting any certificate.
func (c *Conn) StartTLS() {
	c.T.Helper()
	tc := tls.Client(c.C, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.T.Fatal(err)
	}
	c.C, c.R = tc, bufio.NewReader(tc)
}
