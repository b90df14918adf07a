package outbound

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/event"
)

// DebugLog is one domain debug subscription (the ESA's "Domain Debug
// Logs"): the whole SMTP conversation of delivery connections to chosen
// destinations, for a number of sessions, written to Sink as
// event.InjectionDebug lines with the DCID in place of the ICID. As in the
// injection debug log, labels are from mailgate's side: Sent is what
// mailgate sent (the commands and the message), Rcvd what the next hop
// replied.
type DebugLog struct {
	Domains []string // "example.com" (exactly) or ".example.com" (its subdomains); lower case
	Sink    event.Sink
	left    atomic.Int64
}

// NewDebugLog records up to sessions connections to the domains.
func NewDebugLog(domains []string, sessions int, sink event.Sink) *DebugLog {
	d := &DebugLog{Sink: sink}
	for _, s := range domains {
		d.Domains = append(d.Domains, strings.ToLower(s))
	}
	d.left.Store(int64(sessions))
	return d
}

// take claims one of the remaining sessions for a connection to dest (a
// recipient domain, or the name of the route used).
func (d *DebugLog) take(dest string) bool {
	if d.left.Load() <= 0 {
		return false
	}
	for _, s := range d.Domains {
		if s == dest || strings.HasPrefix(s, ".") && strings.HasSuffix(dest, s) {
			return d.left.Add(-1) >= 0
		}
	}
	return false
}

// transcript returns the SMTP client's transcript hook for a connection,
// or nil when no subscription records it.
func transcript(logs []*DebugLog, dest string, dcid uint64) func(sent bool, line []byte) {
	var sinks []event.Sink
	for _, d := range logs {
		if d.take(dest) {
			sinks = append(sinks, d.Sink)
		}
	}
	if len(sinks) == 0 {
		return nil
	}
	return func(sent bool, line []byte) {
		e := event.Entry{Time: time.Now(), Level: event.Info, Event: event.InjectionDebug{ICID: dcid, Sent: sent, Data: string(line)}}
		for _, s := range sinks {
			s.Emit(e)
		}
	}
}
