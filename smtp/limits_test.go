package smtp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// The idle timeout applies between commands for the whole session, also
// after a message was injected, and each command starts it again.
func TestIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	conn, ends := serve(t, &recorder{}, Config{IdleTimeout: idle, UnsuccessfulTimeout: time.Hour, TotalTimeout: time.Hour})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	// Commands closer together than the timeout keep the session: the
	// waits are the thing under test.
	for range 3 {
		time.Sleep(idle / 2)
		c.Cmd("NOOP", "250")
	}
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("x\r\n.\r\n")
	c.Expect("250")
	start := time.Now()
	c.Expect("421 4.4.2 Timed out waiting for a command, disconnecting.")
	if d := time.Since(start); d < idle-50*time.Millisecond {
		t.Errorf("cut after %v of silence, want %v", d, idle)
	}
	e := waitEnd(t, ends)
	if e.Cause != event.CauseTimeoutIdle || e.State != StateHelo || e.Injected != 1 {
		t.Errorf("end %+v", e)
	}
}

// Before the first message the earlier of the two timeouts decides, and
// says which it was.
func TestIdleAndUnsuccessfulTimeouts(t *testing.T) {
	cases := []struct {
		name               string
		idle, unsuccessful time.Duration
		reply              string
		cause              event.Cause
	}{
		{"idle first", 300 * time.Millisecond, time.Hour, "421 4.4.2 Timed out waiting for a command", event.CauseTimeoutIdle},
		{"unsuccessful first", time.Hour, 300 * time.Millisecond, "421 Timed out waiting for successful message injection", event.CauseTimeoutUnsuccessful},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, ends := serve(t, &recorder{}, Config{IdleTimeout: tc.idle, UnsuccessfulTimeout: tc.unsuccessful})
			c := newClient(t, conn)
			c.Expect("220")
			c.Cmd("EHLO c.test", "250")
			c.Expect(tc.reply)
			if e := waitEnd(t, ends); e.Cause != tc.cause {
				t.Errorf("end %+v", e)
			}
		})
	}
}

// Junk commands and transactions that end without an accepted recipient
// count together; the command past the limit gets its reply, then 421.
func TestJunkCommandLimit(t *testing.T) {
	cases := []struct {
		name   string
		limit  int
		cycle  []string // sent in turn, each answered 2xx
		n      int      // commands sent; the last one's reply is followed by 421
		counts string
	}{
		{"NOOP RSET VRFY HELP", 8, []string{"NOOP", "RSET", "VRFY x", "HELP"}, 9, "ehlo=1/1 noop=3/3 rset=2/2 vrfy=2/2 help=2/2"},
		// MAIL then RSET is two: the empty transaction and the RSET.
		{"MAIL RSET", 10, []string{"MAIL FROM:<a@example.org>", "RSET"}, 12, "ehlo=1/1 mail=6/6 rset=6/6"},
		{"MAIL EHLO", 6, []string{"MAIL FROM:<a@example.org>", "EHLO c.test"}, 14, "ehlo=8/8 mail=7/7"},
		// A transaction with a recipient is no junk; its RSET is.
		{"MAIL RCPT RSET", 3, []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "RSET"}, 12, "ehlo=1/1 mail=4/4 rcpt=4/4 rset=4/4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, ends := serve(t, &recorder{}, Config{JunkCommandLimit: tc.limit})
			c := newClient(t, conn)
			c.Expect("220")
			c.Cmd("EHLO c.test", "250")
			for i := range tc.n {
				if r := c.Cmd(tc.cycle[i%len(tc.cycle)], ""); !strings.HasPrefix(r, "2") {
					t.Fatalf("command %d: %q", i+1, r)
				}
			}
			c.Expect("421 4.7.0 Exceeded junk SMTP command limit, disconnecting.")
			e := waitEnd(t, ends)
			if e.Cause != event.CauseJunkCommands {
				t.Errorf("end %+v", e)
			}
			if got := counts(e); got != tc.counts {
				t.Errorf("counts %q, want %q", got, tc.counts)
			}
		})
	}
}

// A session without limits configured has none: the engine's zero Config.
func TestNoJunkLimitByDefault(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Send(strings.Repeat("NOOP\r\n", 200))
	for range 200 {
		c.Expect("250")
	}
	c.Cmd("QUIT", "221")
	if e := waitEnd(t, ends); e.Cause != event.CauseQuit {
		t.Errorf("end %+v", e)
	}
}

// Refused commands count as errors: past the soft limit each reply waits
// the delay, at the hard limit the session ends. An accepted message
// clears the count, and a 452 (too many recipients) is not an error.
func TestErrorLimits(t *testing.T) {
	const delay = 300 * time.Millisecond
	h := &recorder{rcptFail: map[string]Reply{
		"no@example.com":   {550, "5.1.1", "no such user"},
		"full@example.com": {452, "4.5.3", "Too many recipients"},
	}}
	conn, ends := serve(t, h, Config{SoftErrorLimit: 3, HardErrorLimit: 6, ErrorDelay: delay})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	for range 10 {
		c.Cmd("RCPT TO:<full@example.com>", "452")
	}
	// 5 errors, then a message: the count starts again.
	for range 5 {
		c.Cmd("RCPT TO:<no@example.com>", "550")
	}
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("x\r\n.\r\n")
	c.Expect("250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	start := time.Now()
	for i := range 6 {
		c.Cmd("RCPT TO:<no@example.com>", "550")
		took := time.Since(start)
		start = time.Now()
		// errors 0, 1 and 2 are answered at once; from 3 on, each waits.
		if i >= 3 && took < delay {
			t.Errorf("reply to error %d after %v, want the delay of %v", i+1, took, delay)
		}
		if i < 3 && took >= delay {
			t.Errorf("reply to error %d after %v, before the soft limit", i+1, took)
		}
	}
	c.Expect("421 4.7.0 Exceeded SMTP error limit, disconnecting.")
	e := waitEnd(t, ends)
	if e.Cause != event.CauseErrors || e.Detail != "RCPT TO:<no@example.com>" || e.Injected != 1 {
		t.Errorf("end %+v", e)
	}
}

// Bad commands are errors too, and DATA's refusal tells its line although
// a message was read since.
func TestErrorLimitCountsBadCommands(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{BadCommandLimit: 10, HardErrorLimit: 3, MaxMessageSize: 10})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	c.Cmd("XYZZY", "500")
	c.Cmd("RCPT TO:<b@example.com>", "503")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send(strings.Repeat("x", 20) + "\r\n.\r\n")
	c.Expect("552")
	c.Expect("421 4.7.0 Exceeded SMTP error limit")
	if e := waitEnd(t, ends); e.Cause != event.CauseErrors || e.Detail != "DATA" {
		t.Errorf("end %+v", e)
	}
}

// A session waiting in the tarpit ends at once when the gateway stops:
// drained outside a transaction, killed inside one.
func TestTarpitRespectsShutdown(t *testing.T) {
	// read tells when the session has read the line it will hold.
	config := func(wait string) (Config, chan struct{}) {
		read := make(chan struct{}, 1)
		return Config{SoftErrorLimit: 1, HardErrorLimit: 100, ErrorDelay: time.Hour,
			Transcript: func(sent bool, line []byte) {
				if !sent && string(line) == wait {
					read <- struct{}{}
				}
			}}, read
	}
	t.Run("drain", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg, read := config("NOOP")
		conn, ends := serveCtx(t, ctx, &recorder{}, cfg, nil)
		c := newClient(t, conn)
		c.C.SetDeadline(time.Now().Add(10 * time.Second))
		c.Expect("220")
		c.Cmd("RCPT TO:<b@example.com>", "503") // the first error
		c.Send("NOOP\r\n")                      // waits an hour
		<-read
		cancel()
		c.Expect("421 #4.3.2")
		if e := waitEnd(t, ends); e.Cause != event.CauseShutdown {
			t.Errorf("end %+v", e)
		}
	})
	t.Run("kill", func(t *testing.T) {
		sessions := make(chan *Session, 1)
		cfg, read := config("RCPT TO:<b@example.com>")
		conn, ends := serveCtx(t, context.Background(), &recorder{}, cfg, sessions)
		c := newClient(t, conn)
		c.C.SetDeadline(time.Now().Add(10 * time.Second))
		c.Expect("220")
		c.Cmd("EHLO c.test", "250")
		c.Cmd("MAIL FROM:<a@example.org>", "250")
		c.Cmd("MAIL FROM:<a@example.org>", "503")
		c.Send("RCPT TO:<b@example.com>\r\n")
		<-read
		(<-sessions).Kill()
		c.Expect("421 4.3.2")
		if e := waitEnd(t, ends); e.Cause != event.CauseShutdown || e.State != StateMail {
			t.Errorf("end %+v", e)
		}
	})
}

// A client that does not wait for the reply to HELO or EHLO, or for the
// 354, is refused and disconnected; nothing it sent too early runs.
func TestPipeliningRefused(t *testing.T) {
	long := "EHLO " + strings.Repeat("a", 121) // with CRLF, the 128 bytes a waiting session reads first
	cases := []struct {
		name   string
		before []string // commands answered 250 first
		send   string
		oks    int // replies 250 to what was sent before the refusal
		reply  string
		detail string
		state  State
	}{
		{"after EHLO", nil, "EHLO c.test\r\nMAIL FROM:<a@example.org>\r\n", 0,
			"554 #5.5.0 SMTP synchronization error: commands sent before the reply to EHLO",
			"commands sent before the reply to EHLO: MAIL FROM:<a@example.org>", StateConnect},
		{"HELO with the whole message", nil, "HELO c.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", 0,
			"554 #5.5.0 SMTP synchronization error: commands sent before the reply to HELO",
			"commands sent before the reply to HELO: MAIL FROM:<a@example.org>", StateConnect},
		{"still in the socket", nil, long + "\r\nMAIL FROM:<a@example.org>\r\n", 0,
			"554 #5.5.0 SMTP synchronization error: commands sent before the reply to EHLO",
			"commands sent before the reply to EHLO", StateConnect},
		{"a second EHLO", []string{"EHLO c.test"}, "EHLO c.test\r\nNOOP\r\n", 0,
			"554 5.5.0 SMTP synchronization error: commands sent before the reply to EHLO",
			"commands sent before the reply to EHLO: NOOP", StateHelo},
		{"body before 354", []string{"EHLO c.test"}, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n", 2,
			"554 5.5.0 SMTP synchronization error: message sent before the 354 reply",
			"message sent before the 354 reply: Subject: x", StateRcpt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &recorder{}
			conn, ends := serve(t, h, Config{})
			c := newClient(t, conn)
			c.Expect("220")
			for _, cmd := range tc.before {
				c.Cmd(cmd, "250")
			}
			c.Send(tc.send)
			for range tc.oks {
				c.Expect("250")
			}
			c.Expect(tc.reply)
			e := waitEnd(t, ends)
			if e.Cause != event.CausePipelining || e.Detail != tc.detail || e.State != tc.state {
				t.Errorf("end %+v", e)
			}
			if len(h.messages) != 0 || tc.state == StateConnect && len(h.calls) != 0 {
				t.Errorf("what came too early ran: %q", h.calls)
			}
		})
	}
}

// Replies the engine sends may not be held back for a pipelining client
// that waits for them: every group a well-behaved client sends is answered.
func TestPipeliningAllowed(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	for i := range 3 {
		c.Send(fmt.Sprintf("RSET\r\nMAIL FROM:<a%d@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n", i))
		c.Expect("250")
		c.Expect("250")
		c.Expect("250")
		c.Expect("354")
		c.Send("x\r\n.\r\n")
		c.Expect("250")
	}
	c.Cmd("QUIT", "221")
	if e := waitEnd(t, ends); e.Cause != event.CauseQuit || len(h.messages) != 3 {
		t.Errorf("end %+v, %d messages", e, len(h.messages))
	}
}

// A delivered message resets the junk count, as in Postfix: an MTA that
// sends RSET before each of many messages on one connection is not junk.
func TestJunkCountResetByMessage(t *testing.T) {
	conn, ends := serve(t, &recorder{}, Config{JunkCommandLimit: 3})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	for range 10 {
		c.Cmd("RSET", "250")
		c.Cmd("NOOP", "250")
		c.Cmd("MAIL FROM:<a@example.org>", "250")
		c.Cmd("RCPT TO:<b@example.com>", "250")
		c.Cmd("DATA", "354")
		c.Send("Subject: x\r\n\r\nhi\r\n.\r\n")
		c.Expect("250")
	}
	c.Cmd("QUIT", "221")
	if e := waitEnd(t, ends); e.Cause != event.CauseQuit {
		t.Errorf("end %+v", e)
	}
}

// Past the junk limit each junk command is an error, as in Postfix: the
// client meets the tarpit, then the hard error limit ends the session with
// the junk 421. A MAIL/RSET loop thus costs the flooder the error delay on
// every command instead of a quick reconnect.
func TestJunkBecomesErrors(t *testing.T) {
	const delay = 100 * time.Millisecond
	conn, ends := serve(t, &recorder{}, Config{JunkCommandLimit: 4, SoftErrorLimit: 2, HardErrorLimit: 4, ErrorDelay: delay})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO c.test", "250")
	for range 4 { // the junk limit: no error yet, no delay
		c.Cmd("NOOP", "250")
	}
	start := time.Now()
	c.Cmd("NOOP", "250") // errors 1
	c.Cmd("NOOP", "250") // errors 2: the soft limit
	if d := time.Since(start); d >= delay {
		t.Errorf("the first junk errors took %v: delayed before the soft limit", d)
	}
	start = time.Now()
	c.Cmd("NOOP", "250") // delayed; errors 3
	if d := time.Since(start); d < delay {
		t.Errorf("a junk command past the soft limit took %v, want the %v tarpit", d, delay)
	}
	c.Cmd("NOOP", "250") // delayed; errors 4: the hard limit
	c.Expect("421 4.7.0 Exceeded junk SMTP command limit, disconnecting.")
	if e := waitEnd(t, ends); e.Cause != event.CauseJunkCommands {
		t.Errorf("end %+v", e)
	}
}
