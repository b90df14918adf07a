package queue

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Work is the work queue's durable outcome for a message: the work queue
// (mail policies and their stages) is done with it, and it goes to
// delivery as it is. A message without one either needed no work (handed
// straight through, nothing recorded) or was not done when the process
// stopped: recovery gives it back to the work queue.
//
// A quarantined message's work record lists its quarantines (Held) and
// is not an end: delivery leaves the message until it has left every one.
// One released from them has Released set until the stages after the
// quarantine ran again (the ESA rescans a released message); a record
// without either is done.
type Work struct {
	// Headers are header fields, each ending in CRLF, that the stages
	// added: delivery sends them before the message's own header.
	Headers string
	// The rewrites a verdict asked for (content filters, the engines'
	// actions), carried out by delivery on the message as stored: the
	// spool keeps the message as received, so that a rewrite costs no copy
	// of it and survives a restart with this record.
	//
	// Strip names header fields (lower case) removed from the message's
	// own header; TagSubject goes before its Subject (a Subject of just the
	// tag when it has none).
	Strip      []string
	TagSubject string
	// Route is "host" or "host:port": every recipient goes there instead
	// of to its domain's MX or route (an alternate mail host).
	Route string
	// Rcpt replaces the address of every recipient (an alternate
	// recipient); the RIDs stay, for the lines and tracking.
	Rcpt string
	// Held are the quarantines the message entered, in that order, each
	// with whether it has left it. As on the ESA, a message in several
	// leaves them when it has left the last: deleted if it was deleted
	// from any, released otherwise.
	Held []Held
	// Released: the message left its quarantines and the work queue runs
	// its policy's stages again from Stage on, then hands it to delivery.
	Released bool
	// Stage is the index, in its policy's stages, of the first stage to
	// run after a release: the one after the last that quarantined it.
	Stage int
}

// Held is one quarantine a message entered.
type Held struct {
	Quarantine string
	Reason     string    // in the line's parentheses: "content filter:x"
	Since      time.Time // when it entered
	Out        Exit      // In while it is there
}

// Exit is how a message left a quarantine.
type Exit uint8

const (
	In       Exit = iota // still there
	Released             // released from it
	Deleted              // deleted from it
)

// In reports whether the message is still in quarantine q.
func (w Work) In(q string) bool {
	for _, h := range w.Held {
		if h.Quarantine == q && h.Out == In {
			return true
		}
	}
	return false
}

// Quarantined reports whether the message is in a quarantine still.
func (w Work) Quarantined() bool {
	for _, h := range w.Held {
		if h.Out == In {
			return true
		}
	}
	return false
}

// Deleted reports whether the message was deleted from a quarantine.
func (w Work) Deleted() bool {
	for _, h := range w.Held {
		if h.Out == Deleted {
			return true
		}
	}
	return false
}

// Pending reports whether the work queue is not done with the message: it
// is in a quarantine, or released and waiting for its stages to run again.
func (w Work) Pending() bool { return w.Quarantined() || w.Released }

// Rewrites reports whether delivery must change the message's own header.
func (w Work) Rewrites() bool { return len(w.Strip) > 0 || w.TagSubject != "" }

// SetWork durably records the work queue's outcome for a live message.
// Same contract as Commit for ctx and errors.
func (s *Spool) SetWork(ctx context.Context, mid uint64, w Work) error {
	s.mu.RLock()
	e := s.x.msgs[mid]
	s.mu.RUnlock()
	if e == nil {
		return fmt.Errorf("queue: set work MID %d: %w", mid, ErrNotFound)
	}
	r := &request{typ: recWork, mid: mid, work: &w, done: make(chan error, 1)}
	r.rec = newRecord(s.salt, recWork, appendWork(nil, mid, w))
	if err := s.submit(ctx, r); err != nil {
		return fmt.Errorf("queue: set work MID %d: %w", mid, err)
	}
	return nil
}

// Work returns the work queue's outcome for a live message, and whether
// there is one.
func (s *Spool) Work(mid uint64) (Work, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.x.msgs[mid]
	if e == nil {
		return Work{}, false, fmt.Errorf("queue: work MID %d: %w", mid, ErrNotFound)
	}
	if e.work == nil {
		return Work{}, false, nil
	}
	return *e.work, true, nil
}

// applyWork records a work record at g. It reports false when the message
// is not live. The record pins g as a state record does.
func (x *index) applyWork(g *segment, mid uint64, w Work) bool {
	e := x.msgs[mid]
	if e == nil {
		return false
	}
	e.work = &w
	if g != e.seg && !containsSeg(e.stateSegs, g) {
		e.stateSegs = append(e.stateSegs, g)
		g.stateMids = append(g.stateMids, mid)
		x.pin(g, e)
	}
	return true
}

func containsSeg(gs []*segment, g *segment) bool {
	for _, h := range gs {
		if h == g {
			return true
		}
	}
	return false
}

// moveSplit marks, in memory, the recipients of a live parent that a live
// child holds as Moved. A split commits the child before the parent's
// Moved state: a crash between the two leaves both live, and this keeps
// the parent from delivering what the child will. The work queue makes
// the state durable before the child goes on (see workqueue). It returns
// the children it moved recipients for (Recovery.Splits).
func (x *index) moveSplit() []uint64 {
	var children []uint64
	for _, e := range x.msgs {
		if e.parent == 0 {
			continue
		}
		p := x.msgs[e.parent]
		if p == nil {
			continue
		}
		moved := false
		for _, r := range e.rcpts {
			for i := range p.rcpts {
				if p.rcpts[i].rid == r.rid && (p.rcpts[i].st == nil || p.rcpts[i].st.Status == Pending) {
					p.rcpts[i].st = &RecipientState{Status: Moved, Reason: fmt.Sprintf("split to MID %d", e.mid)}
					moved = true
				}
			}
		}
		if moved {
			children = append(children, e.mid)
		}
	}
	return x.inCommitOrder(children)
}

// dsnRef is what recovery keeps of a DSN's envelope: the message it
// reports on and the recipients (Envelope.BounceOf, BounceRIDs).
type dsnRef struct {
	of   uint64
	rids []int
}

// bounceReported marks, in memory, the recipients of a live message that
// a live DSN of dsns reports as failed, and that the message has not
// recorded as final, as Bounced. A DSN is committed before its message's
// own record: a crash between the two leaves the recipients pending, and
// this keeps them from being tried, and bounced, again. Delivery makes
// the state durable before the DSN goes (see outbound). It returns the
// DSNs it marked recipients for (Recovery.Bounces).
func (x *index) bounceReported(dsns map[uint64]dsnRef) []uint64 {
	var out []uint64
	for mid, d := range dsns {
		if x.msgs[mid] == nil {
			continue // the DSN went: its message's record was written before
		}
		m := x.msgs[d.of]
		if m == nil {
			continue
		}
		marked := false
		for i := range m.rcpts {
			r := &m.rcpts[i]
			if !slices.Contains(d.rids, int(r.rid)) || r.st != nil && r.st.Status != Pending {
				continue
			}
			st := RecipientState{Status: Bounced, Reason: fmt.Sprintf("bounced: DSN MID %d", mid)}
			if r.st != nil {
				st.Attempts, st.Last = r.st.Attempts, r.st.Last
			}
			r.st = &st
			marked = true
		}
		if marked {
			out = append(out, mid)
		}
	}
	return x.inCommitOrder(out)
}

// inCommitOrder sorts live MIDs by their commit order.
func (x *index) inCommitOrder(mids []uint64) []uint64 {
	slices.SortFunc(mids, func(a, b uint64) int { return cmp.Compare(x.msgs[a].seq, x.msgs[b].seq) })
	return mids
}
