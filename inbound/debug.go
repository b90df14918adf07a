package inbound

import (
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/policy"
)

// DebugLog is one injection debug subscription: the whole SMTP conversation
// of the chosen clients, for a number of sessions, written to Sink as
// event.InjectionDebug lines.
type DebugLog struct {
	Hosts []policy.Rule // a client matching any of them is recorded
	Sink  event.Sink
	left  atomic.Int64
}

// NewDebugLog records up to sessions sessions of the clients hosts match.
func NewDebugLog(hosts []policy.Rule, sessions int, sink event.Sink) *DebugLog {
	d := &DebugLog{Hosts: hosts, Sink: sink}
	d.left.Store(int64(sessions))
	return d
}

// take claims one of the remaining sessions for a matching client.
func (d *DebugLog) take(c policy.Client) bool {
	if d.left.Load() <= 0 {
		return false
	}
	for _, r := range d.Hosts {
		if r.Match(c) {
			return d.left.Add(-1) >= 0
		}
	}
	return false
}

// transcript returns the SMTP engine's transcript hook for a connection, or
// nil when no subscription records it.
func (s *Server) transcript(c policy.Client, icid uint64) func(sent bool, line []byte) {
	var sinks []event.Sink
	for _, d := range s.Debug {
		if d.take(c) {
			sinks = append(sinks, d.Sink)
		}
	}
	if len(sinks) == 0 {
		return nil
	}
	return func(sent bool, line []byte) {
		e := event.Entry{Time: time.Now(), Level: event.Info, Event: event.InjectionDebug{ICID: icid, Sent: sent, Data: string(line)}}
		for _, s := range sinks {
			s.Emit(e)
		}
	}
}
