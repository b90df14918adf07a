package outbound

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/debuglog"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
)

// Options configures a Manager.
type Options struct {
	Hostname string // the gateway's name: EHLO (unless Delivery.Hostname) and the DSNs' reporting MTA
	Spool    *queue.Spool
	IDs      *queue.Counters // DCIDs, and MIDs for bounces
	Events   event.Sink
	Resolver *resolver.Resolver
	Routes   []config.Route
	Delivery config.Delivery
	Debug    []*debuglog.Log[string] // domain debug logs, by recipient domain or route name
	Logger   *slog.Logger
	// Claimed, if set, names the spool's messages that Start must leave
	// alone: the work queue's, which it hands over with Enqueue when it
	// is done with them.
	Claimed func(mid uint64) bool

	// Attempted, if set, is told of each delivery attempt (the metrics).
	// It runs on the delivering goroutine and must not block.
	Attempted func(Attempt)

	// crashPoint, if set (by the package's tests, export_test.go), is
	// called where a crash leaves the spool half-way through an outcome:
	// "dsn" once a DSN is committed and before its message records it.
	crashPoint func(point string)
}

// Attempt is what one delivery attempt did to the recipients of one
// message at one destination: a transaction, or a connection (or its DNS
// lookup) that failed before one could start.
type Attempt struct {
	Destination string // the domain delivered by MX, or the route ("ALL", ".example.com") that serves it
	Route       bool   // Destination names a route
	Delivered   int    // recipients
	Deferred    int
	Bounced     int
	// Transaction is the time from MAIL FROM to the transaction's last
	// reply; 0 when none ran (the connection failed).
	Transaction time.Duration
}

// maxRcptsPerTxn is how many recipients go in one transaction: the number
// RFC 5321 4.5.3.1.8 obliges every server to accept.
const maxRcptsPerTxn = 100

// spoolTimeout bounds a write to the spool. Deliveries wait for it even
// when Stop cuts them: what the next hop accepted must be recorded.
const spoolTimeout = time.Minute

// idleDest is how long a destination's counters outlive its last message.
const idleDest = time.Hour

// Manager is the queue manager: it takes the messages of the spool, groups
// their recipients by destination, and delivers them over SMTP with the
// limits, retries and bounces of the configuration.
type Manager struct {
	o      Options
	log    *slog.Logger
	routes *routes
	roots  *x509.CertPool // the system's and tls_ca_file's; nil for the system's alone
	source *net.TCPAddr   // source_address, or nil
	ehlo   string

	mu      sync.Mutex
	state   runState
	active  map[uint64]*message // the messages in memory
	loading int                 // being read from the spool into memory
	waiting fifo                // due now, waiting for room in memory
	sched   timers              // deferred jobs, and messages sleeping in the spool
	dests   map[string]*dest
	ring    []*dest           // destinations with ready jobs, served in turn
	next    int               // the ring position served next
	conns   int               // connections open or opening, cached ones included
	cached  int               // connections idle in the cache, waiting for a job
	closing int               // cached connections told to close, their slots not yet released
	forced  map[uint64]string // due now by DeliverNow when next taken in: for this destination, or all ("")
	held    map[uint64]bool   // being bounced or deleted by the administrator
	peak    int               // most messages in memory at once
	total   counts

	loadWake  chan struct{}
	timerWake chan struct{}
	quit      chan struct{} // closed by Stop
	cut       context.Context
	cutNow    context.CancelFunc
	wg        sync.WaitGroup
}

type runState uint8

const (
	created runState = iota
	running
	stopping
)

type counts struct{ delivered, delayed, bounced uint64 }

// message is a message in memory: its envelope, its recipients' states and
// its jobs (its recipients grouped by destination).
type message struct {
	env     *queue.Envelope
	arrived time.Time // Received, or when first seen if it has none

	// Guarded by Manager.mu.
	jobs []*job
	busy int  // jobs ready or in flight
	gone bool // finished, or dropped from memory

	// mu serializes the end of the attempts of different jobs of the
	// message: their spool writes, their events, the decision that the
	// message is finished.
	mu      sync.Mutex
	states  []queue.RecipientState // by index in env.Rcpts
	pending int                    // recipients not final
}

type jobState uint8

const (
	jobReady    jobState = iota + 1 // in its destination's queue
	jobInflight                     // taken by a connection
	jobDeferred                     // waiting for its retry time
	jobDone
)

// job is the recipients of one message at one destination: one
// transaction per attempt.
type job struct {
	msg    *message
	dest   *dest
	rcpts  []int  // indexes in msg.env.Rcpts
	domain string // of its first recipient, for the logs
	state  jobState
	due    time.Time // while deferred
}

// try says whether an outcome finishJob records is a delivery attempt,
// for Options.Attempted, and when its transaction started (zero: none
// did, the connection failed). The zero try is no attempt: an outcome of
// the gateway's own (a spool read error, the administrator's bounce).
type try struct {
	counted bool
	start   time.Time
}

// dest is a destination: a domain delivered by MX, or an SMTP route.
type dest struct {
	name  string
	route *config.Route
	ctl   config.Destination

	ready   []*job
	conns   int // open or opening, cached ones included
	opening int
	live    int // connected
	// cache holds the connections that wait, idle, for the next ready
	// job (the connection cache), the most recently idle last.
	cache  []*cachedConn
	inRing bool
	rr     uint32 // round robin over a route's hosts of equal priority
	rcpts  int    // pending recipients of messages in memory
	counts counts
	idle   time.Time // since when it has had neither work nor connections
}

// wants reports whether another connection would help d. A destination
// that has no connection up opens one at a time: if it is down, one
// attempt finds out, not max_connections of them.
func (d *dest) wants() bool {
	return len(d.ready) > d.opening && d.conns < d.ctl.MaxConnections && (d.live > 0 || d.opening == 0)
}

// New checks the options and prepares a Manager; Start starts it.
func New(o Options) (*Manager, error) {
	if o.Spool == nil || o.IDs == nil || o.Resolver == nil {
		return nil, errors.New("outbound: Spool, IDs and Resolver are required")
	}
	if o.Events == nil {
		o.Events = event.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Manager{
		o:         o,
		log:       o.Logger,
		routes:    newRoutes(o.Routes),
		ehlo:      cmp.Or(o.Delivery.Hostname, o.Hostname),
		active:    make(map[uint64]*message),
		dests:     make(map[string]*dest),
		forced:    make(map[uint64]string),
		held:      make(map[uint64]bool),
		loadWake:  make(chan struct{}, 1),
		timerWake: make(chan struct{}, 1),
		quit:      make(chan struct{}),
	}
	m.cut, m.cutNow = context.WithCancel(context.Background())
	var err error
	if m.roots, err = o.Delivery.RootCAs(); err != nil {
		return nil, fmt.Errorf("outbound: %w", err)
	}
	if a := o.Delivery.SourceAddress; a.IsValid() {
		m.source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
	}
	return m, nil
}

func (m *Manager) maxActive() int { return max(m.o.Delivery.MaxActiveMessages, 1) }

func (m *Manager) emit(ev event.Event) {
	m.o.Events.Emit(event.Entry{Time: time.Now(), Level: event.Info, Event: ev})
}

// Start takes in the spool's messages and starts delivering. Messages due
// now wait their turn for room in memory; deferred ones sleep until their
// retry time. With deliveries suspended it does nothing: the spool keeps
// everything for a later start.
func (m *Manager) Start() error {
	m.mu.Lock()
	if m.state != created {
		m.mu.Unlock()
		return errors.New("outbound: Start called twice")
	}
	if m.o.Delivery.Suspended {
		m.mu.Unlock()
		m.log.Info("outbound: deliveries are suspended")
		return nil
	}
	// From here Enqueue takes messages; those committed before are in the
	// list below (a message in both is taken in once).
	m.state = running
	m.mu.Unlock()

	for _, mid := range m.o.Spool.Recovery().Bounces {
		m.recoverBounce(mid)
	}

	type entry struct {
		mid uint64
		due time.Time
	}
	var due []entry
	var final []uint64
	now := time.Now()
	for _, mid := range m.o.Spool.Messages() {
		if m.o.Claimed != nil && m.o.Claimed(mid) {
			continue
		}
		states, err := m.o.Spool.RecipientStates(mid)
		if err != nil {
			continue // finished since the list was made
		}
		var next time.Time
		pending := false
		for _, st := range states {
			if st.Status != queue.Pending {
				continue
			}
			if !pending || st.Next.Before(next) {
				next = st.Next
			}
			pending = true
		}
		if !pending {
			final = append(final, mid)
			continue
		}
		due = append(due, entry{mid, next})
	}
	// A crash between the last recipient's state and the finish record
	// leaves a message whose recipients are all final.
	for _, mid := range final {
		if err := m.finish(mid); err != nil {
			m.log.Error("outbound: finish", "mid", mid, "err", err)
		}
	}

	m.mu.Lock()
	for _, e := range due {
		if e.due.After(now) {
			m.sched.add(e.due, e.mid, nil)
		} else {
			m.waiting.push(e.mid)
		}
	}
	m.wg.Add(2)
	go m.loader()
	go m.timerLoop()
	m.wakeLoader()
	waiting := m.waiting.len()
	m.mu.Unlock()
	m.log.Info("outbound: started", "messages", len(due), "due", waiting)
	return nil
}

// recoverBounce takes up a DSN that a crash caught between its commit and
// its message's own record (queue.Recovery.Bounces): recovery took the
// recipients it reports as bounced, so they are not tried, and bounced,
// again. Its lines were never logged: they are now. And the states are
// recorded now, before the DSN can go: once it has gone nothing would
// tell the next recovery. Start does it, once after the spool's Open.
func (m *Manager) recoverBounce(mid uint64) {
	env, _, size, err := m.o.Spool.Head(mid, 0)
	if err != nil {
		return // deleted since
	}
	m.logBounce(env, int(size), env.BounceOf)
	states, err := m.o.Spool.RecipientStates(env.BounceOf)
	if err != nil {
		return // finished since
	}
	var rids []int
	for _, rid := range env.BounceRIDs {
		if states[rid].Status == queue.Bounced {
			rids = append(rids, rid)
		}
	}
	for len(rids) > 0 {
		// One record per distinct state (they differ by attempts).
		st := states[rids[0]]
		var same []int
		rids = slices.DeleteFunc(rids, func(rid int) bool {
			if states[rid] == st {
				same = append(same, rid)
				return true
			}
			return false
		})
		err := m.spoolWrite(func(ctx context.Context) error { return m.o.Spool.SetRecipientState(ctx, env.BounceOf, same, st) })
		if err != nil {
			m.log.Error("outbound: the recipients a recovered DSN reports are not recorded as bounced; the next start takes them so again", "mid", env.BounceOf, "dsn", mid, "err", err)
			return
		}
	}
	m.log.Info("outbound: a DSN committed before a crash is sent; the recipients it reports are recorded as bounced", "mid", env.BounceOf, "dsn", mid, "rids", env.BounceRIDs)
}

// finish durably marks a message done and logs it.
func (m *Manager) finish(mid uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), spoolTimeout)
	defer cancel()
	if err := m.o.Spool.Finish(ctx, mid); err != nil {
		return err
	}
	m.emit(event.MessageFinished{MID: mid, Status: event.FinishedDone})
	return nil
}

// Enqueue hands the Manager a message just committed to the spool. It
// never blocks for long and never drops: when memory is full the message
// waits in the spool for its turn.
func (m *Manager) Enqueue(env *queue.Envelope) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enqueue(env)
}

func (m *Manager) enqueue(env *queue.Envelope) {
	if m.state != running {
		// Before Start, Start finds it in the spool; after Stop, the next
		// start does.
		return
	}
	if m.waiting.len() > 0 || len(m.active)+m.loading >= m.maxActive() {
		m.waiting.push(env.MID)
		m.wakeLoader()
		return
	}
	if m.active[env.MID] == nil {
		m.activate(env, nil, time.Now())
		m.schedule()
	}
}

// loader takes waiting messages into memory as room frees up. Reading the
// spool is done without the lock.
func (m *Manager) loader() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		for m.state == running && (m.waiting.len() == 0 || len(m.active)+m.loading >= m.maxActive()) {
			m.mu.Unlock()
			select {
			case <-m.loadWake:
			case <-m.quit:
				return
			}
			m.mu.Lock()
		}
		if m.state != running {
			m.mu.Unlock()
			return
		}
		mid := m.waiting.pop()
		if m.active[mid] != nil || m.held[mid] {
			m.mu.Unlock()
			continue
		}
		m.loading++
		m.mu.Unlock()

		// The envelope only: the body is read when it is sent.
		env, _, _, states, err := m.head(mid, 0)
		switch {
		case errors.Is(err, ErrNoMessage):
			// Finished since it was queued.
		case err != nil:
			m.log.Error("outbound: cannot take in a message; it stays in the spool", "mid", mid, "err", err)
		}
		var finished bool
		m.mu.Lock()
		m.loading--
		if err == nil && m.active[mid] == nil && !m.held[mid] && m.state == running {
			finished = m.activate(env, states, time.Now()) == nil
			m.schedule()
		}
		m.mu.Unlock()
		if finished {
			if err := m.finish(mid); err != nil {
				m.log.Error("outbound: finish", "mid", mid, "err", err)
			}
		}
	}
}

func (m *Manager) wakeLoader() {
	select {
	case m.loadWake <- struct{}{}:
	default:
	}
}

func (m *Manager) wakeTimer() {
	select {
	case m.timerWake <- struct{}{}:
	default:
	}
}

// activate puts a message in memory: its pending recipients are grouped
// into jobs by destination, ready or deferred by their retry times. It
// returns nil when no recipient is pending.
func (m *Manager) activate(env *queue.Envelope, states map[int]queue.RecipientState, now time.Time) *message {
	env, alt := m.redirect(env)
	msg := &message{env: env, arrived: env.Received, states: make([]queue.RecipientState, len(env.Rcpts))}
	if msg.arrived.IsZero() {
		msg.arrived = now
	}
	type key struct {
		d     *dest
		ready bool
	}
	open := make(map[key]*job)
	force, forced := m.forced[env.MID]
	delete(m.forced, env.MID)
	for i, r := range env.Rcpts {
		st := states[r.RID]
		msg.states[i] = st
		if st.Status != queue.Pending {
			continue
		}
		msg.pending++
		domain := domainOf(r.Addr)
		var d *dest
		if alt != "" {
			d = m.routeDest(alt)
		} else {
			d = m.dest(domain)
		}
		due := !st.Next.After(now) || forced && (force == "" || force == domain || force == d.name)
		k := key{d, due}
		j := open[k]
		if j == nil || len(j.rcpts) == maxRcptsPerTxn {
			j = &job{msg: msg, dest: d, domain: domain, due: st.Next}
			if due {
				j.due = time.Time{}
			}
			open[k] = j
			msg.jobs = append(msg.jobs, j)
		}
		j.rcpts = append(j.rcpts, i)
		if !due && st.Next.Before(j.due) {
			j.due = st.Next
		}
		d.rcpts++
	}
	if msg.pending == 0 {
		return nil
	}
	m.active[env.MID] = msg
	m.peak = max(m.peak, len(m.active))
	for _, j := range msg.jobs {
		if j.due.After(now) {
			m.deferJob(j, j.due)
		} else {
			m.makeReady(j)
		}
	}
	if msg.busy == 0 {
		m.evict(msg)
	}
	return msg
}

// dest returns the destination of a recipient domain: its route's, or the
// domain's own.
func (m *Manager) dest(domain string) *dest {
	route := m.routes.lookup(domain)
	name := domain
	if route != nil {
		name = route.Domain
	}
	d := m.dests[name]
	if d == nil {
		d = &dest{name: name, route: route, ctl: m.o.Delivery.Destination(name)}
		d.ctl.MaxConnections = max(d.ctl.MaxConnections, 1)
		d.ctl.MaxMessagesPerConnection = max(d.ctl.MaxMessagesPerConnection, 1)
		m.dests[name] = d
	}
	d.idle = time.Time{}
	return d
}

func (m *Manager) makeReady(j *job) {
	j.msg.busy++
	d := j.dest
	if n := len(d.cache); n > 0 && m.state == running {
		// A cached connection takes it at once: the most recently idle,
		// so that the others reach their cache time and close.
		c := d.cache[n-1]
		d.cache[n-1] = nil
		d.cache = d.cache[:n-1]
		m.cached--
		j.state = jobInflight
		c.next <- j
		return
	}
	j.state = jobReady
	d.ready = append(d.ready, j)
	if !d.inRing {
		d.inRing = true
		m.ring = append(m.ring, d)
	}
}

func (m *Manager) deferJob(j *job, due time.Time) {
	j.state, j.due = jobDeferred, due
	if t, ok := m.sched.next(); !ok || due.Before(t) {
		m.wakeTimer()
	}
	m.sched.add(due, j.msg.env.MID, j)
}

// evict drops a message whose jobs are all deferred from memory: it sleeps
// in the spool until its earliest retry, so that messages waiting for a
// dead destination do not take the room of those that can go.
func (m *Manager) evict(msg *message) {
	var due time.Time
	for _, j := range msg.jobs {
		if j.state == jobDeferred && (due.IsZero() || j.due.Before(due)) {
			due = j.due
		}
	}
	m.forget(msg)
	if t, ok := m.sched.next(); !ok || due.Before(t) {
		m.wakeTimer()
	}
	m.sched.add(due, msg.env.MID, nil)
}

// forget removes a message from memory.
func (m *Manager) forget(msg *message) {
	msg.gone = true
	for _, j := range msg.jobs {
		if j.state != jobDone {
			j.dest.rcpts -= len(j.rcpts)
		}
		j.state = jobDone
	}
	if m.active[msg.env.MID] == msg {
		delete(m.active, msg.env.MID)
	}
	m.wakeLoader()
}

// timerLoop moves deferred work back in when it is due, and forgets the
// counters of destinations idle for long.
func (m *Manager) timerLoop() {
	defer m.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		m.mu.Lock()
		now := time.Now()
		m.fire(now)
		m.sweep(now)
		m.schedule()
		wait := time.Minute
		if at, ok := m.sched.next(); ok {
			wait = min(wait, max(at.Sub(now), time.Millisecond))
		}
		m.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-m.timerWake:
		case <-m.quit:
			return
		}
	}
}

// fire handles the timers that are due. An entry no longer valid (its job
// ran early after a restart of the message, or the message left memory) is
// dropped.
func (m *Manager) fire(now time.Time) {
	for len(m.sched) > 0 && m.sched[0].at <= now.UnixNano() {
		e := popTimer(&m.sched)
		if e.j != nil {
			j := e.j
			if j.state == jobDeferred && !j.msg.gone && j.due.UnixNano() == e.at {
				m.makeReady(j)
			}
			continue
		}
		if m.active[e.mid] == nil {
			m.waiting.push(e.mid)
			m.wakeLoader()
		}
	}
}

func (m *Manager) sweep(now time.Time) {
	for name, d := range m.dests {
		if d.conns > 0 || d.rcpts > 0 || len(d.ready) > 0 {
			continue
		}
		if d.idle.IsZero() {
			d.idle = now
		} else if now.Sub(d.idle) > idleDest {
			delete(m.dests, name)
		}
	}
}

// schedule opens connections while there are free slots and destinations
// that want one, serving the destinations in turn: a destination slow to
// deliver keeps its own connections busy (at most its max_connections),
// and every other destination still gets the slots that free up.
func (m *Manager) schedule() {
	if m.state != running {
		return
	}
	// Drop the destinations without ready jobs from the ring.
	ring := m.ring[:0]
	for i, d := range m.ring {
		if len(d.ready) > 0 {
			ring = append(ring, d)
		} else {
			d.inRing = false
			if i < m.next {
				m.next--
			}
		}
	}
	clear(m.ring[len(ring):])
	m.ring = ring
	for len(m.ring) > 0 {
		if m.conns >= max(m.o.Delivery.MaxConcurrency, 1) {
			m.yieldCached()
			return
		}
		var d *dest
		for i := range m.ring {
			k := (m.next + i) % len(m.ring)
			if m.ring[k].wants() {
				d = m.ring[k]
				m.next = k + 1
				break
			}
		}
		if d == nil {
			return
		}
		d.conns++
		d.opening++
		m.conns++
		m.wg.Add(1)
		go m.connection(d)
	}
}

// yieldCached is for when every connection slot is taken: cached
// connections give theirs up, one per destination that waits for a slot.
// Idle, they must not keep work waiting.
func (m *Manager) yieldCached() {
	if m.cached == 0 {
		return
	}
	wanting := 0
	for _, d := range m.ring {
		if d.wants() {
			wanting++
		}
	}
	for m.cached > 0 && m.closing < wanting {
		m.closeCached()
	}
}

// closeCached tells the longest idle connection of some destination's cache
// to close; its slot is free once it has.
func (m *Manager) closeCached() {
	for _, d := range m.dests {
		if len(d.cache) == 0 {
			continue
		}
		c := d.cache[0]
		d.cache = slices.Delete(d.cache, 0, 1)
		m.cached--
		m.closing++
		c.closing = true
		c.next <- nil
		return
	}
}

// take gives a connection the next ready job of its destination; nil when
// there is none or the Manager stops.
func (m *Manager) take(d *dest) *job {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.takeLocked(d)
}

func (m *Manager) takeLocked(d *dest) *job {
	if m.state != running {
		return nil
	}
	for len(d.ready) > 0 {
		j := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		if j.state == jobReady && !j.msg.gone {
			j.state = jobInflight
			return j
		}
	}
	return nil
}

// takeAll takes every ready job of a destination, for an outcome that
// applies to all of them (its DNS failed, none of its hosts answered).
func (m *Manager) takeAll(d *dest) []*job {
	var jobs []*job
	for _, j := range d.ready {
		if j.state == jobReady && !j.msg.gone {
			j.state = jobInflight
			jobs = append(jobs, j)
		}
	}
	clear(d.ready)
	d.ready = d.ready[:0]
	return jobs
}

// Stop starts nothing new and waits for the deliveries under way to end.
// When ctx ends first, they are cut off: their messages stay in the spool
// as they were and are delivered after the next Start. Stop returns when
// every goroutine of the Manager has ended.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	if m.state != running {
		m.state = stopping
		m.mu.Unlock()
		return nil
	}
	m.state = stopping
	close(m.quit)
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		m.cutNow()
		return nil
	case <-ctx.Done():
	}
	m.cutNow()
	<-done
	return fmt.Errorf("outbound: stop: deliveries cut off: %w", ctx.Err())
}

// Status is a snapshot of the queue manager, for tophosts and hoststatus.
type Status struct {
	Active       int                 `json:"active"`      // messages in memory
	PeakActive   int                 `json:"peak_active"` // the most messages in memory at once, ever
	Waiting      int                 `json:"waiting"`     // messages due now that wait in the spool for room in memory
	Loading      int                 `json:"loading"`     // messages being read from the spool into memory
	Connections  int                 `json:"connections"` // open or opening, cached ones included
	Cached       int                 `json:"cached"`      // connections idle in the connection cache
	Delivered    uint64              `json:"delivered"`   // recipients, since start
	Delayed      uint64              `json:"delayed"`     // soft bounces (recipients)
	Bounced      uint64              `json:"bounced"`     // hard bounces (recipients)
	Destinations []DestinationStatus `json:"destinations"`
}

// DestinationStatus is one destination's line of Status.
type DestinationStatus struct {
	Name        string `json:"name"`        // a domain, or the route ("ALL", ".example.com") that serves it
	Recipients  int    `json:"recipients"`  // pending recipients of the messages in memory
	Ready       int    `json:"ready"`       // transactions waiting for a connection
	Connections int    `json:"connections"` // open or opening, cached ones included
	Cached      int    `json:"cached"`      // idle in the connection cache, waiting for its next message
	Delivered   uint64 `json:"delivered"`   // recipients; kept until the destination has been idle for an hour
	Delayed     uint64 `json:"delayed"`
	Bounced     uint64 `json:"bounced"`
}

// Status reports the queue manager's state.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Active: len(m.active), PeakActive: m.peak, Waiting: m.waiting.len(), Loading: m.loading, Connections: m.conns, Cached: m.cached,
		Delivered: m.total.delivered, Delayed: m.total.delayed, Bounced: m.total.bounced}
	for _, d := range m.dests {
		s.Destinations = append(s.Destinations, DestinationStatus{Name: d.name, Recipients: d.rcpts, Ready: len(d.ready),
			Connections: d.conns, Cached: len(d.cache), Delivered: d.counts.delivered, Delayed: d.counts.delayed, Bounced: d.counts.bounced})
	}
	slices.SortFunc(s.Destinations, func(a, b DestinationStatus) int { return cmp.Compare(a.Name, b.Name) })
	return s
}
