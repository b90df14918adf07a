package tracking

import (
	"fmt"

	"github.com/mailgate/mailgate/event"
)

// pipelineRefs returns the messages a work-queue line of an ESA log is
// about (event/pipeline.go). A line that links two MIDs (a rewrite, a
// split, a generated copy, a reinjection from the spam quarantine) goes to
// both records, so that each timeline shows the link.
func pipelineRefs(ev event.Event) []uint64 {
	switch e := ev.(type) {
	case event.SpamQuarantineTag:
		return []uint64{e.MID}
	case event.SpamQuarantined:
		return []uint64{e.MID}
	case event.SpamReinjected:
		return []uint64{e.MID, e.NewMID}
	case event.Quarantined:
		return []uint64{e.MID}
	case event.QuarantineReason:
		return []uint64{e.MID}
	case event.QuarantineReleased:
		return []uint64{e.MID}
	case event.QuarantineDeleted:
		return []uint64{e.MID}
	case event.Rewritten:
		return []uint64{e.MID, e.NewMID}
	case event.Split:
		return []uint64{e.MID, e.NewMID}
	case event.Generated:
		return []uint64{e.MID, e.OrigMID}
	case event.PolicyDisposal:
		return []uint64{e.MID}
	case event.EngineVerdict:
		return []uint64{e.MID}
	case event.AVVerdict:
		return []uint64{e.MID}
	case event.OutbreakVerdict:
		return []uint64{e.MID}
	case event.AMPVerdict:
		return []uint64{e.MID}
	case event.TooBig:
		return []uint64{e.MID}
	case event.SPFVerdict:
		return []uint64{e.MID}
	case event.DKIMVerdict:
		return []uint64{e.MID}
	case event.DMARCVerdict:
		return []uint64{e.MID}
	case event.Signing:
		return []uint64{e.MID}
	case event.Attachment:
		return []uint64{e.MID}
	case event.CustomLog:
		return []uint64{e.MID}
	}
	return nil
}

// foldPipeline applies the ESA's work-queue lines that change what became
// of a message: its quarantines (the status Quarantined, with the
// quarantine's name), a release (it goes on), a deletion (dropped), and the
// old form of a filter's disposal. The links between MIDs that some of
// them make are read from the lines themselves (explain.Links). text is
// the line.
func (r *mrec) foldPipeline(e event.Entry, mid uint64, text string) {
	switch ev := e.Event.(type) {
	case event.SpamQuarantineTag:
		r.quarantine(e, text, "the spam quarantine")
	case event.SpamQuarantined:
		r.quarantine(e, text, "the spam quarantine")
	case event.SpamReinjected:
		if ev.MID == mid {
			r.release(e, fmt.Sprintf("released from the spam quarantine; goes on as MID %d", ev.NewMID))
		}
	case event.Quarantined:
		r.quarantine(e, text, fmt.Sprintf("the %q quarantine", ev.Quarantine))
	case event.QuarantineReleased:
		r.release(e, text)
	case event.QuarantineDeleted:
		r.AbortReason = text
		for i := range r.Recipients {
			if rc := &r.Recipients[i]; rc.Status == Quarantined {
				rc.Status, rc.Response, rc.Time = Dropped, text, e.Time
			}
		}
	case event.PolicyDisposal:
		r.AbortReason = text
		if ev.Bounced {
			r.queued = true
			r.settleOpen(Bounced, "", text, e)
		} else {
			r.Status = Dropped
			r.settleOpen(Dropped, "", text, e)
		}
	}
}

// quarantine puts the recipients still on their way in quarantine q. The
// message was accepted: it got that far.
func (r *mrec) quarantine(e event.Entry, text, q string) {
	r.queued = true
	r.AbortReason = text
	for i := range r.Recipients {
		if rc := &r.Recipients[i]; rc.RID >= 0 && !rc.Status.Final() {
			rc.Status, rc.Response, rc.Time, rc.NextRetry = Quarantined, "held in "+q, e.Time, zeroTime
		}
	}
}

// release lets the quarantined recipients go on to delivery.
func (r *mrec) release(e event.Entry, why string) {
	r.AbortReason = ""
	for i := range r.Recipients {
		if rc := &r.Recipients[i]; rc.Status == Quarantined {
			rc.Status, rc.Response, rc.Time = Queued, why, e.Time
		}
	}
}
