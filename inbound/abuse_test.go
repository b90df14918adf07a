package inbound_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/smtptest"
)

// abuseConfig is baseConfig's shape (the same verbs) with the sender groups
// the abuse tests need: 127.0.0.5 is rate-limited, 127.0.0.6 gets the
// predefined THROTTLED policy, 127.0.0.7-9 are a sender group with rates for
// the group as a whole, any other address but 127.0.0.1 is an outside client
// with the default limits.
const abuseConfig = `
hostname: mx.test
data_dir: %s
listeners:
  - name: InboundMail
    address: 127.0.0.1:0
    timeouts: {unsuccessful: %s, total: %s}
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}
        - {name: RATED, match: [127.0.0.5], policy: RATED}
        - {name: SUSPECTLIST, match: [127.0.0.6], policy: THROTTLED}
        - {name: BOTS, match: [127.0.0.7-9], policy: GROUPED}
      policies:
        RATED: {action: accept, max_connections_per_minute: 2, max_recipients_per_hour: 3}
        GROUPED: {action: accept, group_max_connections_per_minute: 3, group_max_recipients_per_hour: 2}
    rat:
      - {domain: example.com, action: accept}
      - {domain: ALL, action: reject}
dns: {servers: ["%s"], timeout: 2s}
`

// One address cannot take every slot of a listener with the default
// limits: its 51st connection is refused while another client still gets
// in (issue 13: 999 of 1,000 went to one address).
func TestDefaultConcurrencyPerClient(t *testing.T) {
	h := start(t, opts{yaml: abuseConfig})
	const perClient = 50 // policy.DefaultMaxConcurrencyPerIP, restated so that a change is seen
	for i := range perClient {
		c := h.dial("127.0.0.2")
		if r := c.Reply(); !strings.HasPrefix(r, "220 ") {
			t.Fatalf("connection %d from 127.0.0.2: %q", i+1, r)
		}
	}
	h.dial("127.0.0.2").Expect("421 #4.4.5 Too many connections from your host")
	h.dial("127.0.0.3").Expect("220 mx.test ESMTP")
	h.lines.WaitFor(t, `ended cause=policy .*detail='Too many connections from your host'`)
	if n := len(h.lines.Grep(`Receiving Failed: Connection limit exceeded`)); n != 1 {
		t.Errorf("%d connections refused, want 1", n)
	}
}

// A client over its policy's connection rate is refused at the greeting,
// with its refused attempts counted; other clients are not.
func TestConnectionRate(t *testing.T) {
	h := start(t, opts{yaml: abuseConfig})
	for range 2 {
		c := h.dial("127.0.0.5")
		c.Expect("220")
		c.Cmd("QUIT", "221")
	}
	for range 2 {
		h.dial("127.0.0.5").Expect("421 #4.4.5 Too many connections from your host, slow down")
	}
	h.dial("127.0.0.3").Expect("220")
	h.lines.WaitN(t, 2, `ended cause=policy .*detail='Too many connections from your host, slow down'`)
}

// Max. Recipients Per Hour counts the client's accepted recipients across
// its connections; a duplicate is no new recipient, and the limit's
// refusal is logged as the ESA's injection control.
func TestRecipientRate(t *testing.T) {
	h := start(t, opts{yaml: abuseConfig})
	c := h.dial("127.0.0.5")
	c.Expect("220")
	c.Cmd("EHLO client.example", "250")
	c.Cmd("MAIL FROM:<s@example.org>", "250")
	c.Cmd("RCPT TO:<a@example.com>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("RCPT TO:<a@example.com>", "250") // a duplicate: not counted
	c.Cmd("QUIT", "221")
	c = h.dial("127.0.0.5")
	c.Expect("220")
	c.Cmd("EHLO client.example", "250")
	c.Cmd("MAIL FROM:<s@example.org>", "250")
	c.Cmd("RCPT TO:<c@example.com>", "250")
	c.Cmd("RCPT TO:<d@example.com>", "452 4.5.3 Too many recipients received this hour")
	c.Cmd("RCPT TO:<e@example.com>", "452 4.5.3 Too many recipients received this hour")
	o := h.dial("127.0.0.3") // another client has its own count
	o.Expect("220")
	o.Cmd("EHLO other.example", "250")
	o.Cmd("MAIL FROM:<s@example.org>", "250")
	o.Cmd("RCPT TO:<f@example.com>", "250")
	h.lines.WaitFor(t, `To: <e@example.com> Rejected by Injection Control`)
	if got := h.lines.Grep(`Rejected by`); len(got) != 2 || !strings.HasSuffix(got[0], "To: <d@example.com> Rejected by Injection Control") {
		t.Errorf("refusals:\n%s", strings.Join(got, "\n"))
	}
}

// The group rates count all the clients of a sender group together, each
// client being under any limit of its own; clients of other groups are not
// counted with them.
func TestGroupRates(t *testing.T) {
	h := start(t, opts{yaml: abuseConfig})
	c7 := h.dial("127.0.0.7")
	c7.Expect("220")
	c8 := h.dial("127.0.0.8")
	c8.Expect("220")
	for _, c := range []*smtptest.Conn{c7, c8} {
		c.Cmd("EHLO bot.example", "250")
		c.Cmd("MAIL FROM:<s@example.org>", "250")
	}
	c7.Cmd("RCPT TO:<a@example.com>", "250")
	c8.Cmd("RCPT TO:<b@example.com>", "250")
	c8.Cmd("RCPT TO:<c@example.com>", "452 4.5.3 Too many recipients received this hour")
	h.dial("127.0.0.9").Expect("220") // the group's third connection this minute
	h.dial("127.0.0.9").Expect("421 #4.4.5 Too many connections from your host's sender group, slow down")
	o := h.dial("127.0.0.3")
	o.Expect("220")
	o.Cmd("EHLO other.example", "250")
	o.Cmd("MAIL FROM:<s@example.org>", "250")
	o.Cmd("RCPT TO:<d@example.com>", "250")
	h.lines.WaitFor(t, `ended cause=policy .*detail='Too many connections from your host's sender group, slow down'`)
	h.lines.WaitFor(t, `To: <c@example.com> Rejected by Injection Control`)
}

// The predefined THROTTLED policy has the ESA's suggested limits. A
// duplicate recipient counts toward the recipients of a message, as every
// accepted RCPT does (Postfix's smtpd_recipient_limit), so that a client
// cannot write RID lines without end.
func TestThrottledPolicy(t *testing.T) {
	h := start(t, opts{yaml: abuseConfig})
	c := h.dial("127.0.0.6")
	c.Expect("220")
	if r := c.Cmd("EHLO client.example", "250"); !strings.Contains(r, "SIZE 1048576") {
		t.Errorf("EHLO of a THROTTLED client: %q", r)
	}
	c.Cmd("MAIL FROM:<s@example.org>", "250")
	for i := range 19 {
		c.Cmd(fmt.Sprintf("RCPT TO:<r%d@example.com>", i), "250")
	}
	c.Cmd("RCPT TO:<r0@example.com>", "250") // the 20th RCPT, a duplicate
	c.Cmd("RCPT TO:<r20@example.com>", "452 4.5.3 Too many recipients")
	h.lines.WaitFor(t, `SG SUSPECTLIST match 127\.0\.0\.6`)
}

// Sender-specified routing (the percent hack, bang paths, a quoted @, a
// source route) is refused from a client that may not relay, as the RAT
// refuses a recipient, and accepted from one that may.
func TestSenderRoutingRefused(t *testing.T) {
	h := start(t, opts{yaml: abuseConfig})
	routed := []struct{ rcpt, logged string }{
		{"user%other.example@example.com", "user%other.example@example.com"},
		{"other.example!user@example.com", "other.example!user@example.com"},
		{`"user@other.example"@example.com`, `"user@other.example"@example.com`},
		{"@relay.example:user@example.com", "user@example.com"},
		{"@relay.example,@other.example:user@example.com", "user@example.com"},
	}
	c := h.dial("127.0.0.3")
	c.Expect("220")
	c.Cmd("EHLO client.example", "250")
	c.Cmd("MAIL FROM:<s@example.org>", "250")
	for _, r := range routed {
		c.Cmd("RCPT TO:<"+r.rcpt+">", "550 5.1.0 Address rejected.")
	}
	c.Cmd("RCPT TO:<user@example.com>", "250")
	c.Cmd("QUIT", "221")
	own := h.lines.WaitFor(t, `^mailgate: ICID \d+ ended`)
	if !strings.Contains(own, "detail='(sender-specified routing refused)'") {
		t.Errorf("own line %q does not say why", own)
	}
	got := h.lines.Grep(`Rejected by RAT$`)
	if len(got) != len(routed) {
		t.Fatalf("%d RAT lines, want %d:\n%s", len(got), len(routed), strings.Join(got, "\n"))
	}
	for i, r := range routed {
		if want := "To: <" + r.logged + "> Rejected by RAT"; !strings.HasSuffix(got[i], want) {
			t.Errorf("line %q, want it to end %q", got[i], want)
		}
	}

	// The relay group may route.
	rc := h.dial("127.0.0.1")
	rc.Expect("220")
	rc.Cmd("EHLO client.example", "250")
	rc.Cmd("MAIL FROM:<s@example.org>", "250")
	for _, r := range routed {
		rc.Cmd("RCPT TO:<"+r.rcpt+">", "250")
	}
}

var acceptedRe = regexp.MustCompile(`Message (\d+) accepted`)

// Duplicate recipients of one message are one delivery: every accepted
// RCPT gets its RID line, a duplicate the RID it merged into, and the
// spooled envelope holds each mailbox once. Domains compare without case,
// local parts exactly unless duplicates_ignore_local_case.
func TestDuplicateRecipientsMerged(t *testing.T) {
	rcpts := []string{"a@example.com", "a@EXAMPLE.com", "A@example.com", "a@example.com", "<postmaster>", "postmaster@mx.test"}
	for _, tc := range []struct {
		name      string
		extra     string
		wantRIDs  []int // of each RCPT's line
		wantRcpts []string
	}{
		{"exact local part", "", []int{0, 0, 1, 0, 2, 2}, []string{"a@example.com", "A@example.com", "postmaster@mx.test"}},
		{"any case", "    duplicates_ignore_local_case: true\n", []int{0, 0, 0, 0, 1, 1}, []string{"a@example.com", "postmaster@mx.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := strings.Replace(abuseConfig, "    timeouts:", tc.extra+"    timeouts:", 1)
			h := start(t, opts{yaml: yaml})
			c := h.dial("127.0.0.1")
			c.Expect("220")
			c.Cmd("EHLO client.example", "250")
			c.Cmd("MAIL FROM:<s@example.org>", "250")
			for _, r := range rcpts {
				if !strings.HasPrefix(r, "<") {
					r = "<" + r + ">"
				}
				c.Cmd("RCPT TO:"+r, "250")
			}
			c.Cmd("DATA", "354")
			c.Send("Subject: dup\r\n\r\nx\r\n.\r\n")
			m := acceptedRe.FindStringSubmatch(c.Expect("250"))
			if m == nil {
				t.Fatal("no MID in the reply")
			}
			h.lines.WaitFor(t, `queued for delivery`)
			lines := h.lines.Grep(` RID \d+ To: `)
			if len(lines) != len(rcpts) {
				t.Fatalf("%d RID lines for %d RCPTs:\n%s", len(lines), len(rcpts), strings.Join(lines, "\n"))
			}
			for i, l := range lines {
				addr := strings.Trim(rcpts[i], "<>")
				if want := fmt.Sprintf(" RID %d To: <%s>", tc.wantRIDs[i], addr); !strings.HasSuffix(l, want) {
					t.Errorf("line %q, want it to end %q", l, want)
				}
			}
			mid, _ := strconv.ParseUint(m[1], 10, 64)
			env, _, err := h.spool.Read(mid)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, r := range env.Rcpts {
				if r.RID != i {
					t.Errorf("recipient %d has RID %d", i, r.RID)
				}
				got = append(got, r.Addr)
			}
			if strings.Join(got, " ") != strings.Join(tc.wantRcpts, " ") {
				t.Errorf("spooled recipients %q, want %q", got, tc.wantRcpts)
			}
		})
	}
}

// An IPv6 client goes through the same per-client limits, keyed by its
// network (policy.ClientKey; the /64 grouping is tested there, as this
// machine has no second IPv6 address to connect from).
func TestIPv6ClientLimit(t *testing.T) {
	yaml := strings.NewReplacer(
		"address: 127.0.0.1:0", `address: "[::1]:0"`,
		"match: [127.0.0.1]", `match: ["::1"]`,
		"policy: RELAYED}", "policy: ONE}",
		"policies:\n", "policies:\n        ONE: {action: relay, max_concurrency_per_ip: 1}\n",
	).Replace(abuseConfig)
	h := start(t, opts{yaml: yaml})
	c := h.dial("::1")
	c.Expect("220")
	h.dial("::1").Expect("421 #4.4.5 Too many connections from your host")
	c.Cmd("QUIT", "221")
	h.lines.WaitFor(t, `ended cause=quit`)
	h.dial("::1").Expect("220") // the slot was released
}
