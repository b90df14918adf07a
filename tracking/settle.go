package tracking

import (
	"slices"
	"strings"

	"github.com/mailgate/mailgate/event"
)

// fold applies an entry about message mid (the line, text, is already added). c
// is the message's inbound connection when it is known.
func (r *mrec) fold(e event.Entry, text string, c *crec, mid uint64) {
	if r.Started.IsZero() || (!e.Time.IsZero() && e.Time.Before(r.Started)) {
		r.Started = e.Time
	}
	if ph := phaseOf(e.Event); ph != "" {
		r.phase = ph
	}
	if c != nil && c.Kind == event.InboundConn {
		r.fromConn(c)
		if c.ID == r.ICID && !slices.Contains(c.MIDs, mid) && r.splitFrom() == 0 {
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
		// "ready" is written once the message is received and kept: it is
		// accepted, whatever the work queue's lines after it (or the lack
		// of them: a log that ends there) say.
		r.accept(e)
	case event.Queued:
		r.accept(e)
	case event.InvalidAddress:
		if ev.Recipient {
			// The RCPT was refused for its syntax (501, 553): a refused
			// recipient as much as one the RAT refused.
			r.Recipients = append(r.Recipients, Recipient{RID: -1, Address: commandAddress(ev.Detail), Status: Rejected,
				Response: "Invalid recipient address: " + ev.Detail, Time: e.Time})
		}
	case event.MessageAborted:
		r.AbortReason = ev.Reason
		switch ev.Cause().Kind {
		case event.AbortSender:
			r.abort(AbortSender, e)
		case event.AbortConn:
			// The ESA's line alone does not say why: "ICID n lost" before
			// it proves the connection broke; the timeout's "disconnected"
			// line after it (ICIDDisconnected) proves a timeout.
			kind := AbortUnknown
			if c != nil && c.Lost {
				kind = AbortLost
			}
			r.abort(kind, e)
		case event.AbortInjection:
			r.abort(AbortInjection, e)
		case event.AbortBounced:
			// A filter refused the message after it was accepted: the
			// sender gets a bounce, as for a recipient the next hop refused.
			r.queued = true
			r.settleOpen(Bounced, "", ev.Reason, e)
		default:
			// "Dropped by CASE", "Dropped by amp": a filter discarded it.
			r.Status = Dropped
			r.settleOpen(Dropped, "", ev.Reason, e)
		}
		if r.Status == Aborted && c != nil && c.Cause != "" { // mailgate's own line came first (a reload)
			r.abortFromCause(c)
		}
	case event.MessageFinished:
		r.Finished = e.Time
		if ev.Status == event.FinishedAborted && r.AbortReason == "" {
			if c != nil && c.failed != "" {
				// Refused at the end of DATA, or at MAIL FROM (SPF, a
				// full spool) when no recipient came before.
				state := "data"
				if r.phase == "mail" {
					state = "mail"
				}
				r.Status, r.AbortReason, r.AbortState = Rejected, c.failed, state
				r.settleOpen(Rejected, "", c.failed, e)
			} else {
				kind := AbortUnknown
				if c != nil && c.Lost {
					kind = AbortLost
				}
				r.abort(kind, e)
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
		st := Delivered
		if ev.ExternalQuarantine() {
			// Handed to the off-box spam quarantine, not to the recipient.
			st = Quarantined
			r.AbortReason = "delivered to the external spam quarantine"
		}
		for _, rid := range ev.RIDs {
			rc := r.rcpt(rid, "")
			rc.Status, rc.DCID, rc.Time, rc.Code, rc.NextRetry = st, ev.DCID, e.Time, "", zeroTime
			if st == Quarantined {
				rc.Response = "held in the external spam quarantine"
			}
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
	default:
		if !r.foldAuth(e.Event) {
			r.foldPipeline(e, mid, text)
		}
		r.foldVerdict(e.Event)
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
	if r.DNSList == "" {
		r.DNSList = c.DNSList
	}
	r.dirty = true
}

// abort ends the injection with kind k, in the state the message's lines
// show it reached.
func (r *mrec) abort(k Abort, e event.Entry) {
	r.Status, r.Abort, r.AbortState = Aborted, k, r.phase
	r.settleOpen(Aborted, "", r.AbortReason, e)
}

// accept marks the message accepted: its recipients wait for delivery.
func (r *mrec) accept(e event.Entry) {
	r.queued = true
	for i := range r.Recipients {
		if r.Recipients[i].Status == Receiving {
			r.Recipients[i].Status, r.Recipients[i].Time = Queued, e.Time
		}
	}
}

// abortFromCause refines an abort with mailgate's "ended" line, which says
// exactly why the connection ended and in which SMTP state. c is the
// connection the message was the last of.
func (r *mrec) abortFromCause(c *crec) {
	if r.Status != Aborted {
		return
	}
	r.dirty = true
	switch r.Abort {
	case AbortSender, AbortSenderQuit, AbortSenderReset:
		// The sender aborted it. A QUIT with a transaction open ends in
		// its state; otherwise the transaction was over when the session
		// ended (RSET or a new HELO/EHLO threw the message away, and the
		// session went on): its state is the one the message reached.
		if cause, _ := event.ParseCause(c.Cause); cause == event.CauseQuit && openState(c.State) {
			r.Abort, r.AbortState, r.AbortBytes = AbortSenderQuit, c.State, c.DataBytes
		} else {
			r.Abort = AbortSenderReset
		}
		return
	}
	if cause, ok := event.ParseCause(c.Cause); ok {
		r.Abort = AbortOf(cause)
	}
	if c.State != "" {
		r.AbortState = c.State
	}
	r.AbortBytes = c.DataBytes
}

// openState reports whether a transaction is open in an SMTP state of the
// "ended" line.
func openState(s string) bool { return s == "mail" || s == "rcpt" || s == "data" }

// commandAddress is the address in the command an InvalidAddress line
// quotes ("Bad recipient address syntax: 'RCPT TO:<bob>'" gives "bob").
func commandAddress(detail string) string {
	i := strings.LastIndex(detail, ": '")
	if i < 0 {
		return ""
	}
	cmd := detail[i+3:]
	if j := strings.IndexByte(cmd, ':'); j >= 0 {
		cmd = cmd[j+1:]
	}
	cmd = strings.TrimSuffix(cmd, "'")
	if a, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(cmd), "<"), ">"); ok {
		return a
	}
	addr, _, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	return addr
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
	final, delayed, bounced, quarantined, dropped, n := true, false, false, false, 0, 0
	split := 0
	for _, rc := range r.Recipients {
		if rc.RID < 0 {
			continue
		}
		if rc.Status == Split {
			// Gone on as another message: its end is that one's.
			split++
			continue
		}
		n++
		switch rc.Status {
		case Delayed:
			delayed = true
		case Bounced:
			bounced = true
		case Quarantined:
			quarantined = true
		case Dropped:
			dropped++
		}
		if !rc.Status.Final() {
			final = false
		}
	}
	switch {
	case n == 0 && split > 0:
		r.Status = Split
	case n == 0 && r.rejected() > 0:
		r.Status = Rejected
	case !final && quarantined:
		r.Status = Quarantined
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
		c.DNSList = DNSListZone(ev.Rule)
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
	case event.ICIDDisconnected:
		// The ESA writes it after the abort of the open message: that
		// message was ended by the listener's timeout.
		if r := t.lastMessage(c); r != nil && r.Status == Aborted && (r.Abort == AbortUnknown || r.Abort == AbortLost) {
			switch ev.Reason {
			case event.DisconnectNoMessages:
				r.Abort, r.dirty = AbortTimeout, true
			case event.DisconnectTotalTime:
				r.Abort, r.dirty = AbortTimeLimit, true
			}
		}
	case event.ConnectionEnd:
		c.Cause, c.State, c.LastCommand, c.DataBytes = ev.Cause.String(), ev.State, ev.LastCommand, ev.DataBytes
		// The line comes after the abort it explains: correct the messages
		// that ended with this connection.
		if r := t.lastMessage(c); r != nil {
			r.abortFromCause(c)
		}
	}
}

// lastMessage is the last message begun on inbound connection c, when it
// is in memory (loadLast loads it for the lines that need it).
func (t *Tracker) lastMessage(c *crec) *mrec {
	n := len(c.MIDs)
	if n == 0 {
		return nil
	}
	if r := t.msgs[MessageKey{c.Host, c.MIDs[n-1]}]; r != nil && r.ICID == c.ID {
		return r
	}
	return nil
}

// senderAbortBefore: a new message on connection c proves that the one
// before it, which the sender aborted, was thrown away by RSET or a new
// HELO/EHLO, not by QUIT: the session went on.
func (t *Tracker) senderAbortBefore(c *crec, mid uint64) {
	if c == nil || c.Kind != event.InboundConn {
		return
	}
	if r := t.lastMessage(c); r != nil && r.MID != mid && r.Status == Aborted && r.Abort == AbortSender {
		r.Abort, r.dirty = AbortSenderReset, true
	}
}
