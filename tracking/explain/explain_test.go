package explain_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
	"github.com/mailgate/mailgate/tracking/explain/explaintest"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
)

// load imports log files into a new store as host gw1.
func load(t *testing.T, files ...string) tracking.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	im := &tracking.Importer{Tracker: tracking.NewTracker(s, tracking.Options{}), Host: "gw1", Location: time.UTC}
	for _, f := range files {
		if err := im.ImportFile(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// gateway is gw1 with its listener on interface Management at port 2525.
var gateway = explain.Gateway{Host: "gw1", Listeners: []explain.Listener{
	{Interface: "Management", Addr: netip.MustParseAddrPort("127.0.0.1:2525")},
	{Interface: "Other", Addr: netip.MustParseAddrPort("127.0.0.1:2526")},
}}

// explainAll explains every message of s, checks that each explanation
// quotes only lines of its record, and returns them by MID as text.
func explainAll(t *testing.T, s tracking.Store) map[uint64]string {
	t.Helper()
	ctx := context.Background()
	ms, err := s.Search(ctx, tracking.Query{Limit: tracking.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]string{}
	for _, q := range ms {
		m, conns, err := s.Find(ctx, q.Host, q.MID)
		if err != nil {
			t.Fatal(err)
		}
		x := explain.Message(m, conns, gateway)
		explaintest.Check(t, "MID "+strconv.FormatUint(m.MID, 10), x, explain.Timeline(m, conns))
		out[m.MID] = x.Summary + "\n" + strings.Join(x.Why, "\n") + "\n" + strings.Join(x.Next, "\n")
	}
	return out
}

// TestExplainFold: each way a message ends, in mailgate's log and in an
// ESA's, is explained in its own words, and only with lines it has.
func TestExplainFold(t *testing.T) {
	files, err := filepath.Glob("../testdata/fold/*.log")
	if err != nil || len(files) < 15 {
		t.Fatalf("fold logs: %v %v", files, err)
	}
	got := explainAll(t, load(t, files...))
	for _, w := range []struct {
		mid     uint64
		want    []string
		notWant []string
	}{
		// RST in DATA, mailgate's log: the listener's own port.
		{11, []string{"Aborted during the DATA stage, after 65536 bytes of DATA: the connection was reset (TCP RST)", `"ICID 10 lost" precedes it`,
			"host 192.0.2.7 and port 2525)", "cause=peer-reset"}, []string{"port 25)", "timeout"}},
		// QUIT in RCPT.
		{21, []string{"Aborted by the sender during the RCPT stage: the client sent QUIT", "The gateway did not refuse anything."}, nil},
		// A lone "Receiving aborted" of an ESA: not blamed on a timeout.
		{31, []string{"Receiving aborted during the RCPT stage: the connection was lost or a timeout or limit ended it; the ESA's log does not say which",
			"was logged 5m0s earlier: a silence that long fits a timeout", "port PORT, PORT being the port of the listener on interface Data 1 (10.0.0.1)"},
			[]string{"port 25", "unsuccessful-connection timeout"}},
		// ESA, lost.
		{41, []string{"the connection was lost", `"ICID 40 lost" precedes it`, "the ESA's log does not say which"}, nil},
		// RAT: quotes the RAT's line, not a "Receiving Failed" that is not there.
		{71, []string{"refused every recipient", `"MID 71 ICID 70 To: <postmaster@elsewhere.example> Rejected by RAT"`, "Recipient Access Table"},
			[]string{"Receiving Failed"}},
		{72, []string{`"ICID 73 Receiving Failed: Message size exceeds limit"`, "max_message_size"}, nil},
		{201, []string{"Aborted during the RCPT stage: the client sent more bad commands than the listener allows", `The bad commands logged begin with "ICID 200 Unknown command: FOO"`},
			[]string{"timeout"}},
		{271, []string{"Aborted during the RCPT stage: a read or write on the connection failed", "detail='write: i/o timeout'", "and port 2525)"}, nil},
		{281, []string{"Aborted during the RCPT stage: the client sent no command within the listener's idle timeout"}, []string{"unsuccessful"}},
		{286, []string{"before the reply it had to wait for"}, nil},
		{211, []string{"Aborted during the RCPT stage: the gateway was stopping"}, []string{"timeout"}},
		{216, []string{"Aborted during the DATA stage, after 4096 bytes of DATA: the connection reached the listener's total connection time limit", "exceeded allowable connection time"}, nil},
		// swaks --to bob.
		{221, []string{"Rejected: the gateway refused every recipient", `"ICID 220 MID 221 Invalid recipient address: Bad recipient address syntax: 'RCPT TO:<bob>'"`,
			"without a domain"}, []string{"Aborted by the sender", "did not refuse anything"}},
		// MAIL, RCPT, RSET: a reset in RCPT, not a QUIT in HELO.
		{231, []string{"Aborted by the sender during the RCPT stage: the client threw the open message away with RSET or a new HELO/EHLO"}, []string{"QUIT before", "HELO stage"}},
		{241, []string{"RSET or a new HELO/EHLO", "A later message on the same connection (MID 242)"}, nil},
		{242, []string{"QUIT, RSET or a new HELO/EHLO before the message was complete; the ESA's log does not say which"}, nil},
		{251, []string{"unsuccessful-connection timeout", `"ICID 250 disconnected address 198.51.100.25, no messages injected within timeout period"`}, nil},
		{261, []string{"Bounced by the gateway: content filter 'block_exe' in the inbound table refused the message after it was accepted; the sender gets a bounce."}, []string{"Dropped", "nobody was told"}},
		{262, []string{"Injection aborted"}, []string{"Dropped"}},
		{263, []string{"Queued", `"MID 263 ready 1200 bytes from <user15@fjvco.example>"`}, nil},
		// "Message finished ... done" closes the record even when the log
		// shows no recipient's end.
		{301, []string{`Quarantined: the gateway accepted the message and holds it in the "Policy" quarantine`, `"MID 301 quarantined to "Policy" (DLP violation)"`, "release it"}, []string{"Delivered"}},
		{303, []string{"Dropped"}, nil},
		{304, []string{"holds it in the spam quarantine", `"Message done DCID 391 MID 304 to RID [0] (external quarantine)"`, "ok:  Message 30631622 accepted"}, []string{"Delivered", "next hop"}},
		{305, []string{"Accepted, and it was released from the spam quarantine as MID 306: follow that message.", `"EUQ: Reinjected MID 305 as MID 306"`}, []string{"no delivery attempt"}},
		{306, []string{"Delivered", "MID 305 (reinjected from)"}, nil},
		// Split, rewritten, generated: each side says what the other is,
		// with the line that links them.
		{307, []string{"Delivered: the next hop accepted 1 recipient.", "MID 308 (split off)", "MID 309 (generated copy)",
			`<u8@mycompany.example> went on as MID 308, split off by the end-user safelist/blocklist: the log says "MID 307 was split creating MID 308 due to a SL/BL configuration for following recipients: u8@mycompany.example"; follow MID 308 for it.`},
			[]string{"does not show how each recipient ended"}},
		{308, []string{"MID 307 (split from)", `It was split off MID 307 with <u8@mycompany.example>, by the end-user safelist/blocklist: the log says "MID 307 was split creating MID 308`}, nil},
		{309, []string{"MID 307 (generated from)", `It is a copy the gateway made from MID 307 by bcc filter 'FireEye_BCC': the log says "MID 309 was generated based on MID 307 by bcc filter 'FireEye_BCC'"`},
			[]string{"being received"}},
		{311, []string{"Dropped", "dontsend"}, nil},
		{312, []string{"MID 313 (rewritten as)", "Accepted, and it was rewritten as MID 313 by antispam (alt-rcpt-to) filter 'unknown', which holds its recipients: follow that message."},
			[]string{"being received"}},
		{313, []string{"MID 312 (rewritten from)", `It is MID 312 rewritten by antispam (alt-rcpt-to) filter 'unknown': the log says "MID 312 rewritten to MID 313`}, []string{"being received"}},
		// mailgate's split: the parent says where the moved recipient
		// went, the child where it came from; a dropped child too.
		{601, []string{"Delivered: the next hop accepted 2 recipients.", "It came from 127.0.0.1 (localhost, ICID 600).",
			`<x@example.net> went on as MID 602, split off by the per-recipient policy DEFAULT: the log says "MID 601 was split creating MID 602 due to a per-recipient policy DEFAULT"; follow MID 602 for it.`},
			nil},
		{602, []string{"Delivered: the next hop accepted 1 recipient.", "It came from 127.0.0.1 (localhost, ICID 600).",
			`It was split off MID 601 with <x@example.net>, by the per-recipient policy DEFAULT: the log says "MID 601 was split creating MID 602 due to a per-recipient policy DEFAULT".`},
			nil},
		{612, []string{"Dropped: Dropped by antispam.", "It was split off MID 611 with <x@example.net>"}, nil},
		// An ESA's safelist/blocklist split of every recipient.
		{24711507, []string{"Split: the gateway accepted the message and every recipient went on as another message: MID 24711528 (<user37@mycompany.com>) and MID 24711529 (<user25@mycompany.com>, <user26@mycompany.com>)",
			`<user25@mycompany.com> and <user26@mycompany.com> went on as MID 24711529, split off by the end-user safelist/blocklist: the log says "MID 24711507 was split creating MID 24711529 due to a SL/BL configuration for following recipients: user25@mycompany.com, user26@mycompany.com"; follow MID 24711529 for them.`,
			"'mailgate explain 24711528' and 'mailgate explain 24711529'"}, nil},
		{24711529, []string{"Bounced: delivery to 1 recipient failed for good.", "It came from 69.67.18.139 (mail.fjvco.com, ICID 60240302).", "It was split off MID 24711507 with <user25@mycompany.com> and <user26@mycompany.com>"}, nil},
		// SPF refused at MAIL FROM: which check, which record, what to fix.
		{401, []string{"Rejected at MAIL FROM by SPF: the sender's domain does not authorize the sending host", `"MID 401 SPF: mailfrom identity alice@example.org Fail (v=spf1)"`,
			"the SPF record of example.org does not list 192.0.2.7", "the owner of example.org must add it", "'dig TXT example.org'",
			`"ICID 400 Receiving Failed: SPF unauthorized mail is prohibited."`}, []string{"end of DATA", "DMARC"}},
		{411, []string{"Deferred at MAIL FROM", "451 4.4.3", "TempError", "The DNS servers of slow.example must answer", "'dig NS slow.example'", "will retry"},
			[]string{"does not list", "Rejected"}},
		// DMARC refused at the end of DATA: the alignment and the broken
		// signature, from the lines.
		{421, []string{"Rejected at the end of DATA by DMARC", "DMARC check of bank.example", "SPF passed for other.example, which is not bank.example's domain (not aligned)",
			"the DKIM signature of bank.example (selector s1) did not verify: body hash did not verify", "The owner of bank.example must", "'dig TXT _dmarc.bank.example'",
			`"ICID 420 Receiving Failed: DMARC unauthenticated mail is prohibited."`}, []string{"MAIL FROM by SPF"}},
		// A DMARC failure accepted (the quarantine tag): what the log
		// proves, and that it does not show the tag.
		{431, []string{"Queued", "It failed DMARC, and the gateway accepted it", "news.shop.example", "the log shows no DKIM signature",
			"The log does not record the policy news.shop.example publishes", "there is none here, so it took no action"},
			[]string{"was tagged for quarantine", "quarantined because"}},
		// DMARC's quarantine action: held (the domain's policy from the
		// action line), tagged without a work queue (its line quoted),
		// held and released.
		{941, []string{`holds it in the "Policy" quarantine; it was not delivered. It was quarantined because DMARC failed for example.org (p=quarantine).`,
			`The listener's policy quarantines such mail: "MID 941 DMARC: Message from domain example.org, policy quarantine, action quarantine".`,
			`"MID 941 quarantined to "Policy" (DMARC)"`, "'dig TXT _dmarc.example.org'"}, []string{"tagged", "took no action", "does not record"}},
		{942, []string{"Queued", "It was tagged for quarantine because DMARC failed for shop.example (p=reject, which its pct= made quarantine for this message): " +
			`"MID 942 DMARC: Message from domain shop.example, policy reject, applied quarantine, action tag X-Mailgate-DMARC"`,
			"X-Mailgate-DMARC: quarantine header field", "configure mail_policies"}, []string{"does not record", "took no action", "holds it in"}},
		{943, []string{"Delivered", "quarantined it for DMARC failing for example.org (p=quarantine), and it was released: " +
			`"MID 943 released from quarantine "Policy" (manual)"`}, []string{"does not record", "tagged"}},
		{451, []string{"A DNS list placed its client in its sender group", "match dnslist[zen.spamhaus.org:127.0.0.10-127.0.0.11]"}, []string{"DMARC"}},
		{24611507, []string{"Accepted, and the gateway finished with it", `"Message finished MID 24611507 done", with no delivery, bounce or drop line for 1 recipient`}, nil},
	} {
		x, ok := got[w.mid]
		if !ok {
			t.Errorf("MID %d: no message", w.mid)
			continue
		}
		for _, s := range w.want {
			if !strings.Contains(x, s) {
				t.Errorf("MID %d: the explanation lacks %q:\n%s", w.mid, s, x)
			}
		}
		for _, s := range w.notWant {
			if strings.Contains(x, s) {
				t.Errorf("MID %d: the explanation says %q:\n%s", w.mid, s, x)
			}
		}
	}
}

// TestExplainSamples: every message of the real ESA samples gets an
// explanation that quotes only its own lines.
func TestExplainSamples(t *testing.T) {
	files, err := filepath.Glob("../../maillog/testdata/*.log")
	if err != nil || len(files) < 7 {
		t.Fatalf("samples: %v %v", files, err)
	}
	if n := len(explainAll(t, load(t, files...))); n < 50 {
		t.Errorf("%d messages explained", n)
	}
}

// TestCapturePort: the capture names the port only for this gateway's own
// records, and only when one listener has the connection's interface.
func TestCapturePort(t *testing.T) {
	s := load(t, "../testdata/fold/rst.log")
	m, conns, err := s.Find(context.Background(), "gw1", 11)
	if err != nil {
		t.Fatal(err)
	}
	two := []explain.Listener{
		{Interface: "Management", Addr: netip.MustParseAddrPort("127.0.0.1:2525")},
		{Interface: "Management", Addr: netip.MustParseAddrPort("[::]:2587")},
	}
	for _, tc := range []struct {
		name string
		gw   explain.Gateway
		want string
	}{
		{"this gateway", gateway, "and port 2525)"},
		{"another gateway's record", explain.Gateway{Host: "gw2", Listeners: gateway.Listeners}, "port PORT, PORT being the port of the listener on interface Management (127.0.0.1)"},
		{"two listeners fit", explain.Gateway{Host: "gw1", Listeners: two}, "port PORT"},
		{"no configuration", explain.Gateway{}, "port PORT"},
	} {
		x := explain.Message(m, conns, tc.gw)
		if all := strings.Join(x.Next, "\n"); !strings.Contains(all, tc.want) {
			t.Errorf("%s: the next steps lack %q:\n%s", tc.name, tc.want, all)
		}
	}
}

// TestLinks: a bounce and the message it is of point at each other, from
// the one line that links them, and the explanation names the other.
func TestLinks(t *testing.T) {
	s := load(t, "../testdata/fold/bounce.log")
	for _, w := range []struct {
		mid  uint64
		want explain.Link
	}{
		{51, explain.Link{MID: 53, Relation: explain.RelBounce, Line: "MID 53 generated for bounce of MID 51"}},
		{53, explain.Link{MID: 51, Relation: explain.RelBounceOf, Line: "MID 53 generated for bounce of MID 51"}},
	} {
		m, conns, err := s.Find(context.Background(), "gw1", w.mid)
		if err != nil {
			t.Fatal(err)
		}
		if got := explain.Links(m); len(got) != 1 || got[0] != w.want {
			t.Errorf("MID %d: links %+v, want %+v", w.mid, got, w.want)
		}
		x := explain.Message(m, conns, gateway)
		if want := fmt.Sprintf("MID %d (%s)", w.want.MID, w.want.Relation); !strings.Contains(strings.Join(x.Why, "\n"), want) {
			t.Errorf("MID %d: the explanation lacks %q: %q", w.mid, want, x.Why)
		}
	}
}

// TestExplainConn: a connection a DNS list refused, which carries no
// message: the list, the rule, how to see the listing, what to do.
func TestExplainConn(t *testing.T) {
	s := load(t, "../testdata/fold/auth.log")
	b, err := s.Load(context.Background(), tracking.Keys{Conns: []tracking.ConnKey{
		{Host: "gw1", Kind: event.InboundConn, ID: 440}, {Host: "gw1", Kind: event.InboundConn, ID: 450}, {Host: "gw1", Kind: event.InboundConn, ID: 400}}})
	if err != nil || len(b.Conns) != 3 {
		t.Fatalf("%v, %d connections", err, len(b.Conns))
	}
	want := map[uint64]struct{ want, notWant []string }{
		440: {[]string{"Refused at connect: the DNS list zen.spamhaus.org lists 192.0.2.11, and its rule placed the client in sender group BLOCKED, whose policy refuses connections (REJECT).",
			`"ICID 440 REJECT SG BLOCKED match dnslist[zen.spamhaus.org:127.0.0.2-127.0.0.11] SBRS not enabled"`,
			"'dig +short A 11.2.0.192.zen.spamhaus.org'", "The administrator of 192.0.2.11 must find out why it is listed", "a sender group placed before BLOCKED",
			"cause=policy"}, nil},
		450: {[]string{"Accepted at connect: the DNS list zen.spamhaus.org lists 192.0.2.12", "sender group SUSPECT (ACCEPT)"}, []string{"removal", "Refused"}},
		400: {[]string{"The HAT placed 192.0.2.7 in sender group None (ACCEPT)."}, []string{"DNS list"}},
	}
	for _, c := range b.Conns {
		x, ok := explain.Conn(c)
		if !ok {
			t.Errorf("ICID %d: no explanation", c.ID)
			continue
		}
		explaintest.Check(t, fmt.Sprintf("ICID %d", c.ID), x, explain.Timeline(&tracking.Message{}, []*tracking.Conn{c}))
		text := x.Summary + "\n" + strings.Join(x.Why, "\n") + "\n" + strings.Join(x.Next, "\n")
		for _, w := range want[c.ID].want {
			if !strings.Contains(text, w) {
				t.Errorf("ICID %d: the explanation lacks %q:\n%s", c.ID, w, text)
			}
		}
		for _, w := range want[c.ID].notWant {
			if strings.Contains(text, w) {
				t.Errorf("ICID %d: the explanation says %q:\n%s", c.ID, w, text)
			}
		}
	}
}

// TestExplainSPFResults: each SPF result a policy can refuse on says what
// it proves about the record, and what its owner must fix.
func TestExplainSPFResults(t *testing.T) {
	for _, tt := range []struct{ result, summary, why, next string }{
		{"Fail", "does not authorize", "does not list 2001:db8::7 and says that mail from any other host is not its own (-all)", "must add it to the domain's SPF record"},
		{"SoftFail", "does not authorize", "does not list 2001:db8::7 and asks", "must add it"},
		{"Neutral", "says nothing about the sending host", "(?all)", "must add it"},
		{"None", "publishes no SPF record", "publishes no SPF record (no TXT record beginning v=spf1)", "should publish an SPF record"},
		{"PermError", "cannot be evaluated", "more than the 10 DNS lookups", "must fix its SPF record"},
	} {
		log := "Mon Nov 23 15:00:00 2026 Info: New SMTP ICID 1 interface Management (127.0.0.1) address 2001:db8::7 reverse dns host unknown verified no\n" +
			"Mon Nov 23 15:00:01 2026 Info: Start MID 2 ICID 1\n" +
			"Mon Nov 23 15:00:01 2026 Info: MID 2 ICID 1 From: <a@example.org>\n" +
			"Mon Nov 23 15:00:01 2026 Info: MID 2 SPF: mailfrom identity a@example.org " + tt.result + " (v=spf1)\n" +
			"Mon Nov 23 15:00:01 2026 Info: ICID 1 Receiving Failed: SPF unauthorized mail is prohibited.\n" +
			"Mon Nov 23 15:00:01 2026 Info: Message finished MID 2 aborted\n"
		path := filepath.Join(t.TempDir(), "spf.log")
		if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
			t.Fatal(err)
		}
		x := explainAll(t, load(t, path))[2]
		for _, w := range []string{"Rejected at MAIL FROM by SPF: ", tt.summary, tt.why, tt.next, "'dig TXT example.org'"} {
			if !strings.Contains(x, w) {
				t.Errorf("%s: the explanation lacks %q:\n%s", tt.result, w, x)
			}
		}
	}
}

// TestExplainDMARCErrors: a DMARC record that cannot be used, and one that
// cannot be looked up, refused or deferred by the listener's policy.
func TestExplainDMARCErrors(t *testing.T) {
	for _, tt := range []struct{ result, reason string }{
		{"permerror", "DMARC unauthenticated mail is prohibited."},
		{"temperror", "Unable to perform DMARC verification."},
	} {
		log := "Mon Nov 23 15:00:00 2026 Info: New SMTP ICID 1 interface Management (127.0.0.1) address 192.0.2.1 reverse dns host unknown verified no\n" +
			"Mon Nov 23 15:00:01 2026 Info: Start MID 2 ICID 1\n" +
			"Mon Nov 23 15:00:01 2026 Info: MID 2 ICID 1 From: <a@other.example>\n" +
			"Mon Nov 23 15:00:01 2026 Info: MID 2 ICID 1 RID 0 To: <b@mycompany.example>\n" +
			"Mon Nov 23 15:00:02 2026 Info: MID 2 DMARC: Message from domain broken.example, DMARC " + tt.result + " (SPF aligned False, DKIM aligned False)\n" +
			"Mon Nov 23 15:00:02 2026 Info: ICID 1 Receiving Failed: " + tt.reason + "\n" +
			"Mon Nov 23 15:00:02 2026 Info: Message finished MID 2 aborted\n"
		path := filepath.Join(t.TempDir(), "dmarc.log")
		if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
			t.Fatal(err)
		}
		x := explainAll(t, load(t, path))[2]
		want := map[string][]string{
			"permerror": {"Rejected at the end of DATA by DMARC: the DMARC record of broken.example could not be used", "PermError means the DMARC record of broken.example (at _dmarc.broken.example) is malformed",
				"must fix its DMARC record: 'dig TXT _dmarc.broken.example'"},
			"temperror": {"Deferred at the end of DATA: the DMARC policy of broken.example could not be looked up", "451 4.7.1", "TempError means the DNS query for _dmarc.broken.example",
				"The DNS servers of broken.example must answer"},
		}[tt.result]
		for _, w := range want {
			if !strings.Contains(x, w) {
				t.Errorf("%s: the explanation lacks %q:\n%s", tt.result, w, x)
			}
		}
	}
}
