package outbound

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/dsn"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp/status"
)

// retryAt is when a recipient that failed softly for the attempts-th time
// is tried again: the interval starts at initial_retry and doubles up to
// max_retry, and the last try is at the end of max_time_in_queue.
func (m *Manager) retryAt(msg *message, attempts int, now time.Time) time.Time {
	b := m.o.Delivery.Bounce
	wait := max(b.InitialRetry, time.Second)
	for i := 1; i < attempts && wait < b.MaxRetry; i++ {
		wait *= 2
	}
	if b.MaxRetry > 0 {
		wait = min(wait, b.MaxRetry)
	}
	next := now.Add(wait)
	if b.MaxTimeInQueue > 0 {
		if end := msg.arrived.Add(b.MaxTimeInQueue); next.After(end) {
			next = end
		}
	}
	return next
}

// expired reports whether a recipient that just failed softly has had its
// time in the queue, or its retries (max_retries 0: no retry).
func (m *Manager) expired(msg *message, st queue.RecipientState, now time.Time) bool {
	b := m.o.Delivery.Bounce
	if b.MaxTimeInQueue > 0 && !now.Before(msg.arrived.Add(b.MaxTimeInQueue)) {
		return true
	}
	return st.Attempts > b.MaxRetries
}

// finishJob records what an attempt did to the recipients of j (outs[k]
// is j.rcpts[k]'s outcome) and acts on it, in this order: a DSN for the
// hard failures is committed to the spool, the recipients' new states are
// made durable (or the message is finished when none is left pending),
// then the events are logged and the job and the message are rescheduled.
// A crash between the first two steps leaves the DSN, which names the
// recipients it reports (queue.Envelope.BounceOf): recovery takes them as
// bounced, and Start records them so and logs the DSN (recoverBounce).
// No crash loses a DSN or sends one twice.
func (m *Manager) finishJob(j *job, outs []outcome, dcid uint64, t try) {
	msg := j.msg
	env := msg.env
	now := time.Now()

	msg.mu.Lock()
	states := make([]queue.RecipientState, len(outs))
	final := 0
	var hard []int
	for k, o := range outs {
		st := msg.states[j.rcpts[k]]
		st.Attempts++
		st.Last, st.Next = now, time.Time{}
		st.Reason = o.text()
		switch o.result {
		case delivered:
			st.Status = queue.Delivered
		case bounced:
			st.Status = queue.Bounced
		default:
			if m.expired(msg, st, now) {
				outs[k] = expiry(o)
				st.Status = queue.Bounced
			} else {
				st.Next = m.retryAt(msg, st.Attempts, now)
			}
		}
		if st.Status != queue.Pending {
			final++
		}
		if st.Status == queue.Bounced {
			hard = append(hard, k)
		}
		states[k] = st
	}
	pending := msg.pending - final

	var bounce *queue.Envelope
	var bounceSize int
	if len(hard) > 0 && env.From != "" && m.o.Delivery.Bounce.SendBounces {
		var err error
		bounce, bounceSize, err = m.bounce(msg, j, hard, outs, now)
		if err != nil {
			msg.mu.Unlock()
			m.log.Error("outbound: no DSN; the message stays in the spool as it was", "mid", env.MID, "err", err)
			m.drop(j)
			return
		}
		if m.o.crashPoint != nil {
			m.o.crashPoint("dsn")
		}
	}
	if err := m.persist(msg, j, states, pending); err != nil {
		msg.mu.Unlock()
		m.log.Error("outbound: recipient states not recorded; the message is retried after a restart", "mid", env.MID, "err", err)
		if bounce != nil {
			// It is in the spool: it goes, and a restart may add a twin.
			m.logBounce(bounce, bounceSize, env.MID)
			m.enqueueBounce(bounce)
		}
		m.drop(j)
		return
	}
	for k, st := range states {
		msg.states[j.rcpts[k]] = st
	}
	msg.pending = pending
	m.logOutcomes(j, outs, states, dcid)
	if bounce != nil {
		m.logBounce(bounce, bounceSize, env.MID)
	}
	if pending == 0 {
		m.emit(event.MessageFinished{MID: env.MID, Status: event.FinishedDone})
	}
	msg.mu.Unlock()

	if bounce != nil {
		m.enqueueBounce(bounce)
	}
	if t.counted && m.o.Attempted != nil {
		m.o.Attempted(attemptOf(j, states, t.start))
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	d := j.dest
	var soft []int
	var due time.Time
	for k, st := range states {
		switch st.Status {
		case queue.Delivered:
			d.counts.delivered++
			m.total.delivered++
		case queue.Bounced:
			d.counts.bounced++
			m.total.bounced++
		default:
			d.counts.delayed++
			m.total.delayed++
			soft = append(soft, j.rcpts[k])
			if due.IsZero() || st.Next.Before(due) {
				due = st.Next
			}
		}
	}
	if msg.gone {
		return
	}
	d.rcpts -= final
	msg.busy--
	j.rcpts = soft
	if len(soft) > 0 {
		m.deferJob(j, due)
	} else {
		j.state = jobDone
	}
	switch {
	case pending == 0:
		m.forget(msg)
	case msg.busy == 0:
		m.evict(msg)
	}
	m.schedule()
}

// attemptOf sums up an attempt of j whose recipients now have states.
func attemptOf(j *job, states []queue.RecipientState, start time.Time) Attempt {
	a := Attempt{Destination: j.dest.name, Route: j.dest.route != nil}
	if !start.IsZero() {
		a.Transaction = max(time.Since(start), time.Nanosecond)
	}
	for _, st := range states {
		switch st.Status {
		case queue.Delivered:
			a.Delivered++
		case queue.Bounced:
			a.Bounced++
		default:
			a.Deferred++
		}
	}
	return a
}

// persist makes the new states durable: a finish record when no recipient
// is left pending (it says all there is to say), else a state record per
// distinct state.
func (m *Manager) persist(msg *message, j *job, states []queue.RecipientState, pending int) error {
	return m.spoolWrite(func(ctx context.Context) error { return m.record(ctx, msg, j, states, pending) })
}

// spoolWrite runs write, a write to the spool, within spoolTimeout. A
// spool whose disk is full refuses a record (queue.ErrNoSpace) and takes
// records again as soon as there is room, so write is tried again every
// noSpaceRetry until then (or spoolTimeout, or Stop): giving up would
// leave a delivered message in the spool, its space kept until a restart,
// which delivers it again.
func (m *Manager) spoolWrite(write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	for {
		err := write(ctx)
		if !errors.Is(err, queue.ErrNoSpace) {
			return err
		}
		t := time.NewTimer(noSpaceRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		case <-m.quit:
			t.Stop()
			return err
		}
	}
}

// noSpaceRetry is how often spoolWrite tries again on a full disk.
const noSpaceRetry = time.Second

// record writes the records of persist once.
func (m *Manager) record(ctx context.Context, msg *message, j *job, states []queue.RecipientState, pending int) error {
	mid := msg.env.MID
	if pending == 0 {
		return m.o.Spool.Finish(ctx, mid)
	}
	done := make([]bool, len(states))
	for k, st := range states {
		if done[k] {
			continue
		}
		var rids []int
		for l := k; l < len(states); l++ {
			if !done[l] && states[l] == st {
				done[l] = true
				rids = append(rids, msg.env.Rcpts[j.rcpts[l]].RID)
			}
		}
		if err := m.o.Spool.SetRecipientState(ctx, mid, rids, st); err != nil {
			return err
		}
	}
	return nil
}

// drop forgets a message whose state could not be recorded: it stays in
// the spool as it was, and the next start delivers it again.
func (m *Manager) drop(j *job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !j.msg.gone {
		j.msg.busy--
		m.forget(j.msg)
		m.schedule()
	}
}

// logOutcomes writes the mail log lines of an attempt, as the ESA does:
// "Message done" and "Response" for the delivered recipients, "Bounced:"
// (or "Double bounce:" for a bounce that bounced) and "Delayed:" per
// failed recipient, and "pending till" for those deferred.
func (m *Manager) logOutcomes(j *job, outs []outcome, states []queue.RecipientState, dcid uint64) {
	env := j.msg.env
	var done []int
	var reply string
	for k, st := range states {
		if st.Status == queue.Delivered {
			done = append(done, env.Rcpts[j.rcpts[k]].RID)
			reply = strings.Join(outs[k].lines, " ")
		}
	}
	if len(done) > 0 {
		m.emit(event.MessageDone{DCID: dcid, MID: env.MID, RIDs: done})
		m.emit(event.Response{MID: env.MID, RIDs: done, Text: reply, Quote: maillog.QuoteFor(reply)})
	}
	type wait struct {
		until time.Time
		rids  []int
	}
	var waits []wait
	for k, st := range states {
		if st.Status == queue.Delivered {
			continue
		}
		o := outs[k]
		r := env.Rcpts[j.rcpts[k]]
		m.emit(event.Outcome{Hard: st.Status == queue.Bounced, DCID: dcid, MID: env.MID, From: env.From, To: r.Addr,
			RID: r.RID, Status: o.status, Reason: status.Reason(o.status), Code: o.code, Response: o.lines})
		if st.Status == queue.Bounced && env.From == "" {
			m.emit(event.DoubleBounce{MID: env.MID, RID: r.RID, Status: o.status, Reason: status.Reason(o.status)})
		}
		if st.Status == queue.Pending {
			i := slices.IndexFunc(waits, func(w wait) bool { return w.until.Equal(st.Next) })
			if i < 0 {
				waits = append(waits, wait{until: st.Next})
				i = len(waits) - 1
			}
			waits[i].rids = append(waits[i].rids, r.RID)
		}
	}
	for _, w := range waits {
		m.emit(event.Pending{MID: env.MID, RIDs: w.rids, Until: w.until, Profile: "Default"})
	}
}

// bounce builds the DSN for the recipients hard of an attempt and commits
// it to the spool as a message of its own: null sender, ICID 0, one
// recipient, the original sender.
func (m *Manager) bounce(msg *message, j *job, hard []int, outs []outcome, now time.Time) (*queue.Envelope, int, error) {
	env := msg.env
	// The DSN carries the original header only, up to a cap: reading a
	// little past the cap lets a field cut by the read fall beyond it.
	var body []byte
	if _, b, _, err := m.o.Spool.Head(env.MID, dsn.MaxOriginalHeader+1<<10); err == nil {
		body = b
	}
	r := dsn.Report{ReportingMTA: m.o.Hostname, From: m.o.Delivery.Bounce.From, To: env.From, MID: env.MID,
		ArrivalDate: msg.arrived, Original: body, Date: now, SMTPUTF8: env.SMTPUTF8}
	for _, k := range hard {
		o := outs[k]
		r.Recipients = append(r.Recipients, dsn.Recipient{Original: env.Rcpts[j.rcpts[k]].Addr, Action: dsn.Failed,
			Status: o.status, RemoteMTA: o.remote, Diagnostic: o.diagnostic(), LastAttempt: now})
	}
	b, err := dsn.Build(r)
	if err != nil {
		return nil, 0, fmt.Errorf("outbound: DSN for MID %d: %w", env.MID, err)
	}
	mid, err := m.o.IDs.Next(queue.MID)
	if err != nil {
		return nil, 0, fmt.Errorf("outbound: DSN for MID %d: %w", env.MID, err)
	}
	// The DSN names the recipients it reports: if a crash comes before
	// their states are recorded, recovery takes them as bounced.
	rids := make([]int, len(hard))
	for i, k := range hard {
		rids[i] = env.Rcpts[j.rcpts[k]].RID
	}
	benv := &queue.Envelope{MID: mid, From: "", Rcpts: []queue.Recipient{{RID: 0, Addr: env.From}}, Received: now, SMTPUTF8: env.SMTPUTF8,
		BounceOf: env.MID, BounceRIDs: rids}
	if env.SMTPUTF8 {
		benv.BodyType = "8BITMIME"
	}
	if err := m.spoolWrite(func(ctx context.Context) error { return m.o.Spool.Commit(ctx, benv, b) }); err != nil {
		return nil, 0, fmt.Errorf("outbound: DSN for MID %d: %w", env.MID, err)
	}
	return benv, len(b), nil
}

// logBounce writes the lines of a generated bounce, as the ESA does for a
// message it injects itself (ICID 0).
func (m *Manager) logBounce(b *queue.Envelope, size int, orig uint64) {
	m.emit(event.StartMID{MID: b.MID, ICID: 0})
	m.emit(event.BounceGenerated{MID: b.MID, OrigMID: orig})
	m.emit(event.MailFrom{MID: b.MID, ICID: 0, From: ""})
	m.emit(event.RcptTo{MID: b.MID, ICID: 0, RID: 0, To: b.Rcpts[0].Addr})
	m.emit(event.Ready{MID: b.MID, Bytes: int64(size), From: ""})
	m.emit(event.Queued{MID: b.MID})
}

func (m *Manager) enqueueBounce(b *queue.Envelope) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enqueue(b)
}
