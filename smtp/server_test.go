package smtp

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// recorder is a Handler that accepts everything and remembers what it saw.
type recorder struct {
	mu       sync.Mutex
	calls    []string
	messages [][]byte
	failed   []error
	rcptFail map[string]Reply
	mailFail Reply
	dataResp Reply
}

func (r *recorder) log(f string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(f, a...))
}

func (r *recorder) Hello(verb, domain string) Reply { r.log("%s %s", verb, domain); return Reply{} }
func (r *recorder) Mail(from Path, p MailParams) Reply {
	r.log("mail %s size=%d body=%s utf8=%v", from, p.Size, p.Body, p.SMTPUTF8)
	return r.mailFail
}
func (r *recorder) Rcpt(to Path) Reply {
	r.log("rcpt %s", to)
	return r.rcptFail[to.String()]
}
func (r *recorder) Data(body io.Reader) Reply {
	msg, err := io.ReadAll(body)
	if err != nil {
		return Reply{} // the engine refuses it
	}
	r.mu.Lock()
	r.messages = append(r.messages, append([]byte(nil), msg...))
	r.mu.Unlock()
	r.log("data %d", len(msg))
	return r.dataResp
}
func (r *recorder) DataFailed(err error) {
	r.mu.Lock()
	r.failed = append(r.failed, err)
	r.mu.Unlock()
	r.log("datafailed %v", err)
}
func (r *recorder) Reset()                                     { r.log("reset") }
func (r *recorder) TLS(cs tls.ConnectionState)                 { r.log("tls %s", tls.VersionName(cs.Version)) }
func (r *recorder) BadCommand(k BadKind, line string, _ Reply) { r.log("bad %s %s", k, line) }
func (r *recorder) PlaintextDiscarded(n int)                   { r.log("discarded %d", n) }

func (r *recorder) saw(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c == s {
			return true
		}
	}
	return false
}

// serve starts one session on a loopback listener and returns the client's
// connection and a channel with the session's end.
func serve(t *testing.T, h Handler, cfg Config) (net.Conn, <-chan End) {
	t.Helper()
	return serveCtx(t, context.Background(), h, cfg, nil)
}

func serveCtx(t *testing.T, ctx context.Context, h Handler, cfg Config, sess chan<- *Session) (net.Conn, <-chan End) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if cfg.Hostname == "" {
		cfg.Hostname = "mx.test"
	}
	if cfg.BadCommandLimit == 0 {
		cfg.BadCommandLimit = 4
	}
	ends := make(chan End, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s := NewSession(c, h, cfg)
		if sess != nil {
			sess <- s
		}
		ends <- s.Serve(ctx)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ends
}

func newClient(t *testing.T, c net.Conn) *smtptest.Conn { return smtptest.New(t, c) }

func waitEnd(t *testing.T, ends <-chan End) End {
	t.Helper()
	select {
	case e := <-ends:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
	return End{}
}

func counts(e End) string {
	var b strings.Builder
	for _, c := range e.Commands {
		fmt.Fprintf(&b, "%s=%d/%d ", c.Verb, c.OK, c.Total)
	}
	return strings.TrimSpace(b.String())
}

func TestSessionSuccess(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{MaxMessageSize: 1000})
	c := newClient(t, conn)
	c.Expect("220 mx.test ESMTP")
	ehlo := c.Cmd("EHLO client.test", "250-mx.test")
	for _, ext := range []string{"PIPELINING", "SIZE 1000", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO reply lacks %s:\n%s", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("STARTTLS offered without a TLS config")
	}
	c.Cmd("MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME", "250 2.1.0")
	c.Cmd("RCPT TO:<b@example.com>", "250 2.1.5")
	c.Cmd("DATA", "354")
	c.Send("Subject: hi\r\n\r\n..dotted\r\nbody\r\n.\r\n")
	c.Expect("250 2.0.0")
	c.Cmd("QUIT", "221 2.0.0")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseQuit || e.State != StateHelo || e.Injected != 1 {
		t.Errorf("end %+v", e)
	}
	if got, want := counts(e), "ehlo=1/1 mail=1/1 rcpt=1/1 data=1/1 quit=1/1"; got != want {
		t.Errorf("counts %q, want %q", got, want)
	}
	if got, want := string(h.messages[0]), "Subject: hi\r\n\r\n.dotted\r\nbody\r\n"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if !h.saw("mail a@example.org size=100 body=8BITMIME utf8=false") {
		t.Errorf("calls %q", h.calls)
	}
}

func TestPipelinedTransaction(t *testing.T) {
	h := &recorder{rcptFail: map[string]Reply{"no@example.com": {550, "5.1.1", "no such user"}}}
	conn, ends := serve(t, h, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Send("MAIL FROM:<a@example.org>\r\nRCPT TO:<no@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	c.Expect("250 2.1.0")
	c.Expect("550 5.1.1 no such user")
	c.Expect("250 2.1.5")
	c.Expect("354")
	c.Send("x\r\n.\r\nQUIT\r\n")
	c.Expect("250")
	c.Expect("221")
	e := waitEnd(t, ends)
	if got, want := counts(e), "ehlo=1/1 mail=1/1 rcpt=1/2 data=1/1 quit=1/1"; got != want {
		t.Errorf("counts %q, want %q", got, want)
	}
}

// An ESA-style HELO session writes enhanced codes with '#' on failures
// and none on successes.
func TestReplyFormsWithoutEHLO(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("HELO client.test", "250 mx.test")
	c.Cmd("XYZZY", "500 #5.5.1 command not recognized")
	c.Cmd("MAIL FROM:<a@example.org>", "250 sender <a@example.org> ok")
	c.Cmd("MAIL FROM:<a@example.org> SIZE=10", "503 #5.5.1")
	c.Cmd("QUIT", "221 ")
	waitEnd(t, ends)
}

func TestBadCommandLimit(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{BadCommandLimit: 4})
	c := newClient(t, conn)
	c.Expect("220")
	for i := 0; i < 4; i++ {
		c.Cmd(fmt.Sprintf("GARBAGE %d", i), "500 #5.5.1 command not recognized")
	}
	c.Cmd("GARBAGE 4", "421 Exceeded bad SMTP command limit, disconnecting.")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseBadCommands || e.LastVerb != "GARBAGE" {
		t.Errorf("end %+v", e)
	}
	if got, want := counts(e), "unknown=0/5"; got != want {
		t.Errorf("counts %q, want %q", got, want)
	}
}

func TestCommandLineTooLong(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO "+strings.Repeat("a", 600), "500 #5.5.2 Line too long")
	c.Cmd("NOOP "+strings.Repeat("b", 9000), "500 #5.5.2 Line too long")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("NOOP "+strings.Repeat("b", 600), "500 5.5.2 Line too long")
	c.Cmd("EHLO client.test", "250") // still in step
	c.Cmd("QUIT", "221")
	waitEnd(t, ends)
}

func TestSequenceErrors(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{BadCommandLimit: 20})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("MAIL FROM:<a@example.org>", "503 #5.5.1 EHLO or HELO first")
	c.Cmd("EHLO", "501 #5.5.4")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("RCPT TO:<b@example.com>", "503 5.5.1 MAIL first")
	c.Cmd("DATA", "503 5.5.1 MAIL first")
	c.Cmd("MAIL FROM:a@example.org", "501 5.5.4")
	c.Cmd("MAIL FROM:<a@@example.org>", "501 5.1.7")
	c.Cmd("MAIL FROM:<a@example.org> FOO=BAR", "555 5.5.4")
	c.Cmd("MAIL FROM:<jö@example.org>", "553 5.6.7")
	c.Cmd("MAIL FROM:<jö@exämple.org> SMTPUTF8", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "503 5.5.1 Nested MAIL")
	c.Cmd("DATA", "554 5.5.1 No valid recipients")
	c.Cmd("RCPT TO:<>", "501 5.1.3")
	c.Cmd("RCPT TO:<postmaster>", "250")
	c.Cmd("RSET", "250")
	c.Cmd("VRFY someone", "252")
	c.Cmd("EXPN list", "502")
	c.Cmd("HELP", "214-2.0.0")
	c.Cmd("NOOP", "250")
	c.Cmd("QUIT", "221")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseQuit {
		t.Errorf("end %+v", e)
	}
}

func TestSizeLimit(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{MaxMessageSize: 100})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org> SIZE=101", "552 5.3.4")
	c.Cmd("MAIL FROM:<a@example.org> SIZE=50", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send(strings.Repeat("0123456789\r\n", 20) + ".\r\n")
	c.Expect("552 5.3.4 Message size exceeds limit")
	// The dialogue stays in step: a new transaction works.
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("small\r\n.\r\n")
	c.Expect("250")
	c.Cmd("QUIT", "221")
	waitEnd(t, ends)
	if len(h.failed) != 1 || h.failed[0] != ErrMessageTooBig || len(h.messages) != 1 {
		t.Errorf("failed %v messages %d", h.failed, len(h.messages))
	}
}

// SMTP smuggling: every way of ending a message other than CRLF.CRLF must
// leave the message open and be refused at the real end; nothing after the
// fake end may run as a command.
func TestDataSmuggling(t *testing.T) {
	cases := []struct {
		name, data string
		want       error
	}{
		{"LF.LF", "a\r\n\n.\nMAIL FROM:<evil@x.org>\r\n", ErrBareLineEnding},
		{"LF.CRLF", "a\n.\r\nMAIL FROM:<evil@x.org>\r\n", ErrBareLineEnding},
		{"CRLF.LF", "a\r\n.\nMAIL FROM:<evil@x.org>\r\n", ErrBareLineEnding},
		{"CR.CR", "a\r.\rMAIL FROM:<evil@x.org>\r\n", ErrBareLineEnding},
		{"CR.CRLF", "a\r.\r\nMAIL FROM:<evil@x.org>\r\n", ErrBareLineEnding},
		{"bare CR in line", "a\rb\r\n", ErrBareLineEnding},
		{"long line", strings.Repeat("x", 1200) + "\r\n", ErrLineTooLong},
		{"very long line", strings.Repeat("y", 10000) + "\r\n", ErrLineTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &recorder{}
			conn, ends := serve(t, h, Config{})
			c := newClient(t, conn)
			c.Expect("220")
			c.Cmd("EHLO c.test", "250")
			c.Cmd("MAIL FROM:<a@example.org>", "250")
			c.Cmd("RCPT TO:<b@example.com>", "250")
			c.Cmd("DATA", "354")
			c.Send(tc.data + "\r\n.\r\n")
			c.Expect("550 5.6.0")
			c.Cmd("QUIT", "221")
			waitEnd(t, ends)
			if h.saw("mail evil@x.org size=0 body= utf8=false") {
				t.Error("smuggled MAIL FROM ran as a command")
			}
			if len(h.messages) != 0 || len(h.failed) != 1 || h.failed[0] != tc.want {
				t.Errorf("messages %d failed %v, want %v", len(h.messages), h.failed, tc.want)
			}
		})
	}
}

// A CRLF split by the read buffer must still count as CRLF, so that the
// end-of-data line after a long line is found.
// dataReaderSize is the size of the buffer the DATA phase reads through:
// a line longer than it arrives in chunks.
func dataReaderSize() int {
	r := dataReaderPool.Get().(*bufio.Reader)
	defer dataReaderPool.Put(r)
	return r.Size()
}

// TestDataCRLFAcrossBuffer: a line that fills the DATA buffer up to its
// CR has its LF in the next chunk. The line still ends with CRLF, so the
// "." line after it ends the message (refused for the long line); were
// the CR forgotten, the "." line would follow a bare LF, and the session
// would wait for more message text. A bufio.Reader moves a partial line
// to the front of its buffer before reading more, so only a line longer
// than the buffer is ever cut in two: no legal line can reach this.
func TestDataCRLFAcrossBuffer(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	// size-1 bytes and the CR fill the buffer; the LF starts the next chunk.
	c.Send(strings.Repeat("z", dataReaderSize()-1) + "\r\n.\r\n")
	c.C.SetReadDeadline(time.Now().Add(10 * time.Second))
	c.Expect("550 5.6.0 Message contains a line longer")
	c.Cmd("QUIT", "221")
	waitEnd(t, ends)
}

func TestEarlyTalker(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	conn, _ := net.Dial("tcp", ln.Addr().String())
	defer conn.Close()
	conn.Write([]byte("EHLO eager.test\r\n"))
	s, _ := ln.Accept()
	smtptest.WaitReadable(t, s) // the EHLO has arrived before the greeting
	ends := make(chan End, 1)
	go func() { ends <- NewSession(s, &recorder{}, Config{Hostname: "mx.test"}).Serve(context.Background()) }()
	c := newClient(t, conn)
	c.Expect("554 #5.5.0 SMTP synchronization error")
	if e := waitEnd(t, ends); e.Cause != event.CauseProtocol {
		t.Errorf("end %+v", e)
	}
}

func TestRejectedSession(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{Greeting: Reply{554, "", "mx.test Access denied"}})
	c := newClient(t, conn)
	c.Expect("554 mx.test Access denied")
	c.Cmd("EHLO c.test", "503 #5.5.1")
	c.Cmd("MAIL FROM:<a@example.org>", "503")
	c.Cmd("QUIT", "221")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseQuit {
		t.Errorf("end %+v", e)
	}
}

func TestGreeting421(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{Greeting: Reply{421, "4.4.5", "Too many connections from your host"}})
	c := newClient(t, conn)
	c.Expect("421 #4.4.5 Too many connections from your host")
	if e := waitEnd(t, ends); e.Cause != event.CausePolicy {
		t.Errorf("end %+v", e)
	}
}

func TestHandler421ClosesWithPolicy(t *testing.T) {
	h := &recorder{mailFail: Reply{421, "4.3.2", "Too many messages for this session"}}
	conn, ends := serve(t, h, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "421 4.3.2 Too many messages")
	e := waitEnd(t, ends)
	if e.Cause != event.CausePolicy || e.Detail != "Too many messages for this session" {
		t.Errorf("end %+v", e)
	}
}

// The ways a peer leaves: each must give its own cause and the state.
func TestPeerEnds(t *testing.T) {
	cases := []struct {
		name      string
		script    string // sent after EHLO
		rst       bool
		wantCause event.Cause
		wantState State
		wantBytes int64
	}{
		{"FIN after RCPT", "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n", false, event.CausePeerClosed, StateRcpt, 0},
		{"RST after RCPT", "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n", true, event.CausePeerReset, StateRcpt, 0},
		{"RST in DATA", "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n", true, event.CausePeerReset, StateData, 12},
		{"FIN in DATA", "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n", false, event.CausePeerClosed, StateData, 12},
		{"FIN idle", "", false, event.CausePeerClosed, StateHelo, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			read := make(chan struct{}) // the session has read the DATA line
			cfg := Config{Transcript: func(sent bool, line []byte) {
				if !sent && string(line) == "Subject: x" {
					close(read)
				}
			}}
			conn, ends := serve(t, &recorder{}, cfg)
			c := newClient(t, conn)
			c.Expect("220")
			c.Cmd("EHLO c.test", "250")
			c.Send(tc.script)
			for range strings.Count(tc.script, "\r\n") {
				c.Reply()
			}
			if tc.wantState == StateData {
				c.Send("Subject: x\r\n") // 12 bytes of DATA, then gone
				// Read before the RST, which would discard them unread.
				select {
				case <-read:
				case <-time.After(smtptest.WaitTimeout):
					t.Fatal("the session did not read the DATA line")
				}
			}
			if tc.rst {
				conn.(*net.TCPConn).SetLinger(0)
			}
			conn.Close()
			e := waitEnd(t, ends)
			if e.Cause != tc.wantCause || e.State != tc.wantState || e.DataBytes != tc.wantBytes {
				t.Errorf("end cause %s state %s bytes %d, want %s %s %d", e.Cause, e.State, e.DataBytes, tc.wantCause, tc.wantState, tc.wantBytes)
			}
		})
	}
}

func TestQuitMidTransaction(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("QUIT", "221")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseQuit || e.State != StateRcpt {
		t.Errorf("end %+v", e)
	}
}

func TestUnsuccessfulTimeout(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{UnsuccessfulTimeout: 300 * time.Millisecond, TotalTimeout: time.Hour})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Expect("421 Timed out waiting for successful message injection, disconnecting.")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseTimeoutUnsuccessful || e.State != StateRcpt {
		t.Errorf("end %+v", e)
	}
}

// After a message is injected the unsuccessful timeout no longer applies;
// the total limit does, at 80% between commands.
func TestTotalTimeout(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{UnsuccessfulTimeout: 200 * time.Millisecond, TotalTimeout: 800 * time.Millisecond})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("x\r\n.\r\n")
	c.Expect("250")
	start := time.Now()
	c.Expect("421 Exceeded allowable connection time, disconnecting.")
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("total limit fired after %v, before the unsuccessful timeout would have", time.Since(start))
	}
	e := waitEnd(t, ends)
	if e.Cause != event.CauseTimeoutTotal || e.Injected != 1 {
		t.Errorf("end %+v", e)
	}
}

func TestTimeoutInData(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{UnsuccessfulTimeout: 300 * time.Millisecond})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("partial line")
	c.Expect("421 Timed out waiting")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseTimeoutUnsuccessful || e.State != StateData || e.DataBytes != 12 {
		t.Errorf("end %+v", e)
	}
}

func TestDrainAndKill(t *testing.T) {
	// Idle session: closed at once on drain.
	ctx, cancel := context.WithCancel(context.Background())
	conn, ends := serveCtx(t, ctx, &recorder{}, Config{}, nil)
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	cancel()
	c.Expect("421 4.3.2 mx.test Service not available")
	if e := waitEnd(t, ends); e.Cause != event.CauseShutdown {
		t.Errorf("end %+v", e)
	}

	// In a transaction: the message may finish, then 421.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	h := &recorder{}
	sessions := make(chan *Session, 1)
	conn, ends = serveCtx(t, ctx, h, Config{}, sessions)
	s := <-sessions
	c = newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	cancel()
	// The session, waiting for RCPT, has seen the cancel.
	wait.Until(t, "the session drains", s.draining.Load)
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("x\r\n.\r\n")
	c.Expect("250")
	c.Expect("421 4.3.2")
	if e := waitEnd(t, ends); e.Cause != event.CauseShutdown || len(h.messages) != 1 {
		t.Errorf("end %+v messages %d", e, len(h.messages))
	}

	// Kill stops even a transaction.
	conn, ends = serveCtx(t, context.Background(), &recorder{}, Config{}, sessions)
	c = newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	(<-sessions).Kill()
	c.Expect("421 4.3.2")
	if e := waitEnd(t, ends); e.Cause != event.CauseShutdown || e.State != StateMail {
		t.Errorf("end %+v", e)
	}
}

func selfSigned(t testing.TB) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"},
		DNSNames: []string{"mx.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// Commands pipelined after STARTTLS were sent in clear text: they must be
// discarded, not run inside the TLS session (CVE-2011-0411).
func TestStartTLSDiscardsPipelinedPlaintext(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{TLS: selfSigned(t)})
	c := newClient(t, conn)
	c.Expect("220")
	if !strings.Contains(c.Cmd("EHLO c.test", "250"), "STARTTLS") {
		t.Fatal("STARTTLS not offered")
	}
	c.Send("STARTTLS\r\nMAIL FROM:<injected@evil.org>\r\n")
	c.Expect("220 2.0.0")
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = smtptest.New(t, tc)
	ehlo := c.Cmd("EHLO c.test", "250")
	if strings.Contains(ehlo, "STARTTLS") {
		t.Error("STARTTLS offered again inside TLS")
	}
	c.Cmd("MAIL FROM:<a@example.org>", "250") // not "nested MAIL": the injected one was dropped
	c.Cmd("QUIT", "221")
	waitEnd(t, ends)
	if h.saw("mail injected@evil.org size=0 body= utf8=false") {
		t.Error("plaintext command pipelined after STARTTLS was executed")
	}
	if !h.saw("tls TLS 1.3") || !h.saw("discarded 31") {
		t.Errorf("calls %q", h.calls)
	}
}

func TestRequireTLS(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{TLS: selfSigned(t), RequireTLS: true})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "530 5.7.0")
	c.Cmd("QUIT", "221")
	waitEnd(t, ends)
}

func TestTLSHandshakeFailure(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{TLS: selfSigned(t)})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("STARTTLS", "220")
	c.Send("this is not a TLS client hello\r\n")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseTLSFailed {
		t.Errorf("end %+v", e)
	}
}

func TestTranscript(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	cfg := Config{Transcript: func(sent bool, l []byte) {
		mu.Lock()
		defer mu.Unlock()
		dir := "Rcvd"
		if sent {
			dir = "Sent"
		}
		lines = append(lines, dir+": "+string(l))
	}}
	conn, ends := serve(t, &recorder{}, cfg)
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("HELO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("line\r\n.\r\n")
	c.Expect("250")
	c.Cmd("QUIT", "221")
	waitEnd(t, ends)
	want := []string{"Sent: 220 mx.test ESMTP", "Rcvd: HELO c.test", "Sent: 250 mx.test",
		"Rcvd: MAIL FROM:<a@example.org>", "Sent: 250 sender <a@example.org> ok",
		"Rcvd: RCPT TO:<b@example.com>", "Sent: 250 recipient <b@example.com> ok",
		"Rcvd: DATA", "Sent: 354 go ahead", "Rcvd: line", "Rcvd: .", "Sent: 250 Ok: message accepted",
		"Rcvd: QUIT", "Sent: 221 mx.test closing connection"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// Garbage pipelined among valid commands: each bad line gets its own 500,
// the valid ones still run in order, and the dialogue stays in step.
func TestPipelinedGarbage(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{BadCommandLimit: 10})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Send("MAIL FROM:<a@example.org>\r\n\x00\xff\xfe\x01binary\r\n\r\nRCPT TO:<b@example.com>\r\n" +
		strings.Repeat("Z", 3000) + "\r\nDATA\r\n")
	c.Expect("250 2.1.0")
	c.Expect("500 5.5.1 command not recognized")
	c.Expect("500 5.5.1 command not recognized")
	c.Expect("250 2.1.5")
	c.Expect("500 5.5.2 Line too long")
	c.Expect("354")
	c.Send("x\r\n.\r\nQUIT\r\n")
	c.Expect("250")
	c.Expect("221")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseQuit || len(h.messages) != 1 {
		t.Errorf("end %+v, %d messages", e, len(h.messages))
	}
	if got, want := counts(e), "ehlo=1/1 mail=1/1 unknown=0/3 rcpt=1/1 data=1/1 quit=1/1"; got != want {
		t.Errorf("counts %q, want %q", got, want)
	}
}
