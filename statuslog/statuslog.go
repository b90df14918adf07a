// Package statuslog writes the status log: one line per measurement
// interval with the gateway's counters and gauges, in the ESA's layout
// ("Status: QKUsd 0 QKFre 8388608 CrtMID 5 ..."), as an event.Status the
// log subscriptions write like any other line.
//
// The counters and gauges are those of the status commands (stats): the
// counters since the gateway started (the "Uptime" column), as the ESA's
// status log counts since boot; consumers compute the rates. Fields the
// gateway cannot measure (CPU, disk I/O, the DNS cache, engine loads,
// quarantines, filter hard bounces) are left out rather than written as 0:
// a parser keyed on names then sees what is known.
package statuslog

import (
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/stats"
)

// counterFields are the status line's counters in the ESA's order, with
// the stats counter each is.
var counterFields = []struct {
	name string
	c    stats.Counter
}{
	{"InjMsg", stats.InjMsgs}, {"InjRcp", stats.InjRecips}, {"GenBncRcp", stats.GenBounceRecips},
	{"RejRcp", stats.RejectedRecips}, {"DrpMsg", stats.DroppedMsgs}, {"SftBncEvnt", stats.SoftBouncedEvts},
	{"CmpRcp", stats.CompletedRecips}, {"HrdBncRcp", stats.HardBouncedRecips}, {"DnsHrdBnc", stats.DNSHardBounces},
	{"5XXHrdBnc", stats.HardBounces5XX}, {"ExpHrdBnc", stats.ExpiredHardBounces}, {"OtrHrdBnc", stats.OtherHardBounces},
	{"DlvRcp", stats.DeliveredRecips}, {"DelRcp", stats.DeletedRecips},
}

// Line builds the status line from the status commands' view s and the
// memory the gateway holds (RAMUsed), fields in the ESA's order.
func Line(s stats.Status, ramUsed uint64) event.Status {
	var f []event.StatusField
	add := func(name string, v int64) {
		f = append(f, event.StatusField{Name: name, Value: strconv.FormatInt(v, 10)})
	}
	g := s.Gauges
	add("QKUsd", g.KilobytesUsed)
	if g.KilobytesFree != nil {
		add("QKFre", *g.KilobytesFree)
	}
	add("CrtMID", int64(s.IDs.MID))
	add("CrtICID", int64(s.IDs.ICID))
	add("CrtDCID", int64(s.IDs.DCID))
	for _, cf := range counterFields {
		add(cf.name, int64(s.Counter(cf.c).Uptime))
	}
	add("ActvRcp", int64(g.Active))
	add("UnatmptRcp", int64(g.Unattempted))
	add("AtmptRcp", int64(g.Attempted))
	add("CrtCncIn", int64(g.ConnIn))
	add("CrtCncOut", int64(g.ConnOut))
	add("RAMUsd", int64(ramUsed))
	add("DstInMem", int64(g.Destinations))
	add("WorkQ", int64(g.WorkQueue))
	return event.Status{Fields: f}
}

// RAMUsed returns the bytes of memory the Go runtime holds from the
// system (the ESA's RAMUsd).
func RAMUsed() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
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
// Line(collector.Status(false), RAMUsed()).
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
