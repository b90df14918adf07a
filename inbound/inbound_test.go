package inbound_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
)

func eq(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The first example of TechNote 118295: the client opens a transaction and
// the connection is cut below SMTP (here a reset, as a firewall does).
func TestSeedLostConnection(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220 mx.test ESMTP")
	c.Cmd("HELO client.example.com", "250")
	c.Cmd("MAIL FROM:<user@domain.com>", "250")
	c.Cmd("RCPT TO:<end_user@example.com>", "250")
	c.Reset()
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	eq(t, esaLines(all), readSeed(t, "seed-lost.log"))
	if own := ownLine(t, all); !regexp.MustCompile(`^mailgate: ICID \d+ ended cause=peer-reset state=rcpt last=RCPT data_bytes=0 duration=\S+ helo=1 mail=1 rcpt=1 commands=3`).MatchString(own) {
		t.Errorf("own line %q", own)
	}
}

// The second example: the client goes silent after RCPT and the listener's
// Timeout for Unsuccessful Inbound Connections ends it (shortened here).
func TestSeedUnsuccessfulTimeout(t *testing.T) {
	h := start(t, opts{unsuccessful: "1s"})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("HELO client.example.com", "250")
	c.Cmd("MAIL FROM:<sndr@xyz.com>", "250")
	c.Cmd("RCPT TO:<rcpt@example.com>", "250")
	c.Expect("421 Timed out waiting for successful message injection, disconnecting.")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	got := esaLines(all)
	// The TechNote shows only the MID lines (and its To: line lost its
	// address on the page); they must appear in this order, with the ICID
	// lines around them.
	seed := readSeed(t, "seed-timeout.log")
	want := []string{
		"New SMTP ICID N interface Management (IP) address IP reverse dns host ns.example.com verified no",
		"ICID N RELAY SG RELAY_SG match IP SBRS not enabled",
		seed[0], seed[1], seed[2] + " <rcpt@example.com>", seed[3], seed[4],
		"ICID N disconnected address IP, no messages injected within timeout period",
		"ICID N close",
	}
	eq(t, got, want)
	if own := ownLine(t, all); !strings.Contains(own, "cause=timeout-unsuccessful state=rcpt last=RCPT") {
		t.Errorf("own line %q", own)
	}
}

// The third example: the client sends QUIT in the middle of the transaction.
func TestSeedQuitBeforeData(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("HELO client.example.com", "250")
	c.Cmd("MAIL FROM:<user@domain.com>", "250")
	c.Cmd("RCPT TO:<end_user@example.com>", "250")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	eq(t, esaLines(all), readSeed(t, "seed-quit.log"))
	if own := ownLine(t, all); !strings.Contains(own, "cause=quit state=rcpt last=QUIT") || !strings.Contains(own, "quit=1") {
		t.Errorf("own line %q", own)
	}
}

// The other ways a connection ends, each with its lines in the ESA's order.
func TestConnectionEnds(t *testing.T) {
	open := []string{
		"New SMTP ICID N interface Management (IP) address IP reverse dns host ns.example.com verified no",
		"ICID N RELAY SG RELAY_SG match IP SBRS not enabled",
		"Start MID N ICID N",
		"MID N ICID N From: <a@example.org>",
		"MID N ICID N RID 0 To: <b@example.com>",
	}
	aborted := []string{"Message aborted MID N Receiving aborted", "Message finished MID N aborted", "ICID N close"}
	cases := []struct {
		name  string
		run   func(c *smtptest.Conn)
		want  []string
		cause string
	}{
		{"FIN after RCPT", func(c *smtptest.Conn) { c.C.Close() },
			append(append(append([]string{}, open...), "ICID N lost"), aborted...),
			"cause=peer-closed state=rcpt last=RCPT data_bytes=0"},
		{"RST in DATA", func(c *smtptest.Conn) {
			c.Cmd("DATA", "354")
			c.Send("Subject: half a message\r\n\r\nand then")
			smtptest.WaitPeerRead(c.T, c.C) // a reset discards what is unread
			c.Reset()
		}, append(append(append([]string{}, open...), "ICID N lost"), aborted...),
			"cause=peer-reset state=data last=DATA data_bytes=35"},
		{"QUIT in DATA is message text", func(c *smtptest.Conn) {
			c.Cmd("DATA", "354")
			c.Send("QUIT\r\n")
			smtptest.WaitPeerRead(c.T, c.C) // read as message text before the FIN
			c.C.Close()
		}, append(append(append([]string{}, open...), "ICID N lost"), aborted...),
			"cause=peer-closed state=data last=DATA data_bytes=6"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, opts{})
			c := h.dial("")
			c.Expect("220")
			c.Cmd("EHLO client.example.com", "250")
			c.Cmd("MAIL FROM:<a@example.org>", "250")
			c.Cmd("RCPT TO:<b@example.com>", "250")
			tc.run(c)
			all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
			eq(t, esaLines(all), tc.want)
			if own := ownLine(t, all); !strings.Contains(own, tc.cause) {
				t.Errorf("own line %q, want %q", own, tc.cause)
			}
		})
	}
}

// A message accepted: in the spool, whole, with a Received header, and the
// lines from Start MID to "queued for delivery".
func TestSuccessAndSecondTransactionQuit(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.com", "250")
	c.Cmd("MAIL FROM:<a@example.org> SIZE=100", "250 2.1.0")
	c.Cmd("RCPT TO:<b@example.com>", "250 2.1.5")
	c.Cmd("RCPT TO:<c@example.net>", "250 2.1.5") // relaying: no RAT
	c.Cmd("DATA", "354")
	body := "Message-ID: <1@example.org>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n..leading dot\r\nbody\r\n"
	c.Send(strings.ReplaceAll(body, "\r\n..", "\r\n...") + ".\r\n")
	ok := c.Expect("250 2.0.0 ok:  Message ")
	// Second transaction on the same connection, abandoned with QUIT: judged
	// on its own.
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	eq(t, esaLines(all), []string{
		"New SMTP ICID N interface Management (IP) address IP reverse dns host ns.example.com verified no",
		"ICID N RELAY SG RELAY_SG match IP SBRS not enabled",
		"Start MID N ICID N",
		"MID N ICID N From: <a@example.org>",
		"MID N ICID N RID 0 To: <b@example.com>",
		"MID N ICID N RID 1 To: <c@example.net>",
		"MID N Message-ID '<1@example.org>'",
		"MID N Subject 'café'",
		"MID N ready " + strconv.Itoa(len(body)) + " bytes from <a@example.org>",
		"MID N matched all recipients for per-recipient policy DEFAULT in the outbound table",
		"MID N queued for delivery",
		"Start MID N ICID N",
		"MID N ICID N From: <a@example.org>",
		"MID N ICID N RID 0 To: <b@example.com>",
		"Message aborted MID N Receiving aborted by sender",
		"Message finished MID N aborted",
		"ICID N close",
	})
	if own := ownLine(t, all); !strings.Contains(own, "cause=quit state=rcpt last=QUIT data_bytes=0") || !strings.Contains(own, "mail=2 rcpt=3 data=1 quit=1 commands=8") {
		t.Errorf("own line %q", own)
	}
	mids := h.spool.Messages()
	if len(mids) != 1 || !strings.Contains(ok, " "+strconv.FormatUint(mids[0], 10)+" accepted") {
		t.Fatalf("spool holds %v; reply %q", mids, ok)
	}
	env, msg, err := h.spool.Read(mids[0])
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "a@example.org" || len(env.Rcpts) != 2 || env.Rcpts[1].Addr != "c@example.net" || env.Helo != "client.example.com" || env.ClientIP != "127.0.0.1" {
		t.Errorf("envelope %+v", env)
	}
	if !bytes.HasSuffix(msg, []byte(body)) {
		t.Errorf("spooled message does not end with the body:\n%s", msg)
	}
	if !regexp.MustCompile(`^Received: from client\.example\.com \(unknown \[127\.0\.0\.1\]\)\r\n\tby mx\.test \(mailgate\) with ESMTP id \d+; `).Match(msg) {
		t.Errorf("Received header:\n%s", msg)
	}
}

func TestQuitWithoutMail(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.com", "250")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	eq(t, esaLines(all), []string{
		"New SMTP ICID N interface Management (IP) address IP reverse dns host ns.example.com verified no",
		"ICID N RELAY SG RELAY_SG match IP SBRS not enabled",
		"ICID N close",
	})
	if own := ownLine(t, all); !strings.Contains(own, "cause=quit state=helo last=QUIT") {
		t.Errorf("own line %q", own)
	}
}

func TestHATRejectAndTCPRefuse(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("127.0.0.66")
	c.Expect("554 mx.test Access denied")
	c.Cmd("EHLO x", "503")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	eq(t, esaLines(all), []string{
		"New SMTP ICID N interface Management (IP) address IP reverse dns host unknown verified no",
		"ICID N REJECT SG BLOCKLIST match IP SBRS not enabled",
		"ICID N close",
	})
	if own := ownLine(t, all); !strings.Contains(own, "cause=policy") || !strings.Contains(own, "detail='HAT REJECT SG BLOCKLIST match 127.0.0.66'") {
		t.Errorf("own line %q", own)
	}

	h2 := start(t, opts{})
	c = h2.dial("127.0.0.67")
	c.C.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.R.ReadByte(); err == nil {
		t.Errorf("TCPREFUSE sent a byte %q", n)
	}
	all = h2.lines.WaitLines(t, `TCPREFUSE`)
	eq(t, esaLines(all), []string{"ICID N TCPREFUSE SG REFUSED match IP SBRS not enabled"})
	if !strings.HasPrefix(all[0], "ICID 0 ") {
		t.Errorf("TCPREFUSE line %q: want ICID 0", all[0])
	}
}

// A verified host name from DNS lets the partial host-name rule match; the
// partner's policy applies its RAT and its size limit.
func TestPartnerRATAndSize(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("127.0.0.2")
	c.Expect("220")
	ehlo := c.Cmd("EHLO mx1.partner.test", "250")
	if !strings.Contains(ehlo, "SIZE 2048") {
		t.Errorf("EHLO does not advertise the policy's size:\n%s", ehlo)
	}
	c.Cmd("MAIL FROM:<a@partner.test>", "250")
	c.Cmd("RCPT TO:<someone@elsewhere.org>", "550 5.1.0 Address rejected.")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send(strings.Repeat("0123456789012345678901234567890123456789\r\n", 60) + ".\r\n")
	c.Expect("552 5.3.4 Message size exceeds limit")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	eq(t, esaLines(all), []string{
		"New SMTP ICID N interface Management (IP) address IP reverse dns host mx1.partner.test verified yes",
		"ICID N ACCEPT SG PARTNERS match .partner.test SBRS not enabled",
		"Start MID N ICID N",
		"MID N ICID N From: <a@partner.test>",
		"MID N ICID N To: <someone@elsewhere.org> Rejected by RAT",
		"MID N ICID N RID 0 To: <b@example.com>",
		"ICID N Receiving Failed: Message size exceeds limit",
		"Message finished MID N aborted",
		"ICID N close",
	})
	if n := len(h.spool.Messages()); n != 0 {
		t.Errorf("spool holds %d messages", n)
	}
}

func TestOverlongLinesAndSmuggling(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO "+strings.Repeat("x", 600), "500 #5.5.2 Line too long")
	c.Cmd("EHLO client.example.com", "250")
	for _, data := range []string{
		"a\r\n\n.\nMAIL FROM:<smuggled@evil.example>\r\n",
		"a\r\n\r.\rMAIL FROM:<smuggled@evil.example>\r\n",
		"a\r\n.\nMAIL FROM:<smuggled@evil.example>\r\n",
	} {
		c.Cmd("MAIL FROM:<a@example.org>", "250")
		c.Cmd("RCPT TO:<b@example.com>", "250")
		c.Cmd("DATA", "354")
		c.Send(data + "\r\n.\r\n")
		c.Expect("550 5.6.0 Message contains bare CR or LF")
	}
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send(strings.Repeat("y", 1001) + "\r\n.\r\n")
	c.Expect("550 5.6.0 Message contains a line longer than 1000 octets")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	text := strings.Join(all, "\n")
	if strings.Contains(text, "smuggled") {
		t.Errorf("a smuggled command reached the log:\n%s", text)
	}
	if n := strings.Count(text, "Receiving Failed: Bare CR or LF in message"); n != 3 {
		t.Errorf("%d bare line ending failures logged:\n%s", n, text)
	}
	if !strings.Contains(text, "Receiving Failed: Message line too long") {
		t.Errorf("long line not logged:\n%s", text)
	}
	if n := len(h.spool.Messages()); n != 0 {
		t.Errorf("spool holds %d messages", n)
	}
}

// Malformed addresses get the ESA's "Invalid sender/recipient address"
// lines, with the command as the client sent it.
func TestInvalidAddresses(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.com", "250")
	c.Cmd("MAIL FROM:<a@@example.org>", "501 5.1.7")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<>", "501 5.1.3")
	c.Cmd("RCPT TO:<jö@example.com>", "553 5.6.7")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	got := esaLines(all)
	eq(t, got[2:6], []string{
		"ICID N Invalid sender address: Bad sender address syntax: 'MAIL FROM:<a@@example.org>'",
		"Start MID N ICID N",
		"MID N ICID N From: <a@example.org>",
		"ICID N MID N Invalid recipient address: Bad recipient address syntax: 'RCPT TO:<>'",
	})
	if !strings.Contains(strings.Join(got, "\n"), "Invalid recipient address: Non-ASCII address requires SMTPUTF8: 'RCPT TO:<jö@example.com>'") {
		t.Errorf("no line for the non-ASCII recipient:\n%s", strings.Join(got, "\n"))
	}
}

func TestBadCommandLimit(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220")
	for i := 0; i < 4; i++ {
		c.Cmd("FOO", "500 #5.5.1 command not recognized")
	}
	c.Cmd("FOO", "421 Exceeded bad SMTP command limit, disconnecting.")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	if n := strings.Count(strings.Join(all, "\n"), "Unknown command: FOO"); n != 4 {
		t.Errorf("%d Unknown command lines:\n%s", n, strings.Join(all, "\n"))
	}
	if own := ownLine(t, all); !strings.Contains(own, "cause=bad-commands state=connect last=FOO") || !strings.Contains(own, "unknown=0/5") {
		t.Errorf("own line %q", own)
	}
}

func TestTotalTimeLimit(t *testing.T) {
	h := start(t, opts{unsuccessful: "5m", total: "1s"})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.com", "250")
	c.Expect("421 Exceeded allowable connection time, disconnecting.")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	got := esaLines(all)
	want := []string{"ICID N disconnected address IP, exceeded allowable connection time", "ICID N close"}
	eq(t, got[len(got)-2:], want)
}

// STARTTLS: the plaintext pipelined after it is thrown away, the session
// goes on in TLS, the TLS line is logged and the Received header says so.
// The long injection (1.5 KB) is more than the 128 bytes a waiting session
// reads first: the rest, already in the socket, must go too.
func TestStartTLSPipelinedPlaintext(t *testing.T) {
	for _, n := range []int{1, 40} {
		t.Run(fmt.Sprintf("RCPTx%d", n), func(t *testing.T) { testStartTLSPipelined(t, n) })
	}
}

func testStartTLSPipelined(t *testing.T, rcpts int) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220")
	if !strings.Contains(c.Cmd("EHLO client.example.com", "250"), "STARTTLS") {
		t.Fatal("STARTTLS not offered")
	}
	c.Send("STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n" + strings.Repeat("RCPT TO:<b@example.com>\r\n", rcpts))
	c.Expect("220 2.0.0")
	c.StartTLS()
	c.Cmd("EHLO client.example.com", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("Subject: secret\r\n\r\nx\r\n.\r\n")
	c.Expect("250")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	text := strings.Join(all, "\n")
	if strings.Contains(text, "injected@evil.example") {
		t.Errorf("pipelined plaintext was executed:\n%s", text)
	}
	if !regexp.MustCompile(`ICID \d+ TLS success protocol TLSv1.3 cipher TLS_\w+`).MatchString(text) {
		t.Errorf("no TLS line:\n%s", text)
	}
	if own := ownLine(t, all); !strings.Contains(own, "pipelined after STARTTLS discarded") {
		t.Errorf("own line %q does not tell of the discarded bytes", own)
	}
	_, msg, err := h.spool.Read(h.spool.Messages()[0])
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\(using TLSv1\.3 with cipher TLS_\w+\)\r\n\tby mx\.test \(mailgate\) with ESMTPS`).Match(msg) {
		t.Errorf("Received header:\n%s", msg)
	}
}

// Per-IP concurrency, messages per connection and recipients per message
// come from the mail flow policy.
func TestPolicyLimits(t *testing.T) {
	h := start(t, opts{})
	c1 := h.dial("127.0.0.68")
	c1.Expect("220")
	c2 := h.dial("127.0.0.68")
	c2.Expect("421 #4.4.5 Too many connections from your host")
	c1.Cmd("EHLO client.example.com", "250")
	c1.Cmd("MAIL FROM:<a@example.org>", "250")
	c1.Cmd("RCPT TO:<r1@example.com>", "250")
	c1.Cmd("RCPT TO:<r2@example.com>", "250")
	c1.Cmd("RCPT TO:<r3@example.com>", "452 4.5.3 Too many recipients")
	c1.Cmd("DATA", "354")
	c1.Send("x\r\n.\r\n")
	c1.Expect("250")
	c1.Cmd("MAIL FROM:<a@example.org>", "421 4.7.0 Too many messages for this session")
	all := h.lines.WaitLines(t, `ended cause=policy state=helo`)
	text := strings.Join(all, "\n")
	for _, want := range []string{"Receiving Failed: Connection limit exceeded", "To: <r3@example.com> Rejected by Injection Control",
		"detail='Too many connections from your host'", "detail='Too many messages for this session'"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
}

// The injection debug log records the whole conversation of a chosen host,
// for the configured number of sessions.
func TestInjectionDebugLog(t *testing.T) {
	h := start(t, opts{})
	for i := 0; i < 2; i++ {
		c := h.dial("127.0.0.2")
		c.Expect("220")
		c.Cmd("EHLO mx1.partner.test", "250")
		c.Cmd("MAIL FROM:<a@partner.test>", "250")
		c.Cmd("RCPT TO:<b@example.com>", "250")
		c.Cmd("DATA", "354")
		c.Send("Subject: hello\r\n\r\nline with \x1b escape\r\n.\r\n")
		c.Expect("250")
		c.Cmd("QUIT", "221")
		h.lines.WaitLines(t, `ended cause=quit`)
	}
	if err := h.debug.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(h.cfg.Logs.InjectionDebug[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " Sent: ") || strings.Contains(l, " Rcvd: ") {
			l = regexp.MustCompile(`Info: \d+ `).ReplaceAllString(l, "Info: N ")
			got = append(got, normalize(regexp.MustCompile(`Message \d+ accepted`).ReplaceAllString(l, "Message N accepted")))
		}
	}
	want := []string{
		"N Sent: '220 mx.test ESMTP'",
		"N Rcvd: 'EHLO mx1.partner.test'",
		"N Sent: '250-mx.test'",
		"N Sent: '250-PIPELINING'",
		"N Sent: '250-SIZE 2048'",
		"N Sent: '250-8BITMIME'",
		"N Sent: '250-ENHANCEDSTATUSCODES'",
		"N Sent: '250-SMTPUTF8'",
		"N Sent: '250 STARTTLS'",
		"N Rcvd: 'MAIL FROM:<a@partner.test>'",
		"N Sent: '250 2.1.0 sender <a@partner.test> ok'",
		"N Rcvd: 'RCPT TO:<b@example.com>'",
		"N Sent: '250 2.1.5 recipient <b@example.com> ok'",
		"N Rcvd: 'DATA'",
		"N Sent: '354 go ahead'",
		"N Rcvd: 'Subject: hello'",
		"N Rcvd: ''",
		`N Rcvd: 'line with \x1b escape'`,
		"N Rcvd: '.'",
		"N Sent: '250 2.0.0 ok:  Message N accepted'",
		"N Rcvd: 'QUIT'",
		"N Sent: '221 2.0.0 mx.test closing connection'",
	}
	// sessions: 1 — the second connection is not recorded.
	eq(t, got, want)
}

// TestPostmasterWithoutDomain: "RCPT TO:<postmaster>" must be accepted
// whatever the RAT says (RFC 5321 4.5.1); it goes to the configured
// postmaster, while postmaster at a domain the RAT refuses is refused.
func TestPostmasterWithoutDomain(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("127.0.0.2")
	c.Expect("220")
	c.Cmd("EHLO mx1.partner.test", "250")
	c.Cmd("MAIL FROM:<a@partner.test>", "250")
	c.Cmd("RCPT TO:<postmaster@elsewhere.org>", "550 5.1.0 Address rejected.")
	c.Cmd("RCPT TO:<PostMaster>", "250")
	c.Cmd("DATA", "354")
	c.Send("Subject: hi\r\n\r\nhello\r\n.\r\n")
	c.Expect("250")
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	if !contains(esaLines(all), "MID N ICID N RID 0 To: <PostMaster>") {
		t.Errorf("no RCPT line for <PostMaster>:\n%s", strings.Join(all, "\n"))
	}
	mids := h.spool.Messages()
	if len(mids) != 1 {
		t.Fatalf("spool holds %d messages, want 1", len(mids))
	}
	env, _, err := h.spool.Read(mids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Rcpts) != 1 || env.Rcpts[0].Addr != "postmaster@mx.test" {
		t.Errorf("envelope recipients %+v, want postmaster@mx.test", env.Rcpts)
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// TestHeaderLines: the listener's max_header_lines counts the lines of the
// header, folded ones included. A message whose header lacks the blank
// line ends its header at the first line that is not a field: its body
// lines are not header lines (they were, before the header reader was
// shared, and a long body then refused the message), and a Message-ID in
// the body is not the message's.
func TestHeaderLines(t *testing.T) {
	h := start(t, opts{yaml: strings.Replace(baseConfig, "    timeouts:", "    max_header_lines: 5\n    timeouts:", 1)})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.com", "250")
	body := strings.Repeat("a body line\r\n", 50)
	for _, tt := range []struct{ msg, reply string }{
		{"Subject: five\r\n lines\r\nA: 1\r\nB: 2\r\nMessage-ID: <5@x>\r\n\r\n" + body, "250 2.0.0 ok"},
		{"Subject: six\r\n lines\r\nA: 1\r\nB: 2\r\nC: 3\r\nMessage-ID: <6@x>\r\n\r\n" + body, "552 5.3.4 message header size exceeds limit"},
		{"Subject: no blank line\r\n" + body + "Message-ID: <in-the-body@x>\r\n", "250 2.0.0 ok"},
	} {
		c.Cmd("MAIL FROM:<a@example.org>", "250")
		c.Cmd("RCPT TO:<b@example.com>", "250")
		c.Cmd("DATA", "354")
		c.Send(tt.msg + ".\r\n")
		c.Expect(tt.reply)
	}
	c.Cmd("QUIT", "221")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	var got []string
	for _, l := range esaLines(all) {
		if strings.Contains(l, "Subject") || strings.Contains(l, "Message-ID") || strings.Contains(l, "Receiving Failed") {
			got = append(got, l)
		}
	}
	eq(t, got, []string{
		"MID N Message-ID '<5@x>'",
		"MID N Subject 'five lines'",
		"ICID N Receiving Failed: Message header size exceeds limit",
		"MID N Subject 'no blank line'",
	})
}
