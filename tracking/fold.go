package tracking

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
)

// A Tracker folds log entries into records and writes them to a Store. It
// reads in chunks: Add buffers an entry, and every ChunkSize entries (and on
// Flush) the Tracker loads the records the chunk names that it does not hold,
// applies the chunk in order, and writes what changed in one Batch. Records
// of finished messages and closed connections are then let go; the others
// stay in memory because more lines will come, until they have had none
// for IdleAfter (up to MaxOpen).
//
// A line a record already holds (same second, same text) is not applied
// again, which makes feeding the same log twice a no-op.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	store Store
	opts  Options

	chunk []item
	msgs  map[MessageKey]*mrec
	conns map[ConnKey]*crec
	marks map[string]time.Time
	// newest is the time of the newest entry applied, by host: a record
	// is idle by its own log's clock, so that an import and a live feed
	// let go of the same records, and a host whose clock is behind
	// another's does not see all its records as idle.
	newest map[string]time.Time
	buf    []byte
	stats  Stats

	lastSec int64 // the second of the last whole-second entry
	secN    int   // entries before it in that second

	pending  chan error  // the write under way, if any
	inflight map[any]any // its records, by MessageKey and ConnKey

	fills []pendingFill // splits whose other record was not in memory (split.go)
}

// Options tune a Tracker; zero values take the defaults.
type Options struct {
	ChunkSize int // entries per load-apply-write round; 0: 100000
	MaxOpen   int // unfinished records kept in memory, at most; 0: 200000
	// IdleAfter lets go of an unfinished record (a message waiting in the
	// queue, an idle connection) that got no line for this long, in the
	// log's time; 0: DefaultIdleAfter.
	IdleAfter time.Duration
}

// DefaultIdleAfter is the default Options.IdleAfter. A message's or a
// session's next line after 10 seconds of silence costs one point read of
// the store to load its record again, small beside the 10 seconds; and a
// queue backlog (a destination down, delivery suspended) or many idle
// connections no longer grow the heap: a record waiting in memory is
// about 1 KB and more with its lines.
const DefaultIdleAfter = 10 * time.Second

// Stats counts what a Tracker did.
type Stats struct {
	Entries   int64 // entries added
	Applied   int64 // entries that added a line to a record
	Duplicate int64 // entries a record already held
	Untracked int64 // entries that name no message or connection
	Messages  int64 // message records written
	Conns     int64 // connection records written
	Evicted   int64 // unfinished records let go (idle, or beyond MaxOpen); a later line loads them again
}

type item struct {
	host string
	e    event.Entry
}

// mrec is a message in memory: the record and what folding it needs.
type mrec struct {
	Message
	dirty  bool
	linger bool   // done and written once: let go after the next write
	queued bool   // accepted for delivery (or seen being delivered)
	phase  string // SMTP state the message's lines show it reached

	splits []splitLink // the split lines it holds, as parent or child (split.go)
}

type crec struct {
	Conn
	dirty  bool
	linger bool
	failed string // the last "Receiving Failed" reason
	// last is the time of the newest line about the connection, with
	// those kept with its messages: a connection receiving a message is
	// not idle.
	last time.Time
}

// NewTracker returns a Tracker writing to s.
func NewTracker(s Store, o Options) *Tracker {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 100000
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = 200000
	}
	if o.IdleAfter <= 0 {
		o.IdleAfter = DefaultIdleAfter
	}
	return &Tracker{
		store: s, opts: o,
		msgs:   make(map[MessageKey]*mrec),
		conns:  make(map[ConnKey]*crec),
		marks:  make(map[string]time.Time),
		newest: make(map[string]time.Time),
	}
}

// Stats returns the counts so far.
func (t *Tracker) Stats() Stats { return t.stats }

// Add takes one entry of host's log. It may load and write records.
//
// Entries are taken in the order they were logged. A time in whole seconds
// (a line read from a log file) gets a microsecond for each line before it
// in the same second, so that timelines merged from several records keep
// the log's order.
func (t *Tracker) Add(ctx context.Context, host string, e event.Entry) error {
	if t.push(host, e) {
		return t.Flush(ctx)
	}
	return nil
}

// push buffers an entry and reports whether the chunk is full.
func (t *Tracker) push(host string, e event.Entry) bool {
	if !e.Time.IsZero() && e.Time.Nanosecond() == 0 {
		if sec := e.Time.Unix(); sec == t.lastSec {
			t.secN++
			e.Time = e.Time.Add(time.Duration(t.secN) * time.Microsecond)
		} else {
			t.lastSec, t.secN = sec, 0
		}
	}
	t.chunk = append(t.chunk, item{host, e})
	t.stats.Entries++
	return len(t.chunk) >= t.opts.ChunkSize
}

// Flush applies the buffered entries and writes every changed record.
func (t *Tracker) Flush(ctx context.Context) error {
	if err := t.load(ctx); err != nil {
		return err
	}
	for _, it := range t.chunk {
		t.apply(it.host, it.e)
	}
	clear(t.chunk)
	t.chunk = t.chunk[:0]
	if err := t.fillPending(ctx); err != nil {
		return err
	}
	return t.write(ctx)
}

// load fetches the stored records the chunk names that are not in memory.
func (t *Tracker) load(ctx context.Context) error {
	var keys Keys
	wantM := make(map[MessageKey]bool)
	wantC := make(map[ConnKey]bool)
	for _, it := range t.chunk {
		a := refs(it.e.Event)
		for _, mid := range a.mids() {
			k := MessageKey{it.host, mid}
			if t.msgs[k] == nil && !wantM[k] {
				wantM[k] = true
				keys.Messages = append(keys.Messages, k)
			}
		}
		for _, c := range a.conns() {
			k := ConnKey{it.host, c.Kind, c.ID}
			if t.conns[k] == nil && !wantC[k] {
				wantC[k] = true
				keys.Conns = append(keys.Conns, k)
			}
		}
	}
	if len(keys.Messages) == 0 && len(keys.Conns) == 0 {
		return t.loadLast(ctx)
	}
	b, err := t.storeLoad(ctx, keys)
	if err != nil {
		return fmt.Errorf("tracking: load %d messages, %d connections: %w", len(keys.Messages), len(keys.Conns), err)
	}
	for _, m := range b.Messages {
		r := &mrec{Message: *m}
		r.restore()
		t.msgs[MessageKey{m.Host, m.MID}] = r
	}
	for _, c := range b.Conns {
		r := &crec{Conn: *c}
		r.restore()
		t.conns[ConnKey{c.Host, c.Kind, c.ID}] = r
	}
	// Room for about the lines a record gets (esagen's mixed traffic: 5 M
	// lines for 323,000 messages and 271,000 connections, most of them a
	// message's) saves growing the slices line by line.
	for k := range wantM {
		if t.msgs[k] == nil {
			t.msgs[k] = &mrec{Message: Message{Host: k.Host, MID: k.MID, Lines: make([]Line, 0, 16)}}
		}
	}
	for k := range wantC {
		if t.conns[k] == nil {
			t.conns[k] = &crec{Conn: Conn{Host: k.Host, Kind: k.Kind, ID: k.ID, Lines: make([]Line, 0, 4)}}
		}
	}
	return t.loadLast(ctx)
}

// loadLast loads, for each connection the chunk ends or begins a message
// on, its last message: mailgate's "ended" line and the timeout's
// "disconnected" line come after that message's abort, which they explain,
// a new message shows how the one before was aborted, and the message may
// have been let go since.
func (t *Tracker) loadLast(ctx context.Context) error {
	var keys Keys
	for _, it := range t.chunk {
		var icid uint64
		switch ev := it.e.Event.(type) {
		case event.ConnectionEnd:
			icid = ev.ICID
		case event.ICIDDisconnected:
			icid = ev.ICID
		case event.StartMID:
			icid = ev.ICID
		default:
			continue
		}
		c := t.conns[ConnKey{it.host, event.InboundConn, icid}]
		if c == nil || len(c.MIDs) == 0 {
			continue
		}
		k := MessageKey{it.host, c.MIDs[len(c.MIDs)-1]}
		if t.msgs[k] == nil {
			keys.Messages = append(keys.Messages, k)
		}
	}
	if len(keys.Messages) == 0 {
		return nil
	}
	b, err := t.storeLoad(ctx, keys)
	if err != nil {
		return fmt.Errorf("tracking: load %d messages: %w", len(keys.Messages), err)
	}
	for _, m := range b.Messages {
		r := &mrec{Message: *m}
		r.restore()
		t.msgs[MessageKey{m.Host, m.MID}] = r
	}
	return nil
}

// restore rebuilds what folding needs but the store does not keep.
func (r *mrec) restore() {
	r.queued = r.Status != Receiving && r.Status != Aborted && r.Status != Rejected
	// A record stored before it had authentication results gets them from
	// its lines, read here anyway.
	rebuild := r.SPF == nil && r.DKIM == nil && r.DMARC == nil
	for _, l := range r.Lines {
		ev := maillog.ParseMessage(l.Text)
		if ph := phaseOf(ev); ph != "" {
			r.phase = ph
		}
		if rebuild && r.foldAuth(ev) {
			r.dirty = true
		}
		r.noteSplit(ev, l.Time)
	}
}

// restore rebuilds what folding needs but the store does not keep: the
// reason of a "Receiving Failed" line, which explains the abort of a
// message that ends after the connection was let go of (evict).
func (r *crec) restore() {
	for _, l := range r.Lines {
		if ev, ok := maillog.ParseMessage(l.Text).(event.ReceivingFailed); ok {
			r.failed = ev.Reason
		}
	}
}

// write hands copies of the changed records to a goroutine that writes
// them while the next chunk is read and folded (the store's work and ours
// then take a core each). One write is under way at a time; its error is
// returned by the next write, or by Sync.
func (t *Tracker) write(ctx context.Context) error {
	b := &Batch{Watermarks: t.marks}
	for _, r := range t.msgs {
		if r.dirty {
			r.settle()
			b.Messages = append(b.Messages, r.Message.clone())
		}
	}
	for _, r := range t.conns {
		if r.dirty {
			b.Conns = append(b.Conns, r.Conn.clone())
		}
	}
	if len(b.Messages) == 0 && len(b.Conns) == 0 && len(b.Watermarks) == 0 {
		return nil
	}
	if err := t.wait(); err != nil {
		return err
	}
	t.inflight = make(map[any]any, len(b.Messages)+len(b.Conns))
	for _, m := range b.Messages {
		t.inflight[MessageKey{m.Host, m.MID}] = m
	}
	for _, c := range b.Conns {
		t.inflight[ConnKey{c.Host, c.Kind, c.ID}] = c
	}
	done := make(chan error, 1)
	t.pending = done
	go func() {
		if err := t.store.Write(ctx, b); err != nil {
			done <- fmt.Errorf("tracking: write %d messages, %d connections: %w", len(b.Messages), len(b.Conns), err)
			return
		}
		done <- nil
	}()
	t.stats.Messages += int64(len(b.Messages))
	t.stats.Conns += int64(len(b.Conns))
	t.marks = make(map[string]time.Time)
	t.evict()
	return nil
}

// wait waits for the write under way, if any.
func (t *Tracker) wait() error {
	if t.pending == nil {
		return nil
	}
	err := <-t.pending
	t.pending, t.inflight = nil, nil
	return err
}

// Sync applies the buffered entries and returns once everything is
// written.
func (t *Tracker) Sync(ctx context.Context) error {
	if err := t.Flush(ctx); err != nil {
		t.wait()
		return err
	}
	return t.wait()
}

// storeLoad loads records, taking those of the write under way from it:
// the store may not have them yet.
func (t *Tracker) storeLoad(ctx context.Context, keys Keys) (*Batch, error) {
	b := &Batch{}
	if t.inflight != nil {
		var rest Keys
		for _, k := range keys.Messages {
			if m, ok := t.inflight[k].(*Message); ok {
				b.Messages = append(b.Messages, m.clone())
			} else {
				rest.Messages = append(rest.Messages, k)
			}
		}
		for _, k := range keys.Conns {
			if c, ok := t.inflight[k].(*Conn); ok {
				b.Conns = append(b.Conns, c.clone())
			} else {
				rest.Conns = append(rest.Conns, k)
			}
		}
		keys = rest
	}
	if len(keys.Messages) == 0 && len(keys.Conns) == 0 {
		return b, nil
	}
	sb, err := t.store.Load(ctx, keys)
	if err != nil {
		return nil, err
	}
	b.Messages = append(b.Messages, sb.Messages...)
	b.Conns = append(b.Conns, sb.Conns...)
	return b, nil
}

func (m *Message) clone() *Message {
	c := *m
	c.DCIDs = slices.Clone(m.DCIDs)
	c.Recipients = slices.Clone(m.Recipients)
	c.Lines = slices.Clone(m.Lines)
	c.SPF = slices.Clone(m.SPF)
	c.DKIM = slices.Clone(m.DKIM)
	if m.DMARC != nil {
		d := *m.DMARC
		c.DMARC = &d
	}
	return &c
}

func (c *Conn) clone() *Conn {
	d := *c
	d.MIDs = slices.Clone(c.MIDs)
	d.Lines = slices.Clone(c.Lines)
	return &d
}

// evict lets go of written records that expect no more lines, one round
// after they were done (the lines that close a connection come after those
// that end its message, and may fall in the next round); of open ones idle
// for IdleAfter; and of the oldest open ones beyond MaxOpen.
//
// An open record let go of is stored, and a later line loads it again. It
// runs once write has started this round's batch, after waiting for the
// previous one: a record not dirty this round is not in the batch under
// way (t.inflight), and what changed it last was in an earlier batch,
// which the store has. The round's split fills (fillPending) ran before
// write, so a record they changed is dirty, and none is pending.
func (t *Tracker) evict() {
	// idle reports whether a record of host h whose last line is at last
	// is idle (Sub saturates: a huge IdleAfter is never reached).
	idle := func(h string, last time.Time) bool {
		return t.newest[h].Sub(last) > t.opts.IdleAfter
	}
	// The hosts with a record left: the others' newest times are
	// forgotten, so that a syslog sender naming ever new hosts does not
	// grow the map.
	hosts := map[string]bool{}
	for k, r := range t.msgs {
		dirty := r.dirty
		r.dirty = false
		switch {
		case r.done():
			if r.linger {
				delete(t.msgs, k)
				continue
			}
			r.linger = true
		case !dirty && idle(k.Host, r.Updated):
			delete(t.msgs, k)
			t.stats.Evicted++
			continue
		}
		hosts[k.Host] = true
	}
	for k, r := range t.conns {
		dirty := r.dirty
		r.dirty = false
		switch {
		case !r.Finished.IsZero():
			if r.linger {
				delete(t.conns, k)
				continue
			}
			r.linger = true
		case !dirty && idle(k.Host, r.last):
			delete(t.conns, k)
			t.stats.Evicted++
			continue
		}
		hosts[k.Host] = true
	}
	for h := range t.newest {
		if !hosts[h] {
			delete(t.newest, h)
		}
	}
	if n := len(t.msgs) - t.opts.MaxOpen; n > 0 {
		old := make([]*mrec, 0, len(t.msgs))
		for _, r := range t.msgs {
			old = append(old, r)
		}
		slices.SortFunc(old, func(a, b *mrec) int { return a.Updated.Compare(b.Updated) })
		for _, r := range old[:n] {
			delete(t.msgs, MessageKey{r.Host, r.MID})
		}
		t.stats.Evicted += int64(n)
	}
	if n := len(t.conns) - t.opts.MaxOpen; n > 0 {
		old := make([]*crec, 0, len(t.conns))
		for _, r := range t.conns {
			old = append(old, r)
		}
		slices.SortFunc(old, func(a, b *crec) int { return a.Started.Compare(b.Started) })
		for _, r := range old[:n] {
			delete(t.conns, ConnKey{r.Host, r.Kind, r.ID})
		}
		t.stats.Evicted += int64(n)
	}
}

// done reports whether the message expects no more lines: "Message
// finished" closes it, whether or not the log showed each recipient's end
// (an ESA's log that lacks the delivery lines, a message split or
// rewritten into others). A bounce it causes later loads it again.
func (r *mrec) done() bool {
	return !r.Finished.IsZero()
}

// about is what an entry is about: the messages and the connection its
// line names, at most two and one. It is a value, not two slices: refs
// runs twice for every entry the feed takes (load, apply), and the
// slices were a tenth of a relayed message's allocations.
type about struct {
	mid   [2]uint64
	conn  [1]event.ConnRef
	nmid  int
	nconn int
}

func (a *about) mids() []uint64         { return a.mid[:a.nmid] }
func (a *about) conns() []event.ConnRef { return a.conn[:a.nconn] }

// msg adds a message.
func (a *about) msg(mid uint64) {
	a.mid[a.nmid] = mid
	a.nmid++
}

// connection sets the connection.
func (a *about) connection(c event.ConnRef) { a.conn[0], a.nconn = c, 1 }

// in sets the inbound connection icid. ICID 0 is the gateway itself (a
// bounce, a split child): no connection.
func (a *about) in(icid uint64) {
	if icid != 0 {
		a.connection(event.ConnRef{Kind: event.InboundConn, ID: icid})
	}
}

// out sets the outbound connection dcid, if any.
func (a *about) out(dcid uint64) {
	if dcid != 0 {
		a.connection(event.ConnRef{Kind: event.OutboundConn, ID: dcid})
	}
}

// refs returns the messages and connections an event is about.
func refs(ev event.Event) (a about) {
	switch e := ev.(type) {
	case event.NewICID:
		a.in(e.ICID)
	case event.HATMatch:
		a.in(e.ICID)
	case event.TLS:
		a.connection(e.Conn)
	case event.StartMID:
		a.msg(e.MID)
		a.in(e.ICID)
	case event.MailFrom:
		a.msg(e.MID)
		a.in(e.ICID)
	case event.RcptTo:
		a.msg(e.MID)
		a.in(e.ICID)
	case event.RcptRejected:
		a.msg(e.MID)
		a.in(e.ICID)
	case event.InvalidAddress:
		if e.MID != 0 {
			a.msg(e.MID)
		}
		a.in(e.ICID)
	case event.ReceivingFailed:
		a.in(e.ICID)
	case event.UnknownCommand:
		a.in(e.ICID)
	case event.MessageIDHeader:
		a.msg(e.MID)
	case event.Subject:
		a.msg(e.MID)
	case event.Ready:
		a.msg(e.MID)
	case event.PolicyMatch:
		a.msg(e.MID)
	case event.Queued:
		a.msg(e.MID)
	case event.ICIDLost:
		a.in(e.ICID)
	case event.MessageAborted:
		a.msg(e.MID)
	case event.MessageFinished:
		a.msg(e.MID)
	case event.ICIDClose:
		a.in(e.ICID)
	case event.ICIDDisconnected:
		a.in(e.ICID)
	case event.SMTPAuth:
		a.in(e.ICID)
	case event.NewDCID:
		a.out(e.DCID)
	case event.DeliveryStart:
		a.msg(e.MID)
		a.out(e.DCID)
	case event.MessageDone:
		a.msg(e.MID)
		a.out(e.DCID)
	case event.Response:
		a.msg(e.MID)
	case event.Outcome:
		a.msg(e.MID)
	case event.ConnectionError:
		a.out(e.DCID)
	case event.DCIDClose:
		a.out(e.DCID)
	case event.BounceGenerated:
		a.msg(e.MID)
		a.msg(e.OrigMID)
	case event.DoubleBounce:
		a.msg(e.MID)
	case event.Pending:
		a.msg(e.MID)
	case event.PossibleDelivery:
		a.msg(e.MID)
		a.out(e.DCID)
	case event.Deleted:
		a.msg(e.MID)
	case event.InjectionDebug:
		a.in(e.ICID)
	case event.ConnectionEnd:
		a.in(e.ICID)
	case event.Unknown:
		a = unknownRefs(e.Text)
	default:
		a = pipelineRefs(ev)
	}
	return a
}

// unknownRefs finds the record a line we have no type for is about, from
// the identifier it starts with: "MID 14 SDR: ...", "ICID 5 ...", "DCID 7
// ...", "Message 12 ..." (older releases).
func unknownRefs(s string) (a about) {
	word, rest, _ := strings.Cut(s, " ")
	num, _, _ := strings.Cut(rest, " ")
	id, err := strconv.ParseUint(num, 10, 64)
	if err != nil || id == 0 {
		return a
	}
	switch word {
	case "MID", "Message":
		a.msg(id)
	case "ICID":
		a.in(id)
	case "DCID":
		a.out(id)
	}
	return a
}

// apply folds one entry into the records it names (all in memory by now).
func (t *Tracker) apply(host string, e event.Entry) {
	a := refs(e.Event)
	mids, conns := a.mids(), a.conns()
	if len(mids) == 0 && len(conns) == 0 {
		t.stats.Untracked++
		return
	}
	line := Line{Time: e.Time, Level: e.Level, Text: e.Text, Prefix: e.Prefix}
	if line.Text == "" {
		t.buf = maillog.AppendMessage(t.buf[:0], e.Event)
		line.Text = string(t.buf)
	}
	if e.Time.After(t.marks[host]) {
		t.marks[host] = e.Time
	}
	if e.Time.After(t.newest[host]) {
		t.newest[host] = e.Time
	}
	var conn *crec
	if len(conns) > 0 {
		conn = t.conns[ConnKey{host, conns[0].Kind, conns[0].ID}]
		if conn != nil && e.Time.After(conn.last) {
			conn.last = e.Time
		}
	}
	if len(mids) > 0 {
		// A line about a message is kept with the message, not with the
		// connections it also names.
		added := false
		for _, mid := range mids {
			r := t.msgs[MessageKey{host, mid}]
			if !r.add(line) {
				continue
			}
			added = true
			if _, ok := e.Event.(event.StartMID); ok {
				t.senderAbortBefore(conn, mid)
			}
			c := conn
			if r.ICID != 0 && (c == nil || c.Kind != event.InboundConn) {
				c = t.conns[ConnKey{host, event.InboundConn, r.ICID}]
			}
			r.fold(e, line.Text, c, mid)
		}
		if added {
			t.linkSplits(host, e, mids)
		}
		t.count(added)
		return
	}
	if !conn.add(line) {
		t.count(false)
		return
	}
	t.count(true)
	conn.fold(e, t)
}

func (t *Tracker) count(added bool) {
	if added {
		t.stats.Applied++
	} else {
		t.stats.Duplicate++
	}
}

// add appends the line unless the record holds it already.
func (r *mrec) add(l Line) bool {
	var ok bool
	if r.Lines, ok = addLine(r.Lines, l); !ok {
		return false
	}
	if l.Time.After(r.Updated) {
		r.Updated = l.Time
	}
	r.dirty = true
	return true
}

func (r *crec) add(l Line) bool {
	var ok bool
	if r.Lines, ok = addLine(r.Lines, l); ok {
		r.dirty = true
	}
	return ok
}

// addLine keeps lines in time order; a line of the same time goes after
// the ones already there, so the log's own order holds within a second.
// A line the record holds already, the same text in the same second, is
// not added again: that is what makes importing a log twice change
// nothing. The lines of one second are next to each other, and few.
func addLine(lines []Line, l Line) ([]Line, bool) {
	i := len(lines)
	for i > 0 && lines[i-1].Time.After(l.Time) {
		i--
	}
	sec := l.Time.Unix()
	for j := i; j < len(lines) && lines[j].Time.Unix() == sec; j++ {
		if lines[j].Text == l.Text {
			return lines, false
		}
	}
	for j := i - 1; j >= 0 && lines[j].Time.Unix() == sec; j-- {
		if lines[j].Text == l.Text {
			return lines, false
		}
	}
	return slices.Insert(lines, i, l), true
}
