package metrics

import (
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/outbound"
)

// Listener returns the sink of one listener's events (inbound.Server's
// ListenerEvents). Its counters are made at once, at zero, so that a
// listener without traffic shows as such rather than not at all.
func (m *Metrics) Listener(name string) event.Sink {
	s := &listenerSink{m: m, name: name,
		open:       m.connectionsOpen.WithLabelValues(name),
		messages:   m.messages.WithLabelValues(name),
		recipients: m.recipients.WithLabelValues(name),
		bytes:      m.receivedBytes.WithLabelValues(name),
		rcpts:      make(map[uint64]int),
	}
	return s
}

// listenerSink counts one listener's events. The only state it keeps is
// the recipients of each open transaction, until its message is queued or
// ends: as many entries as transactions under way.
type listenerSink struct {
	m    *Metrics
	name string

	open       prometheus.Gauge
	messages   prometheus.Counter
	recipients prometheus.Counter
	bytes      prometheus.Counter

	mu    sync.Mutex
	rcpts map[uint64]int // MID -> recipients accepted (the highest RID + 1: a duplicate repeats a RID)
}

func (s *listenerSink) Emit(e event.Entry) {
	switch ev := e.Event.(type) {
	case event.NewICID:
		s.open.Inc()
	case event.ConnectionEnd:
		s.open.Dec()
		s.m.connections.WithLabelValues(s.name, ev.Cause.String()).Inc()
	case event.HATMatch:
		s.m.hatDecisions.WithLabelValues(s.name, actionWord(ev.Action)).Inc()
		s.m.pipe.hatMatch(ev)
	case event.SPFVerdict, event.DKIMVerdict, event.DMARCVerdict, event.Signing:
		s.m.pipe.authEvent(ev)
	case event.ScanSummary:
		// A rejection at SMTP time (scanstage.AtData).
		s.m.pipe.scanSummary(ev)
	case event.RcptTo:
		s.mu.Lock()
		s.rcpts[ev.MID] = max(s.rcpts[ev.MID], ev.RID+1)
		s.mu.Unlock()
	case event.Ready:
		s.bytes.Add(float64(ev.Bytes))
	case event.Queued:
		s.mu.Lock()
		n := s.rcpts[ev.MID]
		delete(s.rcpts, ev.MID)
		s.mu.Unlock()
		s.messages.Inc()
		s.recipients.Add(float64(n))
	case event.MessageFinished:
		// An aborted transaction: nothing was received.
		s.mu.Lock()
		delete(s.rcpts, ev.MID)
		s.mu.Unlock()
	case event.RcptRejected:
		s.m.rejectedRcpts.WithLabelValues(s.name, ev.By).Inc()
	case event.ReceivingFailed:
		s.m.receivingFailed.WithLabelValues(s.name, ev.Reason).Inc()
	case event.MessageAborted:
		s.m.aborted.WithLabelValues(s.name, ev.Reason).Inc()
	case event.SMTPAuth:
		outcome := ev.Outcome
		if outcome == event.AuthRequired {
			outcome = "required"
		}
		s.m.auth.WithLabelValues(s.name, outcome).Inc()
	}
}

// actionWord is a HAT action's label value, in lower case (without an
// allocation for the actions mailgate writes).
func actionWord(a string) string {
	switch a {
	case event.ActionAccept:
		return "accept"
	case event.ActionRelay:
		return "relay"
	case event.ActionReject:
		return "reject"
	case event.ActionTCPRefuse:
		return "tcprefuse"
	case event.ActionContinue:
		return "continue"
	}
	return strings.ToLower(a)
}

// Delivery returns the sink of the events after receiving: those the
// queue manager, the work queue and the quarantines emit (the listeners'
// go to their own sinks, so that nothing is counted twice).
func (m *Metrics) Delivery() event.Sink { return deliverySink{m} }

type deliverySink struct{ m *Metrics }

func (s deliverySink) Emit(e event.Entry) {
	switch ev := e.Event.(type) {
	case event.BounceGenerated:
		s.m.dsns.Inc()
	case event.DoubleBounce:
		s.m.dropped.WithLabelValues("double-bounce").Inc()
	case event.MessageAborted:
		if c := ev.Cause(); c.Kind == event.AbortDropped {
			s.m.dropped.WithLabelValues(c.By).Inc()
		}
	case event.Quarantined, event.QuarantineReleased, event.QuarantineDeleted:
		s.m.pipe.quarantineEvent(ev)
	case event.ScanSummary:
		s.m.pipe.scanSummary(ev)
	}
}

// Attempted counts a delivery attempt (outbound.Options.Attempted).
func (m *Metrics) Attempted(a outbound.Attempt) {
	d := m.dests.label(a.Destination)
	m.attempts.WithLabelValues(d).Inc()
	if a.Transaction > 0 {
		m.transactions.WithLabelValues(d).Observe(a.Transaction.Seconds())
	}
	if a.Delivered > 0 {
		m.delivered.WithLabelValues(d).Add(float64(a.Delivered))
	}
	if a.Deferred > 0 {
		m.deferred.WithLabelValues(d).Add(float64(a.Deferred))
	}
	if a.Bounced > 0 {
		m.bounced.WithLabelValues(d).Add(float64(a.Bounced))
	}
}
