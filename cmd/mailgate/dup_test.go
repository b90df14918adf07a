package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/tracking"
)

// Issue 13: 255 RCPTs of one mailbox were delivered as 3 copies with 255
// RCPTs upstream. Duplicates now merge at RCPT: the next hop gets one
// transaction with one RCPT per distinct mailbox, the log a RID line per
// accepted RCPT, and tracking one recipient per mailbox with its outcome.
func TestDuplicateRecipientsOneDelivery(t *testing.T) {
	hop := startNextHop(t, 0)
	g, _ := trackGW(t, hop.addr)
	g.start()
	c := smtptest.Dial(t, g.addr, "")
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Cmd("MAIL FROM:<alice@example.org>", "250")
	const copies = 255
	for i := range copies {
		rcpt := "bob@example.net"
		if i%2 == 1 {
			rcpt = "bob@EXAMPLE.NET" // the domain in any case is the same mailbox
		}
		c.Cmd("RCPT TO:<"+rcpt+">", "250")
	}
	c.Cmd("RCPT TO:<Bob@example.net>", "250") // the local part is compared exactly
	c.Cmd("DATA", "354")
	c.Send("Subject: dup\r\nX-Token: dup-1\r\n\r\nonce\r\n.\r\n")
	m := regexp.MustCompile(`Message (\d+) accepted`).FindStringSubmatch(c.Expect("250"))
	if m == nil {
		t.Fatal("no MID in the reply")
	}
	c.Cmd("QUIT", "221")
	mid, _ := strconv.ParseUint(m[1], 10, 64)
	log := g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
	if n := len(regexp.MustCompile(fmt.Sprintf(`MID %d ICID \d+ RID 0 To: `, mid)).FindAllString(log, -1)); n != copies {
		t.Errorf("%d RID 0 lines, want %d", n, copies)
	}
	if !regexp.MustCompile(fmt.Sprintf(`Message done DCID \d+ MID %d to RID \[0, 1\]`, mid)).MatchString(log) {
		t.Errorf("no delivery of RIDs 0 and 1 in:\n%s", log)
	}
	tokens, msgs := hop.delivered()
	if tokens["dup-1"] != 1 || len(msgs) != 1 || !slices.Equal(msgs[0].to, []string{"bob@example.net", "Bob@example.net"}) {
		var rcpts []int
		for _, m := range msgs {
			rcpts = append(rcpts, len(m.to))
		}
		t.Fatalf("next hop got %d copies, with %v RCPTs", tokens["dup-1"], rcpts)
	}

	var ms []tracking.Message
	for i := 0; ; i++ { // the store catches up within the feed's second
		ms = trackJSON(t, g, "--mid", m[1])
		if len(ms) == 1 && allSettled(ms) {
			break
		}
		if i == 100 {
			t.Fatalf("tracking: %+v", ms)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var got []string
	for _, r := range ms[0].Recipients {
		got = append(got, fmt.Sprintf("%d %s %s", r.RID, r.Address, r.Status))
	}
	if want := []string{"0 bob@example.net delivered", "1 Bob@example.net delivered"}; !slices.Equal(got, want) {
		t.Errorf("tracking recipients %q, want %q", got, want)
	}
}
