package explain

import (
	"strings"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
)

// DMARC's quarantine action in an explanation: the DMARC action line
// ("MID 7 DMARC: Message from domain example.org, policy quarantine,
// action quarantine", event.DMARCAction) says what the domain asked and
// what the listener did; the "quarantined to ... (DMARC)" line where the
// work queue held the message.

// dmarcAction returns the message's DMARC action line, read and quoted;
// ok is false when its log has none.
func (e *ex) dmarcAction() (a event.DMARCAction, line string, ok bool) {
	prefix := "MID " + itoa(e.m.MID) + " DMARC: "
	for _, l := range e.tl {
		if !strings.HasPrefix(l.Text, prefix) {
			continue
		}
		if v, isV := maillog.ParseMessage(l.Text).(event.DMARCVerdict); isV {
			if a, ok = v.Action(); ok {
				return a, q(l.Text), true
			}
		}
	}
	return a, "", false
}

// dmarcAsked is the domain's policy as the action line gives it:
// "p=quarantine", "p=reject, which its pct= made quarantine for this
// message".
func dmarcAsked(a event.DMARCAction) string {
	s := "p=" + a.Policy
	if a.Applied != a.Policy {
		s += ", which its pct= made " + a.Applied + " for this message"
	}
	return s
}

// dmarcQuarantined is the sentence of a message held for DMARC, and the
// lines that prove it; ok is false when no quarantine line gives DMARC as
// the reason.
func (e *ex) dmarcQuarantined() (summary string, why []string, ok bool) {
	mid := itoa(e.m.MID)
	held := e.lineWith("MID "+mid+" quarantined to ", "(DMARC)")
	if held == "" {
		return "", nil, false
	}
	a, line, found := e.dmarcAction()
	if !found {
		dom := "the author's domain"
		if d := e.m.DMARC; d != nil && d.Domain != "" {
			dom = d.Domain
		}
		return "It was quarantined because DMARC failed for " + dom + ".", nil, true
	}
	summary = "It was quarantined because DMARC failed for " + a.Domain + " (" + dmarcAsked(a) + ")."
	return summary, []string{"The listener's policy quarantines such mail: " + line + "."}, true
}

// dmarcTagged explains a message the listener tagged for quarantine (no
// work queue, so no quarantine to hold it); ok is false for one it did
// not tag.
func (e *ex) dmarcTagged() (why, next []string, ok bool) {
	a, line, found := e.dmarcAction()
	if !found || a.Action != event.DMARCActionTag {
		return nil, nil, false
	}
	why = append(why, "It was tagged for quarantine because DMARC failed for "+a.Domain+" ("+dmarcAsked(a)+"): "+line+
		". The gateway accepted it with an X-Mailgate-DMARC: quarantine header field on top, for the next hop or the mail store's rules to act on; this gateway has no mail_policies (no work queue), so no quarantine of its own holds it.")
	next = append(next, "To hold such mail in a quarantine instead (the Policy quarantine, or the one dmarc.quarantine names), configure mail_policies.")
	return why, next, true
}
