package mailauth

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"

	"github.com/mailgate/mailgate/event"
)

// Events are the ESA's lines for the results (ESA-PIPELINE.md 1.2, 1.3,
// 1.5): one SPF line per identity, one DKIM line per signature (the last
// marked [final]), and the DMARC line.
func (r *Results) Events(mid uint64) []event.Event {
	var evs []event.Event
	for _, s := range r.SPF {
		evs = append(evs, s.Event(mid))
	}
	evs = append(evs, r.DKIMEvents(mid)...)
	if r.DMARC != nil {
		evs = append(evs, r.DMARC.Event(mid))
	}
	return evs
}

// Event is the SPF line: "SPF: helo identity postmaster@mx.example.org
// None", "SPF: mailfrom identity a@example.org Pass (v=spf1)".
func (s SPF) Event(mid uint64) event.SPFVerdict {
	e := event.SPFVerdict{MID: mid, Identity: s.Identity, Address: s.Address, Result: s.ESAResult()}
	if s.Identity == IdentityMailFrom {
		e.Detail = "(v=spf1)"
	}
	return e
}

// DKIMEvents are the DKIM lines: "DKIM: pass signature verified (d=example.org
// s=s1 i=@example.org)", "DKIM: permfail body hash did not verify [final]
// (d=...)", "DKIM: malformed signature - signature missing required tag".
func (r *Results) DKIMEvents(mid uint64) []event.Event {
	var evs []event.Event
	for i, d := range r.DKIM {
		final := i == len(r.DKIM)-1
		if d.Malformed {
			// The ESA's form for a signature it could not read; it names
			// no domain.
			evs = append(evs, event.DKIMVerdict{MID: mid, Result: "malformed", Detail: "signature - " + d.Reason})
			continue
		}
		var b strings.Builder
		if d.Result == DKIMPass {
			b.WriteString("signature verified")
		} else {
			b.WriteString(d.Reason)
		}
		if final && d.Result != DKIMPass {
			b.WriteString(" [final]")
		}
		b.WriteString(" (d=" + d.Domain + " s=" + d.Selector + " i=" + d.Identifier + ")")
		evs = append(evs, event.DKIMVerdict{MID: mid, Result: d.ESAResult(), Detail: b.String()})
	}
	return evs
}

// Event is the DMARC line: "DMARC: Message from domain example.org, DMARC
// pass (SPF aligned True, DKIM aligned False)". Only the pass form is
// confirmed from real ESA lines; the others (fail, temperror, permerror,
// none) are the same sentence with their result.
func (d DMARC) Event(mid uint64) event.DMARCVerdict {
	dom := d.Domain
	if dom == "" {
		dom = "unknown"
	}
	return event.DMARCVerdict{MID: mid, Text: "Message from domain " + dom + ", DMARC " + d.Result +
		" (SPF aligned " + pyBool(d.SPFAligned) + ", DKIM aligned " + pyBool(d.DKIMAligned) + ")"}
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// AuthenticationResults is the Authentication-Results field (RFC 8601)
// for the results, with its line end, folded one result per line.
func (r *Results) AuthenticationResults(authservID string) string {
	var rs []authres.Result
	for _, s := range r.SPF {
		res := &authres.SPFResult{Value: authres.ResultValue(s.Result)}
		if s.Identity == IdentityHELO {
			res.Helo = strings.TrimPrefix(s.Address, "postmaster@")
		} else {
			res.From = s.Address
		}
		rs = append(rs, res)
	}
	for _, d := range r.DKIM {
		p := map[string]string{"header.d": d.Domain, "header.i": d.Identifier, "header.s": d.Selector}
		if d.Reason != "" {
			p["reason"] = d.Reason
		}
		rs = append(rs, &authres.GenericResult{Method: "dkim", Value: authres.ResultValue(d.Result), Params: p})
	}
	if len(r.SPF) == 0 && len(r.DKIM) == 0 && r.DMARC == nil {
		return "Authentication-Results: " + authres.Format(authservID, nil) + "\r\n"
	}
	if d := r.DMARC; d != nil {
		p := map[string]string{"header.from": d.Domain}
		if d.Policy != "" {
			p["policy.dmarc"] = d.Applied
			if d.Result == DMARCPass {
				p["policy.dmarc"] = d.Policy
			}
		}
		if d.Reason != "" {
			p["reason"] = d.Reason
		}
		rs = append(rs, &authres.GenericResult{Method: "dmarc", Value: authres.ResultValue(d.Result), Params: p})
	}
	var b strings.Builder
	b.WriteString("Authentication-Results: ")
	b.WriteString(headerSafe(authservID))
	for _, res := range rs {
		// Format each result alone, to fold between them.
		one := authres.Format("", []authres.Result{res})
		b.WriteString(";\r\n\t")
		b.WriteString(headerSafe(strings.TrimSpace(strings.TrimPrefix(one, "; "))))
	}
	b.WriteString("\r\n")
	return b.String()
}

// ReceivedSPF is the Received-SPF field (RFC 7208 9.1) for the MAIL FROM
// result, with its line end.
func ReceivedSPF(s SPF, clientIP, helo, receiver string) string {
	var b strings.Builder
	b.WriteString("Received-SPF: ")
	b.WriteString(s.ESAResult())
	b.WriteString(" (")
	b.WriteString(headerSafe(receiver))
	b.WriteString(": domain of ")
	b.WriteString(headerSafe(s.Address))
	switch s.Result {
	case SPFPass:
		b.WriteString(" designates " + clientIP + " as permitted sender)")
	case SPFFail, SPFSoftFail:
		b.WriteString(" does not designate " + clientIP + " as permitted sender)")
	default:
		b.WriteString(": " + headerSafe(s.Result) + ")")
	}
	b.WriteString("\r\n\treceiver=" + headerSafe(receiver) + "; client-ip=" + clientIP +
		"; envelope-from=\"" + headerSafe(strings.ReplaceAll(s.Address, `"`, "")) + "\"; helo=" + quoteIfNeeded(helo) +
		"; identity=" + s.Identity + ";\r\n")
	return b.String()
}

func quoteIfNeeded(s string) string {
	s = headerSafe(s)
	if s == "" || strings.ContainsAny(s, " \t;()<>@,:\\\"/[]?=") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return s
}

// headerSafe keeps what a client or a DNS record wrote from breaking a
// header field: control characters and non-ASCII become '?'.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f {
			return '?'
		}
		return r
	}, s)
}
