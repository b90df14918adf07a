package workqueue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mailgate/mailgate/queue"
)

// ErrNoQuarantine is a quarantine verdict naming a quarantine the gateway
// does not have: the message is held in the work queue (as for an action
// not supported) rather than delivered.
var ErrNoQuarantine = fmt.Errorf("%w: no such quarantine", ErrUnsupported)

// addHeld adds a quarantine verdict to those of the stages before: each
// quarantine once, with the first reason given for it.
func addHeld(held []queue.Held, v Verdict) []queue.Held {
	for _, h := range held {
		if h.Quarantine == v.Quarantine {
			return held
		}
	}
	return append(held, queue.Held{Quarantine: v.Quarantine, Reason: v.By})
}

// quarantine puts the message in the quarantines its stages chose, at the
// end of its stages as the ESA does: its work record names them and the
// stage to run first when it is released.
func (q *Queue) quarantine(j *job, held []queue.Held, w queue.Work) error {
	now := time.Now()
	for i := range held {
		held[i].Since = now
	}
	w.Held = held
	ctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	if err := q.o.Quarantines.Hold(ctx, j.mid, w); err != nil {
		return err
	}
	// Out of the work queue. Claimed matters only to delivery's start,
	// and there the work record keeps it claimed (New): let it go.
	q.unclaim(j.mid)
	q.out.Add(1)
	q.rate.add(now, 0, 1)
	return nil
}

// recoverHeld takes, at start, a message whose work record says it is in
// quarantine (the quarantines found it already) or was released and not
// rescanned yet (it is worked on again from the stage after the
// quarantine).
func (q *Queue) recoverHeld(mid uint64, env *queue.Envelope, w queue.Work) {
	if !w.Released {
		// In quarantine, the quarantines' until released. Delivery has
		// started and left it: it needs no claim any more.
		q.unclaim(mid)
		return
	}
	q.in.Add(1)
	q.rate.add(time.Now(), 1, 0)
	q.push(resumeJob(mid, env.Received, w))
}

// Resume takes a message released from its last quarantine back into the
// work queue, to run the stages after the one that quarantined it and be
// delivered (quarantine.Options.Resume).
func (q *Queue) Resume(mid uint64) {
	env, _, _, err := q.o.Spool.Head(mid, 0)
	if err != nil {
		q.log.Error("workqueue: a message released from quarantine cannot be read; it is worked on at the next start", "mid", mid, "err", err)
		return
	}
	w, _, err := q.o.Spool.Work(mid)
	if err != nil {
		q.log.Error("workqueue: a message released from quarantine cannot be read; it is worked on at the next start", "mid", mid, "err", err)
		return
	}
	q.in.Add(1)
	q.rate.add(time.Now(), 1, 0)
	q.push(resumeJob(mid, env.Received, w))
}

func resumeJob(mid uint64, arrived time.Time, w queue.Work) *job {
	var added []string
	for h := range strings.SplitSeq(w.Headers, "\r\n") {
		if h != "" {
			added = append(added, h)
		}
	}
	// Its parent's Moved state was made durable before its first pass.
	out := outcome{strip: w.Strip, tag: w.TagSubject, route: w.Route, rcpt: w.Rcpt}
	return &job{mid: mid, arrived: arrived, resume: w.Stage, added: added, out: out, parentMoved: true, released: true}
}
