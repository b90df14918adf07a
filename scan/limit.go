package scan

import (
	"context"
	"fmt"
	"time"
)

// Limits are the bounds every engine's client puts on its requests.
type Limits struct {
	Timeout     time.Duration // for each request, including the wait for a connection
	Concurrency int           // requests in flight at once
	MaxSize     int64         // larger messages are not sent: *TooBigError
}

// Gate puts an engine's Limits on its requests. Its concurrency limit makes
// a burst of messages queue here, not open a connection each and overrun
// the engine's workers (rspamd answers them in turn anyway, clamd refuses
// beyond its MaxConnectionQueueLength). It is safe for concurrent use.
type Gate struct {
	Engine string // the engine's name in the errors
	Limits
	slots chan struct{}
}

// NewGate returns the gate of an engine's client: each field of l that is
// zero or less takes its value from def, the client's defaults (and a
// Concurrency still below 1 is taken as 1).
func NewGate(engine string, l, def Limits) *Gate {
	if l.Timeout <= 0 {
		l.Timeout = def.Timeout
	}
	if l.Concurrency <= 0 {
		l.Concurrency = def.Concurrency
	}
	if l.MaxSize <= 0 {
		l.MaxSize = def.MaxSize
	}
	return &Gate{Engine: engine, Limits: l, slots: make(chan struct{}, max(l.Concurrency, 1))}
}

// TooBig returns a *TooBigError when a message of size bytes is over
// MaxSize: it is not to be sent, as the engine would refuse it or take too
// long over it.
func (g *Gate) TooBig(size int64) error {
	if size > g.MaxSize {
		return &TooBigError{Engine: g.Engine, Size: size, Limit: g.MaxSize}
	}
	return nil
}

// Begin starts a request: it returns ctx bounded by Timeout, once one of
// the Concurrency slots is free; waiting for it counts in the timeout and
// fails as a timeout. end frees the slot and the context, and must be
// called when the request is over (its connection closed).
func (g *Gate) Begin(ctx context.Context) (_ context.Context, end func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, g.Timeout)
	select {
	case g.slots <- struct{}{}:
		return ctx, func() { <-g.slots; cancel() }, nil
	case <-ctx.Done():
		err := Fail(g.Engine, ctx, fmt.Errorf("waiting for one of %d connections: %w", cap(g.slots), ctx.Err()))
		cancel()
		return nil, nil, err
	}
}
