package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
)

// rawControl returns the first character of out that a terminal would act
// on rather than show (a control other than the newline ending a line, a
// line separator, a bidi control), or "" when there is none.
func rawControl(out string) string {
	for i, r := range out {
		switch {
		case r == '\n':
		case r == utf8.RuneError:
			return fmt.Sprintf("invalid UTF-8 at %d", i)
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f,
			r == 0x2028, r == 0x2029, r == 0x200e, r == 0x200f, r == 0xfeff,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return fmt.Sprintf("%U at %d", r, i)
		}
	}
	return ""
}

// A Subject and Message-ID made of terminal escapes, CR LF, NUL, a line
// separator and a right-to-left override reach the administrator's terminal
// through every command that shows them only as the mail log writes them:
// escaped.
func TestCommandsEscapeNetworkText(t *testing.T) {
	g := relayGW(t, freePort(t), "") // the next hop is down: the message waits in the queue
	g.start()
	// hello CR LF "Fake: line" ESC [2J NUL U+2028 U+202E
	subject := "=?utf-8?q?hello=0D=0AFake=3A_line=1B=5B2J=00=E2=80=A8=E2=80=AEevil?="
	mid, err := sendRaw(g.addr, "Subject: "+subject+"\r\nMessage-ID: <id\x1b]0;title\x07@client.test>\r\n\r\nbody\r\n")
	if err != nil {
		t.Fatal(err)
	}
	g.waitLog(fmt.Sprintf(`MID %d to RID \[0\] pending till`, mid))
	m := fmt.Sprint(mid)
	for i := 0; ; i++ {
		if ms := trackJSON(t, g, "--mid", m); len(ms) == 1 && ms[0].Subject != "" {
			break
		}
		if i == 100 {
			t.Fatalf("MID %d is not tracked", mid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range []struct {
		args []string
		want string // the escaped Subject or Message-ID, so that the output does show it
	}{
		{[]string{"track", "--mid", m}, `\x1b[2J`},
		{[]string{"track", "--mid", m, "--events"}, `\x1b[2J`},
		{[]string{"findevent", "-m", m}, `\x1b[2J`},
		{[]string{"explain", m}, "MID " + m},
		{[]string{"queue", "list"}, "<a@example.org>"},
		{[]string{"queue", "show", m}, `\r\nFake: line\x1b[2J\x00\u2028\u202eevil`},
		{[]string{"queue", "show", m}, `<id\x1b]0;title\x07@client.test>`},
	} {
		out, errs, code := mailgate(t, append(c.args, "--config", g.config)...)
		name := strings.Join(c.args, " ")
		if code != 0 {
			t.Errorf("%s: exit %d: %s", name, code, errs)
			continue
		}
		if bad := rawControl(out); bad != "" {
			t.Errorf("%s prints %s raw:\n%q", name, bad, out)
		}
		if !strings.Contains(out, c.want) {
			t.Errorf("%s lacks %q:\n%s", name, c.want, out)
		}
	}
}

// The printers escape what they are given, whatever its source: a shared
// PostgreSQL store may hold records written by another gateway, and the
// queue's Subject is read from the message itself.
func TestPrintersEscape(t *testing.T) {
	const evil = "x\r\nFake: line\x1b[2J\x00\u2028\u202e\xff"
	now := time.Now()
	tm := tracking.Message{Host: evil, MID: 1, ICID: 1, Status: tracking.Bounced, Sender: evil, RemoteHost: evil,
		Subject: evil, MessageID: evil, Recipients: []tracking.Recipient{{Address: evil, Code: "550", Response: evil}}}
	qm := outbound.QueuedMessage{MID: 1, From: evil, Subject: evil, MessageID: evil, ClientIP: "192.0.2.1", ClientHost: evil,
		Recipients: []outbound.QueuedRecipient{{Addr: evil, Destination: evil, Status: "pending", Reason: evil}}}
	for name, print := range map[string]func(*strings.Builder){
		"track table":    func(b *strings.Builder) { printMessages(b, []tracking.Message{tm}) },
		"track summary":  func(b *strings.Builder) { printSummary(b, &tm) },
		"track timeline": func(b *strings.Builder) { printTimeline(b, []explain.Entry{{Line: tracking.Line{Text: evil}}}, true) },
		"explain aborts": func(b *strings.Builder) {
			printAborts(b, explain.AbortReport{Total: 1, ByHost: []explain.Counted{{Value: evil, Count: 1}}, Patterns: []string{evil}}, "1h")
		},
		"queue list": func(b *strings.Builder) {
			printList(b, control.MessageList{Total: 1, Messages: []outbound.QueuedMessage{qm}}, now)
		},
		"queue show": func(b *strings.Builder) { printMessage(b, qm, now) },
		"workqueue": func(b *strings.Builder) {
			printWorkQueue(b, outbound.WorkQueue{Status: outbound.Status{Destinations: []outbound.DestinationStatus{{Name: evil}}}}, now)
		},
	} {
		var b strings.Builder
		print(&b)
		if bad := rawControl(b.String()); bad != "" {
			t.Errorf("%s prints %s raw:\n%q", name, bad, b.String())
		}
		if !strings.Contains(b.String(), `\x1b[2J`) {
			t.Errorf("%s does not show the text escaped:\n%q", name, b.String())
		}
	}
}
