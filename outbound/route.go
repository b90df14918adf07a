package outbound

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/resolver"
)

// routes finds a recipient domain's SMTP route: an exact domain first, then
// the longest ".example.com" that covers it, then ALL. Routes are not
// recursive: a route's hosts are never routed again.
type routes struct {
	exact  map[string]*config.Route
	suffix []*config.Route // longest first
	all    *config.Route
}

func newRoutes(rs []config.Route) *routes {
	t := &routes{exact: make(map[string]*config.Route)}
	for i := range rs {
		r := &rs[i]
		switch {
		case r.Domain == "ALL":
			if t.all == nil {
				t.all = r
			}
		case strings.HasPrefix(r.Domain, "."):
			t.suffix = append(t.suffix, r)
		default:
			if t.exact[r.Domain] == nil {
				t.exact[r.Domain] = r
			}
		}
	}
	slices.SortStableFunc(t.suffix, func(a, b *config.Route) int { return cmp.Compare(len(b.Domain), len(a.Domain)) })
	return t
}

// lookup returns the route for a (lower-case) domain, nil for delivery by MX.
func (t *routes) lookup(domain string) *config.Route {
	if r := t.exact[domain]; r != nil {
		return r
	}
	for _, r := range t.suffix {
		if strings.HasSuffix(domain, r.Domain) {
			return r
		}
	}
	return t.all
}

// domainOf returns the lower-case domain of an address, "" when it has none
// (<postmaster>).
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

// hop is one address to try for a destination.
type hop struct {
	host string // the MX or route host as named; the address itself for literals
	ip   netip.Addr
	port int
}

func (h hop) addr() string { return netip.AddrPortFrom(h.ip, uint16(h.port)).String() }

// maxHops bounds the addresses one connection attempt tries, as Postfix's
// smtp_mx_address_limit does: a domain with many MX hosts each with many
// addresses must not hold a connection slot for an hour of timeouts.
const maxHops = 10

// planError is why a destination has no address to try. It carries its
// outcome: the mail log's status and the text of the reply-less "('000',
// [...])".
type planError struct {
	hard   bool
	status string
	text   string
}

func (e *planError) Error() string { return e.text }

// plan returns the addresses to try, in order, for a destination: a route's
// hosts by priority, or the domain's MX hosts by preference (the domain's
// own addresses when it has no MX), each host's addresses in turn. Hosts of
// equal priority or preference come in turn (routes: round robin through
// rr) or in random order (MX), which spreads the load as RFC 5321 5.1 asks.
func plan(ctx context.Context, res *resolver.Resolver, route *config.Route, domain string, port int, rr uint32) ([]hop, error) {
	if route != nil {
		return planRoute(ctx, res, route, rr)
	}
	if lit, ok := strings.CutPrefix(domain, "["); ok {
		lit = strings.TrimSuffix(lit, "]")
		lit = strings.TrimPrefix(strings.TrimPrefix(lit, "IPv6:"), "ipv6:")
		ip, err := netip.ParseAddr(lit)
		if err != nil {
			return nil, &planError{hard: true, status: "5.1.2", text: fmt.Sprintf("Bad address literal %s", domain)}
		}
		return []hop{{host: ip.String(), ip: ip.Unmap(), port: port}}, nil
	}
	if domain == "" {
		return nil, &planError{hard: true, status: "5.1.2", text: "No domain in recipient address"}
	}
	mxs, err := res.MX(ctx, domain)
	implicit := false
	switch {
	case errors.Is(err, resolver.ErrNotFound):
		// RFC 5321 5.1: no MX, the domain itself is the implicit MX.
		mxs, implicit = []*net.MX{{Host: domain}}, true
	case err != nil:
		return nil, &planError{status: "4.4.3", text: fmt.Sprintf("DNS Temporary Failure looking up %s (MX): %v", domain, err)}
	}
	if len(mxs) == 1 && (mxs[0].Host == "" || mxs[0].Host == ".") {
		return nil, &planError{hard: true, status: "5.1.10", text: fmt.Sprintf("Domain %s has a null MX (RFC 7505)", domain)}
	}
	shuffleEqual(mxs)
	var hops []hop
	var tempErr error
	notFound := 0
	for _, mx := range mxs {
		if len(hops) >= maxHops {
			break
		}
		ips, err := res.IP(ctx, mx.Host)
		if err != nil {
			if errors.Is(err, resolver.ErrNotFound) {
				notFound++
			} else {
				tempErr = err
			}
			continue
		}
		for _, ip := range ips {
			hops = append(hops, hop{host: mx.Host, ip: ip.Unmap(), port: port})
		}
	}
	if len(hops) > maxHops {
		hops = hops[:maxHops]
	}
	switch {
	case len(hops) > 0:
		return hops, nil
	case implicit && notFound == 1:
		// Neither MX nor address: the domain does not exist for mail.
		return nil, &planError{hard: true, status: "5.1.2", text: fmt.Sprintf("DNS Hard Error looking up %s (MX): NXDomain", domain)}
	case tempErr == nil:
		return nil, &planError{hard: true, status: "5.4.4", text: fmt.Sprintf("No address for any MX host of %s", domain)}
	}
	return nil, &planError{status: "4.4.3", text: fmt.Sprintf("DNS Temporary Failure looking up the MX hosts of %s: %v", domain, tempErr)}
}

// shuffleEqual puts MX records of equal preference in random order; mxs is
// sorted by preference.
func shuffleEqual(mxs []*net.MX) {
	for i := 0; i < len(mxs); {
		j := i + 1
		for j < len(mxs) && mxs[j].Pref == mxs[i].Pref {
			j++
		}
		g := mxs[i:j]
		rand.Shuffle(len(g), func(a, b int) { g[a], g[b] = g[b], g[a] })
		i = j
	}
}

func planRoute(ctx context.Context, res *resolver.Resolver, route *config.Route, rr uint32) ([]hop, error) {
	hosts := slices.Clone(route.Hosts)
	slices.SortStableFunc(hosts, func(a, b config.RouteHost) int { return cmp.Compare(a.Priority, b.Priority) })
	// Rotate each group of equal priority by rr: round robin per connection.
	for i := 0; i < len(hosts); {
		j := i + 1
		for j < len(hosts) && hosts[j].Priority == hosts[i].Priority {
			j++
		}
		g := hosts[i:j]
		k := int(rr % uint32(len(g)))
		slices.Reverse(g[:k])
		slices.Reverse(g[k:])
		slices.Reverse(g)
		i = j
	}
	var hops []hop
	var errs []error
	for _, h := range hosts {
		if len(hops) >= maxHops {
			break
		}
		if ip, err := netip.ParseAddr(h.Host); err == nil {
			hops = append(hops, hop{host: h.Host, ip: ip.Unmap(), port: h.Port})
			continue
		}
		ips, err := res.IP(ctx, h.Host)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ip := range ips {
			hops = append(hops, hop{host: h.Host, ip: ip.Unmap(), port: h.Port})
		}
	}
	if len(hops) > maxHops {
		hops = hops[:maxHops]
	}
	if len(hops) == 0 {
		// A route names hosts the administrator chose: a host that does not
		// resolve is a configuration to fix, not a reason to bounce.
		return nil, &planError{status: "4.4.3", text: fmt.Sprintf("No address for the hosts of the route for %s: %v", route.Domain, errors.Join(errs...))}
	}
	return hops, nil
}
