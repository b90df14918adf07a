// Package health answers the two questions a load balancer or an
// orchestrator asks a gateway: is the process alive (it answers at all),
// and is it ready to take mail: the spool writable, its disk above the
// free-space floor, not shutting down, every listener accepting.
package health

import (
	"errors"
	"sync/atomic"

	"github.com/mailgate/mailgate/queue"
)

// Spool is what readiness asks of the spool (a *queue.Spool).
type Spool interface {
	Err() error            // the failure that made it read-only, nil while it writes
	Room(size int64) error // ErrNoSpace below the free-space floor
}

// Listener is what readiness asks of a listener (an *inbound.Listener).
type Listener interface {
	Name() string
	Serving() bool
}

// Checker gathers the gateway's parts as they start; each may be nil (not
// started yet, or not configured).
type Checker struct {
	spool     atomic.Pointer[Spool]
	listeners atomic.Pointer[[]Listener]
	stopping  atomic.Bool
}

// SetSpool and SetListeners give the checker the parts to ask.
func (c *Checker) SetSpool(s Spool) { c.spool.Store(&s) }

func (c *Checker) SetListeners(ls []Listener) { c.listeners.Store(&ls) }

// Stopping marks the gateway as shutting down: it is not ready from then on,
// so that a load balancer sends no new connections during the drain.
func (c *Checker) Stopping() { c.stopping.Store(true) }

// Problems says what keeps the gateway from being ready, one short line
// each; none when it is ready. Before the spool and the listeners are set
// it is not ready either (still starting).
func (c *Checker) Problems() []string {
	var out []string
	if c.stopping.Load() {
		out = append(out, "shutting down")
	}
	sp := c.spool.Load()
	switch {
	case sp == nil:
		out = append(out, "starting: the spool is not open yet")
	case (*sp).Err() != nil:
		out = append(out, "spool failed (read-only until restarted): "+(*sp).Err().Error())
	default:
		if err := (*sp).Room(0); errors.Is(err, queue.ErrNoSpace) {
			out = append(out, "disk below its free-space floor (min_free_space): new mail gets 452")
		}
	}
	ls := c.listeners.Load()
	if ls == nil {
		out = append(out, "starting: the listeners are not open yet")
	} else {
		for _, l := range *ls {
			if !l.Serving() {
				out = append(out, "listener "+l.Name()+": not accepting connections")
			}
		}
	}
	return out
}
