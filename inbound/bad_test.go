package inbound_test

import (
	"regexp"
	"strings"
	"testing"
)

// badLine picks the ESA lines a bad command can give.
var badLine = regexp.MustCompile(`Unknown command:|Invalid (sender|recipient) address:`)

// TestBadCommandLines: each kind of bad command the engine reports gets the
// ESA's line for it, or none; the line is what the client sent.
func TestBadCommandLines(t *testing.T) {
	ehlo := []string{"EHLO client.example.com"}
	inMail := []string{"EHLO client.example.com", "MAIL FROM:<a@example.org>"}
	tests := []struct {
		name  string
		setup []string // each answered 250
		cmd   string
		reply string
		want  string // the line, normalized; "" for none
	}{
		{"unknown verb", ehlo, "XYZZY now", "500 5.5.1", "ICID N Unknown command: XYZZY now"},
		{"NUL in a known verb", ehlo, "NOOP\x00", "500 5.5.1", `ICID N Unknown command: NOOP\x00`},
		{"sender without brackets", ehlo, "MAIL FROM:a@example.org", "501 5.5.4",
			"ICID N Invalid sender address: Syntax error in parameters or arguments: 'MAIL FROM:a@example.org'"},
		{"sender, lower case", ehlo, "mail from:<a@@example.org>", "501 5.1.7",
			"ICID N Invalid sender address: Bad sender address syntax: 'mail from:<a@@example.org>'"},
		{"sender too long", ehlo, "MAIL FROM:<" + strings.Repeat("a", 65) + "@example.org>", "501 5.5.4",
			"ICID N Invalid sender address: Address too long: 'MAIL FROM:<" + strings.Repeat("a", 65) + "@example.org>'"},
		{"sender non-ASCII", ehlo, "MAIL FROM:<jö@example.org>", "553 5.6.7",
			"ICID N Invalid sender address: Non-ASCII address requires SMTPUTF8: 'MAIL FROM:<jö@example.org>'"},
		{"recipient without brackets", inMail, "RCPT TO:b@example.com", "501 5.5.4",
			"ICID N MID N Invalid recipient address: Syntax error in parameters or arguments: 'RCPT TO:b@example.com'"},
		{"recipient null", inMail, "RCPT TO:<>", "501 5.1.3",
			"ICID N MID N Invalid recipient address: Bad recipient address syntax: 'RCPT TO:<>'"},
		{"line too long", ehlo, "NOOP " + strings.Repeat("x", 600), "500 5.5.2", ""},
		{"syntax", nil, "HELO", "501", ""},
		{"parameter", ehlo, "MAIL FROM:<a@example.org> FOO=BAR", "555", ""},
		{"sequence", ehlo, "RCPT TO:<b@example.com>", "503", ""},
		{"not implemented", ehlo, "EXPN list", "502", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, opts{})
			c := h.dial("")
			c.Expect("220")
			for _, s := range tt.setup {
				c.Cmd(s, "250")
			}
			c.Cmd(tt.cmd, tt.reply)
			c.Cmd("QUIT", "221")
			var got []string
			for _, l := range esaLines(h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)) {
				if badLine.MatchString(l) {
					got = append(got, l)
				}
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			eq(t, got, want)
		})
	}
}

// A RAT whose reply has the code of a bad command is the RAT's refusal:
// "Rejected by RAT", not "Invalid recipient address".
func TestRATReplyWithABadCommandsCode(t *testing.T) {
	h := start(t, opts{yaml: strings.Replace(baseConfig, "{domain: ALL, action: reject}",
		"{domain: ALL, action: reject, code: 501, text: 'No such domain here'}", 1)})
	c := h.dial("127.0.0.2")
	c.Expect("220")
	c.Cmd("EHLO mx1.partner.test", "250")
	c.Cmd("MAIL FROM:<a@partner.test>", "250")
	c.Cmd("RCPT TO:<b@elsewhere.test>", "501 No such domain here")
	c.Cmd("QUIT", "221")
	text := strings.Join(esaLines(h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)), "\n")
	if !strings.Contains(text, "MID N ICID N To: <b@elsewhere.test> Rejected by RAT") || badLine.MatchString(text) {
		t.Errorf("lines:\n%s", text)
	}
}
