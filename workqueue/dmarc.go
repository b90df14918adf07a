package workqueue

import (
	"bytes"

	"github.com/mailgate/mailgate/queue"
)

// DMARC's quarantine action, the work queue's first check: the listener
// decided it at the end of DATA (its mail flow policy's dmarc.
// quarantine_policy or reject_policy) and wrote the quarantine's name into
// the envelope's authentication results, which the spool keeps. The work
// queue holds the message there as it holds a stage's quarantine: the
// verdict is taken before the stages and applied after them (the ESA
// enters quarantines at the end of the work queue, and a later stage's
// drop still wins), and a release runs every stage of its policy (the
// rescan) and skips this check, or the message would go back in.

// dmarcReason is the reason in the line's parentheses:
// `MID 7 quarantined to "Policy" (DMARC)`.
const dmarcReason = "DMARC"

// dmarcKey is the JSON of mailauth.DMARC's Quarantine field as it begins,
// less its opening quote (the search skips ahead on the rare 'q', not on
// every quote): a message whose results lack it is not looked at further,
// so that a message handed straight through costs no decoding. Within a
// JSON string a quote is escaped, so these bytes occur only as the end of
// a key, and no other key of mailauth.Results ends so.
var dmarcKey = []byte(`quarantine":"`)

// dmarcHeld reports whether the listener quarantined env for DMARC, as
// far as a look at its encoded results tells: dmarcVerdict decides.
func dmarcHeld(env *queue.Envelope) bool {
	return bytes.Contains(env.Auth, dmarcKey)
}

// dmarcVerdict is the quarantine the listener chose for m, if any. An
// envelope whose results cannot be read is an error: the message waits in
// the work queue rather than go on without the quarantine it may need.
func dmarcVerdict(m *Message) (Verdict, bool, error) {
	if !dmarcHeld(m.Env) {
		return Verdict{}, false, nil
	}
	r, err := m.Auth()
	if err != nil || r == nil || r.DMARC == nil || r.DMARC.Quarantine == "" {
		return Verdict{}, false, err
	}
	return Verdict{Action: Quarantine, Quarantine: r.DMARC.Quarantine, By: dmarcReason}, true, nil
}
