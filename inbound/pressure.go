package inbound

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/smtp"
)

// PressureLevel is how the gateway takes new messages under backpressure.
type PressureLevel int32

const (
	PressureOff    PressureLevel = iota // as usual
	PressureDelay                       // each MAIL FROM waits in_flow_delay first
	PressureRefuse                      // MAIL FROM and RCPT TO get 452 4.3.1
)

var pressureWords = [...]string{"off", "delay", "refuse"}

func (l PressureLevel) String() string { return pressureWords[l] }

// memoryEvery is how often resident memory is read at most (a read of
// /proc); the spool's measures are taken at every MAIL FROM, cheaply.
const memoryEvery = 100 * time.Millisecond

// clearPercent is the hysteresis: a state ends when every measure is
// below this share of the mark that set it, so that a queue hovering at a
// mark does not switch the state at every message.
const clearPercent = 90

// Pressure is the gateway's backpressure, Postfix's in_flow_delay and the
// ESA's resource conservation mode: when delivery falls behind receiving
// and the spool (or the gateway's memory) passes a high mark, new messages
// are slowed; past a hard mark they are refused, until the measures are
// back below 90 % of their marks. Each change is logged (a
// ResourceConservation line). Safe for concurrent use; no goroutine of its
// own: each MAIL FROM takes the measures (memory at most every 100 ms), so
// the queue passes a mark by at most the sessions between their MAIL FROM
// and their commit.
type Pressure struct {
	limits config.Limits
	load   func() (messages, bytes int64)
	memory func() int64
	events event.Sink

	level atomic.Int32

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each change of level
	mem     int64         // the last reading of memory
	memAt   time.Time
}

// NewPressure watches load (the spool's live messages and bytes: Spool.Load)
// against limits, logging to events.
func NewPressure(limits config.Limits, load func() (messages, bytes int64), events event.Sink) *Pressure {
	return &Pressure{limits: limits, load: load, memory: residentMemory, events: events, changed: make(chan struct{})}
}

// Level takes the measures and returns the state they give, logging a
// change.
func (p *Pressure) Level() PressureLevel {
	p.mu.Lock()
	defer p.mu.Unlock()
	msgs, bytes := p.load()
	if p.limits.MemoryHighWater > 0 || p.limits.MemoryHardWater > 0 {
		if now := time.Now(); now.Sub(p.memAt) >= memoryEvery {
			p.mem, p.memAt = p.memory(), now
		}
	}
	mem := p.mem
	l := p.limits
	measures := [...]struct {
		name       string
		v          int64
		high, hard int64
	}{{"messages", msgs, l.QueueHighWater, l.QueueHardWater}, {"bytes", bytes, l.SpoolHighWater, l.SpoolHardWater},
		{"memory", mem, l.MemoryHighWater, l.MemoryHardWater}}
	cur := PressureLevel(p.level.Load())
	// raw is the level the marks give; lowered the level the marks at
	// clearPercent give, which holds a state until every measure is below.
	var raw, lowered PressureLevel
	cause, lowCause := "-", "-"
	for _, m := range measures {
		if r := markLevel(m.v, m.high, m.hard, 100); r > raw {
			raw, cause = r, m.name
		}
		if r := markLevel(m.v, m.high, m.hard, clearPercent); r > lowered {
			lowered, lowCause = r, m.name
		}
	}
	next := raw
	if raw < cur {
		next = min(cur, lowered)
		cause = lowCause
	}
	if next == cur {
		return cur
	}
	if next == PressureOff {
		cause = "-"
	}
	p.level.Store(int32(next))
	close(p.changed)
	p.changed = make(chan struct{})
	lvl := event.Warning
	if next < cur {
		lvl = event.Info
	}
	p.events.Emit(event.Entry{Time: time.Now(), Level: lvl, Event: event.ResourceConservation{
		Level: next.String(), Cause: cause, Messages: msgs, Bytes: bytes, Memory: mem}})
	return next
}

// markLevel is the level v reaches with the marks scaled to percent.
func markLevel(v, high, hard, percent int64) PressureLevel {
	switch {
	case hard > 0 && v > hard*percent/100:
		return PressureRefuse
	case high > 0 && v > high*percent/100:
		return PressureDelay
	}
	return PressureOff
}

// wait is in_flow_delay: it ends after the delay, or sooner when the level
// changes (a queue that drained need not hold the message longer).
func (p *Pressure) wait() {
	if p.limits.InFlowDelay <= 0 {
		return
	}
	p.mu.Lock()
	changed := p.changed
	p.mu.Unlock()
	t := time.NewTimer(p.limits.InFlowDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-changed:
	}
}

// noResources is the reply past a hard mark (RFC 3463 4.3.1).
var noResources = smtp.Reply{Code: 452, Enhanced: "4.3.1", Text: "Insufficient system resources"}

// residentMemory is the process's resident set in bytes (Linux's
// /proc/self/statm); 0 when it cannot be read, which no mark exceeds.
func residentMemory() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
