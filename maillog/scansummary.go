package maillog

import (
	"strings"

	"github.com/mailgate/mailgate/event"
)

// summaryExtra are the bytes escaped in a ScanSummary's values: the
// token's separators and the ':' between a verdict's parts.
const summaryExtra = " =:"

// appendScanSummary writes mailgate's line of a message's verdicts:
//
//	mailgate: MID 5 verdicts policy=DEFAULT table=inbound antispam=RSPAMD:positive antivirus=ClamAV:positive:Eicar-Test-Signature.UNOFFICIAL action=drop
//
// Each verdict is kind=engine:verdict[:detail]; values are single tokens
// (space, '=' and ':' escaped as \xNN), so that a virus's name cannot
// forge a field.
func appendScanSummary(dst []byte, ev event.Event) []byte {
	e := ev.(event.ScanSummary)
	dst = appendUint(dst, "mailgate: MID ", e.MID)
	dst = append(dst, " verdicts policy="...)
	dst = appendEscapedExtra(dst, e.Policy, summaryExtra)
	dst = append(dst, " table="...)
	dst = appendEscapedExtra(dst, e.Table, summaryExtra)
	for _, v := range e.Verdicts {
		dst = append(dst, ' ')
		dst = appendEscapedExtra(dst, v.Kind, summaryExtra)
		dst = append(dst, '=')
		dst = appendEscapedExtra(dst, v.Engine, summaryExtra)
		dst = append(dst, ':')
		dst = appendEscapedExtra(dst, v.Verdict, summaryExtra)
		if v.Detail != "" {
			dst = append(dst, ':')
			dst = appendEscapedExtra(dst, v.Detail, summaryExtra)
		}
	}
	dst = append(dst, " action="...)
	return appendEscapedExtra(dst, e.Action, summaryExtra)
}

// parseScanSummary reads appendScanSummary's line; nil when it is not one.
func parseScanSummary(s string) event.Event {
	mid, rest, ok := cutIDAfter(s, "mailgate: MID ")
	if !ok {
		return nil
	}
	rest, ok = strings.CutPrefix(rest, " verdicts ")
	if !ok {
		return nil
	}
	fields := strings.Split(rest, " ")
	if len(fields) < 3 {
		return nil
	}
	e := event.ScanSummary{MID: mid}
	if e.Policy, ok = strings.CutPrefix(fields[0], "policy="); !ok || e.Policy == "" {
		return nil
	}
	if e.Table, ok = strings.CutPrefix(fields[1], "table="); !ok {
		return nil
	}
	if e.Action, ok = strings.CutPrefix(fields[len(fields)-1], "action="); !ok {
		return nil
	}
	for _, f := range fields[2 : len(fields)-1] {
		kind, v, ok := strings.Cut(f, "=")
		if !ok || kind == "" {
			return nil
		}
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil
		}
		r := event.ScanResult{Kind: kind, Engine: parts[0], Verdict: parts[1]}
		if len(parts) == 3 {
			if r.Detail = parts[2]; r.Detail == "" {
				return nil
			}
		}
		e.Verdicts = append(e.Verdicts, r)
	}
	for _, t := range []string{e.Policy, e.Table, e.Action} {
		if strings.ContainsAny(t, "=:") {
			return nil
		}
	}
	return e
}
