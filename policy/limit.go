package policy

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Why a Limiter or a Rates refuses a connection: the texts the listener
// sends after "421 #4.4.5 ". The first two are the ESA's; the ESA has no
// connection rate limit, so the third is mailgate's.
const (
	TooManyFromHost   = "Too many connections from your host"
	TooManyToListener = "Too many connections to this listener"
	ConnectionRate    = "Too many connections from your host, slow down"
	GroupRate         = "Too many connections from your host's sender group, slow down"
)

// RecipientRate is the text after "452 #4.5.3 " for a recipient over its
// client's "Max. Recipients Per Hour": the ESA's default text, from
// product knowledge (ESA-REFERENCE.md has the parameter, not the text).
const RecipientRate = "Too many recipients received this hour"

// DefaultIPv6ClientBits is how much of an IPv6 address names one client:
// a /64 is what a provider hands one customer (RFC 6177), so an attacker
// who owns one can use 2^64 addresses, and counting each /128 alone would
// let one host take every slot.
const DefaultIPv6ClientBits = 64

// ClientKey is what every per-client limit counts by: an IPv4 address
// (a dual-stack socket's ::ffff:a.b.c.d counts as the IPv4 host), or the
// first v6bits bits of an IPv6 address.
func ClientKey(ip netip.Addr, v6bits int) netip.Prefix {
	ip = ip.Unmap().WithZone("")
	bits := ip.BitLen()
	if ip.Is6() && v6bits > 0 && v6bits < bits {
		bits = v6bits
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{} // an invalid address: every such client shares one key
	}
	return p
}

// Limiter counts the live connections of one listener, in total and per
// client (see ClientKey). The zero Limiter is ready to use and safe for
// concurrent use.
type Limiter struct {
	mu     sync.Mutex
	total  int
	client map[netip.Prefix]int // clients with at least one connection
}

// Acquire counts a new connection from client unless that would exceed
// perClient connections from it or total on the listener (a limit of 0 or
// less is no limit). When ok, release must be called once the connection
// ends; calling it again does nothing. When not ok, why is TooManyFromHost
// or TooManyToListener and release is a no-op.
func (l *Limiter) Acquire(client netip.Prefix, perClient, total int) (release func(), ok bool, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if total > 0 && l.total >= total {
		return func() {}, false, TooManyToListener
	}
	n := l.client[client]
	if perClient > 0 && n >= perClient {
		return func() {}, false, TooManyFromHost
	}
	if l.client == nil {
		l.client = make(map[netip.Prefix]int)
	}
	l.client[client] = n + 1
	l.total++
	released := false // guarded by l.mu
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if released {
			return
		}
		released = true
		l.total--
		if l.client[client] <= 1 {
			delete(l.client, client) // keep the map as small as the live set
		} else {
			l.client[client]--
		}
	}, true, ""
}

// Count returns the live connections from client and on the whole listener.
func (l *Limiter) Count(client netip.Prefix) (fromClient, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client[client], l.total
}

// What a Rates counts.
type RateKind uint8

const (
	RateConnections RateKind = iota + 1 // connections opened, refused ones included
	RateRecipients                      // recipients accepted
)

// The windows of the rate limits: Postfix's anvil counts connections per
// minute (smtpd_client_connection_rate_limit), the ESA counts recipients
// per hour (its "Injection Counters Reset Period" is 1h).
const (
	ConnectionRateWindow = time.Minute
	RecipientRateWindow  = time.Hour
)

// Rates counts events per client, or per sender group, in fixed windows, as
// the ESA's injection counters do: a count starts with its first event and
// is reset a window later. The zero Rates is ready to use and safe for
// concurrent use.
type Rates struct {
	mu     sync.Mutex
	counts map[RateKey]*rateCount
	swept  time.Time
}

// RateKey names one count: of a kind, for one client (see ClientKey) or,
// when Group is set, for all the clients of a sender group together.
type RateKey struct {
	Kind   RateKind
	Client netip.Prefix
	Group  string // "listener/group": group names are a listener's own
}

// RateLimit is a key and its limit; a limit of 0 or less is no limit (and
// counts nothing).
type RateLimit struct {
	Key RateKey
	Max int
}

type rateCount struct {
	end time.Time // when the window ends
	n   int
}

// Take counts one event at now, in windows of the given length, against
// every limit, unless one of them was already reached in its window; then
// ok is false and refused is the first limit reached. With count false a
// refused event is counted nowhere (a refused recipient is no recipient);
// with count true it is counted everywhere (a refused connection was still
// a connection, so a client that keeps hammering stays refused).
func (r *Rates) Take(window time.Duration, now time.Time, count bool, limits ...RateLimit) (ok bool, refused RateLimit) {
	if !slices.ContainsFunc(limits, func(l RateLimit) bool { return l.Max > 0 }) {
		return true, RateLimit{} // the default: no lock taken on every connection and RCPT
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = make(map[RateKey]*rateCount)
	}
	r.sweep(now, window)
	ok = true
	var cs [2]*rateCount // a client and its group: no allocation
	live := cs[:0]
	for _, l := range limits {
		if l.Max <= 0 {
			continue
		}
		c := r.counts[l.Key]
		if c == nil || !now.Before(c.end) {
			c = &rateCount{end: now.Add(window)}
			r.counts[l.Key] = c
		}
		if ok && c.n >= l.Max {
			ok, refused = false, l
		}
		live = append(live, c)
	}
	if ok || count {
		for _, c := range live {
			c.n++
		}
	}
	return ok, refused
}

// sweep forgets the windows that ended, at most once a window, so that the
// map holds the clients of the last windows and no more.
func (r *Rates) sweep(now time.Time, window time.Duration) {
	if now.Sub(r.swept) < window {
		return
	}
	r.swept = now
	for k, c := range r.counts {
		if !now.Before(c.end) {
			delete(r.counts, k)
		}
	}
}

// Len returns how many client windows are held.
func (r *Rates) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counts)
}
