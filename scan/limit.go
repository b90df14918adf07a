package scan

import (
	"context"
	"fmt"
)

// Limiter bounds the requests in flight to one engine: a burst of messages
// must queue here, not open a connection each and overrun the engine's
// workers (rspamd answers them in turn anyway, clamd refuses beyond its
// MaxConnectionQueueLength).
type Limiter struct{ slots chan struct{} }

// NewLimiter allows n requests at once; n < 1 is taken as 1.
func NewLimiter(n int) *Limiter { return &Limiter{slots: make(chan struct{}, max(n, 1))} }

// Acquire waits for a slot; it fails with the engine's timeout when ctx
// ends first. Each successful Acquire is followed by one Release.
func (l *Limiter) Acquire(ctx context.Context, engine string) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return Fail(engine, ctx, fmt.Errorf("waiting for one of %d connections: %w", cap(l.slots), ctx.Err()))
	}
}

// Release frees a slot.
func (l *Limiter) Release() { <-l.slots }
