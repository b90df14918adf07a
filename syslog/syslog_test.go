package syslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// The tests run one after the other (none is parallel) and each waits for
// its Server to stop, so that TestServeShutdown can tell from the stacks
// that no goroutine of any Server is left.

const patience = 5 * time.Second // for what should take milliseconds

// Messages as an ESA sends them, with and without a host.
const (
	withHost    = "<166>Mar 17 18:24:37 esa1.example.com mail_logs: Info: MID 5 queued for delivery"
	withoutHost = "<166>Mar 17 18:24:37 mail_logs: Info: New SMTP ICID 7 interface Data 1"
)

func TestHostOf(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"3164 host", withHost, "esa1.example.com"},
		{"3164 Cisco without host", withoutHost, ""},
		{"3164 tag with pid", "<38>Mar 17 18:24:37 sshd[4242]: Accepted publickey", ""},
		{"3164 host and tag with pid", "<38>Mar 17 18:24:37 gw1 sshd[4242]: Accepted publickey", "gw1"},
		{"3164 space-padded day", "<166>Mar  7 08:04:05 esa2 mail_logs: Info: x", "esa2"},
		{"3164 space-padded day without host", "<166>Mar  7 08:04:05 mail_logs: Info: x", ""},
		{"3164 unpadded day", "<166>Mar 7 08:04:05 esa2 mail_logs: Info: x", "esa2"},
		{"3164 fraction of second", "<166>Mar 17 18:24:37.123 esa3 mail_logs: Info: x", "esa3"},
		{"3164 IPv4 host", "<13>Dec 31 23:59:59 192.0.2.7 app: hello", "192.0.2.7"},
		{"3164 IPv6 host", "<13>Dec 31 23:59:59 2001:db8::7 app: hello", "2001:db8::7"},
		{"3164 RFC 3339 timestamp", "<13>2024-03-17T18:24:37.123+01:00 esa4 mail_logs: Info: x", "esa4"},
		{"3164 nothing after the token", "<13>Mar 17 18:24:37 hello", ""},
		{"3164 no PRI", "Mar 17 18:24:37 esa5 mail_logs: Info: x", "esa5"},
		{"3164 no PRI without host", "Mar 17 18:24:37 mail_logs: Info: x", ""},
		{"syslog-ng file", "Jun 26 10:42:23 esa1.example.edu mail_logs: Info: MID 100 queued for delivery", "esa1.example.edu"},
		{"collector rewrap", "2019 Sep 28 16:13:51 ironport_server mail [info] splunk_maillogs:nopid Info: MID 6509657 DLP violation", "ironport_server"},
		{"collector rewrap without host", "2019 Sep 28 16:13:51 mail_logs: Info: x", ""},
		{"year without a timestamp", "2019 apples and pears", ""},
		{"local file line", "Wed Sep  6 13:13:16 2023 Info: MID 14 queued for delivery", ""},
		{"3164 bad month", "<13>Foo 17 18:24:37 esa6 app: x", ""},
		{"3164 bad time", "<13>Mar 17 18:24 esa6 app: x", ""},
		{"5424 host", "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] BOMAn application event", "mymachine.example.com"},
		{"5424 nil host", "<165>1 2003-10-11T22:14:15.003Z - evntslog - ID47 - msg", ""},
		{"5424 nil timestamp", "<165>1 - esa7 mail_logs - - - Info: x", "esa7"},
		{"5424 no PRI", "1 2003-10-11T22:14:15.003Z esa8 app - - - msg", "esa8"},
		{"5424 host only", "<165>1 2003-10-11T22:14:15.003Z esa9", "esa9"},
		{"1 but not 5424", "<13>1 apple a day", ""},
		{"malformed PRI", "<1x>Mar 17 18:24:37 esa1 app: x", ""},
		{"empty", "", ""},
		{"PRI only", "<13>", ""},
		{"garbage", "\x00\xff<<>> : [", ""},
		{"text", "hello world", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HostOf(tt.line); got != tt.want {
				t.Errorf("HostOf(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

// startServer listens on 127.0.0.1 with s's settings and serves until the
// test ends, then checks that Serve returns.
func startServer(t *testing.T, s *Server) <-chan Message {
	t.Helper()
	msgs := make(chan Message, 1024)
	s.Addr = "127.0.0.1:0"
	s.Handler = func(m Message) { msgs <- m }
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(patience):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return msgs
}

func recv(t *testing.T, msgs <-chan Message) Message {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(patience):
		t.Fatal("no message received")
		return Message{}
	}
}

// drain returns the messages received so far.
func drain(msgs <-chan Message) []Message {
	var got []Message
	for {
		select {
		case m := <-msgs:
			got = append(got, m)
		default:
			return got
		}
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return unmap(a.AddrPort())
	case *net.UDPAddr:
		return unmap(a.AddrPort())
	}
	return netip.AddrPort{}
}

// activeConns is the number of TCP connections being served.
func (s *Server) activeConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func waitConns(t *testing.T, s *Server, n int) {
	t.Helper()
	wait.Until(t, fmt.Sprintf("%d connections served", n), func() bool { return s.activeConns() == n })
}

func TestUDP(t *testing.T) {
	s := &Server{MaxMessage: 100}
	msgs := startServer(t, s)
	c, err := net.Dial("udp", s.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := addrPort(c.LocalAddr())
	long := "<13>" + strings.Repeat("x", 200)

	tests := []struct {
		name, send, line, host string
	}{
		{"bare", withHost, withHost, "esa1.example.com"},
		{"LF", withHost + "\n", withHost, "esa1.example.com"},
		{"CRLF", withoutHost + "\r\n", withoutHost, ""},
		{"NUL", withoutHost + "\x00", withoutHost, ""},
		{"LF inside kept", "<13>a\nb\n", "<13>a\nb", ""},
		{"truncated", long, long[:100], ""},
		{"truncated before trailers", long[:99] + "\r\n", long[:99], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Write([]byte(tt.send)); err != nil {
				t.Fatal(err)
			}
			m := recv(t, msgs)
			if m.Line != tt.line || m.Host != tt.host || m.Peer != peer {
				t.Errorf("got %+v, want Line %q Host %q Peer %v", m, tt.line, tt.host, peer)
			}
		})
	}

	t.Run("empty skipped", func(t *testing.T) {
		for _, empty := range []string{"", "\n", "\r\n\x00"} {
			if _, err := c.Write([]byte(empty)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Write([]byte(withHost)); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, msgs); m.Line != withHost {
			t.Errorf("got %q after empty datagrams, want %q", m.Line, withHost)
		}
	})
}

func octets(s string) string { return strconv.Itoa(len(s)) + " " + s }

// frameMax is the MaxMessage of the framing tests.
const frameMax = 100

var long = "<13>" + strings.Repeat("0123456789", 15) // longer than frameMax

// frameTests are run through the frame reader and through TCP.
var frameTests = []struct {
	name    string
	writes  []string // sent one after the other
	want    []string
	partial bool // the stream ends inside an octet-counted frame
}{
	{name: "octet counting", writes: []string{octets(withHost)}, want: []string{withHost}},
	{name: "octet counting two frames in one write", writes: []string{octets(withHost) + octets(withoutHost)}, want: []string{withHost, withoutHost}},
	{name: "octet counting LF inside", writes: []string{octets("<13>a\nb")}, want: []string{"<13>a\nb"}},
	{name: "octet counting trailer inside", writes: []string{octets(withHost + "\r\n")}, want: []string{withHost}},
	{name: "octet counting LF after frame", writes: []string{octets(withHost) + "\n" + octets(withoutHost) + "\n"}, want: []string{withHost, withoutHost}},
	{name: "LF", writes: []string{withHost + "\n" + withoutHost + "\n"}, want: []string{withHost, withoutHost}},
	{name: "CRLF", writes: []string{withHost + "\r\n" + withoutHost + "\r\n"}, want: []string{withHost, withoutHost}},
	{name: "NUL", writes: []string{withHost + "\x00" + withoutHost + "\x00"}, want: []string{withHost, withoutHost}},
	{name: "mixed framing", writes: []string{octets(withHost) + withoutHost + "\n" + octets("<13>x")}, want: []string{withHost, withoutHost, "<13>x"}},
	{name: "split across writes", writes: []string{
		octets(withHost)[:1], octets(withHost)[1:10], octets(withHost)[10:] + withoutHost[:20], withoutHost[20:], "\r", "\n",
	}, want: []string{withHost, withoutHost}},
	{name: "unterminated last message", writes: []string{withHost + "\n" + withoutHost}, want: []string{withHost, withoutHost}},
	{name: "empty frames skipped", writes: []string{"\n\r\n\x00" + withHost + "\n\n" + octets("\r\n")}, want: []string{withHost}},
	{name: "octet counting too long", writes: []string{octets(long) + octets(withHost)}, want: []string{long[:frameMax], withHost}},
	{name: "LF too long", writes: []string{long + "\n" + withHost + "\n"}, want: []string{long[:frameMax], withHost}},
	{name: "too long split", writes: []string{octets(long)[:50], octets(long)[50:], long[:70], long[70:] + "\n", withHost + "\n"}, want: []string{long[:frameMax], long[:frameMax], withHost}},
	{name: "digits not a count", writes: []string{"2024-03-17 18:24:37 esa1 x\n" + withHost + "\n"}, want: []string{"2024-03-17 18:24:37 esa1 x", withHost}},
	{name: "count 0", writes: []string{"0 x\n" + octets(withHost)}, want: []string{"0 x", withHost}},
	{name: "count too many digits", writes: []string{"12345678901 x\n"}, want: []string{"12345678901 x"}},
	{name: "count beyond frame limit", writes: []string{"300000 x\n" + withHost + "\n"}, want: []string{"300000 x", withHost}},
	{name: "digits then LF", writes: []string{"12\n" + withHost + "\n"}, want: []string{"12", withHost}},
	{name: "digits at end", writes: []string{withHost + "\n42"}, want: []string{withHost, "42"}},
	{name: "end inside octet-counted frame", writes: []string{octets(withHost) + "50 <13>short"}, want: []string{withHost}, partial: true},
	{name: "end inside octet count", writes: []string{octets(withHost) + "50"}, want: []string{withHost, "50"}},
}

// readAll reads every message of r, checking what each must be.
func readAll(t *testing.T, r io.Reader, maxMsg, inputLen int) ([]string, error) {
	t.Helper()
	fr := newFrameReader(r, maxMsg)
	var got []string
	for {
		msg, err := fr.next()
		if err != nil {
			return got, err
		}
		switch {
		case len(msg) == 0:
			t.Fatalf("empty message")
		case len(msg) > maxMsg:
			t.Fatalf("message of %d bytes, max %d", len(msg), maxMsg)
		case len(trimTrailers(msg)) != len(msg):
			t.Fatalf("message %q ends with a trailer", msg)
		}
		got = append(got, string(msg))
		// Each message takes at least one byte of input.
		if len(got) > inputLen {
			t.Fatalf("%d messages from %d bytes", len(got), inputLen)
		}
	}
}

func TestFrameReader(t *testing.T) {
	for _, tt := range frameTests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Join(tt.writes, "")
			wantErr := io.EOF
			if tt.partial {
				wantErr = errPartialFrame
			}
			for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
				got, err := readAll(t, r, frameMax, len(in))
				if err != wantErr {
					t.Errorf("error %v, want %v", err, wantErr)
				}
				if !equal(got, tt.want) {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			}
		})
	}

	// A frame cut by a failed read (a reset, an idle timeout) is dropped.
	t.Run("read error", func(t *testing.T) {
		errRead := errors.New("read failed")
		for _, in := range []string{withHost + "\n<13>cut", withHost + "\n50 <13>cut", withHost + "\n50"} {
			r := io.MultiReader(strings.NewReader(in), iotest.ErrReader(errRead))
			got, err := readAll(t, r, frameMax, len(in))
			if err != errRead || !equal(got, []string{withHost}) {
				t.Errorf("%q: got %q, %v; want %q, %v", in, got, err, withHost, errRead)
			}
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func dialTCP(t *testing.T, s *Server) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", s.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// waitEOF reads c until the server closes it.
func waitEOF(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(patience)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, c); err != nil || n != 0 {
		t.Fatalf("waiting for the server to close: read %d bytes, %v", n, err)
	}
}

func TestTCP(t *testing.T) {
	s := &Server{MaxMessage: frameMax}
	msgs := startServer(t, s)
	for _, tt := range frameTests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialTCP(t, s)
			for _, w := range tt.writes {
				if _, err := c.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
				// Read by the server before the next part is sent: it
				// arrives in parts.
				smtptest.WaitPeerRead(t, c)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			// The server closes after its last Handler call for c.
			waitEOF(t, c)
			peer := addrPort(c.LocalAddr())
			var got []string
			for _, m := range drain(msgs) {
				got = append(got, m.Line)
				if m.Peer != peer {
					t.Errorf("Peer %v, want %v", m.Peer, peer)
				}
				wantHost := HostOf(m.Line)
				switch m.Line {
				case withHost:
					wantHost = "esa1.example.com"
				case withoutHost:
					wantHost = ""
				}
				if m.Host != wantHost {
					t.Errorf("Host %q of %q, want %q", m.Host, m.Line, wantHost)
				}
			}
			if !equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTCPReset(t *testing.T) {
	s := &Server{}
	msgs := startServer(t, s)
	good := dialTCP(t, s)
	bad := dialTCP(t, s)
	badPeer := addrPort(bad.LocalAddr())
	if _, err := bad.Write([]byte("80 " + withHost[:40])); err != nil {
		t.Fatal(err)
	}
	if _, err := good.Write([]byte(octets(withHost))); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, msgs); m.Line != withHost {
		t.Fatalf("got %q, want %q", m.Line, withHost)
	}
	waitConns(t, s, 2)
	smtptest.WaitPeerRead(t, bad) // the server holds the partial frame
	if err := bad.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	bad.Close() // sends RST
	waitConns(t, s, 1)

	if _, err := good.Write([]byte(withoutHost + "\n")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, msgs); m.Line != withoutHost {
		t.Fatalf("after the reset: got %q, want %q", m.Line, withoutHost)
	}
	other := dialTCP(t, s)
	if _, err := other.Write([]byte(withHost + "\n")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, msgs); m.Line != withHost || m.Peer == badPeer {
		t.Fatalf("new connection after the reset: got %+v", m)
	}
	if rest := drain(msgs); len(rest) > 0 {
		t.Errorf("unexpected messages %+v", rest)
	}
}

func TestMaxConns(t *testing.T) {
	s := &Server{MaxConns: 1}
	msgs := startServer(t, s)
	first := dialTCP(t, s)
	if _, err := first.Write([]byte(withHost + "\n")); err != nil {
		t.Fatal(err)
	}
	recv(t, msgs)

	over := dialTCP(t, s)
	waitEOF(t, over)

	if _, err := first.Write([]byte(withoutHost + "\n")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, msgs); m.Line != withoutHost {
		t.Fatalf("got %q, want %q", m.Line, withoutHost)
	}
	first.Close()
	waitConns(t, s, 0)
	again := dialTCP(t, s)
	if _, err := again.Write([]byte(withHost + "\n")); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, msgs); m.Line != withHost {
		t.Fatalf("after the first closed: got %q, want %q", m.Line, withHost)
	}
}

func TestIdleTimeout(t *testing.T) {
	// Generous, so that a loaded machine does not make a gap look idle.
	const idle = 500 * time.Millisecond
	s := &Server{IdleTimeout: idle}
	msgs := startServer(t, s)
	c := dialTCP(t, s)
	start := time.Now()
	// Talking with gaps shorter than idle, for longer than idle: the
	// deadline is renewed on every read.
	for i := range 8 {
		if _, err := fmt.Fprintf(c, "<13>msg %d\n", i); err != nil {
			t.Fatal(err)
		}
		recv(t, msgs)
		time.Sleep(idle / 5) // a gap in the talk: the test's subject
	}
	talked := time.Since(start)
	waitEOF(t, c)
	if d := time.Since(start); d < talked+idle/2 {
		t.Errorf("closed %v after the start, talked for %v: before the connection was idle", d, talked)
	}
}

func TestLogger(t *testing.T) {
	path, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("no logger command:", err)
	}
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{}
	msgs := startServer(t, s)
	const text = "Info: MID 5 queued for delivery"
	for _, proto := range []string{"--udp", "--tcp"} {
		for _, format := range []string{"--rfc3164", "--rfc5424"} {
			t.Run(proto+format, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				cmd := exec.CommandContext(ctx, path, "--server", "127.0.0.1", "--port", strconv.Itoa(int(s.LocalAddr().Port())),
					proto, format, "-t", "mail_logs", text)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%v: %v\n%s", cmd, err, out)
				}
				m := recv(t, msgs)
				if !strings.HasSuffix(m.Line, text) || !strings.Contains(m.Line, "mail_logs") {
					t.Errorf("Line %q", m.Line)
				}
				// logger may send the name qualified or not.
				short, _, _ := strings.Cut(hostname, ".")
				if h, _, _ := strings.Cut(m.Host, "."); h != short {
					t.Errorf("Host %q of %q, want %q", m.Host, m.Line, hostname)
				}
				if m.Peer.Addr() != netip.MustParseAddr("127.0.0.1") {
					t.Errorf("Peer %v", m.Peer)
				}
			})
		}
	}
}

// serverGoroutines returns the stacks of goroutines running Server code.
// A goroutine that has called wg.Done is over for the Server but may still
// be on its way out for the runtime, so it is given a moment to go.
func serverGoroutines() string {
	deadline := time.Now().Add(time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var found []string
		for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("syslog.(*Server)")) {
				found = append(found, string(g))
			}
		}
		if len(found) == 0 || time.Now().After(deadline) {
			return strings.Join(found, "\n\n")
		}
		time.Sleep(time.Millisecond) // a poll: nothing marks a goroutine's exit
	}
}

func TestServeShutdown(t *testing.T) {
	if g := serverGoroutines(); g != "" {
		t.Fatalf("Server goroutines before the test:\n%s", g)
	}
	msgs := make(chan Message, 16)
	s := &Server{Addr: "127.0.0.1:0", Handler: func(m Message) { msgs <- m }}
	// Serve listens by itself.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	wait.Until(t, "Serve listens", func() bool { return s.LocalAddr().IsValid() })

	idle := dialTCP(t, s)
	midFrame := dialTCP(t, s)
	if _, err := midFrame.Write([]byte("80 " + withHost[:40])); err != nil {
		t.Fatal(err)
	}
	talking := dialTCP(t, s)
	if _, err := talking.Write([]byte(withHost + "\n")); err != nil {
		t.Fatal(err)
	}
	recv(t, msgs)
	waitConns(t, s, 3)

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("Serve did not return after cancel")
	}
	if g := serverGoroutines(); g != "" {
		t.Errorf("Server goroutines after Serve returned:\n%s", g)
	}
	// A connection with data the server had not read yet is reset
	// rather than closed: either will do.
	for _, c := range []net.Conn{idle, midFrame, talking} {
		if err := c.SetReadDeadline(time.Now().Add(patience)); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("after Serve returned, read %d bytes, %v; want the connection closed", n, err)
		}
	}
	if c, err := net.Dial("tcp", s.LocalAddr().String()); err == nil {
		c.Close()
		t.Error("still accepting connections")
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("Serve ran twice")
	}
}

func TestListenErrors(t *testing.T) {
	tcpTaken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcpTaken.Close()
	udpTaken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udpTaken.Close()
	handler := func(Message) {}

	tests := []struct {
		name    string
		s       *Server
		prefix  string
		errIs   error
		twiceOK bool
	}{
		{name: "nil Handler", s: &Server{Addr: "127.0.0.1:0"}, prefix: "syslog: Server.Handler is nil"},
		{name: "bad address", s: &Server{Addr: "127.0.0.1", Handler: handler}, prefix: "syslog: listen 127.0.0.1: "},
		{name: "TCP port taken", s: &Server{Addr: tcpTaken.Addr().String(), Handler: handler}, prefix: "syslog: listen tcp ", errIs: syscall.EADDRINUSE},
		// Its TCP port is most likely free, so UDP fails.
		{name: "UDP port taken", s: &Server{Addr: udpTaken.LocalAddr().String(), Handler: handler}, prefix: "syslog: listen ", errIs: syscall.EADDRINUSE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Listen()
			if err == nil || !strings.HasPrefix(err.Error(), tt.prefix) || (tt.errIs != nil && !errors.Is(err, tt.errIs)) {
				t.Errorf("Listen: %v, want %q... (%v)", err, tt.prefix, tt.errIs)
			}
			if err := tt.s.Serve(context.Background()); err == nil {
				t.Errorf("Serve after a failed Listen: nil error")
			}
		})
	}

	t.Run("twice", func(t *testing.T) {
		s := &Server{Addr: "127.0.0.1:0", Handler: handler}
		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}
		if err := s.Listen(); err == nil {
			t.Error("second Listen: nil error")
		}
		// Serve closes the sockets it was given.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Serve(ctx); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// FuzzFrames feeds arbitrary bytes to the TCP framer: it must not panic,
// nor return a message longer than the maximum, empty or with a trailer,
// and must split the stream the same however it arrives.
func FuzzFrames(f *testing.F) {
	for _, tt := range frameTests {
		f.Add([]byte(strings.Join(tt.writes, "")), uint8(frameMax-1), uint8(3))
	}
	f.Add([]byte("5 abcde5 abcde\n\n\r\x00"), uint8(2), uint8(1))
	f.Add([]byte("999999999 x"), uint8(0), uint8(7))
	f.Add([]byte("200000 "+strings.Repeat("y", 300)), uint8(255), uint8(200))
	f.Fuzz(func(t *testing.T, data []byte, maxMsg, chunk uint8) {
		m := int(maxMsg) + 1
		whole, wholeErr := readAll(t, bytes.NewReader(data), m, len(data))
		parts, partsErr := readAll(t, &chunkReader{data, int(chunk%16) + 1}, m, len(data))
		if wholeErr != io.EOF && wholeErr != errPartialFrame {
			t.Fatalf("error %v", wholeErr)
		}
		if partsErr != wholeErr || !equal(parts, whole) {
			t.Fatalf("in chunks of %d: %q, %v; whole: %q, %v", int(chunk%16)+1, parts, partsErr, whole, wholeErr)
		}
	})
}
