// Command esagen writes a realistic, mixed Cisco ESA mail log, the same for
// the same seed, for the import and tracking benchmarks (bench/track.sh) and
// for correctness tests of the tracker:
//
//	esagen -lines 5000000 -seed 1 -o mail.log [-truth truth.jsonl]
//	esagen -messages 1000 -o mail.log.gz
//
// It simulates a gateway in log time: inbound connections arrive at random
// (Poisson), many at once, and each goes through the ESA's lines (New SMTP
// ICID, the HAT verdict, TLS, Start MID, From, To, Message-ID, Subject,
// ready, the policy match, queued for delivery, ICID close) with its own
// pace, so that the lines of different connections interleave as in a real
// log. Queued messages are delivered over outbound connections (New SMTP
// DCID, Delivery start, Message done, Response, DCID close) that carry
// several messages each. Some messages bounce (a 5.1.1 reply, or a DNS error
// with DCID 0) and produce a DSN that is itself delivered; some are delayed
// and retried; some injections are aborted (the connection lost, a timeout,
// the sender quitting); some are dropped by the anti-spam engine; a dead
// destination gives Connection Error lines and keeps its mail queued. Every
// line is an event rendered by maillog.AppendLine, so it is exactly what
// mailgate writes and parses.
//
// When the line (or message) budget is reached no new connection starts;
// the ones under way finish and their mail is delivered, but retries due
// later are not made: the mail they would have delivered ends the log
// delayed or queued, as in a log cut at any moment.
//
// -truth writes one JSON object per message (MID), what a reader of the log
// concludes: status (delivered, bounced, delayed, aborted, rejected,
// dropped, queued), the abort kind of an aborted message (lost, unknown,
// sender: what the ESA's lines alone prove), the sender, the accepted recipients in RID order, those the
// RAT rejected, the subject and, for a DSN, the MID it reports on. The
// status follows the rule of tracking.settle: a message with a recipient
// still waiting is delayed when one is delayed and queued otherwise; with
// every recipient settled it is bounced when one bounced, else delivered.
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
)

// Options are the knobs of a run; the mix is the share of messages.
type Options struct {
	Lines    int       // stop starting connections after this many lines (0: no limit)
	Messages int       // or after this many received messages (0: no limit)
	Seed     uint64    // the same seed gives the same log
	Start    time.Time // log time of the first line
	Rate     float64   // received messages per second of log time
	Offset   int       // seconds east of UTC the log's times are written in

	Relay     float64 // share of connections that are internal clients relaying out
	HATReject float64 // share of inbound connections the HAT rejects
	Bounce    float64 // messages with a recipient that bounces
	Delay     float64 // messages whose delivery is delayed at first
	Abort     float64 // injections aborted (a third each: lost, timeout, sender quit)
	Drop      float64 // messages dropped by the anti-spam engine
	RATAll    float64 // messages whose every recipient the RAT rejects
	RATSome   float64 // messages with one extra recipient the RAT rejects
	Dead      float64 // relayed messages with a recipient at a dead destination
}

// DefaultOptions gives a sane mix: ~3% bounced, ~3% delayed, ~2% aborted,
// ~1% dropped.
func DefaultOptions() Options {
	return Options{
		Seed: 1, Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Rate: 30,
		Relay: 0.25, HATReject: 0.08, Bounce: 0.03, Delay: 0.03, Abort: 0.02, Drop: 0.01,
		RATAll: 0.005, RATSome: 0.03, Dead: 0.01,
	}
}

// Summary counts what a run wrote.
type Summary struct {
	Lines    int64
	Messages int64 // received, without DSNs
	DSNs     int64
	Conns    int64
	Status   map[string]int
	LogTime  time.Duration
}

func main() {
	o := DefaultOptions()
	var start, out, truth string
	flag.IntVar(&o.Lines, "lines", 0, "stop after about this many lines")
	flag.IntVar(&o.Messages, "messages", 0, "stop after this many received messages")
	flag.Uint64Var(&o.Seed, "seed", o.Seed, "random seed: the same seed gives the same log")
	flag.StringVar(&start, "start", o.Start.Format(time.RFC3339), "log time of the first line (RFC 3339)")
	flag.Float64Var(&o.Rate, "rate", o.Rate, "received messages per second of log time")
	flag.IntVar(&o.Offset, "utc-offset", 0, "seconds east of UTC the times are written in (the header's \"Time offset from UTC\")")
	flag.StringVar(&out, "o", "-", "output file (- for standard output; a .gz name is gzipped)")
	flag.StringVar(&truth, "truth", "", "write what the log says of each message to this file, as JSON lines")
	flag.Float64Var(&o.Bounce, "bounce", o.Bounce, "share of messages with a recipient that bounces")
	flag.Float64Var(&o.Delay, "delay", o.Delay, "share of messages delayed at first")
	flag.Float64Var(&o.Abort, "abort", o.Abort, "share of injections aborted")
	flag.Float64Var(&o.Drop, "drop", o.Drop, "share of messages dropped by CASE")
	flag.Float64Var(&o.HATReject, "hat-reject", o.HATReject, "share of inbound connections rejected by the HAT")
	flag.Float64Var(&o.Relay, "relay", o.Relay, "share of connections relaying out")
	flag.Parse()
	if flag.NArg() > 0 || o.Rate <= 0 || (o.Lines <= 0 && o.Messages <= 0) {
		fmt.Fprintln(os.Stderr, "esagen: give -lines N or -messages N (see -h)")
		os.Exit(2)
	}
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "esagen: -start:", err)
		os.Exit(2)
	}
	o.Start = t
	began := time.Now()
	s, err := run(o, out, truth)
	if err != nil {
		fmt.Fprintln(os.Stderr, "esagen:", err)
		os.Exit(1)
	}
	var st []string
	for _, k := range slices.Sorted(maps.Keys(s.Status)) {
		st = append(st, fmt.Sprintf("%s=%d", k, s.Status[k]))
	}
	fmt.Fprintf(os.Stderr, "esagen: %d lines, %d messages + %d DSNs, %d connections, %v of log time, in %.2fs; %s\n",
		s.Lines, s.Messages, s.DSNs, s.Conns, s.LogTime.Round(time.Second), time.Since(began).Seconds(), strings.Join(st, " "))
}

func run(o Options, out, truth string) (Summary, error) {
	var w io.Writer = os.Stdout
	var closers []io.Closer
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return Summary{}, err
		}
		closers = append(closers, f)
		w = f
		if strings.HasSuffix(out, ".gz") {
			// BestSpeed: the default level would make gzip, not the
			// generator, the cost of a big log.
			zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
			closers = append([]io.Closer{zw}, closers...)
			w = zw
		}
	}
	var tw io.Writer
	if truth != "" {
		f, err := os.Create(truth)
		if err != nil {
			return Summary{}, err
		}
		closers = append([]io.Closer{f}, closers...)
		tw = f
	}
	s, err := Generate(o, w, tw)
	for _, c := range closers {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return s, err
}

// Generate writes the log to w and, when tw is not nil, the truth to tw.
func Generate(o Options, w, tw io.Writer) (Summary, error) {
	g := newGen(o, w, tw)
	g.header()
	g.push(item{k: kArrive})
	for len(g.q) > 0 && g.err == nil {
		it := g.pop()
		g.t = it.at
		g.step(it)
	}
	g.flushTruth()
	if g.err == nil {
		g.err = g.w.Flush()
	}
	if g.err == nil && g.tw != nil {
		g.err = g.tw.Flush()
	}
	g.sum.LogTime = time.Duration(g.t)
	return g.sum, g.err
}

// ---- the simulation ----------------------------------------------------------

type kind uint8

const (
	kArrive  kind = iota // the next connection arrives
	kHAT                 // the HAT verdict
	kTLS                 // STARTTLS done
	kMail                // MAIL FROM: a new message, or the end of the connection
	kRcpt                // the next RCPT TO
	kData                // end of DATA: Message-ID, Subject, ready
	kLost                // the connection is lost mid-message
	kAbort               // the message is aborted (timeout, sender quit, all recipients refused)
	kClose               // ICID close
	kPolicy              // the work queue: the policy match
	kQueue               // the work queue: queued for delivery, or dropped
	kDSN                 // a generated bounce enters the queue
	kJob                 // a delivery is due (first attempt)
	kRetry               // a delivery is due again (after a delay or a dead destination)
	kDeliver             // Delivery start on an outbound connection
	kDone                // the delivery's outcome
	kIdle                // an outbound connection has been idle for a while
)

// item is one scheduled step; the queue orders items by time, then by the
// order they were scheduled in.
type item struct {
	at  int64 // log time, ns from the start
	seq uint64
	k   kind
	gen uint32
	c   *inConn
	m   *msg
	j   *job
	d   *dconn
}

type fate uint8

const (
	fNormal  fate = iota
	fBounce       // one recipient bounces: 5.1.1 from the next hop, or a DNS error
	fDelay        // the first delivery is delayed, then (mostly) retried with success
	fDead         // one recipient is at a destination that accepts no connection
	fLost         // the connection is lost after the recipients
	fTimeout      // the client falls silent after the recipients: aborted 5 minutes later
	fQuit         // the client quits after the recipients
	fRATAll       // every recipient is refused by the RAT; the client gives up
	fDrop         // the anti-spam engine drops it
)

type inConn struct {
	icid  uint64
	relay bool
	peer  *peer
	todo  int   // messages still to send
	pace  int64 // mean gap between the client's commands, ns
	cur   *msg
}

type rstate uint8

const (
	rQueued rstate = iota
	rDelivered
	rBounced
	rDelayed
	rDropped
)

type rcpt struct {
	addr string
	st   rstate
}

type planned struct {
	addr     string
	rejected bool
}

type msg struct {
	mid       uint64
	relay     bool
	fate      fate
	bounceRID int // fBounce: the recipient that bounces (-1: none)
	sender    string
	plan      []planned // the RCPT TO commands, in order
	next      int       // the next of plan
	rcpts     []rcpt    // accepted: RID = index
	rejected  []string
	subject   string
	size      int64
	bounceOf  uint64
	open      int // recipients not settled
	finished  bool
	dropped   bool
}

type dest struct {
	domain   string
	ip       string
	nx, dead bool
	internal bool
	maxConns int
	conns    []*dconn // open and taking more messages
	lastErr  int64    // time of the last Connection Error (dead destinations)
}

type dconn struct {
	dcid      uint64
	d         *dest
	busyUntil int64
	n         int // messages carried
	gen       uint32
	closed    bool
	full      bool
}

type job struct {
	m        *msg
	d        *dest
	rids     []int
	done     []int // the RIDs delivered by this attempt
	attempt  int
	delay    bool // this attempt is delayed
	c        *dconn
	gen      uint32
	delaying bool // the message's delayed destination
}

const (
	ms  = int64(time.Millisecond)
	sec = int64(time.Second)
	// maxPerConn is how many messages an outbound connection carries
	// before it closes, as the ESA's default.
	maxPerConn  = 50
	idleClose   = 2 * sec
	abortAfter  = 300 * sec // the listener's timeout, for fTimeout
	outIface    = "192.0.2.10"
	inIface     = "Incoming Mail"
	inIfaceIP   = "192.0.2.10"
	relayIface  = "Outgoing Mail"
	relayIfcIP  = "10.1.0.10"
	internalMTA = "10.20.1.25"
)

type gen struct {
	o    Options
	r    *rand.Rand
	p    *pools
	w    *bufio.Writer
	tw   *bufio.Writer
	enc  *json.Encoder
	loc  *time.Location
	err  error
	t    int64
	seq  uint64
	q    []item
	sum  Summary
	open map[uint64]*msg // messages not finished, for the truth at the end

	icid, mid, dcid uint64
	stopped         bool
	stopAt          int64
	connGap         float64 // mean ns between arrivals
	dests           map[string]*dest
	senderZipf      *rand.Zipf
	userZipf        *rand.Zipf
	rcptZipf        *rand.Zipf
	scratch         []byte
	resp            [1]string
}

func newGen(o Options, w, tw io.Writer) *gen {
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	g := &gen{
		o: o, r: r, p: newPools(r),
		w:     bufio.NewWriterSize(w, 1<<20),
		dests: make(map[string]*dest),
		open:  make(map[uint64]*msg),
		loc:   time.UTC,
		icid:  100000 + r.Uint64N(900000),
		mid:   1000000 + r.Uint64N(9000000),
		dcid:  50000 + r.Uint64N(500000),
	}
	if o.Offset != 0 {
		g.loc = time.FixedZone("", o.Offset)
	}
	if tw != nil {
		g.tw = bufio.NewWriterSize(tw, 1<<20)
		g.enc = json.NewEncoder(g.tw)
		g.enc.SetEscapeHTML(false)
	}
	// Messages per accepted connection average 2.05 (msgsPerConn); this
	// arrival rate of connections gives about o.Rate messages a second.
	accepted := (1 - o.Relay) * (1 - o.HATReject)
	accepted += o.Relay
	g.connGap = float64(sec) * 2.05 * accepted / o.Rate
	g.senderZipf = rand.NewZipf(r, 1.1, 8, uint64(len(g.p.extSenders)-1))
	g.userZipf = rand.NewZipf(r, 1.05, 20, uint64(len(g.p.intUsers)-1))
	g.rcptZipf = rand.NewZipf(r, 1.05, 20, uint64(len(g.p.extRcpts)-1))
	return g
}

// ---- the queue: a binary heap of values, no allocation per item --------------

func less(a, b *item) bool { return a.at < b.at || (a.at == b.at && a.seq < b.seq) }

func (g *gen) push(it item) {
	g.seq++
	it.seq = g.seq
	if it.at < g.t {
		it.at = g.t
	}
	g.q = append(g.q, it)
	i := len(g.q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&g.q[i], &g.q[p]) {
			break
		}
		g.q[i], g.q[p] = g.q[p], g.q[i]
		i = p
	}
}

func (g *gen) pop() item {
	top := g.q[0]
	n := len(g.q) - 1
	g.q[0] = g.q[n]
	g.q[n] = item{}
	g.q = g.q[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && less(&g.q[r], &g.q[l]) {
			l = r
		}
		if !less(&g.q[l], &g.q[i]) {
			break
		}
		g.q[i], g.q[l] = g.q[l], g.q[i]
		i = l
	}
	return top
}

// after schedules it d ns from now.
func (g *gen) after(d int64, it item) {
	it.at = g.t + d
	g.push(it)
}

// gap is a random wait with mean m ns (exponential, at least 1 ms).
func (g *gen) gap(m int64) int64 {
	return max(ms, int64(g.r.ExpFloat64()*float64(m)))
}

// between is uniform in [a, b) ns.
func (g *gen) between(a, b int64) int64 { return a + g.r.Int64N(b-a) }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// ---- writing -----------------------------------------------------------------

func (g *gen) header() {
	_, off := g.o.Start.In(g.loc).Zone()
	g.emit(event.BeginLogfile{})
	g.emit(event.LogfileVersion{Version: "15.0.3-016", Serial: "420D4FEA709365BFB3E3-0AF2EE5E700E"})
	g.emit(event.TimeOffset{Seconds: off})
}

// emit writes one line at the current log time, rendered straight into the
// buffered writer's free space.
func (g *gen) emit(ev event.Event) {
	if g.err != nil {
		return
	}
	// Room for the longest line, so that it is rendered in place rather
	// than into a slice append has to reallocate.
	if g.w.Available() < 4096 {
		if g.err = g.w.Flush(); g.err != nil {
			return
		}
	}
	b := g.w.AvailableBuffer()
	b = maillog.AppendLine(b, event.Entry{Time: g.o.Start.Add(time.Duration(g.t)), Level: event.Info, Event: ev}, g.loc)
	b = append(b, '\n')
	g.w.Write(b)
	g.sum.Lines++
	if g.o.Lines > 0 && g.sum.Lines >= int64(g.o.Lines) {
		g.stop()
	}
}

func (g *gen) stop() {
	if !g.stopped {
		g.stopped, g.stopAt = true, g.t
	}
}

// ---- the simulation's steps --------------------------------------------------

func (g *gen) step(it item) {
	switch it.k {
	case kArrive:
		if g.stopped {
			return
		}
		g.startConn()
		g.push(item{k: kArrive, at: g.t + max(1, int64(g.r.ExpFloat64()*g.connGap))})
	case kHAT:
		g.hat(it.c)
	case kTLS:
		g.emit(event.TLS{Conn: event.ConnRef{Kind: event.InboundConn, ID: it.c.icid}, Success: true,
			Protocol: tlsProto(g.r), Cipher: tlsCiphers[g.r.IntN(len(tlsCiphers))]})
		g.after(g.gap(it.c.pace), item{k: kMail, c: it.c})
	case kMail:
		g.mailFrom(it.c)
	case kRcpt:
		g.rcptTo(it.c)
	case kData:
		g.data(it.c)
	case kLost:
		c, m := it.c, it.c.cur
		g.emit(event.ICIDLost{ICID: c.icid})
		g.emit(event.MessageAborted{MID: m.mid, Reason: event.AbortReceiving})
		g.finish(m, event.FinishedAborted)
		g.after(g.between(10*ms, 500*ms), item{k: kClose, c: c})
	case kAbort:
		g.abort(it.c)
	case kClose:
		g.emit(event.ICIDClose{ICID: it.c.icid})
	case kPolicy:
		table := "inbound"
		if it.m.relay {
			table = "outbound"
		}
		g.emit(event.PolicyMatch{MID: it.m.mid, Policy: "DEFAULT", Table: table})
		// Anti-spam and anti-virus scanning.
		g.after(g.between(100*ms, 2500*ms), item{k: kQueue, m: it.m})
	case kQueue:
		g.queue(it.m)
	case kDSN:
		g.dsnLines(it.m)
	case kJob:
		g.job(it.j)
	case kRetry:
		if g.stopped && it.at > g.stopAt {
			return // due after the end of the log
		}
		g.job(it.j)
	case kDeliver:
		j := it.j
		g.emit(event.DeliveryStart{DCID: j.c.dcid, MID: j.m.mid, RIDs: j.rids})
	case kDone:
		g.done(it.j)
	case kIdle:
		c := it.d
		if c.gen == it.gen && !c.closed {
			g.closeDconn(c)
		}
	}
}

func tlsProto(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return "TLSv1.3"
	}
	return "TLSv1.2"
}

func (g *gen) startConn() {
	g.icid++
	g.sum.Conns++
	c := &inConn{icid: g.icid, relay: g.chance(g.o.Relay), pace: 80 * ms}
	if g.chance(0.1) {
		c.pace = 1500 * ms // a slow client, or one far away
	}
	iface, ifaceIP := inIface, inIfaceIP
	if c.relay {
		c.peer = &g.p.relayIPs[g.r.IntN(len(g.p.relayIPs))]
		iface, ifaceIP = relayIface, relayIfcIP
	} else {
		c.peer = &g.p.inIPs[int(float64(len(g.p.inIPs))*g.r.Float64()*g.r.Float64())]
	}
	g.emit(event.NewICID{ICID: c.icid, Interface: iface, InterfaceIP: ifaceIP, RemoteIP: c.peer.ip,
		ReverseHost: c.peer.host, Verified: c.peer.verified})
	g.after(g.between(1*ms, 60*ms), item{k: kHAT, c: c})
}

var msgsPerConn = []int{45, 25, 15, 10, 5} // weights of 1..5: mean 2.05

func (g *gen) hat(c *inConn) {
	h := event.HATMatch{ICID: c.icid, Action: event.ActionAccept, Group: "UNKNOWNLIST", Rule: "ALL", SBRS: sbrs(g.r, 0)}
	switch {
	case c.relay:
		h.Action, h.Group, h.Rule, h.SBRS = event.ActionRelay, "RELAY_SG", "10.1.0.0/16", "None"
	case g.chance(g.o.HATReject):
		h.Action, h.Group, h.Rule, h.SBRS = event.ActionReject, "BLOCKED_LIST", "sbrs[-10.0:-3.0]", sbrs(g.r, -10)
		g.emit(h)
		g.after(g.between(5*ms, 800*ms), item{k: kClose, c: c})
		return
	case g.chance(0.1):
		h.Group, h.Rule, h.SBRS = "SUSPECTLIST", "sbrs[-3.0:-1.0]", sbrs(g.r, -3)
	case g.chance(0.05):
		h.Group, h.Rule = "ALLOWED_LIST", c.peer.host
	}
	g.emit(h)
	n, w := 1, g.r.IntN(100)
	for _, p := range msgsPerConn {
		if w < p {
			break
		}
		w -= p
		n++
	}
	c.todo = n
	if g.chance(0.75) {
		g.after(g.gap(c.pace)+20*ms, item{k: kTLS, c: c})
		return
	}
	g.after(g.gap(c.pace), item{k: kMail, c: c})
}

// sbrs is a SenderBase score from lo up, or "None" now and then.
func sbrs(r *rand.Rand, lo float64) string {
	if r.IntN(10) == 0 {
		return "None"
	}
	var v float64
	switch {
	case lo <= -10:
		v = -10 + 7*r.Float64()
	case lo <= -3:
		v = -3 + 2*r.Float64()
	default:
		v = -1 + 11*r.Float64()
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64)
}

// mailFrom starts the connection's next message, or closes it.
func (g *gen) mailFrom(c *inConn) {
	if c.todo == 0 || (g.o.Messages > 0 && g.sum.Messages >= int64(g.o.Messages)) {
		g.emit(event.ICIDClose{ICID: c.icid})
		return
	}
	c.todo--
	g.mid++
	g.sum.Messages++
	if g.o.Messages > 0 && g.sum.Messages >= int64(g.o.Messages) {
		g.stop()
	}
	m := &msg{mid: g.mid, relay: c.relay, bounceRID: -1}
	c.cur = m
	g.open[m.mid] = m
	if c.relay {
		m.sender = g.p.intUsers[g.userZipf.Uint64()]
	} else {
		m.sender = g.p.extSenders[g.senderZipf.Uint64()]
	}
	m.fate = g.pickFate(c)
	n := 1
	if w := g.r.IntN(100); w >= 88 {
		n = 3
	} else if w >= 60 {
		n = 2
	}
	if m.fate == fRATAll {
		for range n {
			m.plan = append(m.plan, planned{addr: g.p.extRcpts[g.r.IntN(len(g.p.extRcpts))], rejected: true})
		}
	} else {
		for range n {
			var a string
			if c.relay {
				a = g.p.extRcpts[g.rcptZipf.Uint64()]
			} else {
				a = g.p.intUsers[g.userZipf.Uint64()]
			}
			if !slices.ContainsFunc(m.plan, func(p planned) bool { return p.addr == a }) {
				m.plan = append(m.plan, planned{addr: a})
			}
		}
		if m.fate <= fDead && !c.relay && g.chance(g.o.RATSome) {
			// A relay attempt through the inbound listener: refused, the rest accepted.
			at := g.r.IntN(len(m.plan) + 1)
			m.plan = slices.Insert(m.plan, at, planned{addr: g.p.extRcpts[g.r.IntN(len(g.p.extRcpts))], rejected: true})
		}
		switch m.fate {
		case fBounce:
			m.bounceRID = g.r.IntN(len(m.plan) - g.nRejected(m))
			if c.relay && g.chance(0.5) {
				// A typo in the domain: a DNS hard error, no connection.
				g.setAccepted(m, m.bounceRID, rename(m.sender, nxDomains[g.r.IntN(len(nxDomains))]))
			}
		case fDead:
			g.setAccepted(m, g.r.IntN(len(m.plan)-g.nRejected(m)), rename(m.sender, deadDomains[g.r.IntN(len(deadDomains))]))
		}
	}
	g.emit(event.StartMID{MID: m.mid, ICID: c.icid})
	g.emit(event.MailFrom{MID: m.mid, ICID: c.icid, From: m.sender})
	g.after(g.gap(c.pace), item{k: kRcpt, c: c})
}

func (g *gen) nRejected(m *msg) int {
	n := 0
	for _, p := range m.plan {
		if p.rejected {
			n++
		}
	}
	return n
}

// setAccepted replaces the address of the i-th accepted recipient.
func (g *gen) setAccepted(m *msg, i int, addr string) {
	for k := range m.plan {
		if m.plan[k].rejected {
			continue
		}
		if i == 0 {
			m.plan[k].addr = addr
			return
		}
		i--
	}
}

// rename puts the local part of a at domain d.
func rename(a, d string) string {
	local, _, _ := strings.Cut(a, "@")
	return local + "@" + d
}

func (g *gen) pickFate(c *inConn) fate {
	o := g.o
	u := g.r.Float64()
	for _, f := range []struct {
		p float64
		f fate
	}{
		{o.Bounce, fBounce}, {o.Delay, fDelay}, {o.Abort / 3, fLost}, {o.Abort / 3, fTimeout},
		{o.Abort / 3, fQuit}, {o.Drop, fDrop}, {o.RATAll, fRATAll}, {o.Dead, fDead},
	} {
		if u < f.p {
			switch {
			case f.f == fDead && !c.relay, f.f == fDrop && c.relay, f.f == fRATAll && c.relay:
				return fNormal // inbound mail goes to our own hosts; CASE and the RAT watch inbound mail
			}
			return f.f
		}
		u -= f.p
	}
	return fNormal
}

func (g *gen) rcptTo(c *inConn) {
	m := c.cur
	p := m.plan[m.next]
	m.next++
	if p.rejected {
		m.rejected = append(m.rejected, p.addr)
		g.emit(event.RcptRejected{MID: m.mid, ICID: c.icid, To: p.addr, By: "RAT"})
	} else {
		m.rcpts = append(m.rcpts, rcpt{addr: p.addr})
		g.emit(event.RcptTo{MID: m.mid, ICID: c.icid, RID: len(m.rcpts) - 1, To: p.addr})
	}
	if m.next < len(m.plan) {
		g.after(g.gap(c.pace), item{k: kRcpt, c: c})
		return
	}
	switch m.fate {
	case fLost:
		g.after(g.between(2*sec, 30*sec), item{k: kLost, c: c})
	case fTimeout:
		g.after(abortAfter, item{k: kAbort, c: c})
	case fQuit:
		g.after(g.between(500*ms, 5*sec), item{k: kAbort, c: c})
	case fRATAll:
		g.after(g.gap(c.pace), item{k: kAbort, c: c})
	default:
		// DATA: the client's pace, then the transfer.
		g.after(g.gap(c.pace)+g.between(200*ms, 3*sec), item{k: kData, c: c})
	}
}

func (g *gen) abort(c *inConn) {
	m := c.cur
	reason := event.AbortReceivingBySender
	if m.fate == fTimeout {
		reason = event.AbortReceiving
	}
	g.emit(event.MessageAborted{MID: m.mid, Reason: reason})
	g.finish(m, event.FinishedAborted)
	if m.fate == fRATAll && c.todo > 0 {
		// RSET, and the client goes on with its next message.
		g.after(g.gap(c.pace), item{k: kMail, c: c})
		return
	}
	g.after(g.between(1*ms, 300*ms), item{k: kClose, c: c})
}

func (g *gen) data(c *inConn) {
	m := c.cur
	g.scratch = g.scratch[:0]
	g.scratch = append(g.scratch, '<')
	for range 16 {
		g.scratch = append(g.scratch, "0123456789abcdefghijklmnopqrstuvwxyz"[g.r.IntN(36)])
	}
	g.scratch = append(g.scratch, '.')
	g.scratch = strconv.AppendUint(g.scratch, m.mid*7919, 36)
	g.scratch = append(g.scratch, '@')
	_, dom, _ := strings.Cut(m.sender, "@")
	g.scratch = append(g.scratch, dom...)
	g.scratch = append(g.scratch, '>')
	g.emit(event.MessageIDHeader{MID: m.mid, MessageID: string(g.scratch)})
	if !g.chance(0.005) { // a few have an empty Subject
		m.subject = string(subject(g.r, g.scratch[:0], g.p.domains))
	}
	g.emit(event.Subject{MID: m.mid, Subject: m.subject, Quote: maillog.QuoteFor(m.subject)})
	m.size = int64(math.Exp(9.5+1.3*g.r.NormFloat64())) + 600
	g.emit(event.Ready{MID: m.mid, Bytes: m.size, From: m.sender})
	g.after(g.between(1*ms, 150*ms), item{k: kPolicy, m: m})
	g.after(g.gap(c.pace), item{k: kMail, c: c})
}

func (g *gen) queue(m *msg) {
	if m.fate == fDrop {
		g.emit(event.MessageAborted{MID: m.mid, Reason: "Dropped by CASE"})
		for i := range m.rcpts {
			m.rcpts[i].st = rDropped
		}
		m.dropped = true
		g.finish(m, event.FinishedDone)
		return
	}
	g.emit(event.Queued{MID: m.mid})
	g.enqueue(m, g.between(5*ms, 400*ms))
}

// enqueue splits the message's recipients by destination into delivery jobs.
func (g *gen) enqueue(m *msg, wait int64) {
	m.open = len(m.rcpts)
	var jobs []*job
	for rid, r := range m.rcpts {
		d := g.dest(r.addr)
		i := slices.IndexFunc(jobs, func(j *job) bool { return j.d == d })
		if i < 0 {
			jobs = append(jobs, &job{m: m, d: d})
			i = len(jobs) - 1
		}
		jobs[i].rids = append(jobs[i].rids, rid)
	}
	for i, j := range jobs {
		j.delaying = m.fate == fDelay && i == 0 && !j.d.nx && !j.d.dead
		g.after(wait+int64(i)*g.between(1*ms, 50*ms), item{k: kJob, j: j})
	}
}

func (g *gen) dest(addr string) *dest {
	_, dom, _ := strings.Cut(addr, "@")
	if d := g.dests[dom]; d != nil {
		return d
	}
	d := &dest{domain: dom, maxConns: 3}
	switch {
	case slices.Contains(localDomains, dom):
		d.internal, d.ip, d.maxConns = true, internalMTA, 20
	case slices.Contains(nxDomains, dom):
		d.nx = true
	case slices.Contains(deadDomains, dom):
		d.dead = true
		d.ip = "198.51.100." + strconv.Itoa(g.r.IntN(250)+1)
	default:
		d.ip = strconv.Itoa(g.r.IntN(200)+11) + "." + strconv.Itoa(g.r.IntN(256)) + "." + strconv.Itoa(g.r.IntN(256)) + "." + strconv.Itoa(g.r.IntN(254)+1)
		if slices.Contains(bigDomains, dom) {
			d.maxConns = 10
		}
	}
	g.dests[dom] = d
	return d
}

// job makes one delivery attempt of some of a message's recipients.
func (g *gen) job(j *job) {
	m, d := j.m, j.d
	switch {
	case d.nx:
		for _, rid := range j.rids {
			r := &m.rcpts[rid]
			_, dom, _ := strings.Cut(r.addr, "@")
			g.resp[0] = "DNS Hard Error looking up " + dom + " (MX):  NXDomain"
			g.emit(event.Outcome{Hard: true, MID: m.mid, From: m.sender, To: r.addr, RID: rid,
				Status: "5.1.2", Reason: "Bad destination host", Code: "000", Response: g.resp[:]})
			g.settle(m, rid, rBounced)
			g.bounce(m)
		}
		g.maybeFinish(m)
		return
	case d.dead:
		if d.lastErr == 0 || g.t-d.lastErr > 30*sec {
			d.lastErr = g.t
			g.dcid++
			details := "timeout"
			if g.chance(0.5) {
				details = "[Errno 111] Connection refused"
			}
			g.emit(event.ConnectionError{DCID: g.dcid, Domain: d.domain, IP: d.ip, Port: 25, Details: details,
				InterfaceIP: outIface, Reason: "network error"})
		}
		j.attempt++
		g.after(g.between(300*sec, 900*sec), item{k: kRetry, j: j})
		return
	}
	j.delay = j.delaying && (j.attempt == 0 || (j.attempt < 4 && g.chance(0.2)))
	c := g.dconn(d)
	start := max(g.t, c.busyUntil) + g.between(1*ms, 40*ms)
	end := start + g.between(30*ms, 300*ms) + m.size/200 // ~200 KB/s to the next hop
	c.busyUntil = end + 5*ms
	c.gen++
	c.n++
	if c.n >= maxPerConn {
		c.full = true
		d.conns = slices.DeleteFunc(d.conns, func(x *dconn) bool { return x == c })
	}
	j.c, j.gen = c, c.gen
	g.after(start-g.t, item{k: kDeliver, j: j})
	g.after(end-g.t, item{k: kDone, j: j})
}

// dconn returns an outbound connection to d: an idle one, a new one when
// all are busy and there is room, else the one free soonest.
func (g *gen) dconn(d *dest) *dconn {
	var best *dconn
	for _, c := range d.conns {
		if c.busyUntil <= g.t {
			return c
		}
		if best == nil || c.busyUntil < best.busyUntil {
			best = c
		}
	}
	if best != nil && len(d.conns) >= d.maxConns {
		return best
	}
	g.dcid++
	c := &dconn{dcid: g.dcid, d: d, busyUntil: g.t + g.between(20*ms, 200*ms)}
	d.conns = append(d.conns, c)
	g.emit(event.NewDCID{DCID: c.dcid, InterfaceIP: outIface, RemoteIP: d.ip, Port: 25})
	if d.internal || g.chance(0.7) {
		g.emit(event.TLS{Conn: event.ConnRef{Kind: event.OutboundConn, ID: c.dcid}, Success: true,
			Protocol: tlsProto(g.r), Cipher: tlsCiphers[g.r.IntN(len(tlsCiphers))]})
	}
	return c
}

func (g *gen) closeDconn(c *dconn) {
	c.closed = true
	c.d.conns = slices.DeleteFunc(c.d.conns, func(x *dconn) bool { return x == c })
	g.emit(event.DCIDClose{DCID: c.dcid})
}

// done writes the outcome of a delivery attempt.
func (g *gen) done(j *job) {
	m, c := j.m, j.c
	if j.delay {
		code, status, reason, text := "451", "4.7.1", "Unknown address error", "4.7.1 Greylisting in action, please come back later"
		if g.chance(0.5) {
			code, status, reason, text = "421", "4.3.2", "Not accepting messages at this time", "4.3.2 Service currently unavailable, try again later"
		}
		g.resp[0] = text
		for _, rid := range j.rids {
			g.emit(event.Outcome{DCID: c.dcid, MID: m.mid, From: m.sender, To: m.rcpts[rid].addr, RID: rid,
				Status: status, Reason: reason, Code: code, Response: g.resp[:]})
			m.rcpts[rid].st = rDelayed
		}
		// The bounce profile's retry: 60 s, doubling.
		wait := (60<<j.attempt)*sec + g.between(0, 30*sec)
		until := g.o.Start.Add(time.Duration(g.t + wait)).Truncate(time.Second)
		g.emit(event.Pending{MID: m.mid, RIDs: j.rids, Until: until, Profile: "Default"})
		j.attempt++
		g.after(int64(until.Sub(g.o.Start))-g.t+g.between(0, 2*sec), item{k: kRetry, j: j})
	} else {
		j.done = j.done[:0]
		for _, rid := range j.rids {
			if rid != m.bounceRID {
				j.done = append(j.done, rid)
				continue
			}
			g.resp[0] = "5.1.1 <" + m.rcpts[rid].addr + ">: Recipient address rejected: User unknown in virtual mailbox table"
			g.emit(event.Outcome{Hard: true, DCID: c.dcid, MID: m.mid, From: m.sender, To: m.rcpts[rid].addr, RID: rid,
				Status: "5.1.1", Reason: "Bad destination mailbox address", Code: "550", Response: g.resp[:]})
			g.settle(m, rid, rBounced)
			g.bounce(m)
		}
		if len(j.done) > 0 {
			g.emit(event.MessageDone{DCID: c.dcid, MID: m.mid, RIDs: j.done})
			text := g.reply(j)
			g.emit(event.Response{MID: m.mid, RIDs: j.done, Text: text, Quote: maillog.QuoteFor(text)})
			for _, rid := range j.done {
				g.settle(m, rid, rDelivered)
			}
		}
		g.maybeFinish(m)
	}
	if c.gen == j.gen { // the connection's last reservation: it idles from here
		if c.full {
			g.after(g.between(1*ms, 20*ms), item{k: kIdle, d: c, gen: c.gen})
		} else {
			g.after(idleClose+g.between(0, sec), item{k: kIdle, d: c, gen: c.gen})
		}
	}
}

// reply is the next hop's 250 text, in the style of its software.
func (g *gen) reply(j *job) string {
	b := g.scratch[:0]
	switch {
	case j.d.internal:
		b = append(b, "2.6.0 <"...)
		b = strconv.AppendUint(b, j.m.mid*104729, 36)
		b = append(b, "@EX01.corp.example.com> [InternalId="...)
		b = strconv.AppendUint(b, j.m.mid*31+uint64(g.r.IntN(1000)), 10)
		b = append(b, ", Hostname=EX01.corp.example.com] Queued mail for delivery"...)
	case j.d.domain == "gmail.com":
		b = append(b, "2.0.0 OK  "...)
		b = strconv.AppendInt(b, g.o.Start.Unix()+g.t/sec, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, j.m.mid*2654435761, 36)
		b = append(b, "si.123 - gsmtp"...)
	default:
		b = append(b, "2.0.0 Ok: queued as "...)
		b = strconv.AppendUint(b, j.m.mid*2654435761^0x5bd1e995, 36)
	}
	g.scratch = b
	return string(b)
}

func (g *gen) settle(m *msg, rid int, st rstate) {
	if m.rcpts[rid].st == rQueued || m.rcpts[rid].st == rDelayed {
		m.open--
	}
	m.rcpts[rid].st = st
}

func (g *gen) maybeFinish(m *msg) {
	if m.open == 0 && !m.finished {
		g.finish(m, event.FinishedDone)
	}
}

func (g *gen) finish(m *msg, status string) {
	m.finished = true
	g.emit(event.MessageFinished{MID: m.mid, Status: status})
	g.writeTruth(m)
	delete(g.open, m.mid)
}

// bounce generates the DSN of a recipient's hard bounce (none for a DSN:
// the null sender gets no bounce).
func (g *gen) bounce(m *msg) {
	if m.sender == "" {
		return
	}
	g.mid++
	g.sum.DSNs++
	b := &msg{mid: g.mid, bounceOf: m.mid, bounceRID: -1, rcpts: []rcpt{{addr: m.sender}}}
	g.open[b.mid] = b
	g.emit(event.BounceGenerated{MID: b.mid, OrigMID: m.mid})
	g.after(g.between(1*ms, 200*ms), item{k: kDSN, m: b})
}

func (g *gen) dsnLines(b *msg) {
	g.emit(event.StartMID{MID: b.mid, ICID: 0})
	g.emit(event.MailFrom{MID: b.mid, ICID: 0, From: ""})
	g.emit(event.RcptTo{MID: b.mid, ICID: 0, RID: 0, To: b.rcpts[0].addr})
	b.size = 2000 + g.r.Int64N(3000)
	g.emit(event.Ready{MID: b.mid, Bytes: b.size, From: ""})
	g.emit(event.Queued{MID: b.mid})
	g.enqueue(b, g.between(5*ms, 300*ms))
}

// ---- the truth -----------------------------------------------------------------

// Truth is one line of the -truth file.
type Truth struct {
	MID        uint64   `json:"mid"`
	Status     string   `json:"status"`
	Abort      string   `json:"abort"`
	Sender     string   `json:"sender"`
	Recipients []string `json:"recipients"`
	Rejected   []string `json:"rejected,omitempty"` // refused by the RAT
	Subject    string   `json:"subject"`
	BounceOf   uint64   `json:"bounce_of,omitempty"` // a DSN: the message it reports on
}

func (m *msg) truth() Truth {
	t := Truth{MID: m.mid, Sender: m.sender, Subject: m.subject, BounceOf: m.bounceOf, Rejected: m.rejected,
		Recipients: make([]string, len(m.rcpts))}
	for i, r := range m.rcpts {
		t.Recipients[i] = r.addr
	}
	switch m.fate {
	case fLost:
		t.Status, t.Abort = "aborted", "lost"
	case fTimeout:
		// A lone "Receiving aborted" (no "lost", no "disconnected" line):
		// the log does not say whether a timeout or a limit ended it.
		t.Status, t.Abort = "aborted", "unknown"
	case fQuit:
		// The ESA's "Receiving aborted by sender" alone cannot tell QUIT
		// from RSET or a new EHLO: the reader concludes only "sender".
		t.Status, t.Abort = "aborted", "sender"
	case fRATAll:
		t.Status = "rejected"
	}
	if t.Status != "" {
		return t
	}
	if m.dropped {
		t.Status = "dropped"
		return t
	}
	final, delayed, bounced := true, false, false
	for _, r := range m.rcpts {
		switch r.st {
		case rQueued:
			final = false
		case rDelayed:
			final, delayed = false, true
		case rBounced:
			bounced = true
		}
	}
	switch {
	case !final && delayed:
		t.Status = "delayed"
	case !final:
		t.Status = "queued"
	case bounced:
		t.Status = "bounced"
	default:
		t.Status = "delivered"
	}
	return t
}

func (g *gen) writeTruth(m *msg) {
	t := m.truth()
	if g.sum.Status == nil {
		g.sum.Status = make(map[string]int)
	}
	g.sum.Status[t.Status]++
	if g.enc != nil && g.err == nil {
		g.err = g.enc.Encode(t)
	}
}

// flushTruth writes the messages the log leaves unfinished, in MID order.
func (g *gen) flushTruth() {
	mids := make([]uint64, 0, len(g.open))
	for mid := range g.open {
		mids = append(mids, mid)
	}
	slices.Sort(mids)
	for _, mid := range mids {
		g.writeTruth(g.open[mid])
	}
	clear(g.open)
}
