package inbound

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/mailgate/mailgate/resolver"
)

// Resolver does the double DNS lookup behind "reverse dns host NAME verified
// yes|no": the PTR name of the client, then that name's addresses, which
// must include the client's. Results are cached, because a busy gateway sees
// the same clients again and again and the lookup delays every greeting.
type Resolver struct {
	r       *resolver.Resolver
	timeout time.Duration
	ttl     time.Duration

	mu       sync.Mutex
	cache    map[netip.Addr]rdnsEntry
	inflight map[netip.Addr]*rdnsCall
}

type rdnsEntry struct {
	host     string
	verified bool
	expires  time.Time
}

type rdnsCall struct {
	done chan struct{}
	rdnsEntry
}

// maxCached bounds the cache; when it is full it starts over, which is
// simpler than an LRU and good enough for a bound on memory.
const maxCached = 1 << 16

// NewResolver makes a resolver on r; timeout bounds one whole double
// lookup (default 5s).
func NewResolver(r *resolver.Resolver, timeout time.Duration) *Resolver {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Resolver{r: r, timeout: timeout, ttl: time.Minute,
		cache: map[netip.Addr]rdnsEntry{}, inflight: map[netip.Addr]*rdnsCall{}}
}

// Lookup returns the client's reverse DNS name ("" when it has none or the
// lookup failed) and whether the name's forward lookup confirmed the
// address. Concurrent lookups of one address share one query.
func (r *Resolver) Lookup(ctx context.Context, ip netip.Addr) (host string, verified bool) {
	ip = ip.Unmap()
	now := time.Now()
	r.mu.Lock()
	if e, ok := r.cache[ip]; ok && now.Before(e.expires) {
		r.mu.Unlock()
		return e.host, e.verified
	}
	if c, ok := r.inflight[ip]; ok {
		r.mu.Unlock()
		select {
		case <-c.done:
			return c.host, c.verified
		case <-ctx.Done():
			return "", false
		}
	}
	c := &rdnsCall{done: make(chan struct{})}
	r.inflight[ip] = c
	r.mu.Unlock()

	lctx, cancel := context.WithTimeout(ctx, r.timeout)
	c.host, c.verified = r.lookup(lctx, ip)
	cancel()
	c.expires = time.Now().Add(r.ttl)

	r.mu.Lock()
	delete(r.inflight, ip)
	if len(r.cache) >= maxCached {
		clear(r.cache)
	}
	r.cache[ip] = c.rdnsEntry
	r.mu.Unlock()
	close(c.done)
	return c.host, c.verified
}

func (r *Resolver) lookup(ctx context.Context, ip netip.Addr) (string, bool) {
	names, err := r.r.PTR(ctx, ip)
	if err != nil || len(names) == 0 {
		return "", false
	}
	const maxNames = 3 // do not let one client make us chase a long PTR set
	for _, name := range names[:min(len(names), maxNames)] {
		addrs, err := r.r.IP(ctx, name)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == ip {
				return name, true
			}
		}
	}
	return names[0], false
}
