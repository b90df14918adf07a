package policy

import (
	"net/netip"
	"sync"
)

// Why a Limiter refuses a connection: the ESA's texts, which the listener
// sends after "421 #4.4.5 ".
const (
	TooManyFromHost   = "Too many connections from your host"
	TooManyToListener = "Too many connections to this listener"
)

// Limiter counts the live connections of one listener, in total and per
// client address. The zero Limiter is ready to use and safe for concurrent
// use.
type Limiter struct {
	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int // addresses with at least one connection
}

// Acquire counts a new connection from ip unless that would exceed perIP
// connections from the address or total on the listener (a limit of 0 or
// less is no limit). When ok, release must be called once the connection
// ends; calling it again does nothing. When not ok, why is TooManyFromHost
// or TooManyToListener and release is a no-op.
func (l *Limiter) Acquire(ip netip.Addr, perIP, total int) (release func(), ok bool, why string) {
	ip = ip.Unmap().WithZone("")
	l.mu.Lock()
	defer l.mu.Unlock()
	if total > 0 && l.total >= total {
		return func() {}, false, TooManyToListener
	}
	n := l.perIP[ip]
	if perIP > 0 && n >= perIP {
		return func() {}, false, TooManyFromHost
	}
	if l.perIP == nil {
		l.perIP = make(map[netip.Addr]int)
	}
	l.perIP[ip] = n + 1
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
		if l.perIP[ip] <= 1 {
			delete(l.perIP, ip) // keep the map as small as the live set
		} else {
			l.perIP[ip]--
		}
	}, true, ""
}

// Count returns the live connections from ip and on the whole listener.
func (l *Limiter) Count(ip netip.Addr) (fromIP, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perIP[ip.Unmap().WithZone("")], l.total
}
