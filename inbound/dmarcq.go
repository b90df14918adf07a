package inbound

import (
	"github.com/mailgate/mailgate/event"
)

// dmarcQuarantine carries out the quarantine action of the session's
// policy for a message that failed DMARC (v's DMARC line is already
// there). With a work queue (Handoff) the message is accepted and its
// results name the quarantine, which the work queue reads from the
// envelope and holds it in, durably, whatever becomes of this process;
// without one there is no quarantine to hold it, and it is tagged for the
// next hop. Either way the action line says what was done and what the
// domain asked, so that the log proves it.
func (h *session) dmarcQuarantine(v *authVerdict) {
	d := h.auth.DMARC
	action := event.DMARCActionTag
	if h.l.srv.Handoff != nil {
		d.Quarantine = h.decision.Policy.DMARC.QuarantineName()
		action = event.DMARCActionQuarantine
	} else {
		v.prefix = append(v.prefix, "X-Mailgate-DMARC: quarantine\r\n"...)
	}
	v.events = append(v.events, event.DMARCActionVerdict(h.mid, event.DMARCAction{
		Domain: d.Domain, Policy: d.Policy, Applied: d.Applied, Action: action}))
}
