// Package stats holds the ESA's status counters: what status, status
// detail, tophosts, hoststatus and rate show. A Collector is an event.Sink:
// it counts the mail-log events as they happen (messages and recipients
// received, rejected, bounced, delivered...), in three columns as the
// ESA's: Reset (since resetcounters), Uptime (since the gateway started)
// and Lifetime (since the data directory was made: persisted in it), with
// per-second rates over the last 1, 5 and 15 minutes, and per destination
// for tophosts and hoststatus. The gauges (queued recipients, connections,
// spool space, current IDs) are read when asked, from the queue manager
// and the spool.
package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/queue"
)

// Counter is one of the ESA's status counters.
type Counter int

const (
	InjMsgs            Counter = iota // Messages Received
	InjRecips                         // Recipients Received
	GenBounceRecips                   // Gen. Bounce Recipients: recipients of the DSNs the gateway made
	RejectedRecips                    // Rejected Recipients: RCPT refused (RAT, invalid address)
	DroppedMsgs                       // Dropped Messages: accepted, then dropped by a filter or engine
	SoftBouncedEvts                   // Soft Bounced Events: "Delayed:" lines
	CompletedRecips                   // Completed Recipients: hard bounced + delivered + deleted
	HardBouncedRecips                 // Hard Bounced Recipients
	DNSHardBounces                    // of those, the destination has no address (NXDOMAIN, null MX)
	HardBounces5XX                    // a 5xx reply
	ExpiredHardBounces                // too long in the queue, or too many attempts
	OtherHardBounces                  // the rest (bounced by the administrator)
	DeliveredRecips                   // Delivered Recipients
	DeletedRecips                     // Deleted Recipients: removed by the administrator
	DKSignedMsgs                      // DomainKeys Signed Msgs: DKIM signatures made
	ConnIn                            // inbound SMTP connections (ICIDs)
	ConnOut                           // outbound SMTP connections made (DCIDs connected)
	numCounters
)

// counterNames are the names of the ESA's XML status (inj_msgs, ...), and
// ours for the counters it has not; they key the JSON and the lifetime file,
// so they never change.
var counterNames = [numCounters]string{
	InjMsgs: "inj_msgs", InjRecips: "inj_recips", GenBounceRecips: "gen_bounce_recips",
	RejectedRecips: "rejected_recips", DroppedMsgs: "dropped_msgs", SoftBouncedEvts: "soft_bounced_evts",
	CompletedRecips: "completed_recips", HardBouncedRecips: "hard_bounced_recips",
	DNSHardBounces: "dns_hard_bounced_recips", HardBounces5XX: "5xx_hard_bounced_recips",
	ExpiredHardBounces: "expired_hard_bounced_recips", OtherHardBounces: "other_hard_bounced_recips",
	DeliveredRecips: "delivered_recips", DeletedRecips: "deleted_recips", DKSignedMsgs: "dk_signed_msgs",
	ConnIn: "conn_in", ConnOut: "conn_out",
}

func (c Counter) String() string {
	if c >= 0 && c < numCounters {
		return counterNames[c]
	}
	return fmt.Sprintf("Counter(%d)", int(c))
}

// rated are the counters status detail gives rates of, as the ESA.
var rated = [...]Counter{InjMsgs, InjRecips, SoftBouncedEvts, CompletedRecips, HardBouncedRecips, DeliveredRecips}

// Queue is what the gauges and the per-destination views read: the
// queue manager (*outbound.Manager).
type Queue interface {
	QueueGauges() outbound.QueueGauges
	HostGauges(name string) []outbound.HostGauges
	Destination(domain string) string
	HostRoute(ctx context.Context, domain string) outbound.HostRoute
}

// Options configures a Collector.
type Options struct {
	// Path is the lifetime counters' file; "" keeps them in memory only.
	Path string
	// SaveInterval is how often the lifetime counters are saved (and at
	// Close): a gateway killed loses at most that much of their counts.
	// 0 is DefaultSaveInterval.
	SaveInterval time.Duration
	Spool        *queue.Spool    // Kilobytes Used and Free, and the recipients of a delivery; may be nil
	IDs          *queue.Counters // Current IDs; may be nil
	// WorkQueue is the number of messages in the work queue; nil is 0
	// (the gateway has no work queue yet).
	WorkQueue func() int
	Logger    *slog.Logger
}

// DefaultSaveInterval is how often the lifetime counters are saved.
const DefaultSaveInterval = 30 * time.Second

// hostIdle is how long a destination's counters outlive its last event
// when it has nothing queued: the counters of destinations seen once do
// not pile up.
const hostIdle = 24 * time.Hour

// Collector counts the events of the gateway. Emit is cheap: a mutex and
// a few map operations, on the sessions' goroutines.
type Collector struct {
	o       Options
	log     *slog.Logger
	started time.Time
	done    chan struct{}
	stopped chan struct{}

	mu       sync.Mutex
	q        Queue
	up       [numCounters]uint64 // since start
	atReset  [numCounters]uint64 // up at the last resetcounters
	lifeBase [numCounters]uint64 // lifetime counts saved before this start
	resetAt  time.Time           // zero: never
	rates    ring
	txns     map[uint64]txn      // open transactions: recipients accepted, not yet queued
	txnOf    map[uint64]uint64   // the MID of each connection's open transaction (SMTP has one at a time)
	bounces  map[uint64]struct{} // generated messages (DSNs, alerts) being logged, not yet queued
	icids    map[uint64]struct{} // inbound connections open
	dcids    map[uint64]string   // outbound connections open: their destination once known
	hosts    map[string]*host
	lastSave error
}

// txn is a message being received: its connection and its recipients.
type txn struct {
	icid  uint64
	rcpts uint64 // the highest RID accepted, plus one
}

// host is one destination's counters.
type host struct {
	n        [numCounters]uint64 // since start
	atReset  [numCounters]uint64
	down     bool
	last     time.Time // last activity
	hasEvent bool
}

// New makes a Collector, reading the lifetime counters at o.Path, and
// starts saving them every o.SaveInterval until Close. A file that does
// not parse is an error: starting again at 0 would lose them silently.
func New(o Options) (*Collector, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SaveInterval <= 0 {
		o.SaveInterval = DefaultSaveInterval
	}
	c := &Collector{o: o, log: o.Logger, started: time.Now(), done: make(chan struct{}), stopped: make(chan struct{}),
		txns: map[uint64]txn{}, txnOf: map[uint64]uint64{}, bounces: map[uint64]struct{}{}, icids: map[uint64]struct{}{},
		dcids: map[uint64]string{}, hosts: map[string]*host{}}
	if o.Path != "" {
		base, err := load(o.Path)
		if err != nil {
			return nil, err
		}
		c.lifeBase = base
	}
	go c.saveLoop()
	return c, nil
}

// Attach gives the Collector the queue manager, which the gauges and the
// destinations' names need. Until then, events of deliveries count in the
// totals only.
func (c *Collector) Attach(q Queue) {
	c.mu.Lock()
	c.q = q
	c.mu.Unlock()
}

// Close saves the lifetime counters a last time and stops the saving.
func (c *Collector) Close() error {
	select {
	case <-c.done:
		return errors.New("stats: closed twice")
	default:
	}
	close(c.done)
	<-c.stopped
	return c.save()
}

func (c *Collector) saveLoop() {
	defer close(c.stopped)
	t := time.NewTicker(c.o.SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.save(); err != nil {
				c.log.Error("stats: lifetime counters not saved", "path", c.o.Path, "err", err)
			}
			c.sweep(time.Now())
		}
	}
}

// save writes the lifetime counters to o.Path.
func (c *Collector) save() error {
	if c.o.Path == "" {
		return nil
	}
	c.mu.Lock()
	var life [numCounters]uint64
	for i := range life {
		life[i] = c.lifeBase[i] + c.up[i]
	}
	c.mu.Unlock()
	err := store(c.o.Path, life, time.Now())
	c.mu.Lock()
	c.lastSave = err
	c.mu.Unlock()
	return err
}

// sweep forgets the counters of destinations idle for hostIdle.
func (c *Collector) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, h := range c.hosts {
		if now.Sub(h.last) > hostIdle {
			delete(c.hosts, name)
		}
	}
}

// Reset zeroes the Reset column, and the destinations' counters, as the
// ESA's resetcounters; Uptime and Lifetime go on.
func (c *Collector) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.atReset = c.up
	c.resetAt = time.Now()
	for _, h := range c.hosts {
		h.atReset = h.n
	}
}

// Emit counts one event.
func (c *Collector) Emit(e event.Entry) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev := e.Event.(type) {
	case event.NewICID:
		c.icids[ev.ICID] = struct{}{}
		c.add(now, ConnIn, 1)
	case event.ICIDClose:
		delete(c.icids, ev.ICID)
		// A transaction the connection left open (RSET, a lost
		// connection) ends with it.
		if mid, ok := c.txnOf[ev.ICID]; ok {
			c.endTxn(mid)
		}
	case event.RcptTo:
		if ev.ICID != 0 {
			// A mailbox named twice is one recipient, its RCPT logged
			// with the RID it merged into: RIDs count from 0.
			if prev, ok := c.txnOf[ev.ICID]; ok && prev != ev.MID {
				c.endTxn(prev) // abandoned without a line saying so
			}
			t := c.txns[ev.MID]
			t.icid = ev.ICID
			t.rcpts = max(t.rcpts, uint64(ev.RID)+1)
			c.txns[ev.MID] = t
			c.txnOf[ev.ICID] = ev.MID
		}
	case event.RcptRejected:
		c.add(now, RejectedRecips, 1)
	case event.InvalidAddress:
		if ev.Recipient {
			c.add(now, RejectedRecips, 1)
		}
	case event.StartMID:
		if ev.ICID == 0 {
			// A message the gateway made (a bounce, an alert) is not
			// one it received.
			c.bounces[ev.MID] = struct{}{}
		}
	case event.BounceGenerated:
		c.bounces[ev.MID] = struct{}{}
		c.add(now, GenBounceRecips, 1) // a DSN has one recipient: the sender
	case event.Queued:
		if _, ok := c.bounces[ev.MID]; ok {
			delete(c.bounces, ev.MID)
			break
		}
		c.add(now, InjMsgs, 1)
		if t, ok := c.txns[ev.MID]; ok {
			c.add(now, InjRecips, t.rcpts)
			c.endTxn(ev.MID)
		}
	case event.MessageAborted:
		c.endTxn(ev.MID)
		if ev.Cause().Kind == event.AbortDropped {
			c.add(now, DroppedMsgs, 1)
		}
	case event.Signing:
		if ev.Signed() {
			c.add(now, DKSignedMsgs, 1)
		}
	case event.NewDCID:
		c.dcids[ev.DCID] = ""
		c.add(now, ConnOut, 1)
	case event.DCIDClose:
		delete(c.dcids, ev.DCID)
	case event.ConnectionError:
		if h := c.host(c.dest(ev.Domain), e.Time); h != nil {
			// Up again as soon as a connection carries a message.
			h.down = true
		}
	case event.DeliveryStart:
		if name, ok := c.dcids[ev.DCID]; ok && name == "" && len(ev.RIDs) > 0 && c.q != nil {
			// A connection serves one destination: the first message it
			// carries names it. Its recipients are read from the spool
			// without the lock, once per connection.
			c.mu.Unlock()
			addr, found := c.recipient(ev.MID, ev.RIDs[0])
			c.mu.Lock()
			if _, open := c.dcids[ev.DCID]; found && open {
				c.dcids[ev.DCID] = c.dest(domainOf(addr))
			}
		}
		if h := c.host(c.dcids[ev.DCID], e.Time); h != nil {
			h.down = false
		}
	case event.MessageDone:
		n := uint64(len(ev.RIDs))
		c.add(now, DeliveredRecips, n)
		c.add(now, CompletedRecips, n)
		if h := c.host(c.dcids[ev.DCID], e.Time); h != nil {
			h.n[DeliveredRecips] += n
			h.n[CompletedRecips] += n
		}
	case event.Outcome:
		h := c.host(c.dest(domainOf(ev.To)), e.Time)
		if !ev.Hard {
			c.add(now, SoftBouncedEvts, 1)
			if h != nil {
				h.n[SoftBouncedEvts]++
				if ev.DCID == 0 {
					h.down = true // no connection could be tried: its DNS failed
				}
			}
			break
		}
		kind := hardKind(ev)
		for _, k := range [...]Counter{HardBouncedRecips, CompletedRecips, kind} {
			c.add(now, k, 1)
			if h != nil {
				h.n[k]++
			}
		}
	case event.Deleted:
		n := uint64(len(ev.RIDs))
		c.add(now, DeletedRecips, n)
		c.add(now, CompletedRecips, n)
	}
}

// endTxn forgets an open transaction; c.mu is held.
func (c *Collector) endTxn(mid uint64) {
	if t, ok := c.txns[mid]; ok {
		delete(c.txns, mid)
		if c.txnOf[t.icid] == mid {
			delete(c.txnOf, t.icid)
		}
	}
}

// hardKind sorts a hard bounce as the ESA's counters do.
func hardKind(o event.Outcome) Counter {
	switch {
	case o.Status == "5.4.7":
		return ExpiredHardBounces
	case strings.HasPrefix(o.Code, "5"):
		return HardBounces5XX
	case o.Code == "000" && (o.Status == "5.1.2" || o.Status == "5.4.4" || o.Status == "5.1.10"):
		// The outcomes of a destination with no address: NXDOMAIN, no
		// address for its MX hosts, a null MX (outbound's plan).
		return DNSHardBounces
	}
	return OtherHardBounces
}

// add counts n of k at now; c.mu is held.
func (c *Collector) add(now time.Time, k Counter, n uint64) {
	c.up[k] += n
	c.rates.add(now, k, n)
}

// dest is the destination a recipient domain goes by; "" when the queue
// manager is not attached. c.mu is held; the lookup reads the routes,
// which never change, and takes no lock of the queue manager's.
func (c *Collector) dest(domain string) string {
	if c.q == nil {
		return ""
	}
	return c.q.Destination(domain)
}

// host returns the counters of a destination, made on first use; nil for
// no destination. c.mu is held.
func (c *Collector) host(name string, t time.Time) *host {
	if name == "" {
		return nil
	}
	h := c.hosts[name]
	if h == nil {
		h = &host{}
		c.hosts[name] = h
	}
	if t.IsZero() {
		t = time.Now()
	}
	h.last, h.hasEvent = t, true
	return h
}

// recipient reads a recipient's address from the spool. The message is
// in it while it is being delivered.
func (c *Collector) recipient(mid uint64, rid int) (string, bool) {
	if c.o.Spool == nil {
		return "", false
	}
	env, _, _, err := c.o.Spool.Head(mid, 0)
	if err != nil {
		return "", false
	}
	for _, r := range env.Rcpts {
		if r.RID == rid {
			return r.Addr, true
		}
	}
	return "", false
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}
