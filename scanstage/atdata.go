package scanstage

import (
	"context"
	"fmt"
	"io"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/scan"
)

// AtData rejects at the end of DATA (550 5.7.1) a message that an engine
// finds positive when every recipient's incoming policy says reject for
// that verdict with that engine: what Postfix with rspamd does, so that
// no bounce goes to a forged sender. Otherwise it accepts without
// scanning, or after a scan that found nothing to reject; the work queue
// scans the accepted message as its policy says (a second scan, the
// price of not holding the verdict across the commit). An engine that
// fails here accepts: the work queue's scan and its scan_failure decide.
type AtData struct {
	Policies *policy.MailPolicies
	Spam     map[string]scan.SpamEngine  // by the policies' engine names
	Virus    map[string]scan.VirusEngine //
}

// Rejecting reports whether any incoming policy rejects at SMTP time:
// without one the listener needs no DataCheck.
func Rejecting(p *policy.MailPolicies) bool {
	for _, mp := range p.Incoming {
		if mp.Rejects("spam") || mp.Rejects("virus") {
			return true
		}
	}
	return false
}

// CheckData implements inbound.DataCheck.
func (a *AtData) CheckData(ctx context.Context, env *queue.Envelope, body io.ReaderAt, size int64) inbound.DataVerdict {
	pols := make([]*policy.MailPolicy, len(env.Rcpts))
	for i, r := range env.Rcpts {
		pols[i] = policy.Match(a.Policies.Incoming, env.From, r.Addr)
	}
	msg := envMessage(env, body, size)
	if name, ok := common(pols, "spam", func(p *policy.MailPolicy) string { return p.AntiSpam }); ok && a.Spam[name] != nil {
		eng := a.Spam[name]
		if max := pols[0].Spam.MaxSize; max > 0 && size > max {
			return inbound.DataVerdict{}
		}
		v, err := eng.ScanSpam(ctx, msg)
		if err == nil && v.Class == scan.Positive {
			log := LogName(eng.Name())
			return inbound.DataVerdict{Reject: true,
				Reason: fmt.Sprintf("Rejected by %s spam positive", log), Text: "Message rejected as spam",
				Events: []event.Event{scan.SpamEvent(env.MID, true, log, v), scan.SpamEvent(env.MID, false, log, v),
					summary(env.MID, pols[0], event.ScanResult{Kind: "antispam", Engine: log, Verdict: v.Class.String()})}}
		}
	}
	if name, ok := common(pols, "virus", func(p *policy.MailPolicy) string { return p.AntiVirus }); ok && a.Virus[name] != nil {
		eng := a.Virus[name]
		v, err := eng.ScanVirus(ctx, msg)
		if err == nil && v.Class == scan.Viral {
			log := LogName(eng.Name())
			_, detail := v.Final()
			return inbound.DataVerdict{Reject: true,
				Reason: "Rejected by antivirus positive " + detail, Text: "Message rejected: a virus was found",
				Events: []event.Event{scan.VirusInterimEvent(env.MID, log, v), scan.VirusEvent(env.MID, v),
					summary(env.MID, pols[0], event.ScanResult{Kind: "antivirus", Engine: log, Verdict: "positive", Detail: v.Name})}}
		}
	}
	return inbound.DataVerdict{}
}

// common returns the engine every policy rejects with for kind, and
// whether they all do, with the same engine and the same size limit.
func common(pols []*policy.MailPolicy, kind string, engine func(*policy.MailPolicy) string) (string, bool) {
	if len(pols) == 0 {
		return "", false
	}
	name := engine(pols[0])
	for _, p := range pols {
		if !p.Rejects(kind) || engine(p) != name || p.Spam.MaxSize != pols[0].Spam.MaxSize {
			return "", false
		}
	}
	return name, true
}

// summary is the message's line of verdicts for a rejection: the policy
// named is the first recipient's (all of them reject).
func summary(mid uint64, p *policy.MailPolicy, r event.ScanResult) event.ScanSummary {
	return event.ScanSummary{MID: mid, Policy: p.Name, Table: policy.InboundTable, Verdicts: []event.ScanResult{r}, Action: "reject"}
}
