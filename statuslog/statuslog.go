// Package statuslog writes the status log: one line per measurement
// interval with the gateway's counters and gauges, in the ESA's layout
// ("Status: QKUsd 0 QKFre 8388608 CrtMID 5 ..."), as an event.Status the
// log subscriptions write like any other line.
//
// The counters come from the event stream (a Counter is an event.Sink);
// they count since the gateway started, as the ESA's count since boot,
// and consumers compute the rates. The gauges come from the caller (the
// spool's state, the disk). Fields the gateway cannot measure yet (CPU,
// disk I/O, DNS cache, engine loads, quarantines) are left out rather than
// written as 0: a parser keyed on names then sees what is known.
package statuslog

import (
	"strconv"
	"sync"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Counts are the counters of the status line, since the gateway started.
type Counts struct {
	CrtMID, CrtICID, CrtDCID uint64 // the last IDs seen
	InjMsg                   uint64 // messages received and queued (generated bounces not counted)
	InjRcp                   uint64 // their recipients
	GenBncRcp                uint64 // bounce messages generated (one recipient each)
	RejRcp                   uint64 // recipients refused at RCPT TO
	DrpMsg                   uint64 // messages dropped ("Message aborted MID n Dropped by ...")
	SftBncEvnt               uint64 // soft bounces (Delayed: lines)
	HrdBncRcp                uint64 // hard-bounced recipients (Bounced: lines)
	DlvRcp                   uint64 // delivered recipients
	DelRcp                   uint64 // recipients deleted by the administrator
	CrtCncIn                 int64  // inbound connections open now
	CrtCncOut                int64  // outbound connections open now
}

// CmpRcp is the completed recipients: hard bounced, delivered or deleted.
func (c Counts) CmpRcp() uint64 { return c.HrdBncRcp + c.DlvRcp + c.DelRcp }

// A Counter counts the status line's counters from the event stream. Its
// memory is bounded by the messages being received at once.
type Counter struct {
	mu    sync.Mutex
	c     Counts
	rcpts map[uint64]uint64 // MID -> recipients accepted, while it is received
}

// NewCounter returns a Counter at zero.
func NewCounter() *Counter { return &Counter{rcpts: make(map[uint64]uint64)} }

// Emit counts e.
func (k *Counter) Emit(e event.Entry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := &k.c
	switch ev := e.Event.(type) {
	case event.NewICID:
		c.CrtICID = max(c.CrtICID, ev.ICID)
		c.CrtCncIn++
	case event.ICIDClose:
		c.CrtCncIn--
	case event.NewDCID:
		c.CrtDCID = max(c.CrtDCID, ev.DCID)
		c.CrtCncOut++
	case event.DCIDClose:
		c.CrtCncOut--
	case event.StartMID:
		c.CrtMID = max(c.CrtMID, ev.MID)
	case event.RcptTo:
		k.rcpts[ev.MID]++
	case event.RcptRejected:
		c.RejRcp++
	case event.Queued:
		// A generated bounce is queued without RCPT TO: not injected.
		if n, ok := k.rcpts[ev.MID]; ok {
			c.InjMsg++
			c.InjRcp += n
			delete(k.rcpts, ev.MID)
		}
	case event.MessageFinished:
		delete(k.rcpts, ev.MID) // aborted while received
	case event.MessageAborted:
		if len(ev.Reason) >= 8 && ev.Reason[:8] == "Dropped " {
			c.DrpMsg++
		}
	case event.BounceGenerated:
		c.GenBncRcp++
	case event.Outcome:
		if ev.Hard {
			c.HrdBncRcp++
		} else {
			c.SftBncEvnt++
		}
	case event.MessageDone:
		c.DlvRcp += uint64(len(ev.RIDs))
	case event.Deleted:
		c.DelRcp += uint64(len(ev.RIDs))
	}
}

// Counts returns the counters now.
func (k *Counter) Counts() Counts {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c
}

// Gauges are the measurements the caller makes for each line.
type Gauges struct {
	QKUsd   int64  // KiB the spool takes on disk
	QKFre   int64  // KiB free on the spool's disk; negative: unknown (left out)
	ActvRcp int    // recipients in the queue not final yet
	RAMUsd  uint64 // bytes of memory the gateway holds from the system
}

// Line builds the status line from counts and gauges, fields in the
// ESA's order.
func Line(c Counts, g Gauges) event.Status {
	var f []event.StatusField
	add := func(name string, v int64) {
		f = append(f, event.StatusField{Name: name, Value: strconv.FormatInt(v, 10)})
	}
	addU := func(name string, v uint64) {
		f = append(f, event.StatusField{Name: name, Value: strconv.FormatUint(v, 10)})
	}
	add("QKUsd", g.QKUsd)
	if g.QKFre >= 0 {
		add("QKFre", g.QKFre)
	}
	addU("CrtMID", c.CrtMID)
	addU("CrtICID", c.CrtICID)
	addU("CrtDCID", c.CrtDCID)
	addU("InjMsg", c.InjMsg)
	addU("InjRcp", c.InjRcp)
	addU("GenBncRcp", c.GenBncRcp)
	addU("RejRcp", c.RejRcp)
	addU("DrpMsg", c.DrpMsg)
	addU("SftBncEvnt", c.SftBncEvnt)
	addU("CmpRcp", c.CmpRcp())
	addU("HrdBncRcp", c.HrdBncRcp)
	addU("DlvRcp", c.DlvRcp)
	addU("DelRcp", c.DelRcp)
	add("ActvRcp", int64(g.ActvRcp))
	add("CrtCncIn", c.CrtCncIn)
	add("CrtCncOut", c.CrtCncOut)
	addU("RAMUsd", g.RAMUsd)
	return event.Status{Fields: f}
}

// A Logger emits the status line every interval.
type Logger struct {
	stop chan struct{}
	done chan struct{}
}

// DefaultInterval is the ESA's default measurement interval.
const DefaultInterval = time.Minute

// Start emits a status line to sink every interval (0: DefaultInterval),
// the first one interval after Start; line measures it, typically
// Line(counter.Counts(), gauges()). (A caller with counters of its own
// passes them in a Counts.)
func Start(interval time.Duration, line func() event.Status, sink event.Sink) *Logger {
	if interval <= 0 {
		interval = DefaultInterval
	}
	l := &Logger{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case now := <-t.C:
				sink.Emit(event.Entry{Time: now, Level: event.Info, Event: line()})
			}
		}
	}()
	return l
}

// Stop ends the Logger's goroutine.
func (l *Logger) Stop() {
	close(l.stop)
	<-l.done
}
