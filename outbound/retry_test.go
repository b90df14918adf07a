package outbound_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/smtp"
)

// TestRetryThenSuccess: a host that says 451 twice, then takes the message.
func TestRetryThenSuccess(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	var mu sync.Mutex
	tries := 0
	h.rcpt = func(string) smtp.Reply {
		mu.Lock()
		defer mu.Unlock()
		if tries++; tries <= 2 {
			return smtp.Reply{Code: 451, Text: "Temporary local problem, try later"}
		}
		return smtp.Reply{}
	}
	h.serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"),
		yaml: deliveryYAML(port, "  bounce: {initial_retry: 50ms, max_retry: 80ms}\n")})
	mid := g.message("alice@gw.test", "bob@d.test")
	g.finished(mid)

	delayed := g.lines.Grep(fmt.Sprintf(`^Delayed: DCID \d+ MID %d `, mid))
	pending := g.lines.Grep(fmt.Sprintf(`^MID %d to RID \[0\] pending till .* \[Default\]$`, mid))
	if len(delayed) != 2 || len(pending) != 2 {
		t.Fatalf("want 2 Delayed and 2 pending lines, got\n%s", strings.Join(g.lines.Snapshot(), "\n"))
	}
	// No enhanced code in the reply: one derived for a RCPT, as the ESA does.
	want := "Delayed: DCID N MID N From: <alice@gw.test> To: <bob@d.test> RID 0 - 4.1.0 - Unknown address error ('451', ['Temporary local problem, try later'])"
	if normalize(delayed[0]) != want {
		t.Errorf("Delayed line\n%s\nwant\n%s", normalize(delayed[0]), want)
	}
	if n := len(h.messages()); n != 1 {
		t.Errorf("the host got %d messages, want 1", n)
	}
	if n := len(g.lines.Grep(`^Delivery start `)); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

// TestHardFailures covers the replies that bounce at once, at each step,
// with and without an enhanced status code, and the DSN each gives.
func TestHardFailures(t *testing.T) {
	cases := []struct {
		name     string
		rcpt     smtp.Reply
		data     smtp.Reply
		status   string
		logReply string
	}{
		{"rcpt-enhanced", smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such user"}, smtp.Reply{}, "5.1.1",
			"5.1.1 - Bad destination email address ('550', ['5.1.1 No such user'])"},
		{"rcpt-plain", smtp.Reply{Code: 550, Text: "Relaying denied"}, smtp.Reply{}, "5.1.0",
			"5.1.0 - Unknown address error ('550', ['Relaying denied'])"},
		{"rcpt-esa-style", smtp.Reply{Code: 553, Text: "#5.1.8 Domain of sender address does not exist"}, smtp.Reply{}, "5.1.8",
			"5.1.8 - Bad sender's system address ('553', ['#5.1.8 Domain of sender address does not exist'])"},
		{"data-plain", smtp.Reply{}, smtp.Reply{Code: 554, Text: "Message refused"}, "5.3.0",
			"5.3.0 - Other or undefined mail system status ('554', ['Message refused'])"},
		{"data-size", smtp.Reply{}, smtp.Reply{Code: 552, Text: "Too big"}, "5.3.4",
			"5.3.4 - Message too big for system ('552', ['Too big'])"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3")
			h := newHop(t)
			h.rcpt = func(string) smtp.Reply { return c.rcpt }
			h.data = func([]byte) smtp.Reply { return c.data }
			h.serve(lns[0])
			senders := newHop(t).serve(lns[1])
			g := newGateway(t, setup{zone: append(mxZone("d.test", "127.0.0.2"), mxZone("s.test", "127.0.0.3")...), yaml: deliveryYAML(port, "")})
			mid := g.message("alice@s.test", "bob@d.test")
			g.finished(mid)
			bounced := g.lines.Grep(fmt.Sprintf(`^Bounced: DCID \d+ MID %d `, mid))
			want := "Bounced: DCID N MID N From: <alice@s.test> To: <bob@d.test> RID 0 - " + c.logReply
			if len(bounced) != 1 || normalize(bounced[0]) != want {
				t.Fatalf("Bounced lines %q\nwant %q", bounced, want)
			}
			g.lines.WaitN(t, 2, `^Message finished MID \d+ done$`)
			dsns := senders.messages()
			if len(dsns) != 1 {
				t.Fatalf("sender got %d DSNs", len(dsns))
			}
			checkDSN(t, dsns[0].data, map[string]string{"bob@d.test": c.status})
		})
	}
}

// TestDoubleBounce: a bounce (null sender) that bounces is dropped and
// logged, and generates no DSN.
func TestDoubleBounce(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	h.rcpt = func(string) smtp.Reply { return smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such user"} }
	h.serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "")})
	mid := g.message("", "bob@d.test")
	g.finished(mid)
	want := fmt.Sprintf("Double bounce: Message %d to 0 - 5.1.1 - Bad destination email address", mid)
	if got := g.lines.Grep(`^Double bounce: `); len(got) != 1 || got[0] != want {
		t.Errorf("Double bounce lines %q, want %q", got, want)
	}
	if got := g.lines.Grep(`generated for bounce|ICID 0`); len(got) != 0 {
		t.Errorf("a DSN for a bounce: %q", got)
	}
}

// TestNoBounces: send_bounces false logs the bounce and sends no DSN.
func TestNoBounces(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	h.rcpt = func(string) smtp.Reply { return smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such user"} }
	h.serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "  bounce: {send_bounces: false}\n")})
	mid := g.message("alice@gw.test", "bob@d.test")
	g.finished(mid)
	if got := g.lines.Grep(`^Bounced: `); len(got) != 1 {
		t.Errorf("Bounced lines %q", got)
	}
	if got := g.lines.Grep(`generated for bounce|ICID 0|Double bounce`); len(got) != 0 {
		t.Errorf("a DSN with send_bounces false: %q", got)
	}
}

// TestExpiry: a recipient that keeps failing softly bounces with 5.4.7 once
// its time in the queue is over, or after max_retries; the DSN says why
// the last attempt failed.
func TestExpiry(t *testing.T) {
	cases := []struct {
		name   string
		bounce string
		tries  int // attempts expected
	}{
		{"time", "{initial_retry: 20ms, max_retry: 40ms, max_time_in_queue: 300ms, max_retries: 1000}", 0},
		{"retries", "{initial_retry: 10ms, max_retry: 10ms, max_retries: 2}", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3")
			h := newHop(t)
			h.rcpt = func(string) smtp.Reply { return smtp.Reply{Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"} }
			h.serve(lns[0])
			senders := newHop(t).serve(lns[1])
			g := newGateway(t, setup{zone: append(mxZone("d.test", "127.0.0.2"), mxZone("s.test", "127.0.0.3")...),
				yaml: deliveryYAML(port, "  bounce: "+c.bounce+"\n")})
			mid := g.message("alice@s.test", "bob@d.test")
			g.finished(mid)
			want := "Bounced: DCID N MID N From: <alice@s.test> To: <bob@d.test> RID 0 - 5.4.7 - Delivery expired (message too old) ('000', ['timeout'])"
			got := g.lines.Grep(fmt.Sprintf(`^Bounced: DCID \d+ MID %d `, mid))
			if len(got) != 1 || normalize(got[0]) != want {
				t.Fatalf("Bounced lines %q, want %q", got, want)
			}
			if c.tries > 0 {
				if n := len(g.lines.Grep(fmt.Sprintf(`^Delivery start DCID \d+ MID %d `, mid))); n != c.tries {
					t.Errorf("%d attempts, want %d", n, c.tries)
				}
			}
			g.lines.WaitN(t, 2, `^Message finished MID \d+ done$`)
			dsns := senders.messages()
			if len(dsns) != 1 {
				t.Fatalf("sender got %d DSNs", len(dsns))
			}
			checkDSN(t, dsns[0].data, map[string]string{"bob@d.test": "5.4.7"})
			if !strings.Contains(string(dsns[0].data), "452 4.2.2 Mailbox full") {
				t.Errorf("the DSN does not give the last failure:\n%s", dsns[0].data)
			}
		})
	}
}

// TestNXDomain: a domain that does not exist bounces at once, with DCID 0
// and the ESA's text.
func TestNXDomain(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.3")
	senders := newHop(t).serve(lns...)
	g := newGateway(t, setup{zone: mxZone("s.test", "127.0.0.3"), yaml: deliveryYAML(port, "")})
	mid := g.message("alice@s.test", "bob@nx.test")
	g.finished(mid)
	want := fmt.Sprintf("Bounced: DCID 0 MID %d From: <alice@s.test> To: <bob@nx.test> RID 0 - 5.1.2 - Bad destination host ('000', ['DNS Hard Error looking up nx.test (MX): NXDomain'])", mid)
	if got := g.lines.Grep(`^Bounced: `); len(got) != 1 || got[0] != want {
		t.Errorf("Bounced lines %q\nwant %q", got, want)
	}
	if got := g.lines.Grep(`DCID [1-9]\d* .*MID ` + fmt.Sprint(mid) + `\b`); len(got) != 0 {
		t.Errorf("a connection for a domain that does not exist: %q", got)
	}
	g.lines.WaitN(t, 2, `^Message finished MID \d+ done$`)
	g.lines.WaitFor(t, `^DCID \d+ close$`)
	var all []string
	for _, l := range g.lines.Snapshot() {
		all = append(all, normalize(l))
	}
	compareGolden(t, "testdata/bounced.golden", all)
	if dsns := senders.messages(); len(dsns) != 1 {
		t.Errorf("sender got %d DSNs", len(dsns))
	} else {
		checkDSN(t, dsns[0].data, map[string]string{"bob@nx.test": "5.1.2"})
	}
}

// TestNullMX: a domain that says it takes no mail (RFC 7505) bounces at
// once.
func TestNullMX(t *testing.T) {
	g := newGateway(t, setup{zone: []string{"d.test. 60 IN MX 0 ."}, yaml: deliveryYAML(2525, "  bounce: {send_bounces: false}\n")})
	mid := g.message("alice@gw.test", "bob@d.test")
	g.finished(mid)
	want := fmt.Sprintf("Bounced: DCID 0 MID %d From: <alice@gw.test> To: <bob@d.test> RID 0 - 5.1.10 - Recipient address has null MX ('000', ['Domain d.test has a null MX (RFC 7505)'])", mid)
	if got := g.lines.Grep(`^Bounced: `); len(got) != 1 || got[0] != want {
		t.Errorf("Bounced lines %q\nwant %q", got, want)
	}
}

// TestDNSTemporaryFailure: a DNS server that does not answer defers the
// recipients with DCID 0.
func TestDNSTemporaryFailure(t *testing.T) {
	g := newGateway(t, setup{defer_: true, yaml: deliveryYAML(2525, "")})
	// A resolver that asks a port where nothing answers.
	g.cfg.DNS.Servers = []string{"127.0.0.1:9"}
	g.cfg.DNS.Timeout = 100 * time.Millisecond
	g.start()
	mid := g.message("alice@gw.test", "bob@d.test")
	got := g.lines.WaitFor(t, fmt.Sprintf(`^Delayed: DCID 0 MID %d `, mid))
	if !strings.Contains(got, "RID 0 - 4.4.3 - Directory server failure ('000', ['DNS Temporary Failure looking up d.test (MX): ") {
		t.Errorf("Delayed line %q", got)
	}
	g.lines.WaitFor(t, fmt.Sprintf(`^MID %d to RID \[0\] pending till `, mid))
}
