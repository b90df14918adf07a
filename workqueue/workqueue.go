// Package workqueue runs the mail policies on the messages of the spool
// after the 250, as the ESA's work queue does: it matches each recipient
// to a per-recipient mail policy (policy.Split), splits a message whose
// recipients took different policies into one message per policy (a new
// MID each, linked to the first by queue.Envelope.Parent), runs each
// policy's stages on its message, and hands the result to delivery.
//
// It works from the spool, so that a crash or a restart resumes it: a
// message whose work was not recorded as done when the process stopped is
// worked on again, one that was goes to delivery. A message whose policy
// runs nothing is handed straight through: no record, no fsync, no
// goroutine. Only a split, or stages that ran, write the outcome
// (queue.Spool.SetWork), in the spool's group commit.
package workqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/quarantine"
	"github.com/mailgate/mailgate/queue"
)

// Defaults of Options.
const (
	DefaultRetryMin = 30 * time.Second
	DefaultRetryMax = 15 * time.Minute
	// DefaultStageTimeout bounds one stage's run, a safety net behind the
	// engines' own timeouts: a stage past it has failed.
	DefaultStageTimeout = 5 * time.Minute
)

// errNeedsRestart: a split committed children but could not record their
// recipients as moved from the parent. Splitting again would deliver them
// twice; the next start's recovery sorts it out, so the message is not
// retried before.
var errNeedsRestart = errors.New("workqueue: split half recorded; the message waits for a restart")

// spoolTimeout bounds a write to the spool.
const spoolTimeout = time.Minute

// smallCopy is the size up to which a split child's copy of the message is
// made in memory; a larger one is streamed through a queue.Stage.
const smallCopy = 1 << 20

// Options configure a Queue.
type Options struct {
	Spool    *queue.Spool
	IDs      *queue.Counters // MIDs of the split children
	Policies *policy.MailPolicies
	Workers  int // messages worked on at once; at least 1
	// Stages are the engines and content filters by the names the
	// policies use. A policy naming one that is not here is an error of
	// New.
	Stages map[string]Stage
	// Next takes a message the work queue is done with: delivery
	// (outbound.Manager.Enqueue). Its recipients are those still to
	// deliver.
	Next   func(env *queue.Envelope)
	Events event.Sink
	Logger *slog.Logger
	// Hostname is the reporting MTA of the DSN of a bounce verdict and the
	// domain of generated messages' Message-IDs; BounceFrom the DSN's and
	// notifications' From: ("" is MAILER-DAEMON@Hostname).
	Hostname, BounceFrom string
	// RetryMin and RetryMax bound the wait of a message whose stage failed
	// under a tempfail policy: it doubles from RetryMin up to RetryMax.
	RetryMin, RetryMax time.Duration
	// StageTimeout bounds each stage's Run; DefaultStageTimeout when 0.
	StageTimeout time.Duration
	// Quarantines hold the messages a stage quarantined (quarantine.go);
	// nil: a quarantine verdict holds the message in the work queue.
	Quarantines *quarantine.Store
	// StageRan, if set, is told of each run of a stage, after it (the
	// metrics' stage counts and latencies), but of those Stop cut short.
	// It is called by the workers: it must be quick and must not block.
	// Nil costs nothing, not even the clock.
	StageRan func(StageRun)

	// crash, if set (by the package's tests), is called where a crash
	// leaves the spool half-way: "split" once a split's children are
	// committed, before anything else of the split, and "split recorded"
	// once the parent recorded the move, before the children are queued;
	// "dsn" once a bounce's DSN is committed, before its message is
	// finished.
	crash func(point string)
}

// StageRun is one run of a stage on a message, for Options.StageRan.
type StageRun struct {
	Stage string // its name in the mail policies
	// Verdict is what the stage said; Err, when set, is why it could not
	// decide (or why the work queue could not carry the verdict out), and
	// the verdict does not count.
	Verdict Verdict
	Err     error
	Took    time.Duration // the time of Run
}

// Status is the work queue's state, for the workqueue command.
type Status struct {
	Messages int       `json:"messages"`        // in the work queue: waiting, being worked on, or waiting to retry
	Working  int       `json:"working"`         // being worked on now
	Retrying int       `json:"retrying"`        // waiting for a retry after a failed stage
	Oldest   time.Time `json:"oldest,omitzero"` // arrival of the oldest of them
	In       uint64    `json:"in"`              // messages taken in since start (split children included)
	Out      uint64    `json:"out"`             // messages handed to delivery or ended (dropped) since start
	Since    time.Time `json:"since"`           // start
	Workers  int       `json:"workers"`         //
	Rate     Rate      `json:"rate"`            // over the last minute
}

// Rate is messages per second in and out over a window.
type Rate struct {
	Window time.Duration `json:"window"`
	In     float64       `json:"in"`
	Out    float64       `json:"out"`
}

// job is a message in the work queue.
type job struct {
	mid      uint64
	arrived  time.Time
	attempts int
	// parentMoved: this is a split child whose parent's Moved state this
	// process wrote; a child found by recovery writes it again.
	parentMoved bool
	// resume is the first stage to run, and added the header fields the
	// stages before it added: a message released from quarantine.
	resume int
	added  []string
	out    outcome
	// released: from a quarantine; DMARC's check (dmarc.go) is not made
	// again.
	released bool
}

// Queue is the work queue.
type Queue struct {
	o    Options
	log  *slog.Logger
	fast bool // no policy has a stage: only splits need a worker

	mu       sync.Mutex
	cond     *sync.Cond
	waiting  []*job
	working  map[uint64]*job
	retrying map[uint64]*job
	timers   map[uint64]*time.Timer
	claimed  map[uint64]bool // recovered, not yet handed on: delivery must leave them
	stopped  bool

	in, out atomic.Uint64
	rate    rateRing
	since   time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New makes a work queue and takes stock of the spool: every live message
// without a work outcome and not yet tried by delivery is claimed (Claimed),
// to be worked on again when Start runs.
func New(o Options) (*Queue, error) {
	if err := o.Policies.Validate(); err != nil {
		return nil, fmt.Errorf("workqueue: %w", err)
	}
	fast := true
	for _, t := range [][]*policy.MailPolicy{o.Policies.Incoming, o.Policies.Outgoing} {
		for _, p := range t {
			for _, name := range stageNames(p) {
				if o.Stages[name] == nil {
					return nil, fmt.Errorf("workqueue: mail policy %s uses %q, which is not a configured engine or content filter", p.Name, name)
				}
				fast = false
			}
		}
	}
	o.Workers = max(o.Workers, 1)
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(DefaultRetryMax, o.RetryMin)
	}
	if o.StageTimeout <= 0 {
		o.StageTimeout = DefaultStageTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Events == nil {
		o.Events = event.Discard
	}
	q := &Queue{o: o, log: o.Logger, fast: fast, working: map[uint64]*job{}, retrying: map[uint64]*job{},
		timers: map[uint64]*time.Timer{}, claimed: map[uint64]bool{}}
	q.cond = sync.NewCond(&q.mu)
	q.ctx, q.cancel = context.WithCancel(context.Background())
	for _, mid := range o.Spool.Messages() {
		if q.unfinished(mid) {
			q.claimed[mid] = true
		}
	}
	return q, nil
}

// stageNames lists a policy's stages in the order they run.
func stageNames(p *policy.MailPolicy) []string {
	var names []string
	if p.AntiSpam != "" {
		names = append(names, p.AntiSpam)
	}
	if p.AntiVirus != "" {
		names = append(names, p.AntiVirus)
	}
	return append(names, p.ContentFilters...)
}

// unfinished reports whether a spool message is the work queue's: no work
// outcome recorded, and delivery has not touched it (a recipient tried or
// final means the work was done before, handed through without a record).
func (q *Queue) unfinished(mid uint64) bool {
	if w, done, err := q.o.Spool.Work(mid); err != nil || done {
		// A message in quarantine, or released and not rescanned yet,
		// is still the work queue's.
		return err == nil && w.Pending()
	}
	states, err := q.o.Spool.RecipientStates(mid)
	if err != nil {
		return false
	}
	for _, st := range states {
		if st.Status == queue.Moved {
			continue
		}
		if st.Status != queue.Pending || st.Attempts > 0 {
			return false
		}
	}
	return true
}

// Claimed reports whether mid is the work queue's after recovery, not
// delivery's yet: outbound.Manager.Start leaves it (Options.Claimed).
func (q *Queue) Claimed(mid uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.claimed[mid]
}

// Start starts the workers and takes in the recovered messages, in the
// order they were committed.
func (q *Queue) Start() {
	q.mu.Lock()
	q.since = time.Now()
	var mids []uint64
	for _, mid := range q.o.Spool.Messages() {
		if q.claimed[mid] {
			mids = append(mids, mid)
		}
	}
	q.mu.Unlock()
	for range q.o.Workers {
		q.wg.Add(1)
		go q.worker()
	}
	unrecorded := map[uint64]bool{}
	for _, mid := range q.o.Spool.Recovery().Splits {
		unrecorded[mid] = true
	}
	for _, mid := range mids {
		env, _, _, err := q.o.Spool.Head(mid, 0)
		if err != nil {
			q.unclaim(mid)
			continue
		}
		j := &job{mid: mid, arrived: env.Received}
		if unrecorded[mid] && env.Parent != 0 {
			j.parentMoved = q.recoverSplit(env)
		}
		if w, ok, _ := q.o.Spool.Work(mid); ok && w.Pending() {
			q.recoverHeld(mid, env, w)
			continue
		}
		q.in.Add(1)
		q.rate.add(time.Now(), 1, 0)
		// Worked on again from the start, by a worker, which reads the
		// recipients' states (some may have moved to split children).
		// The lines of its first pass (the policy match) are in the log
		// already.
		q.push(j)
	}
	q.log.Info("workqueue: started", "recovered", len(mids), "workers", q.o.Workers)
}

func (q *Queue) unclaim(mid uint64) {
	q.mu.Lock()
	delete(q.claimed, mid)
	q.mu.Unlock()
}

// Submit takes a message just committed to the spool (inbound's hand-off,
// before its 250). It logs the policy match as the ESA does at that point
// and, when the message needs no work, hands it on at once; otherwise it
// queues it for a worker. It never blocks for long.
func (q *Queue) Submit(env *queue.Envelope) {
	q.in.Add(1)
	table, tname := q.o.Policies.Table(env.Outgoing)
	first := policy.Match(table, env.From, env.Rcpts[0].Addr)
	split := false
	for _, r := range env.Rcpts[1:] {
		if policy.Match(table, env.From, r.Addr) != first {
			split = true
			break
		}
	}
	if !split {
		q.emit(event.PolicyMatch{MID: env.MID, Policy: first.Name, Table: tname})
	}
	if !split && (q.fast || !first.HasStages()) && !dmarcHeld(env) {
		q.rate.add(time.Now(), 1, 0)
		q.handOn(env, nil, false)
		return
	}
	q.rate.add(time.Now(), 1, 0)
	q.push(&job{mid: env.MID, arrived: env.Received})
}

func (q *Queue) push(j *job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return // the spool keeps it: the next start works on it
	}
	if j.arrived.IsZero() {
		j.arrived = time.Now()
	}
	q.claimed[j.mid] = true
	q.waiting = append(q.waiting, j)
	q.cond.Signal()
}

// handOn gives a message to delivery: "queued for delivery", then Next.
// A message Submit hands straight through was never claimed: it costs no
// lock.
func (q *Queue) handOn(env *queue.Envelope, rcpts []queue.Recipient, claimed bool) {
	if rcpts != nil {
		e := *env
		e.Rcpts = rcpts
		env = &e
	}
	q.emit(event.Queued{MID: env.MID})
	q.out.Add(1)
	q.rate.add(time.Now(), 0, 1)
	if claimed {
		q.unclaim(env.MID)
	}
	if q.o.Next != nil {
		q.o.Next(env)
	}
}

// crashPoint calls Options.crash, if set.
func (q *Queue) crashPoint(point string) {
	if q.o.crash != nil {
		q.o.crash(point)
	}
}

func (q *Queue) emit(ev event.Event) {
	q.o.Events.Emit(event.Entry{Time: time.Now(), Level: event.Info, Event: ev})
}

func (q *Queue) worker() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		for len(q.waiting) == 0 && !q.stopped {
			q.cond.Wait()
		}
		if q.stopped {
			q.mu.Unlock()
			return
		}
		j := q.waiting[0]
		q.waiting[0] = nil
		q.waiting = q.waiting[1:]
		q.working[j.mid] = j
		q.mu.Unlock()

		err := q.process(q.ctx, j)

		q.mu.Lock()
		delete(q.working, j.mid)
		if errors.Is(err, errNeedsRestart) {
			q.log.Error("workqueue: the message waits for the next start", "mid", j.mid, "err", err)
		} else if err != nil && !q.stopped {
			j.attempts++
			wait := q.o.RetryMin << min(j.attempts-1, 20)
			wait = min(wait, q.o.RetryMax)
			q.log.Warn("workqueue: the message waits in the work queue to be worked on again", "mid", j.mid, "attempts", j.attempts, "retry_in", wait, "err", err)
			q.retrying[j.mid] = j
			q.timers[j.mid] = time.AfterFunc(wait, func() { q.retry(j) })
		}
		q.mu.Unlock()
	}
}

func (q *Queue) retry(j *job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.retrying, j.mid)
	delete(q.timers, j.mid)
	if q.stopped {
		return
	}
	q.waiting = append(q.waiting, j)
	q.cond.Signal()
}

// Stop stops taking messages and cuts the stages under way; it returns
// when the workers have, or when ctx is done. What was not finished stays
// in the spool without a work outcome: the next start works on it again.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	q.stopped = true
	for mid, t := range q.timers {
		t.Stop()
		delete(q.timers, mid)
	}
	q.cond.Broadcast()
	q.mu.Unlock()
	q.cancel()
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("workqueue: stop: %w", ctx.Err())
	}
}

// Status reports the work queue's state.
func (q *Queue) Status() Status {
	now := time.Now()
	q.mu.Lock()
	st := Status{Working: len(q.working), Retrying: len(q.retrying), Since: q.since, Workers: q.o.Workers}
	st.Messages = len(q.waiting) + st.Working + st.Retrying
	oldest := func(j *job) {
		if st.Oldest.IsZero() || j.arrived.Before(st.Oldest) {
			st.Oldest = j.arrived
		}
	}
	for _, j := range q.waiting {
		oldest(j)
	}
	for _, j := range q.working {
		oldest(j)
	}
	for _, j := range q.retrying {
		oldest(j)
	}
	q.mu.Unlock()
	st.In, st.Out = q.in.Load(), q.out.Load()
	st.Rate = q.rate.rate(now)
	return st
}

// process works on one message: the split, then its policy's stages, then
// the outcome. An error leaves the message in the work queue for a retry.
func (q *Queue) process(ctx context.Context, j *job) (err error) {
	env, _, size, err := q.o.Spool.Head(j.mid, 0)
	if errors.Is(err, queue.ErrNotFound) {
		q.unclaim(j.mid) // removed meanwhile (queue delete)
		return nil
	}
	if err != nil {
		return err
	}
	states, err := q.o.Spool.RecipientStates(j.mid)
	if err != nil {
		return err
	}
	if env.Parent != 0 && !j.parentMoved {
		if err := q.moveInParent(ctx, env); err != nil {
			return err
		}
		j.parentMoved = true
	}
	var rcpts []queue.Recipient
	for _, r := range env.Rcpts {
		if states[r.RID].Status == queue.Pending {
			rcpts = append(rcpts, r)
		}
	}
	if len(rcpts) == 0 {
		q.unclaim(j.mid)
		return nil // nothing left to work on (all moved)
	}
	table, tname := q.o.Policies.Table(env.Outgoing)
	addrs := make([]string, len(rcpts))
	for i, r := range rcpts {
		addrs[i] = r.Addr
	}
	groups := policy.Split(table, env.From, addrs)
	split := env.Parent != 0
	if len(groups) > 1 {
		if err := q.split(ctx, env, rcpts, groups); err != nil {
			return err
		}
		split = true
		keep := make([]queue.Recipient, len(groups[0].Rcpts))
		for i, k := range groups[0].Rcpts {
			keep[i] = rcpts[k]
		}
		rcpts = keep
	}
	pol := groups[0].Policy

	// The stages, on this message's recipients.
	own := *env
	own.Rcpts = rcpts
	m := &Message{Env: &own, Policy: pol, Table: tname, Size: size, spool: q.o.Spool}
	m.Added = slices.Clone(j.added)
	// The MIME tree the stages share refers to the spool's file mapped
	// into memory: it is unmapped last, when everything below that may
	// read it (the stages, their notifications, the outcome) has returned,
	// and after a fault reading it has been recovered (deferred calls run
	// last to first).
	defer func() {
		if err := m.end(); err != nil {
			q.log.Warn("workqueue: cannot unmap a message", "mid", j.mid, "err", err)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer m.recoverFault(&err)
	ran := j.resume > 0 || j.released
	out := j.out // a released message's rewrites from the stages before its quarantine
	var held []queue.Held
	var scans []event.ScanResult
	// resume, kept and before: where a release starts again, and the
	// header fields added and rewrites asked before it (those of the later
	// stages are taken again when they run again).
	resume, kept, before := j.resume, len(m.Added), out.clone()
	if !j.released {
		v, ok, err := dmarcVerdict(m) // dmarc.go
		if err == nil && ok {
			err = q.supported(v)
		}
		if err != nil {
			return fmt.Errorf("DMARC quarantine: %w", err)
		}
		if ok {
			held, ran = addHeld(held, v), true
		}
	}
	for k, name := range stageNames(pol) {
		if k < j.resume {
			continue // ran before the quarantine the message was released from
		}
		ran = true
		var began time.Time
		if q.o.StageRan != nil {
			began = time.Now()
		}
		sctx, cancel := context.WithTimeout(ctx, q.o.StageTimeout)
		v, err := q.o.Stages[name].Run(sctx, m)
		cancel()
		if err == nil {
			err = q.supported(v)
		}
		if q.o.StageRan != nil && ctx.Err() == nil {
			// (A run cut short by Stop is not the stage's outcome.)
			q.o.StageRan(StageRun{Stage: name, Verdict: v, Err: err, Took: time.Since(began)})
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pol.OnScanFailure == policy.ScanDeliver && !errors.Is(err, ErrUnsupported) {
				q.log.Warn("workqueue: a stage failed; the message goes on unscanned by it, as its policy says", "mid", j.mid, "stage", name, "policy", pol.Name, "err", err)
				scans = unscanned(scans, pol, name)
				continue
			}
			return fmt.Errorf("stage %s of policy %s: %w", name, pol.Name, err)
		}
		if err := q.carryOut(m, &out, v); err != nil {
			return err
		}
		if v.Scan != nil {
			scans = append(scans, *v.Scan)
		}
		switch v.Action {
		case Drop:
			q.summarize(m, scans, "drop")
			return q.drop(ctx, j.mid, v.By)
		case Bounce:
			q.summarize(m, scans, "bounce")
			return q.bounce(m, v.By)
		}
		if v.Action == Quarantine {
			// Quarantines add up, and are applied at the end (ESA).
			held = addHeld(held, v)
			resume, kept, before = k+1, len(m.Added), out.clone()
		}
		if v.SkipRest {
			break
		}
	}
	if ran || split {
		if len(held) > 0 {
			m.Added = m.Added[:kept]
			w := before.work(m)
			w.Stage = resume
			q.summarize(m, scans, "quarantine")
			return q.quarantine(j, held, w)
		}
		sctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
		err := q.o.Spool.SetWork(sctx, j.mid, out.work(m))
		cancel()
		if err != nil {
			return err
		}
	}
	q.summarize(m, scans, "deliver")
	q.handOn(env, rcpts, true)
	return nil
}

// moveInParent makes durable that a split child's recipients are not its
// parent's any more, before the child can be delivered: the spool's
// recovery only knows it while the child is live.
func (q *Queue) moveInParent(ctx context.Context, env *queue.Envelope) error {
	rids := make([]int, len(env.Rcpts))
	for i, r := range env.Rcpts {
		rids[i] = r.RID
	}
	sctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	err := q.o.Spool.SetRecipientState(sctx, env.Parent, rids, queue.RecipientState{Status: queue.Moved, Reason: fmt.Sprintf("split to MID %d", env.MID)})
	if errors.Is(err, queue.ErrNotFound) {
		return nil // the parent is finished: its Moved state was durable before
	}
	return err
}

// split commits a child message for each group but the first, then marks
// their recipients Moved in the parent, and queues the children. The
// ESA's line for each: "MID 58 was split creating MID 60 due to a
// per-recipient policy tcamp".
func (q *Queue) split(ctx context.Context, env *queue.Envelope, rcpts []queue.Recipient, groups []policy.PolicyGroup) error {
	var moved []int
	var children []*job
	var lines []event.Split
	var envs []queue.Envelope // the children's, for their From and To lines
	var err error
	for _, g := range groups[1:] {
		var mid uint64
		if mid, err = q.o.IDs.Next(queue.MID); err != nil {
			break
		}
		child := *env
		child.MID, child.Parent = mid, env.MID
		child.Rcpts = make([]queue.Recipient, len(g.Rcpts))
		for i, k := range g.Rcpts {
			child.Rcpts[i] = rcpts[k]
		}
		if err = q.copyMessage(&child, env.MID); err != nil {
			break
		}
		for _, r := range child.Rcpts {
			moved = append(moved, r.RID)
		}
		children = append(children, &job{mid: mid, arrived: env.Received, parentMoved: true})
		lines = append(lines, event.Split{MID: env.MID, NewMID: mid, Reason: "a per-recipient policy " + g.Policy.Name})
		envs = append(envs, child)
	}
	if len(children) == 0 {
		return err
	}
	q.crashPoint("split")
	// The lines before the parent's record of the move: a crash between
	// the two leaves children whose split the parent did not record, and
	// the next start logs them again (queue.Recovery.Splits,
	// recoverSplit). Logged twice at worst, never lost.
	for i, ev := range lines {
		q.logSplit(ev, &envs[i])
	}
	// The children committed so far are the parent's no more, even when a
	// later one failed: the retry must not split their recipients again.
	sctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	merr := q.o.Spool.SetRecipientState(sctx, env.MID, moved, queue.RecipientState{Status: queue.Moved, Reason: "split"})
	cancel()
	if merr != nil {
		// The children stay in the spool, not queued: the next start's
		// recovery takes their recipients from the parent and works on
		// them. Until then the parent waits too.
		return fmt.Errorf("%w: %w", errNeedsRestart, errors.Join(err, merr))
	}
	q.crashPoint("split recorded")
	for _, j := range children {
		q.in.Add(1)
		q.rate.add(time.Now(), 1, 0)
		q.push(j)
	}
	return err
}

// logSplit logs a split line and, as the ESA does after it, the child's
// envelope, as a message the gateway injects itself (ICID 0); its RIDs
// are its parent's, as in its delivery lines. Tracking takes the child's
// recipients, and the parent's that went on, from these.
func (q *Queue) logSplit(ev event.Split, child *queue.Envelope) {
	q.emit(ev)
	q.emit(event.MailFrom{MID: child.MID, ICID: 0, From: child.From})
	for _, r := range child.Rcpts {
		q.emit(event.RcptTo{MID: child.MID, ICID: 0, RID: r.RID, To: r.Addr})
	}
}

// recoverSplit takes up a split child whose parent had not recorded the
// move when the process stopped (queue.Recovery.Splits): its split lines
// may not have been logged, so they are, with the policy its recipients
// take now; then the move is recorded, before the child goes on. It
// reports whether the move is recorded.
func (q *Queue) recoverSplit(env *queue.Envelope) bool {
	table, _ := q.o.Policies.Table(env.Outgoing)
	pol := policy.Match(table, env.From, env.Rcpts[0].Addr)
	q.logSplit(event.Split{MID: env.Parent, NewMID: env.MID, Reason: "a per-recipient policy " + pol.Name}, env)
	if err := q.moveInParent(q.ctx, env); err != nil {
		q.log.Warn("workqueue: a recovered split child's move is not recorded in its parent; it is tried again when the child is worked on", "mid", env.MID, "parent", env.Parent, "err", err)
		return false
	}
	return true
}

// copyMessage commits child with the body of the message from: in memory
// when small, through a stage file otherwise.
func (q *Queue) copyMessage(child *queue.Envelope, from uint64) error {
	_, r, err := q.o.Spool.Reader(from)
	if err != nil {
		return err
	}
	defer r.Close()
	sctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	if r.Size() <= smallCopy {
		var b bytes.Buffer
		b.Grow(int(r.Size()))
		if _, err := io.Copy(&b, r); err != nil {
			return fmt.Errorf("workqueue: read MID %d: %w", from, err)
		}
		return q.o.Spool.Commit(sctx, child, b.Bytes())
	}
	st, err := q.o.Spool.NewStage()
	if err != nil {
		return err
	}
	if _, err := io.Copy(st, r); err != nil {
		st.Abort()
		return fmt.Errorf("workqueue: copy MID %d: %w", from, err)
	}
	return q.o.Spool.CommitStage(sctx, child, st)
}

// drop ends a message a stage dropped: "Message aborted MID n Dropped by
// X", then "Message finished MID n done" as the ESA logs it.
func (q *Queue) drop(ctx context.Context, mid uint64, by string) error {
	sctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	if err := q.o.Spool.Finish(sctx, mid); err != nil {
		return err
	}
	q.emit(event.MessageAborted{MID: mid, Reason: "Dropped by " + by})
	q.emit(event.MessageFinished{MID: mid, Status: event.FinishedDone})
	q.out.Add(1)
	q.rate.add(time.Now(), 0, 1)
	q.unclaim(mid)
	return nil
}
