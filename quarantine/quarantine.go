// Package quarantine holds the messages the work queue quarantined, as the
// ESA's Policy, Virus and Outbreak quarantines do: named quarantines, each
// with a retention, an action when it runs out (delete or release) and a
// size limit. The messages stay in the spool; what says they are
// quarantined is their work record (queue.Work.Held), so a restart finds
// them all again.
//
// A message can be in several quarantines (the stages' quarantine verdicts
// add up). As on the ESA it leaves them only when it has left the last:
// deleted if it was deleted from any, released otherwise. A released
// message goes back to the work queue, which runs the stages after the one
// that quarantined it (the ESA rescans released mail), then delivers it.
//
// The lines are the ESA's:
//
//	MID 482 quarantined to "Policy" (content filter:f)
//	MID 483 released from quarantine "Policy" (queue full)
//	MID 484 deleted from quarantine "Virus" (expired)
//	MID 484 deleted from all quarantines
package quarantine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/rfc822"
)

// Expiry is what happens to a message whose retention ran out.
type Expiry string

const (
	ExpireDelete  Expiry = "delete"
	ExpireRelease Expiry = "release"
)

// Spec is one quarantine's settings.
type Spec struct {
	Name      string
	Retention time.Duration // how long a message stays before OnExpiry
	OnExpiry  Expiry
	// MaxSize bounds the bytes of the messages in it: a message that would
	// pass it releases the oldest ones first ("queue full"), as the ESA
	// does. 0: no limit.
	MaxSize int64
}

// Defaults are the quarantines a gateway has when the configuration names
// none: the ESA's system quarantines (Policy, Virus, Outbreak) and a Spam
// quarantine for the anti-spam engines, with the ESA's factory retentions
// as far as they are known (ESA-PIPELINE.md does not confirm them).
func Defaults() []Spec {
	const day = 24 * time.Hour
	return []Spec{
		{Name: "Policy", Retention: 10 * day, OnExpiry: ExpireDelete, MaxSize: 1 << 30},
		{Name: "Virus", Retention: 30 * day, OnExpiry: ExpireDelete, MaxSize: 1 << 30},
		{Name: "Outbreak", Retention: day, OnExpiry: ExpireRelease, MaxSize: 1 << 30},
		{Name: "Spam", Retention: 14 * day, OnExpiry: ExpireDelete, MaxSize: 1 << 30},
	}
}

// Why a message left a quarantine, as the lines say it.
const (
	WhyManual    = "manual"
	WhyExpired   = "expired"
	WhyQueueFull = "queue full"
)

// Errors of Release and Delete.
var (
	ErrNotFound     = errors.New("quarantine: the message is not in quarantine")
	ErrNoQuarantine = errors.New("quarantine: no such quarantine")
)

// spoolTimeout bounds one write to the spool.
const spoolTimeout = time.Minute

// Options configure a Store.
type Options struct {
	Spool       *queue.Spool
	Quarantines []Spec
	Events      event.Sink
	Logger      *slog.Logger
	// Resume takes a message released from its last quarantine: its work
	// record says Released and the stage to resume at. The work queue's.
	Resume func(mid uint64)
	Now    func() time.Time // nil: time.Now
}

// Store is the quarantines of a gateway.
type Store struct {
	o     Options
	log   *slog.Logger
	specs map[string]Spec
	order []string

	// mu orders every change: one message's record is read and written
	// under it, so that a release from the API and the expiry of the same
	// message cannot both act on it. A change costs one group commit.
	mu   sync.Mutex
	msgs map[uint64]*entry
	used map[string]int64 // bytes held per quarantine
	held map[string]int   // messages per quarantine
	// wakeAt is when the expiry wakes next: a message coming in wakes it
	// sooner only when it expires before that (a wake walks every
	// message).
	wakeAt time.Time

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// entry is a quarantined message.
type entry struct {
	mid  uint64
	size int64
	work queue.Work
	info Summary // the envelope and Subject, read once
}

// New makes the quarantines and finds the messages the spool holds in
// them.
func New(o Options) (*Store, error) {
	if o.Events == nil {
		o.Events = event.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{o: o, log: o.Logger, specs: map[string]Spec{}, msgs: map[uint64]*entry{}, used: map[string]int64{}, held: map[string]int{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	for _, sp := range o.Quarantines {
		if sp.Name == "" || s.specs[sp.Name].Name != "" {
			return nil, fmt.Errorf("quarantine: name %q empty or given twice", sp.Name)
		}
		s.specs[sp.Name] = sp
		s.order = append(s.order, sp.Name)
	}
	for _, mid := range o.Spool.Messages() {
		w, ok, err := o.Spool.Work(mid)
		if err != nil || !ok || !w.Quarantined() {
			continue
		}
		e, err := s.newEntry(mid, w)
		if err != nil {
			return nil, err
		}
		for _, h := range w.Held {
			if h.Out == queue.In && s.specs[h.Quarantine].Name == "" {
				// A quarantine taken out of the configuration keeps its
				// messages until an administrator releases or deletes
				// them: it is listed, without expiry or limit.
				s.specs[h.Quarantine] = Spec{Name: h.Quarantine}
				s.order = append(s.order, h.Quarantine)
				s.log.Warn("quarantine: a quarantine not configured holds messages; it is kept without retention", "quarantine", h.Quarantine, "mid", mid)
			}
		}
		s.add(e)
	}
	return s, nil
}

// Has reports whether q is a quarantine of this gateway.
func (s *Store) Has(q string) bool {
	_, ok := s.specs[q]
	return ok
}

func (s *Store) newEntry(mid uint64, w queue.Work) (*entry, error) {
	env, head, size, err := s.o.Spool.Head(mid, 8<<10)
	if err != nil {
		return nil, fmt.Errorf("quarantine: MID %d: %w", mid, err)
	}
	sum := Summary{MID: mid, From: env.From, Received: env.Received, Size: size}
	for _, r := range env.Rcpts {
		sum.Recipients = append(sum.Recipients, r.Addr)
	}
	if subj, ok := rfc822.ReadHeader(head).Subject(); ok {
		sum.Subject = maillog.Escape(subj)
	}
	return &entry{mid: mid, size: size, work: w, info: sum}, nil
}

// add indexes e; s.mu held (or not yet shared).
func (s *Store) add(e *entry) {
	s.msgs[e.mid] = e
	for _, h := range e.work.Held {
		if h.Out == queue.In {
			s.used[h.Quarantine] += e.size
			s.held[h.Quarantine]++
		}
	}
}

// Start runs the expiry until Stop.
func (s *Store) Start() { go s.expiry() }

// Stop ends the expiry.
func (s *Store) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// Hold puts a message in its quarantines at the end of its stages: w is
// its work record, with the quarantines in Held (each In, with its reason
// and time) and the stage to resume at. The record is durable when Hold
// returns; then come the lines, and the oldest messages of a quarantine
// this one fills are released.
func (s *Store) Hold(ctx context.Context, mid uint64, w queue.Work) error {
	for _, h := range w.Held {
		if !s.Has(h.Quarantine) {
			return fmt.Errorf("%w: %q", ErrNoQuarantine, h.Quarantine)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.o.Spool.SetWork(ctx, mid, w); err != nil {
		return err
	}
	e, err := s.newEntry(mid, w)
	if err != nil {
		return err
	}
	for _, h := range w.Held {
		s.emit(event.Quarantined{MID: mid, Quarantine: h.Quarantine, Reason: h.Reason})
	}
	s.add(e)
	for _, h := range w.Held {
		s.makeRoom(h.Quarantine, mid)
		if r := s.specs[h.Quarantine].Retention; r > 0 && h.Since.Add(r).Before(s.wakeAt) {
			s.kick()
		}
	}
	return nil
}

// makeRoom releases the oldest messages of q, other than keep, while q is
// over its size limit. s.mu held.
func (s *Store) makeRoom(q string, keep uint64) {
	max := s.specs[q].MaxSize
	for max > 0 && s.used[q] > max {
		var oldest *entry
		var since time.Time
		for _, e := range s.msgs {
			if e.mid == keep {
				continue
			}
			for _, h := range e.work.Held {
				if h.Quarantine == q && h.Out == queue.In && (oldest == nil || h.Since.Before(since)) {
					oldest, since = e, h.Since
				}
			}
		}
		if oldest == nil {
			return // the new message alone is over the limit: it stays
		}
		if err := s.leave(oldest, q, queue.Released, WhyQueueFull); err != nil {
			s.log.Error("quarantine: the quarantine is full and its oldest message could not be released", "quarantine", q, "mid", oldest.mid, "err", err)
			return
		}
	}
}

// Release releases a message from quarantine q, or from every quarantine
// it is in when q is "". why is the line's reason (WhyManual).
func (s *Store) Release(mid uint64, q, why string) error {
	return s.act(mid, q, queue.Released, why)
}

// Delete deletes a message from quarantine q, or from every quarantine it
// is in when q is "": once it has left the last, it is not delivered.
func (s *Store) Delete(mid uint64, q, why string) error {
	return s.act(mid, q, queue.Deleted, why)
}

func (s *Store) act(mid uint64, q string, out queue.Exit, why string) error {
	if q != "" && !s.Has(q) {
		return fmt.Errorf("%w: %q", ErrNoQuarantine, q)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.msgs[mid]
	if e == nil {
		return fmt.Errorf("%w: MID %d", ErrNotFound, mid)
	}
	if q != "" {
		if !e.work.In(q) {
			return fmt.Errorf("%w: MID %d is not in %q", ErrNotFound, mid, q)
		}
		return s.leave(e, q, out, why)
	}
	for _, h := range e.work.Held {
		if h.Out == queue.In {
			if err := s.leave(e, h.Quarantine, out, why); err != nil {
				return err
			}
		}
	}
	return nil
}

// leave takes e out of quarantine q. When q was the last it was in, the
// message ends (deleted from any quarantine) or goes back to the work
// queue. s.mu held.
func (s *Store) leave(e *entry, q string, out queue.Exit, why string) error {
	w := e.work
	w.Held = slices.Clone(w.Held)
	for i := range w.Held {
		if w.Held[i].Quarantine == q && w.Held[i].Out == queue.In {
			w.Held[i].Out = out
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	last := !w.Quarantined()
	var err error
	switch {
	case !last:
		err = s.o.Spool.SetWork(ctx, e.mid, w)
	case w.Deleted():
		err = s.o.Spool.Finish(ctx, e.mid)
	default:
		w.Released = true
		err = s.o.Spool.SetWork(ctx, e.mid, w)
	}
	if err != nil {
		return fmt.Errorf("quarantine: MID %d: %w", e.mid, err)
	}
	e.work = w
	s.used[q] -= e.size
	s.held[q]--
	if out == queue.Deleted {
		s.emit(event.QuarantineDeleted{MID: e.mid, Quarantine: q, Reason: why})
	} else {
		s.emit(event.QuarantineReleased{MID: e.mid, Quarantine: q, Reason: why})
	}
	if !last {
		return nil
	}
	delete(s.msgs, e.mid)
	several := len(w.Held) > 1
	if w.Deleted() {
		if several {
			s.emit(event.QuarantineDeleted{MID: e.mid})
		}
		s.emit(event.MessageFinished{MID: e.mid, Status: event.FinishedDone})
		return nil
	}
	if several {
		s.emit(event.QuarantineReleased{MID: e.mid})
	}
	if s.o.Resume != nil {
		s.o.Resume(e.mid)
	}
	return nil
}

func (s *Store) emit(ev event.Event) {
	s.o.Events.Emit(event.Entry{Time: s.o.Now(), Level: event.Info, Event: ev})
}

func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// maxSleep bounds the expiry's wait, so that a clock set forward is
// noticed within it.
const maxSleep = time.Minute

// expiry releases or deletes each message whose retention ran out, waking
// at the next expiry (or when a message comes in).
func (s *Store) expiry() {
	defer close(s.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		next := s.expire()
		t.Reset(min(maxSleep, max(next, time.Millisecond)))
	}
}

// expire acts on what has expired and returns the wait until the next.
func (s *Store) expire() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	next := maxSleep
	type due struct {
		e  *entry
		h  queue.Held
		at time.Time
	}
	var dues []due
	for _, e := range s.msgs {
		for _, h := range e.work.Held {
			sp := s.specs[h.Quarantine]
			if h.Out != queue.In || sp.Retention <= 0 {
				continue
			}
			at := h.Since.Add(sp.Retention)
			if !at.After(now) {
				dues = append(dues, due{e, h, at})
			} else {
				next = min(next, at.Sub(now))
			}
		}
	}
	// In the order they expired.
	slices.SortFunc(dues, func(a, b due) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.e.mid, b.e.mid))
	})
	defer func() { s.wakeAt = now.Add(next) }()
	for _, d := range dues {
		if s.msgs[d.e.mid] == nil || !d.e.work.In(d.h.Quarantine) {
			continue // left meanwhile (the last of its quarantines expired)
		}
		out := queue.Deleted
		if s.specs[d.h.Quarantine].OnExpiry == ExpireRelease {
			out = queue.Released
		}
		if err := s.leave(d.e, d.h.Quarantine, out, WhyExpired); err != nil {
			s.log.Error("quarantine: expiry failed; tried again later", "mid", d.e.mid, "quarantine", d.h.Quarantine, "err", err)
			next = min(next, 30*time.Second)
		}
	}
	return next
}
