package explain

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
)

// The sender-authentication checks in an explanation: which check refused
// or marked a message, which record it read, and what the domain's owner
// must change. The log has each check's result and identity, never the
// record's text: where the record matters, the explanation says how to
// read it (dig), and claims only what the result proves.

// The "Receiving Failed" reasons of the authentication refusals: the ESA's
// default reply texts (policy.SPFRejectText and the others), which are
// mailgate's too.
const (
	spfRejected    = "SPF unauthorized mail is prohibited."
	spfDeferred    = "Temporary error occurred during SPF verification."
	dmarcRejected  = "DMARC unauthenticated mail is prohibited."
	dmarcTempError = "Unable to perform DMARC verification."
)

// authRefused explains a message the gateway refused for its sender
// authentication; ok is false for a refusal of another kind.
func (e *ex) authRefused() (x Explanation, ok bool) {
	m := e.m
	failed := e.lineWith("ICID "+itoa(m.ICID)+" Receiving Failed: ", m.AbortReason)
	switch m.AbortReason {
	case spfRejected:
		s, found := mailFromSPF(m)
		if !found {
			return x, false
		}
		what := map[string]string{
			"fail": "the sender's domain does not authorize the sending host", "softfail": "the sender's domain does not authorize the sending host",
			"neutral": "the sender's domain says nothing about the sending host", "none": "the sender's domain publishes no SPF record",
			"permerror": "the sender's domain has an SPF record that cannot be evaluated",
		}[s.Result]
		x.Summary = "Rejected at MAIL FROM by SPF: " + cmp.Or(what, "the SPF result was "+s.Result) + ", and this listener's policy refuses that (550 5.7.1)."
		x.Why = append(x.Why, e.spfWhy(s)...)
		if failed != "" {
			x.Why = append(x.Why, "The gateway refused the sender: "+failed+".")
		}
		x.Next = append(x.Next, spfFix(s, m.RemoteIP)...)
		x.Next = append(x.Next, "If mail from this sender must come in as it is (a forwarder that keeps the original sender), the listener's policy can accept this result: spf: {"+s.Result+": accept}.")
		return x, true
	case spfDeferred:
		s, found := mailFromSPF(m)
		if !found {
			return x, false
		}
		x.Summary = "Deferred at MAIL FROM: the SPF check could not be completed (a DNS error), and this listener's policy asks the client to try again later (451 4.4.3)."
		x.Why = append(x.Why, e.spfWhy(s)...)
		if failed != "" {
			x.Why = append(x.Why, "The gateway deferred the sender: "+failed+".")
		}
		x.Next = append(x.Next, spfFix(s, m.RemoteIP)...)
		x.Next = append(x.Next, "The client will retry; the message was not lost.")
		return x, true
	case dmarcRejected, dmarcTempError:
		d := m.DMARC
		if d == nil {
			return x, false
		}
		dl := e.line("MID " + itoa(m.MID) + " DMARC: ")
		switch {
		case m.AbortReason == dmarcTempError:
			x.Summary = "Deferred at the end of DATA: the DMARC policy of " + orUnknown(d.Domain) + " could not be looked up (a DNS error), and this listener's policy asks the client to try again later (451 4.7.1)."
		case d.Result == "permerror":
			x.Summary = "Rejected at the end of DATA by DMARC: the DMARC record of " + orUnknown(d.Domain) + " could not be used, and this listener's policy refuses that (550 5.7.1)."
		default:
			x.Summary = "Rejected at the end of DATA by DMARC: the message failed the DMARC check of " + orUnknown(d.Domain) + ", whose policy asks receivers to reject such mail, and this listener's policy does (550 5.7.1)."
		}
		if dl != "" {
			x.Why = append(x.Why, "The log says "+dl+".")
		}
		x.Why = append(x.Why, e.dmarcWhy(d)...)
		if failed != "" {
			x.Why = append(x.Why, "The gateway refused the message: "+failed+".")
		}
		x.Next = append(x.Next, dmarcFix(m, d)...)
		return x, true
	}
	return x, false
}

// authNotes are the lines an explanation of an accepted message adds
// about its authentication: a DMARC or SPF failure the gateway let
// through, and a DNS list that placed its client.
func (e *ex) authNotes() (why, next []string) {
	m := e.m
	if d := m.DMARC; d != nil && d.Result == "fail" {
		if l := e.line("MID " + itoa(m.MID) + " DMARC: "); l != "" {
			why = append(why, "It failed DMARC, and the gateway accepted it: "+l+".")
		}
		why = append(why, e.dmarcWhy(d)...)
		a, _, acted := e.dmarcAction() // dmarcq.go
		if tw, tn, ok := e.dmarcTagged(); ok {
			why, next = append(why, tw...), append(next, tn...)
		} else if !acted {
			// The DMARC line does not say which policy the domain
			// publishes, nor what the listener did with it.
			why = append(why, "The log does not record the policy "+orUnknown(d.Domain)+" publishes. A mailgate listener whose policy quarantines such mail (dmarc.quarantine_policy, or dmarc.reject_policy, is quarantine) says so in a second DMARC line, ending in action quarantine (or action tag X-Mailgate-DMARC when it adds an X-Mailgate-DMARC: quarantine header field instead); there is none here, so it took no action (or the log is an ESA's).")
		} else if rel := e.line("MID " + itoa(m.MID) + " released from "); a.Action == event.DMARCActionQuarantine && m.Status != tracking.Quarantined && rel != "" {
			why = append(why, "The listener's policy quarantined it for DMARC failing for "+a.Domain+" ("+dmarcAsked(a)+"), and it was released: "+rel+".")
		}
		next = append(next, dmarcFix(m, d)...)
		if !acted {
			next = append(next, "The domain's policy is in that record (or its organizational domain's, when it has none).")
		}
	} else if s, ok := mailFromSPF(m); ok && (s.Result == "fail" || s.Result == "permerror") {
		why = append(why, e.spfWhy(s)...)
		why = append(why, "The gateway accepted it all the same: this listener's policy does not refuse that SPF result.")
		next = append(next, spfFix(s, m.RemoteIP)...)
	}
	if m.DNSList != "" {
		if l := e.inLine("match dnslist["); l != "" {
			why = append(why, "A DNS list placed its client in its sender group: "+l+".")
		}
	}
	return why, next
}

func mailFromSPF(m *tracking.Message) (tracking.SPFCheck, bool) {
	for _, s := range m.SPF {
		if s.Identity == "mailfrom" {
			return s, true
		}
	}
	return tracking.SPFCheck{}, false
}

// spfWhy says what the SPF result proves about the record.
func (e *ex) spfWhy(s tracking.SPFCheck) []string {
	m := e.m
	dom := domainOf(s.Address)
	ip := cmp.Or(m.RemoteIP, "the sending host")
	var out []string
	if l := e.lineWith("MID "+itoa(m.MID)+" SPF: mailfrom identity ", s.Address); l != "" {
		out = append(out, "The SPF check of the envelope sender: "+l+".")
	}
	switch s.Result {
	case "fail":
		out = append(out, fmt.Sprintf("Fail means the SPF record of %s does not list %s and says that mail from any other host is not its own (-all).", dom, ip))
	case "softfail":
		out = append(out, fmt.Sprintf("SoftFail means the SPF record of %s does not list %s and asks that its mail from other hosts be treated as suspect (~all).", dom, ip))
	case "neutral":
		out = append(out, fmt.Sprintf("Neutral means the SPF record of %s does not list %s and says nothing about other hosts (?all).", dom, ip))
	case "none":
		out = append(out, fmt.Sprintf("None means %s publishes no SPF record (no TXT record beginning v=spf1).", dom))
	case "permerror":
		out = append(out, fmt.Sprintf("PermError means the SPF record of %s could not be evaluated: a syntax error, two records, or more than the 10 DNS lookups (include, a, mx, ptr, exists, redirect) or 2 void lookups RFC 7208 allows.", dom))
	case "temperror":
		out = append(out, fmt.Sprintf("TempError means a DNS query for the SPF record of %s (or for one of the names it refers to) failed for now: no answer in time, or SERVFAIL.", dom))
	}
	return out
}

// spfFix is what the owner of the sender's domain must do, and how to see
// the record.
func spfFix(s tracking.SPFCheck, ip string) []string {
	dom := domainOf(s.Address)
	if ip == "" {
		ip = "the sending host"
	}
	see := "Read the record with 'dig TXT " + dom + "'."
	switch s.Result {
	case "fail", "softfail", "neutral":
		return []string{"If " + ip + " sends mail for " + dom + ", the owner of " + dom + " must add it to the domain's SPF record (ip4:/ip6:, or the include: of the service that sends for it); otherwise the sender is forged. " + see}
	case "none":
		return []string{"The owner of " + dom + " should publish an SPF record listing the hosts that send its mail. " + see}
	case "permerror":
		return []string{"The owner of " + dom + " must fix its SPF record: one TXT record v=spf1, valid syntax, at most 10 DNS lookups in all (flatten nested include: chains). " + see}
	case "temperror":
		return []string{"The DNS servers of " + dom + " must answer: check them with 'dig TXT " + dom + "' and 'dig NS " + dom + "'. If every domain's checks fail this way, look at the gateway's own dns.servers instead."}
	}
	return []string{see}
}

// dmarcWhy says, from the DMARC line and the SPF and DKIM lines, why the
// message did or did not align.
func (e *ex) dmarcWhy(d *tracking.DMARCCheck) []string {
	m := e.m
	var out []string
	switch d.Result {
	case "fail":
		var parts []string
		if s, ok := mailFromSPF(m); ok {
			sd := domainOf(s.Address)
			switch {
			case d.SPFAligned:
			case s.Result != "pass":
				parts = append(parts, fmt.Sprintf("SPF did not pass for the envelope sender's domain %s (%s)", sd, s.Result))
			default:
				parts = append(parts, fmt.Sprintf("SPF passed for %s, which is not %s's domain (not aligned)", sd, d.Domain))
			}
		} else if !d.SPFAligned {
			parts = append(parts, "SPF did not align")
		}
		if len(m.DKIM) == 0 {
			parts = append(parts, "the log shows no DKIM signature")
		}
		for _, k := range m.DKIM {
			switch {
			case k.Result == "malformed":
				parts = append(parts, "a DKIM signature was malformed ("+k.Reason+")")
			case k.Result != "pass":
				parts = append(parts, fmt.Sprintf("the DKIM signature of %s (selector %s) did not verify: %s", k.Domain, k.Selector, k.Reason))
			case !d.DKIMAligned:
				parts = append(parts, fmt.Sprintf("the DKIM signature of %s verified but is not %s's domain (not aligned)", k.Domain, d.Domain))
			}
		}
		out = append(out, "DMARC requires SPF or DKIM to pass for the domain of the From: header ("+d.Domain+"); here "+strings.Join(parts, "; ")+".")
	case "permerror":
		out = append(out, "PermError means the DMARC record of "+orUnknown(d.Domain)+" (at _dmarc."+orUnknown(d.Domain)+") is malformed, or the From: header names authors in several domains.")
	case "temperror":
		out = append(out, "TempError means the DNS query for _dmarc."+orUnknown(d.Domain)+" (or its organizational domain's) failed for now: no answer in time, or SERVFAIL.")
	}
	return out
}

// dmarcFix is what the owner of the From: domain must do.
func dmarcFix(m *tracking.Message, d *tracking.DMARCCheck) []string {
	dom := orUnknown(d.Domain)
	switch d.Result {
	case "fail":
		fix := "The owner of " + dom + " must send its mail so that it passes DMARC: DKIM-signed with d=" + dom + " (or a subdomain) by every service that sends as " + dom + ", or from an envelope sender in " + dom + " whose SPF record lists the sending host."
		for _, k := range m.DKIM {
			if k.Result == "permfail" && strings.Contains(k.Reason, "body hash") {
				fix += " The signature of " + k.Domain + " broke in transit (the body was changed after signing: a mailing list footer, a disclaimer, a forwarder), which the sender cannot fix for mail that is changed on the way."
				break
			}
			if k.Result == "permfail" && strings.Contains(k.Reason, "no key") {
				fix += " The key of the signature of " + k.Domain + " is not published: 'dig TXT " + k.Selector + "._domainkey." + k.Domain + "'."
				break
			}
		}
		return []string{fix, "Read its DMARC policy with 'dig TXT _dmarc." + dom + "'."}
	case "permerror":
		return []string{"The owner of " + dom + " must fix its DMARC record: 'dig TXT _dmarc." + dom + "' must give one record beginning v=DMARC1 with a valid p= tag."}
	case "temperror":
		return []string{"The DNS servers of " + dom + " must answer for _dmarc." + dom + ": check them with 'dig TXT _dmarc." + dom + "' and 'dig NS " + dom + "'. The client will retry; if every domain fails this way, look at the gateway's own dns.servers."}
	}
	return nil
}

// inLine returns the first line of the timeline that holds s, quoted.
func (e *ex) inLine(s string) string { return e.lineWith(s) }

func orUnknown(s string) string {
	if s == "" {
		return "the author's domain"
	}
	return s
}

// Conn explains an inbound connection that carried no message: what the
// HAT decided, and for a DNS list, which list, what it means and what to
// do. ok is false when there is nothing to say beyond its lines.
func Conn(c *tracking.Conn) (x Explanation, ok bool) {
	var hat event.HATMatch
	var hatLine, ended string
	for _, l := range c.Lines {
		switch ev := maillog.ParseMessage(l.Text).(type) {
		case event.HATMatch:
			hat, hatLine = ev, l.Text
		case event.ConnectionEnd:
			ended = l.Text
		}
	}
	if hatLine == "" {
		return x, false
	}
	ip := cmp.Or(c.RemoteIP, "the client")
	refused := hat.Action == "REJECT" || hat.Action == "TCPREFUSE"
	switch {
	case refused && c.DNSList != "":
		x.Summary = fmt.Sprintf("Refused at connect: the DNS list %s lists %s, and its rule placed the client in sender group %s, whose policy refuses connections (%s).", c.DNSList, ip, hat.Group, hat.Action)
	case refused:
		x.Summary = fmt.Sprintf("Refused at connect: the HAT placed %s in sender group %s, whose policy refuses connections (%s).", ip, hat.Group, hat.Action)
	case c.DNSList != "":
		x.Summary = fmt.Sprintf("Accepted at connect: the DNS list %s lists %s, and its rule placed the client in sender group %s (%s).", c.DNSList, ip, hat.Group, hat.Action)
	default:
		x.Summary = fmt.Sprintf("The HAT placed %s in sender group %s (%s).", ip, hat.Group, hat.Action)
	}
	x.Why = append(x.Why, "The log says "+q(hatLine)+".")
	if ended != "" {
		x.Why = append(x.Why, "mailgate's own line says how the connection ended: "+q(ended)+".")
	}
	if c.DNSList == "" {
		return x, true
	}
	x.Why = append(x.Why, fmt.Sprintf("The rule %s matches when the list answers the query for the client's address with one of the rule's codes (all of 127.0.0.0/8 but 127.255.255.0/24 when it names none): the list answered so when the client connected.", hat.Rule))
	query := dnslistName(c.RemoteIP, c.DNSList)
	if query != "" {
		x.Next = append(x.Next, fmt.Sprintf("See the listing now with 'dig +short A %s' (the code says why it is listed; no answer: no longer listed) and 'dig +short TXT %s' (the list's reason).", query, query))
	}
	if refused {
		x.Next = append(x.Next, fmt.Sprintf("The administrator of %s must find out why it is listed (an infected host, an open relay, a dynamic address) and fix that, then ask %s for removal on the list's own site.", ip, c.DNSList))
		x.Next = append(x.Next, fmt.Sprintf("If mail from %s is wanted meanwhile, add it to a sender group placed before %s in the listener's HAT.", ip, hat.Group))
	}
	return x, true
}

// dnslistName is the name a DNS list is asked for an address (RFC 5782):
// 7.2.0.192.zen.spamhaus.org for 192.0.2.7, the 32 nibbles reversed for
// IPv6.
func dnslistName(ip, zone string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	var b strings.Builder
	if a.Is4() {
		v := a.As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d.", v[3], v[2], v[1], v[0])
	} else {
		v := a.As16()
		for i := 15; i >= 0; i-- {
			fmt.Fprintf(&b, "%x.%x.", v[i]&0xf, v[i]>>4)
		}
	}
	return b.String() + zone
}

// AuthField is one row of a message's authentication results in a
// summary: "SPF", "mailfrom a@example.org fail".
type AuthField struct {
	Label, Text string
}

// AuthSummary is the message's authentication results in short rows, for
// the CLI's summary; none when its log has none.
func AuthSummary(m *tracking.Message) []AuthField {
	var out []AuthField
	for _, s := range m.SPF {
		out = append(out, AuthField{"SPF", s.Result + " (" + s.Identity + " " + s.Address + ")"})
	}
	for _, d := range m.DKIM {
		t := d.Result
		if d.Domain != "" {
			t += " (d=" + d.Domain + " s=" + d.Selector + ")"
		}
		if d.Reason != "" {
			t += ": " + d.Reason
		}
		out = append(out, AuthField{"DKIM", t})
	}
	if d := m.DMARC; d != nil {
		t := d.Result
		if d.Domain != "" {
			t += fmt.Sprintf(" for %s (SPF aligned %s, DKIM aligned %s)", d.Domain, yesNo(d.SPFAligned), yesNo(d.DKIMAligned))
		}
		out = append(out, AuthField{"DMARC", t})
	}
	if m.DNSList != "" {
		out = append(out, AuthField{"DNS list", m.DNSList})
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
