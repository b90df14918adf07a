package smtp

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/event"
)

// badCalls are the recorder's BadCommand calls, "bad <kind> <line>".
func (r *recorder) badCalls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if strings.HasPrefix(c, "bad ") {
			out = append(out, c)
		}
	}
	return out
}

// TestBadKinds: each bad command reaches the Handler once, with the kind
// that says why the engine refused it; a refusal of the Handler's own is
// not told back to it.
func TestBadKinds(t *testing.T) {
	withTLS := Config{TLS: selfSigned(t)}
	rejected := Config{Greeting: Reply{554, "", "mx.test Access denied"}}
	ehlo := []string{"EHLO c.test"}
	inMail := []string{"EHLO c.test", "MAIL FROM:<a@example.org>"}
	tests := []struct {
		name  string
		cfg   Config
		setup []string // each answered 250
		cmd   string
		reply string // prefix of the reply to cmd
		kind  BadKind
		line  string // the line BadCommand gets, when not cmd
	}{
		{"unknown verb", Config{}, ehlo, "XYZZY now", "500 5.5.1", BadUnknown, ""},
		{"NUL in a known verb", Config{}, ehlo, "NOOP\x00", "500 5.5.1", BadUnknown, ""},
		{"line too long", Config{}, ehlo, "NOOP " + strings.Repeat("x", 600), "500 5.5.2", BadLineTooLong, "(line too long)"},
		{"HELO without a name", Config{}, nil, "HELO", "501 #5.5.4", BadSyntax, ""},
		{"VRFY without an argument", Config{}, ehlo, "VRFY", "501 5.5.4", BadSyntax, ""},
		{"DATA with an argument", Config{}, inMail, "DATA now", "501 5.5.4", BadSyntax, ""},
		{"STARTTLS with an argument", withTLS, ehlo, "STARTTLS now", "501 5.5.4", BadSyntax, ""},
		{"MAIL without brackets", Config{}, ehlo, "MAIL FROM:a@example.org", "501 5.5.4", BadSender, ""},
		{"MAIL with a bad address", Config{}, ehlo, "MAIL FROM:<a@@example.org>", "501 5.1.7", BadSender, ""},
		{"MAIL with a long local part", Config{}, ehlo, "MAIL FROM:<" + strings.Repeat("a", 65) + "@example.org>", "501 5.5.4", BadSender, ""},
		{"MAIL non-ASCII without SMTPUTF8", Config{}, ehlo, "MAIL FROM:<jö@example.org>", "553 5.6.7", BadSender, ""},
		{"RCPT without brackets", Config{}, inMail, "RCPT TO:b@example.com", "501 5.5.4", BadRecipient, ""},
		{"RCPT to the null path", Config{}, inMail, "RCPT TO:<>", "501 5.1.3", BadRecipient, ""},
		{"RCPT non-ASCII without SMTPUTF8", Config{}, inMail, "RCPT TO:<jö@example.com>", "553 5.6.7", BadRecipient, ""},
		{"MAIL with an unknown parameter", Config{}, ehlo, "MAIL FROM:<a@example.org> FOO=BAR", "555 5.5.4", BadParameter, ""},
		{"MAIL with a parameter after HELO", Config{}, []string{"HELO c.test"}, "MAIL FROM:<a@example.org> SIZE=10", "555 #5.5.4", BadParameter, ""},
		{"RCPT with a parameter", Config{}, inMail, "RCPT TO:<b@example.com> NOTIFY=NEVER", "555 5.5.4", BadParameter, ""},
		{"MAIL before HELO", Config{}, nil, "MAIL FROM:<a@example.org>", "503 #5.5.1", BadSequence, ""},
		{"RCPT before MAIL", Config{}, ehlo, "RCPT TO:<b@example.com>", "503 5.5.1", BadSequence, ""},
		{"nested MAIL", Config{}, inMail, "MAIL FROM:<a@example.org>", "503 5.5.1", BadSequence, ""},
		{"DATA before MAIL", Config{}, ehlo, "DATA", "503 5.5.1", BadSequence, ""},
		{"STARTTLS in a transaction", withTLS, inMail, "STARTTLS", "503 5.5.1", BadSequence, ""},
		{"a rejected connection", rejected, nil, "EHLO c.test", "503 #5.5.1", BadSequence, ""},
		{"EXPN", Config{}, ehlo, "EXPN list", "502 5.5.1", BadNotImplemented, ""},
		{"STARTTLS without TLS", Config{}, ehlo, "STARTTLS", "502 5.5.1", BadNotImplemented, ""},
		{"the handler's own 501", Config{}, inMail, "RCPT TO:<refused@example.com>", "501 5.1.1", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{rcptFail: map[string]Reply{"refused@example.com": {501, "5.1.1", "refused"}}}
			conn, ends := serve(t, h, tt.cfg)
			c := newClient(t, conn)
			c.Reply() // the greeting
			for _, s := range tt.setup {
				c.Cmd(s, "250")
			}
			c.Cmd(tt.cmd, tt.reply)
			c.Cmd("QUIT", "221")
			waitEnd(t, ends)
			var want []string
			if tt.kind != 0 {
				line := tt.line
				if line == "" {
					line = tt.cmd
				}
				want = []string{"bad " + tt.kind.String() + " " + line}
			}
			if got := h.badCalls(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("BadCommand calls %q, want %q", got, want)
			}
		})
	}
}

// The command past the limit ends the session instead: the End tells it,
// not BadCommand.
func TestBadCommandPastLimit(t *testing.T) {
	h := &recorder{}
	conn, ends := serve(t, h, Config{BadCommandLimit: 1})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("XYZZY", "500")
	c.Cmd("MAIL FROM:<a@@example.org>", "421 Exceeded bad SMTP command limit")
	e := waitEnd(t, ends)
	if got, want := h.badCalls(), []string{"bad unknown XYZZY"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("BadCommand calls %q, want %q", got, want)
	}
	if e.Cause != event.CauseBadCommands || e.Detail != "MAIL FROM:<a@@example.org>" {
		t.Errorf("end cause %s detail %q", e.Cause, e.Detail)
	}
}

func TestBadKindString(t *testing.T) {
	for k, want := range map[BadKind]string{BadUnknown: "unknown", BadNotImplemented: "not-implemented", 0: "BadKind(0)", BadNotImplemented + 1: "BadKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("BadKind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}
