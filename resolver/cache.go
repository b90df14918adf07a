package resolver

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// cache keeps answers for as long as their TTLs allow, at most size of
// them, and shares the lookups in flight: concurrent callers of one key
// wait for the first one's answer instead of asking the DNS again. Both the
// DNS lists (Lists) and the answers of the sender-authentication lookups
// (Resolver.WithCache) use it.
//
// An answer is whatever the lookup returns, its error included: a name
// that does not exist is an answer worth keeping (RFC 2308), a timeout is
// not. The lookup says which by the TTL it returns: 0 is not kept.
type cache[K cacheKey, V any] struct {
	size int              // entries; 0: nothing kept (lookups still shared)
	now  func() time.Time // time.Now; tests move it

	mu       sync.Mutex
	entries  map[K]cacheEntry[V]
	inflight map[K]*cacheCall[V]
}

// cacheKey is what an answer is kept under; String names it in errors.
type cacheKey interface {
	comparable
	String() string
}

type cacheEntry[V any] struct {
	v       V
	err     error
	expires time.Time
}

type cacheCall[V any] struct {
	done    chan struct{}
	v       V
	err     error
	waiters int // callers waiting besides the one asking; for the tests
	// abandoned is set when the lookup failed as the context of the
	// caller that asked ended: its error is that caller's, not the DNS's.
	abandoned bool
}

func newCache[K cacheKey, V any](size int) *cache[K, V] {
	return &cache[K, V]{size: max(size, 0), now: time.Now,
		entries: map[K]cacheEntry[V]{}, inflight: map[K]*cacheCall[V]{}}
}

// get returns the answer for k: from the cache while it lasts, else the
// answer of the lookup of k already in flight, else lookup's own, which is
// kept for the TTL lookup returns. A caller whose context ends while it
// waits gets its context's error; one whose lookup was abandoned by the
// caller that asked (that caller's context ended, not its own) asks again.
func (c *cache[K, V]) get(ctx context.Context, k K, lookup func(context.Context) (V, time.Duration, error)) (V, error) {
	for {
		c.mu.Lock()
		if e, ok := c.entries[k]; ok {
			if c.now().Before(e.expires) {
				c.mu.Unlock()
				return e.v, e.err
			}
			delete(c.entries, k)
		}
		call, ok := c.inflight[k]
		if !ok {
			break // c.mu still held: this caller asks
		}
		call.waiters++
		c.mu.Unlock()
		select {
		case <-call.done:
			if call.abandoned && !ended(ctx) {
				continue
			}
			return call.v, call.err
		case <-ctx.Done():
			var zero V
			return zero, fmt.Errorf("resolver: %s: %w", k, ctx.Err())
		}
	}
	call := &cacheCall[V]{done: make(chan struct{})}
	c.inflight[k] = call
	c.mu.Unlock()

	v, ttl, err := lookup(ctx)
	call.v, call.err, call.abandoned = v, err, err != nil && ended(ctx)

	c.mu.Lock()
	delete(c.inflight, k)
	if ttl > 0 && c.size > 0 && !call.abandoned {
		c.makeRoom()
		c.entries[k] = cacheEntry[V]{v: v, err: err, expires: c.now().Add(ttl)}
	}
	c.mu.Unlock()
	close(call.done)
	return v, err
}

// ended reports whether ctx is done or past its deadline: a query that
// timed out at the deadline returns before the context's own timer may have
// marked it done.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// makeRoom keeps the cache below its size: when it is full, the expired
// entries go, and if that is not enough an eighth of the others, chosen by
// the map's order (no LRU bookkeeping on every hit). c.mu is held.
func (c *cache[K, V]) makeRoom() {
	if len(c.entries) < c.size {
		return
	}
	now := c.now()
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.size-c.size/8 {
			break
		}
		delete(c.entries, k)
	}
}

// len reports how many answers the cache holds.
func (c *cache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// waiting reports how many callers wait for the lookup of k in flight,
// besides the one that asked; -1 when none is in flight. For the tests.
func (c *cache[K, V]) waiting(k K) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if call, ok := c.inflight[k]; ok {
		return call.waiters
	}
	return -1
}
