// Package debuglog records the whole SMTP conversations of chosen sessions:
// the ESA's injection debug log (clients of the listeners) and domain
// debug log (connections made to deliver). A subscription matches a
// session's key (the client, or the destination), records up to a number
// of sessions and writes each line of their transcripts to its sink as an
// event.InjectionDebug, with the session's ICID or DCID. Labels are from
// mailgate's side: Sent is what mailgate wrote, Rcvd what the other side
// did.
package debuglog

import (
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Log is one subscription for sessions keyed by K.
type Log[K any] struct {
	match func(K) bool
	sink  event.Sink
	left  atomic.Int64
}

// New records up to sessions sessions whose key match accepts.
func New[K any](match func(K) bool, sessions int, sink event.Sink) *Log[K] {
	l := &Log[K]{match: match, sink: sink}
	l.left.Store(int64(sessions))
	return l
}

// take claims one of the remaining sessions for a session keyed k. Once
// they are spent it writes the shared counter no more.
func (l *Log[K]) take(k K) bool {
	return l.left.Load() > 0 && l.match(k) && l.left.Add(-1) >= 0
}

// Transcript returns the SMTP transcript hook (smtp.Config.Transcript,
// smtp.ClientConfig.Transcript) for a session keyed k with the ID id, or
// nil when no subscription records it. Each subscription that does counts
// the session against its number.
func Transcript[K any](logs []*Log[K], k K, id uint64) func(sent bool, line []byte) {
	var sinks []event.Sink
	for _, l := range logs {
		if l.take(k) {
			sinks = append(sinks, l.sink)
		}
	}
	if len(sinks) == 0 {
		return nil
	}
	return func(sent bool, line []byte) {
		e := event.Entry{Time: time.Now(), Level: event.Info, Event: event.InjectionDebug{ICID: id, Sent: sent, Data: string(line)}}
		for _, s := range sinks {
			s.Emit(e)
		}
	}
}
