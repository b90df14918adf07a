package queue

import (
	"context"
	"fmt"
)

// Work is the work queue's durable outcome for a message: the work queue
// (mail policies and their stages) is done with it, and it goes to
// delivery as it is. A message without one either needed no work (handed
// straight through, nothing recorded) or was not done when the process
// stopped: recovery gives it back to the work queue.
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
}

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
// the state durable before the child goes on (see workqueue).
func (x *index) moveSplit() {
	for _, e := range x.msgs {
		if e.parent == 0 {
			continue
		}
		p := x.msgs[e.parent]
		if p == nil {
			continue
		}
		for _, r := range e.rcpts {
			for i := range p.rcpts {
				if p.rcpts[i].rid == r.rid && (p.rcpts[i].st == nil || p.rcpts[i].st.Status == Pending) {
					p.rcpts[i].st = &RecipientState{Status: Moved, Reason: fmt.Sprintf("split to MID %d", e.mid)}
				}
			}
		}
	}
}
