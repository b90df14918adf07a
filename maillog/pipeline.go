package maillog

import (
	"strings"

	"github.com/mailgate/mailgate/event"
)

// The work-queue lines of Cisco ESA logs (event/pipeline.go): quarantines,
// rewrites, splits, generated messages and the engines' verdicts. Every
// parser here returns nil for text that is not exactly of its form, and
// what it returns renders back to the same text.

// Forms of event.Rewritten.
const (
	RewrittenMID  = iota // MID 1 rewritten to MID 2 by antispam (alt-rcpt-to) filter 'unknown'
	RewrittenBare        // MID 2 rewritten to 3 by antispam   (before 4.x)
)

// Forms of event.Generated.
const (
	GeneratedWas  = iota // MID 24611495 was generated based on MID 24611421 by bcc filter 'FireEye_BCC'
	GeneratedBare        // MID 14 generated based on MID 13 by bcc filter 'nonetest'
)

// spfResults are the results of an SPF line (RFC 7208's, as the ESA
// capitalises them).
var spfResults = []string{"Pass", "Fail", "SoftFail", "None", "Neutral", "PermError", "TempError"}

// dkimResults are the results of a DKIM verification line; "malformed" is
// the first word of "DKIM: malformed signature - signature missing
// required tag".
var dkimResults = []string{"pass", "permfail", "tempfail", "neutral", "none", "malformed"}

// parseSpamQuarantine parses "ISQ: Tagging MID n for quarantine", "EUQ:
// Tagging ...", "EUQ: Quarantined MID n" and "EUQ: Reinjected MID a as MID b".
func parseSpamQuarantine(s string) event.Event {
	prefix, rest := s[:3], s[len("ISQ: "):]
	if r, ok := strings.CutPrefix(rest, "Tagging MID "); ok {
		mid, r, ok := cutUint(r)
		if !ok || r != " for quarantine" {
			return nil
		}
		return event.SpamQuarantineTag{MID: mid, Prefix: prefix}
	}
	if prefix != "EUQ" {
		return nil
	}
	if r, ok := strings.CutPrefix(rest, "Quarantined MID "); ok {
		mid, r, ok := cutUint(r)
		if !ok || r != "" {
			return nil
		}
		return event.SpamQuarantined{MID: mid}
	}
	if r, ok := strings.CutPrefix(rest, "Reinjected MID "); ok {
		mid, r, ok := cutUint(r)
		if !ok {
			return nil
		}
		nmid, r, ok := cutIDAfter(r, " as MID ")
		if !ok || r != "" {
			return nil
		}
		return event.SpamReinjected{MID: mid, NewMID: nmid}
	}
	return nil
}

// cutQuarantine parses `"Name"` at the start of s.
func cutQuarantine(s string) (string, string, bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", s, false
	}
	i := strings.IndexByte(s[1:], '"')
	if i < 1 {
		return "", s, false
	}
	return s[1 : 1+i], s[2+i:], true
}

// cutParens parses " (text)" that ends s; "" is no parentheses.
func cutParens(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	if len(s) < 4 || !strings.HasPrefix(s, " (") || s[len(s)-1] != ')' {
		return "", false
	}
	return s[2 : len(s)-1], true
}

// cutBy splits "X in the inbound table" into X and the table.
func cutTable(s string) (by, table string, ok bool) {
	r, ok := strings.CutSuffix(s, " table")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(r, " in the ")
	if i < 1 || i+len(" in the ") == len(r) {
		return "", "", false
	}
	return r[:i], r[i+len(" in the "):], true
}

// parsePipelineMID parses what follows "MID n" in the work-queue lines.
func parsePipelineMID(mid uint64, rest string) event.Event {
	switch {
	case strings.HasPrefix(rest, " quarantined to "):
		q, r, ok := cutQuarantine(rest[len(" quarantined to "):])
		if !ok {
			return nil
		}
		reason, ok := cutParens(r)
		if !ok {
			return nil
		}
		return event.Quarantined{MID: mid, Quarantine: q, Reason: reason}
	case strings.HasPrefix(rest, " quarantine "):
		q, r, ok := cutQuarantine(rest[len(" quarantine "):])
		if !ok {
			return nil
		}
		r, ok = strings.CutPrefix(r, " new reason")
		if !ok {
			return nil
		}
		reason, ok := cutParens(r)
		if !ok || reason == "" {
			return nil
		}
		return event.QuarantineReason{MID: mid, Quarantine: q, Reason: reason}
	case strings.HasPrefix(rest, " released "):
		return parseReleased(mid, rest[len(" released"):])
	case strings.HasPrefix(rest, " deleted from "):
		r := rest[len(" deleted from "):]
		if r == "all quarantines" {
			return event.QuarantineDeleted{MID: mid}
		}
		r, ok := strings.CutPrefix(r, "quarantine ")
		if !ok {
			return nil
		}
		q, r, ok := cutQuarantine(r)
		if !ok {
			return nil
		}
		reason, ok := cutParens(r)
		if !ok {
			return nil
		}
		return event.QuarantineDeleted{MID: mid, Quarantine: q, Reason: reason}
	case strings.HasPrefix(rest, " rewritten to "):
		r := rest[len(" rewritten to "):]
		form := uint8(RewrittenBare)
		if rr, ok := strings.CutPrefix(r, "MID "); ok {
			form, r = RewrittenMID, rr
		}
		nmid, r, ok := cutUint(r)
		if !ok {
			return nil
		}
		by, ok := strings.CutPrefix(r, " by ")
		if !ok || by == "" {
			return nil
		}
		return event.Rewritten{MID: mid, NewMID: nmid, By: by, Form: form}
	case strings.HasPrefix(rest, " was split creating MID "):
		nmid, r, ok := cutIDAfter(rest, " was split creating MID ")
		if !ok {
			return nil
		}
		reason, ok := strings.CutPrefix(r, " due to ")
		if !ok || reason == "" {
			return nil
		}
		return event.Split{MID: mid, NewMID: nmid, Reason: reason}
	case strings.HasPrefix(rest, " was generated based on MID "), strings.HasPrefix(rest, " generated based on MID "):
		form := uint8(GeneratedBare)
		r := rest
		if rr, ok := strings.CutPrefix(r, " was"); ok {
			form, r = GeneratedWas, rr
		}
		orig, r, ok := cutIDAfter(r, " generated based on MID ")
		if !ok {
			return nil
		}
		by, ok := strings.CutPrefix(r, " by ")
		if !ok || by == "" {
			return nil
		}
		return event.Generated{MID: mid, OrigMID: orig, By: by, Form: form}
	case strings.HasPrefix(rest, " was dropped by "), strings.HasPrefix(rest, " was bounced by "):
		bounced := strings.HasPrefix(rest, " was bounced by ")
		by, table, ok := cutTable(rest[len(" was dropped by "):])
		if !ok {
			return nil
		}
		return event.PolicyDisposal{MID: mid, Bounced: bounced, By: by, Table: table}
	case strings.HasPrefix(rest, " using engine: "):
		return parseEngineVerdict(mid, false, rest[len(" using engine: "):])
	case strings.HasPrefix(rest, " interim verdict using engine: "):
		return parseEngineVerdict(mid, true, rest[len(" interim verdict using engine: "):])
	case strings.HasPrefix(rest, " interim AV verdict using "):
		r := rest[len(" interim AV verdict using "):]
		i := strings.LastIndexByte(r, ' ')
		if i < 1 || i == len(r)-1 {
			return nil
		}
		return event.AVVerdict{MID: mid, Interim: true, Engine: r[:i], Verdict: r[i+1:]}
	case strings.HasPrefix(rest, " antivirus "):
		verdict, detail, _ := strings.Cut(rest[len(" antivirus "):], " ")
		if verdict == "" || (detail == "" && strings.HasSuffix(rest, " ")) {
			return nil
		}
		return event.AVVerdict{MID: mid, Verdict: verdict, Detail: detail}
	case strings.HasPrefix(rest, " Outbreak Filters: verdict "):
		v := rest[len(" Outbreak Filters: verdict "):]
		if v == "" {
			return nil
		}
		return event.OutbreakVerdict{MID: mid, Verdict: v}
	case strings.HasPrefix(rest, " AMP file reputation verdict : "):
		v := rest[len(" AMP file reputation verdict : "):]
		if v == "" {
			return nil
		}
		return event.AMPVerdict{MID: mid, Verdict: v}
	case strings.HasPrefix(rest, " was too big ("):
		size, r, ok := cutInt(rest[len(" was too big ("):])
		if !ok {
			return nil
		}
		limit, r, ok := cutIDAfter(r, "/")
		if !ok || limit > 1<<63-1 {
			return nil
		}
		engine, ok := strings.CutPrefix(r, ") for scanning by ")
		if !ok || engine == "" {
			return nil
		}
		return event.TooBig{MID: mid, Size: size, Limit: int64(limit), Engine: engine}
	case strings.HasPrefix(rest, " SPF: "):
		return parseSPF(mid, rest[len(" SPF: "):])
	case strings.HasPrefix(rest, " DKIM: "), strings.HasPrefix(rest, " DomainKeys: "):
		method, text, _ := strings.Cut(rest[1:], ": ")
		if strings.HasPrefix(text, "cannot sign - ") || strings.HasPrefix(text, "signing with ") ||
			strings.HasPrefix(text, "resigning - ") {
			return event.Signing{MID: mid, Method: method, Text: text}
		}
		if method != "DKIM" {
			return nil
		}
		result, detail, ok := strings.Cut(text, " ")
		if !ok || detail == "" || !contains(dkimResults, result) {
			return nil
		}
		return event.DKIMVerdict{MID: mid, Result: result, Detail: detail}
	case strings.HasPrefix(rest, " DMARC: "):
		text := rest[len(" DMARC: "):]
		if text == "" {
			return nil
		}
		return event.DMARCVerdict{MID: mid, Text: text}
	case strings.HasPrefix(rest, " attachment '"):
		name, q, ok := cutQuoted(rest[len(" attachment "):])
		if !ok || q != '\'' {
			return nil
		}
		return event.Attachment{MID: mid, Name: name}
	case strings.HasPrefix(rest, " Custom Log Entry: "):
		text := rest[len(" Custom Log Entry: "):]
		if text == "" {
			return nil
		}
		return event.CustomLog{MID: mid, Text: text}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseReleased parses what follows "MID n released": "[ (note)] from
// quarantine "Q"[ (reason)][ extra]" or "[ (note)] from all quarantines".
func parseReleased(mid uint64, s string) event.Event {
	e := event.QuarantineReleased{MID: mid}
	if r, ok := strings.CutPrefix(s, " ("); ok {
		i := strings.IndexByte(r, ')')
		if i < 1 {
			return nil
		}
		e.Note, s = r[:i], r[i+1:]
	}
	r, ok := strings.CutPrefix(s, " from ")
	if !ok {
		return nil
	}
	if r == "all quarantines" {
		return e
	}
	if r, ok = strings.CutPrefix(r, "quarantine "); !ok {
		return nil
	}
	if e.Quarantine, r, ok = cutQuarantine(r); !ok {
		return nil
	}
	if rr, ok := strings.CutPrefix(r, " ("); ok {
		i := strings.IndexByte(rr, ')')
		if i < 1 {
			return nil
		}
		e.Reason, r = rr[:i], rr[i+1:]
	}
	if r != "" {
		extra, ok := strings.CutPrefix(r, " ")
		// An extra that could be read as the reason would not come back.
		if !ok || extra == "" || (e.Reason == "" && strings.HasPrefix(extra, "(")) {
			return nil
		}
		e.Extra = extra
	}
	return e
}

// parseEngineVerdict parses "CASE spam negative" after "using engine: ".
func parseEngineVerdict(mid uint64, interim bool, s string) event.Event {
	engine, verdict, ok := strings.Cut(s, " ")
	if !ok || engine == "" || verdict == "" {
		return nil
	}
	return event.EngineVerdict{MID: mid, Interim: interim, Engine: engine, Verdict: verdict}
}

// parseSPF parses "mailfrom identity user@example.com Fail (v=spf1)".
func parseSPF(mid uint64, s string) event.Event {
	id, r, ok := strings.Cut(s, " identity ")
	if !ok || (id != "helo" && id != "mailfrom" && id != "pra") {
		return nil
	}
	addr, r, ok := strings.Cut(r, " ")
	if !ok || addr == "" {
		return nil
	}
	result, detail, _ := strings.Cut(r, " ")
	if !contains(spfResults, result) || (detail == "" && strings.HasSuffix(r, " ")) {
		return nil
	}
	return event.SPFVerdict{MID: mid, Identity: id, Address: addr, Result: result, Detail: detail}
}

// parseBounceLog parses a line of the ESA's bounce log (a subscription of
// its own) after "Bounced: " or "Delayed: ":
//
//	45346670:0 From:<a@x> To:<b@y> Reason: "5.1.0 - Unknown address error" Response: "('550', ['There is no such active account.'])"
func parseBounceLog(s string, hard bool) event.Event {
	o := event.Outcome{Hard: hard, Form: OutcomeBounceLog}
	var ok bool
	var rest string
	if o.MID, rest, ok = cutUint(s); !ok {
		return nil
	}
	if rest, ok = strings.CutPrefix(rest, ":"); !ok {
		return nil
	}
	if o.RID, rest, ok = cutNat(rest); !ok {
		return nil
	}
	if rest, ok = strings.CutPrefix(rest, " From:"); !ok {
		return nil
	}
	if o.From, rest, ok = cutAddr(rest); !ok {
		return nil
	}
	if rest, ok = strings.CutPrefix(rest, " To:"); !ok {
		return nil
	}
	if o.To, rest, ok = cutAddr(rest); !ok {
		return nil
	}
	if rest, ok = strings.CutPrefix(rest, ` Reason: "`); !ok {
		return nil
	}
	i := strings.LastIndex(rest, `" Response: "(`)
	if i < 0 {
		return nil
	}
	reason, resp := rest[:i], rest[i+len(`" Response: "`):]
	if o.Status, o.Reason, ok = strings.Cut(reason, " - "); !ok {
		return nil
	}
	resp, ok = strings.CutSuffix(resp, `"`)
	if !ok {
		return nil
	}
	code, lines, tail, ok := cutReply(resp)
	if !ok || tail != "" {
		return nil
	}
	o.Code, o.Response = code, lines
	return o
}

// The renderers of the types of event/pipeline.go, one function per type
// as in render.go (a type switch binding each would give every caller its
// frame of more than a kilobyte).

func appendSpamQuarantineTag(dst []byte, ev event.Event) []byte {
	e := ev.(event.SpamQuarantineTag)
	dst = appendWord(dst, "", e.Prefix)
	dst = appendUint(dst, ": Tagging MID ", e.MID)
	dst = append(dst, " for quarantine"...)
	return dst
}

func appendSpamQuarantined(dst []byte, ev event.Event) []byte {
	e := ev.(event.SpamQuarantined)
	dst = appendUint(dst, "EUQ: Quarantined MID ", e.MID)
	return dst
}

func appendSpamReinjected(dst []byte, ev event.Event) []byte {
	e := ev.(event.SpamReinjected)
	dst = appendUint(dst, "EUQ: Reinjected MID ", e.MID)
	dst = appendUint(dst, " as MID ", e.NewMID)
	return dst
}

func appendQuarantined(dst []byte, ev event.Event) []byte {
	e := ev.(event.Quarantined)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendQuarantine(dst, " quarantined to ", e.Quarantine)
	dst = appendParens(dst, e.Reason)
	return dst
}

func appendQuarantineReason(dst []byte, ev event.Event) []byte {
	e := ev.(event.QuarantineReason)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendQuarantine(dst, " quarantine ", e.Quarantine)
	dst = append(dst, " new reason"...)
	dst = appendParens(dst, e.Reason)
	return dst
}

func appendQuarantineReleased(dst []byte, ev event.Event) []byte {
	e := ev.(event.QuarantineReleased)
	dst = appendUint(dst, "MID ", e.MID)
	dst = append(dst, " released"...)
	dst = appendParens(dst, e.Note)
	if e.Quarantine == "" {
		dst = append(dst, " from all quarantines"...)
		return dst
	}
	dst = appendQuarantine(dst, " from quarantine ", e.Quarantine)
	dst = appendParens(dst, e.Reason)
	if e.Extra != "" {
		dst = appendText(dst, " ", e.Extra)
	}
	return dst
}

func appendQuarantineDeleted(dst []byte, ev event.Event) []byte {
	e := ev.(event.QuarantineDeleted)
	dst = appendUint(dst, "MID ", e.MID)
	if e.Quarantine == "" {
		dst = append(dst, " deleted from all quarantines"...)
		return dst
	}
	dst = appendQuarantine(dst, " deleted from quarantine ", e.Quarantine)
	dst = appendParens(dst, e.Reason)
	return dst
}

func appendRewritten(dst []byte, ev event.Event) []byte {
	e := ev.(event.Rewritten)
	dst = appendUint(dst, "MID ", e.MID)
	if e.Form == RewrittenBare {
		dst = appendUint(dst, " rewritten to ", e.NewMID)
	} else {
		dst = appendUint(dst, " rewritten to MID ", e.NewMID)
	}
	dst = appendText(dst, " by ", e.By)
	return dst
}

func appendSplit(dst []byte, ev event.Event) []byte {
	e := ev.(event.Split)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendUint(dst, " was split creating MID ", e.NewMID)
	dst = appendText(dst, " due to ", e.Reason)
	return dst
}

func appendGenerated(dst []byte, ev event.Event) []byte {
	e := ev.(event.Generated)
	dst = appendUint(dst, "MID ", e.MID)
	if e.Form != GeneratedBare {
		dst = append(dst, " was"...)
	}
	dst = appendUint(dst, " generated based on MID ", e.OrigMID)
	dst = appendText(dst, " by ", e.By)
	return dst
}

func appendPolicyDisposal(dst []byte, ev event.Event) []byte {
	e := ev.(event.PolicyDisposal)
	dst = appendUint(dst, "MID ", e.MID)
	if e.Bounced {
		dst = appendText(dst, " was bounced by ", e.By)
	} else {
		dst = appendText(dst, " was dropped by ", e.By)
	}
	dst = appendText(dst, " in the ", e.Table)
	dst = append(dst, " table"...)
	return dst
}

func appendEngineVerdict(dst []byte, ev event.Event) []byte {
	e := ev.(event.EngineVerdict)
	dst = appendUint(dst, "MID ", e.MID)
	if e.Interim {
		dst = append(dst, " interim verdict"...)
	}
	dst = appendWord(dst, " using engine: ", e.Engine)
	dst = appendText(dst, " ", e.Verdict)
	return dst
}

func appendAVVerdict(dst []byte, ev event.Event) []byte {
	e := ev.(event.AVVerdict)
	dst = appendUint(dst, "MID ", e.MID)
	if e.Interim {
		dst = appendText(dst, " interim AV verdict using ", e.Engine)
		dst = appendWord(dst, " ", e.Verdict)
		return dst
	}
	dst = appendWord(dst, " antivirus ", e.Verdict)
	if e.Detail != "" {
		dst = appendText(dst, " ", e.Detail)
	}
	return dst
}

func appendOutbreakVerdict(dst []byte, ev event.Event) []byte {
	e := ev.(event.OutbreakVerdict)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendText(dst, " Outbreak Filters: verdict ", e.Verdict)
	return dst
}

func appendAMPVerdict(dst []byte, ev event.Event) []byte {
	e := ev.(event.AMPVerdict)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendText(dst, " AMP file reputation verdict : ", e.Verdict)
	return dst
}

func appendTooBig(dst []byte, ev event.Event) []byte {
	e := ev.(event.TooBig)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendInt(dst, " was too big (", e.Size)
	dst = appendInt(dst, "/", e.Limit)
	dst = appendText(dst, ") for scanning by ", e.Engine)
	return dst
}

func appendSPFVerdict(dst []byte, ev event.Event) []byte {
	e := ev.(event.SPFVerdict)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendWord(dst, " SPF: ", e.Identity)
	dst = appendWord(dst, " identity ", e.Address)
	dst = appendWord(dst, " ", e.Result)
	if e.Detail != "" {
		dst = appendText(dst, " ", e.Detail)
	}
	return dst
}

func appendDKIMVerdict(dst []byte, ev event.Event) []byte {
	e := ev.(event.DKIMVerdict)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendWord(dst, " DKIM: ", e.Result)
	dst = appendText(dst, " ", e.Detail)
	return dst
}

func appendDMARCVerdict(dst []byte, ev event.Event) []byte {
	e := ev.(event.DMARCVerdict)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendText(dst, " DMARC: ", e.Text)
	return dst
}

func appendSigning(dst []byte, ev event.Event) []byte {
	e := ev.(event.Signing)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendWord(dst, " ", e.Method)
	dst = appendText(dst, ": ", e.Text)
	return dst
}

func appendAttachment(dst []byte, ev event.Event) []byte {
	e := ev.(event.Attachment)
	dst = appendUint(dst, "MID ", e.MID)
	dst = append(dst, " attachment "...)
	dst = appendQuoted(dst, e.Name, '\'')
	return dst
}

func appendCustomLog(dst []byte, ev event.Event) []byte {
	e := ev.(event.CustomLog)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendText(dst, " Custom Log Entry: ", e.Text)
	return dst
}

// appendQuarantine appends prefix and "Name".
func appendQuarantine(dst []byte, prefix, name string) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, '"')
	dst = appendEscapedExtra(dst, name, `"`)
	return append(dst, '"')
}

// appendParens appends " (s)", nothing for "".
func appendParens(dst []byte, s string) []byte {
	if s == "" {
		return dst
	}
	dst = appendText(dst, " (", s)
	return append(dst, ')')
}

// appendWord appends prefix and s, escaping spaces too: a field the parser
// reads up to a space.
func appendWord(dst []byte, prefix, s string) []byte {
	dst = append(dst, prefix...)
	return appendEscapedExtra(dst, s, " ")
}
