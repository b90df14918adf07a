package tracking

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mailgate/mailgate/event"
)

// pipelineRefs returns the messages a work-queue line of an ESA log is
// about (event/pipeline.go). A line that links two MIDs (a rewrite, a
// split, a generated copy, a reinjection from the spam quarantine) goes to
// both records, so that each timeline shows the link.
func pipelineRefs(ev event.Event) (a about) {
	switch e := ev.(type) {
	case event.SpamQuarantineTag:
		a.msg(e.MID)
	case event.SpamQuarantined:
		a.msg(e.MID)
	case event.SpamReinjected:
		a.msg(e.MID)
		a.msg(e.NewMID)
	case event.Quarantined:
		a.msg(e.MID)
	case event.QuarantineReason:
		a.msg(e.MID)
	case event.QuarantineReleased:
		a.msg(e.MID)
	case event.QuarantineDeleted:
		a.msg(e.MID)
	case event.Rewritten:
		a.msg(e.MID)
		a.msg(e.NewMID)
	case event.Split:
		a.msg(e.MID)
		a.msg(e.NewMID)
	case event.Generated:
		a.msg(e.MID)
		a.msg(e.OrigMID)
	case event.PolicyDisposal:
		a.msg(e.MID)
	case event.EngineVerdict:
		a.msg(e.MID)
	case event.AVVerdict:
		a.msg(e.MID)
	case event.OutbreakVerdict:
		a.msg(e.MID)
	case event.AMPVerdict:
		a.msg(e.MID)
	case event.TooBig:
		a.msg(e.MID)
	case event.SPFVerdict:
		a.msg(e.MID)
	case event.DKIMVerdict:
		a.msg(e.MID)
	case event.DMARCVerdict:
		a.msg(e.MID)
	case event.Signing:
		a.msg(e.MID)
	case event.Attachment:
		a.msg(e.MID)
	case event.CustomLog:
		a.msg(e.MID)
	}
	return a
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
		r.quarantineNamed(e, text, ev.Quarantine)
	case event.QuarantineReleased:
		if ev.Quarantine == "" || !r.leaveNamed(e, text, ev.Quarantine, false) {
			r.release(e, text)
		}
	case event.QuarantineDeleted:
		r.AbortReason = text
		if ev.Quarantine != "" && r.leaveNamed(e, text, ev.Quarantine, true) {
			break
		}
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

// A message can be in several named quarantines at once, and leaves them
// when it has left the last: dropped if it was deleted from any, released
// otherwise (the ESA's rule). The recipients' Response says which hold it,
// so that the record keeps it across loads:
//
//	held in the "Policy" quarantine
//	held in the "Policy", "Virus" quarantines
//	held in the "Virus" quarantine; deleted from another: not to be delivered
const heldDeleted = "; deleted from another: not to be delivered"

var heldRe = regexp.MustCompile(`^held in the ((?:"[^"]*"(?:, )?)+) quarantines?(` + regexp.QuoteMeta(heldDeleted) + `)?$`)

// heldIn reads a Response of that form.
func heldIn(resp string) (names []string, deleted, ok bool) {
	m := heldRe.FindStringSubmatch(resp)
	if m == nil {
		return nil, false, false
	}
	for _, q := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[1], -1) {
		names = append(names, q[1])
	}
	return names, m[2] != "", true
}

func heldText(names []string, deleted bool) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	s := "held in the " + strings.Join(quoted, ", ") + " quarantine"
	if len(names) > 1 {
		s += "s"
	}
	if deleted {
		s += heldDeleted
	}
	return s
}

// quarantineNamed adds quarantine q to those holding the recipients on
// their way (or already held).
func (r *mrec) quarantineNamed(e event.Entry, text, q string) {
	r.queued = true
	r.AbortReason = text
	for i := range r.Recipients {
		rc := &r.Recipients[i]
		if rc.RID < 0 || (rc.Status.Final() && rc.Status != Quarantined) {
			continue
		}
		names, deleted, ok := heldIn(rc.Response)
		if rc.Status != Quarantined || !ok {
			names, deleted = nil, false
		}
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
		rc.Status, rc.Response, rc.Time, rc.NextRetry = Quarantined, heldText(names, deleted), e.Time, zeroTime
	}
}

// leaveNamed takes quarantine q from the recipients held in it: those
// still in another stay quarantined; the others go on, or are dropped
// when deleted from any. It reports false when no recipient is held in a
// named quarantine (another form: the spam quarantine's).
func (r *mrec) leaveNamed(e event.Entry, text, q string, deleted bool) bool {
	found := false
	for i := range r.Recipients {
		rc := &r.Recipients[i]
		if rc.Status != Quarantined {
			continue
		}
		names, del, ok := heldIn(rc.Response)
		if !ok {
			continue
		}
		found = true
		names = slices.DeleteFunc(names, func(n string) bool { return n == q })
		del = del || deleted
		switch {
		case len(names) > 0:
			rc.Response = heldText(names, del)
		case del:
			r.AbortReason = text
			rc.Status, rc.Response, rc.Time = Dropped, text, e.Time
		default:
			r.AbortReason = ""
			rc.Status, rc.Response, rc.Time = Queued, text, e.Time
		}
	}
	return found
}
