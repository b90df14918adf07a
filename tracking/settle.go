package tracking

import (
	"slices"
	"strings"

	"github.com/mailgate/mailgate/event"
)

// fold applies an entry about message mid (the line is already added). c
// is the message's inbound connection when it is known.
func (r *mrec) fold(e event.Entry, c *crec, mid uint64) {
	if r.Started.IsZero() || (!e.Time.IsZero() && e.Time.Before(r.Started)) {
		r.Started = e.Time
	}
	if ph := phaseOf(e.Event); ph != "" {
		r.phase = ph
	}
	if c != nil && c.Kind == event.InboundConn {
		r.fromConn(c)
		if c.ID == r.ICID && !slices.Contains(c.MIDs, mid) {
			c.MIDs = append(c.MIDs, mid)
			c.dirty = true
		}
	}
	switch ev := e.Event.(type) {
	case event.StartMID:
		r.ICID = ev.ICID
		if r.Status == "" {
			r.Status = Receiving
		}
	case event.MailFrom:
		r.ICID, r.Sender = ev.ICID, ev.From
	case event.RcptTo:
		r.ICID = ev.ICID
		rc := r.rcpt(ev.RID, ev.To)
		if rc.Status == "" {
			rc.Status, rc.Time = Receiving, e.Time
		}
	case event.RcptRejected:
		r.Recipients = append(r.Recipients, Recipient{RID: -1, Address: ev.To, Status: Rejected,
			Response: "Rejected by " + ev.By, Time: e.Time})
	case event.MessageIDHeader:
		r.MessageID = ev.MessageID
	case event.Subject:
		r.Subject = subjectText(ev.Subject) // the line keeps the text as logged
	case event.Ready:
		r.Size = ev.Bytes
		if r.Sender == "" {
			r.Sender = ev.From
		}
	case event.Queued:
		r.queued = true
		for i := range r.Recipients {
			if r.Recipients[i].Status == Receiving {
				r.Recipients[i].Status, r.Recipients[i].Time = Queued, e.Time
			}
		}
	case event.MessageAborted:
		r.AbortReason = ev.Reason
		if ev.Reason == event.AbortReceiving || ev.BySender() {
			r.Status = Aborted
			r.AbortState = r.phase
			r.settleOpen(Aborted, "", ev.Reason, e)
			switch {
			case ev.BySender():
				r.Abort = AbortSenderQuit
			case c != nil && c.Lost:
				r.Abort = AbortLost
			default:
				r.Abort = AbortTimeout
			}
			if c != nil && c.Cause != "" { // mailgate's own line came first (a reload)
				cause, _ := event.ParseCause(c.Cause)
				r.abortFromCause(c, cause)
			}
		} else {
			// "Dropped by CASE", "Dropped by amp": a filter discarded it.
			r.Status = Dropped
			r.settleOpen(Dropped, "", ev.Reason, e)
		}
	case event.MessageFinished:
		r.Finished = e.Time
		if ev.Status == event.FinishedAborted && r.AbortReason == "" {
			if c != nil && c.failed != "" {
				r.Status, r.AbortReason, r.AbortState = Rejected, c.failed, "data"
				r.settleOpen(Rejected, "", c.failed, e)
			} else {
				r.Status, r.AbortState = Aborted, r.phase
				r.settleOpen(Aborted, "", "", e)
				r.Abort = AbortTimeout
				if c != nil && c.Lost {
					r.Abort = AbortLost
				}
			}
		}
	case event.DeliveryStart:
		r.queued = true
		r.addDCID(ev.DCID)
		for _, rid := range ev.RIDs {
			rc := r.rcpt(rid, "")
			rc.DCID = ev.DCID
		}
	case event.MessageDone:
		r.queued = true
		r.addDCID(ev.DCID)
		for _, rid := range ev.RIDs {
			rc := r.rcpt(rid, "")
			rc.Status, rc.DCID, rc.Time, rc.Code, rc.NextRetry = Delivered, ev.DCID, e.Time, "", zeroTime
		}
	case event.Response:
		for _, rid := range ev.RIDs {
			r.rcpt(rid, "").Response = ev.Text
		}
	case event.Outcome:
		r.queued = true
		r.addDCID(ev.DCID)
		if r.Sender == "" {
			r.Sender = ev.From
		}
		rc := r.rcpt(ev.RID, ev.To)
		if rc.Status.Final() && rc.Time.After(e.Time) {
			break // an older line imported late
		}
		rc.Status = Delayed
		if ev.Hard {
			rc.Status = Bounced
		}
		rc.DCID, rc.Code, rc.Time = ev.DCID, ev.Status, e.Time
		rc.Response = outcomeText(ev)
	case event.Pending:
		for _, rid := range ev.RIDs {
			rc := r.rcpt(rid, "")
			rc.NextRetry = ev.Until
			if !rc.Status.Final() {
				rc.Status, rc.Time = Delayed, e.Time
			}
		}
	case event.BounceGenerated:
		if ev.MID == mid {
			r.BounceOf = ev.OrigMID
			r.queued = true
		}
	case event.DoubleBounce:
		rc := r.rcpt(ev.RID, "")
		rc.Status, rc.Code, rc.Time = Dropped, ev.Status, e.Time
		rc.Response = "double bounce: " + ev.Reason
	case event.Deleted:
		for _, rid := range ev.RIDs {
			rc := r.rcpt(rid, "")
			rc.Status, rc.Time, rc.NextRetry = Dropped, e.Time, zeroTime
			rc.Response = "deleted from the queue by the administrator"
		}
	}
}

// fromConn copies what the message's inbound connection knows.
func (r *mrec) fromConn(c *crec) {
	if r.ICID == 0 {
		r.ICID = c.ID
	}
	if r.ICID != c.ID {
		return
	}
	if r.RemoteIP == "" {
		r.RemoteIP = c.RemoteIP
	}
	if r.RemoteHost == "" {
		r.RemoteHost = c.RemoteHost
	}
	if r.SenderGroup == "" {
		r.SenderGroup = c.SenderGroup
	}
	r.dirty = true
}

// abortFromCause refines an abort with mailgate's "ended" line, which says
// exactly why the connection ended (cause) and in which SMTP state.
func (r *mrec) abortFromCause(c *crec, cause event.Cause) {
	switch cause {
	case event.CauseQuit:
		r.Abort = AbortSenderQuit
	case event.CausePeerClosed, event.CausePeerReset, event.CauseIOError, event.CauseTLSFailed:
		r.Abort = AbortLost
	case event.CauseTimeoutUnsuccessful, event.CauseTimeoutTotal, event.CauseTimeoutIdle:
		r.Abort = AbortTimeout
	}
	if c.State != "" {
		r.AbortState = c.State
	}
	r.AbortBytes = c.DataBytes
	r.dirty = true
}

var zeroTime = Recipient{}.Time

// settleOpen gives every unsettled recipient status s.
func (r *mrec) settleOpen(s Status, code, response string, e event.Entry) {
	for i := range r.Recipients {
		rc := &r.Recipients[i]
		if !rc.Status.Final() {
			rc.Status, rc.Code, rc.Response, rc.Time, rc.NextRetry = s, code, response, e.Time, zeroTime
		}
	}
}

// rcpt returns the recipient rid, adding it when the log had not named it
// (a log read from the middle of a message's life).
func (r *mrec) rcpt(rid int, addr string) *Recipient {
	for i := range r.Recipients {
		if r.Recipients[i].RID == rid {
			if addr != "" && r.Recipients[i].Address == "" {
				r.Recipients[i].Address = addr
			}
			return &r.Recipients[i]
		}
	}
	r.Recipients = append(r.Recipients, Recipient{RID: rid, Address: addr})
	slices.SortStableFunc(r.Recipients, func(a, b Recipient) int { return a.RID - b.RID })
	for i := range r.Recipients {
		if r.Recipients[i].RID == rid {
			return &r.Recipients[i]
		}
	}
	panic("unreachable")
}

func (r *mrec) addDCID(d uint64) {
	if d != 0 && !slices.Contains(r.DCIDs, d) {
		r.DCIDs = append(r.DCIDs, d)
	}
}

// settle derives the message's status from its recipients.
func (r *mrec) settle() {
	switch r.Status {
	case Aborted, Rejected, Dropped:
		if r.Status == Aborted && r.Accepted() == 0 && r.rejected() > 0 {
			// Every recipient was refused and the client then gave up.
			r.Status, r.Abort = Rejected, ""
		}
		return
	}
	if !r.queued {
		r.Status = Receiving
		return
	}
	final, delayed, bounced, dropped, n := true, false, false, 0, 0
	for _, rc := range r.Recipients {
		if rc.RID < 0 {
			continue
		}
		n++
		switch rc.Status {
		case Delayed:
			delayed = true
		case Bounced:
			bounced = true
		case Dropped:
			dropped++
		}
		if !rc.Status.Final() {
			final = false
		}
	}
	switch {
	case n == 0 && r.rejected() > 0:
		r.Status = Rejected
	case !final && delayed:
		r.Status = Delayed
	case !final || n == 0:
		r.Status = Queued
	case bounced:
		r.Status = Bounced
	case dropped == n:
		r.Status = Dropped
	default:
		r.Status = Delivered
	}
}

func (m *Message) rejected() int { return len(m.Recipients) - m.Accepted() }

// Accepted is the number of recipients the gateway accepted (RID >= 0).
func (m *Message) Accepted() int {
	n := 0
	for _, rc := range m.Recipients {
		if rc.RID >= 0 {
			n++
		}
	}
	return n
}

// outcomeText is a Bounced or Delayed line's reason and the remote reply.
func outcomeText(o event.Outcome) string {
	var b strings.Builder
	b.WriteString(o.Reason)
	if o.Code != "" && o.Code != "000" || len(o.Response) > 0 {
		b.WriteString(": ")
		if o.Code != "" && o.Code != "000" {
			b.WriteString(o.Code)
			b.WriteByte(' ')
		}
		b.WriteString(strings.Join(o.Response, " "))
	}
	return strings.TrimSpace(b.String())
}

// phaseOf is the SMTP state a message line shows the injection reached.
func phaseOf(ev event.Event) string {
	switch ev.(type) {
	case event.StartMID, event.MailFrom:
		return "mail"
	case event.RcptTo, event.RcptRejected:
		return "rcpt"
	case event.MessageIDHeader, event.Subject, event.Ready:
		return "data"
	}
	return ""
}

// fold applies an entry about the connection (the line is already added).
func (c *crec) fold(e event.Entry, t *Tracker) {
	if c.Started.IsZero() || (!e.Time.IsZero() && e.Time.Before(c.Started)) {
		c.Started = e.Time
	}
	switch ev := e.Event.(type) {
	case event.NewICID:
		c.RemoteIP, c.RemoteHost = ev.RemoteIP, ev.ReverseHost
		if ev.ReverseHost != "unknown" && !ev.Verified {
			c.RemoteHost = ev.ReverseHost + " (not verified)"
		}
	case event.HATMatch:
		c.SenderGroup = ev.Group
	case event.NewDCID:
		c.RemoteIP = ev.RemoteIP
	case event.ConnectionError:
		if c.RemoteIP == "" {
			c.RemoteIP = ev.IP
		}
		c.RemoteHost = ev.Domain
	case event.ICIDLost:
		c.Lost = true
	case event.ReceivingFailed:
		c.failed = ev.Reason
	case event.ICIDClose, event.DCIDClose:
		c.Finished = e.Time
	case event.ConnectionEnd:
		c.Cause, c.State, c.LastCommand, c.DataBytes = ev.Cause.String(), ev.State, ev.LastCommand, ev.DataBytes
		// The line comes after the abort it explains: correct the messages
		// that ended with this connection.
		if n := len(c.MIDs); n > 0 {
			if r := t.msgs[MessageKey{c.Host, c.MIDs[n-1]}]; r != nil && r.ICID == c.ID && r.Status == Aborted {
				r.abortFromCause(c, ev.Cause)
			}
		}
	}
}
