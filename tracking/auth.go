package tracking

import (
	"strings"

	"github.com/mailgate/mailgate/event"
)

// The sender-authentication results of a message, as its lines give them
// (ESA-PIPELINE.md 1.2, 1.3, 1.5; mailgate writes the same lines): the SPF
// line of each identity, the DKIM line of each signature, the DMARC line,
// and the DNS list whose HAT rule placed the client ("match
// dnslist[zone]"). They are read from the lines, so that an ESA's log
// fills them as mailgate's does.

// SPFCheck is one "SPF:" line: "MID 5 SPF: mailfrom identity a@example.org
// Fail (v=spf1)".
type SPFCheck struct {
	Identity string `json:"identity"` // helo, mailfrom or pra
	Address  string `json:"address"`  // the identity checked; postmaster@<helo> for helo
	Result   string `json:"result"`   // pass, fail, softfail, neutral, none, permerror, temperror
}

// DKIMCheck is one "DKIM:" verification line: "MID 5 DKIM: permfail body
// hash did not verify [final] (d=example.org s=s1 i=@example.org)".
type DKIMCheck struct {
	Result   string `json:"result"`   // pass, permfail, tempfail, neutral, none, malformed
	Domain   string `json:"domain"`   // d=; "" when the line names none (malformed)
	Selector string `json:"selector"` // s=
	Identity string `json:"identity"` // i=
	Reason   string `json:"reason"`   // "body hash did not verify"; "" for a pass
}

// DMARCCheck is the "DMARC:" line: "MID 5 DMARC: Message from domain
// example.org, DMARC fail (SPF aligned False, DKIM aligned False)".
type DMARCCheck struct {
	Domain      string `json:"domain"` // the From: domain; "" when the line names none ("Verification passed")
	Result      string `json:"result"` // pass, fail, none, temperror, permerror
	SPFAligned  bool   `json:"spf_aligned"`
	DKIMAligned bool   `json:"dkim_aligned"`
}

// The results each check's lines give, for the filters of a Query.
var (
	SPFResults   = []string{"pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"}
	DKIMResults  = []string{"pass", "permfail", "tempfail", "neutral", "none", "malformed"}
	DMARCResults = []string{"pass", "fail", "none", "temperror", "permerror"}
)

// MailFromSPF is the SPF result of the MAIL FROM identity (the one a
// policy acts on and DMARC aligns), or "" when none was logged.
func (m *Message) MailFromSPF() string {
	for _, s := range m.SPF {
		if s.Identity == "mailfrom" {
			return s.Result
		}
	}
	return ""
}

// DKIMResultList is the results of the message's DKIM lines, in order,
// separated by spaces: what the stores search.
func (m *Message) DKIMResultList() string {
	var b strings.Builder
	for i, d := range m.DKIM {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(d.Result)
	}
	return b.String()
}

// DMARCResult is the DMARC result, or "" when none was logged.
func (m *Message) DMARCResult() string {
	if m.DMARC == nil {
		return ""
	}
	return m.DMARC.Result
}

// foldAuth applies an authentication line to the message; it reports
// whether ev was one.
func (m *Message) foldAuth(ev event.Event) bool {
	switch e := ev.(type) {
	case event.SPFVerdict:
		s := SPFCheck{Identity: e.Identity, Address: e.Address, Result: strings.ToLower(e.Result)}
		for i := range m.SPF {
			if m.SPF[i].Identity == s.Identity {
				m.SPF[i] = s // a check made again (a new HELO, a cached verdict): the last counts
				return true
			}
		}
		m.SPF = append(m.SPF, s)
	case event.DKIMVerdict:
		m.DKIM = append(m.DKIM, dkimCheck(e))
	case event.DMARCVerdict:
		v := e.Verdict()
		if m.DMARC == nil {
			m.DMARC = &DMARCCheck{}
		}
		// "Verification passed" and "Message from domain d, DMARC pass
		// (...)" may both come: each fills what it says.
		if v.Result != "" {
			m.DMARC.Result = v.Result
		}
		if v.Domain != "" {
			m.DMARC.Domain = v.Domain
			m.DMARC.SPFAligned, m.DMARC.DKIMAligned = v.SPFAligned, v.DKIMAligned
		}
	default:
		return false
	}
	return true
}

// dkimCheck reads a DKIM line's detail: "signature verified (d=... s=...
// i=...)", "body hash did not verify [final] (d=... s=... i=...)",
// "signature - signature missing required tag" (malformed).
func dkimCheck(e event.DKIMVerdict) DKIMCheck {
	d := DKIMCheck{Result: e.Result}
	if e.Result == "malformed" {
		d.Reason = strings.TrimPrefix(e.Detail, "signature - ")
		return d
	}
	reason := e.Detail
	if i := strings.LastIndex(reason, "(d="); i >= 0 && strings.HasSuffix(reason, ")") {
		for f := range strings.FieldsSeq(reason[i+1 : len(reason)-1]) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "d":
				d.Domain = v
			case "s":
				d.Selector = v
			case "i":
				d.Identity = v
			}
		}
		reason = strings.TrimSpace(reason[:i])
	}
	reason = strings.TrimSuffix(reason, " [final]")
	if e.Result == "pass" && reason == "signature verified" {
		reason = ""
	}
	d.Reason = reason
	return d
}

// DNSListZone is the zone of a HAT rule "dnslist[zone]" or
// "dnslist[zone:codes]", lower case; "" for any other rule.
func DNSListZone(rule string) string {
	inner, ok := strings.CutPrefix(rule, "dnslist[")
	if !ok {
		return ""
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok {
		return ""
	}
	zone, _, _ := strings.Cut(inner, ":")
	return strings.ToLower(strings.TrimSuffix(zone, "."))
}
