// Package resolver answers the DNS questions of a mail gateway (PTR, A and
// AAAA, MX) either from the system's resolver or, when the configuration
// names DNS servers, by asking exactly those servers and nothing else: no
// /etc/hosts, no search domains. The second way is what an administrator
// who sets `dns: {servers: [...]}` expects, and what lets tests run their
// own DNS server on loopback.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Resolver looks names up. The zero value is not usable; use New.
type Resolver struct {
	servers []string // "ip:port"; empty: the system resolver
	timeout time.Duration
	sys     *net.Resolver
	udp     *dns.Client
	tcp     *dns.Client
	next    atomic.Uint32 // round robin over servers
}

// ErrNotFound is a name that does not exist or has no record of the type
// asked (NXDOMAIN or NODATA): a permanent answer, unlike a timeout.
var ErrNotFound = errors.New("resolver: no such record")

// New returns a resolver that asks servers, or the system's resolver when
// servers is empty. timeout bounds each query (default 5s).
func New(servers []string, timeout time.Duration) *Resolver {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Resolver{
		servers: servers,
		timeout: timeout,
		sys:     net.DefaultResolver,
		udp:     &dns.Client{Net: "udp", Timeout: timeout},
		tcp:     &dns.Client{Net: "tcp", Timeout: timeout},
	}
}

// PTR returns the names of an address, without trailing dots.
func (r *Resolver) PTR(ctx context.Context, ip netip.Addr) ([]string, error) {
	if len(r.servers) == 0 {
		names, err := r.sys.LookupAddr(ctx, ip.String())
		for i := range names {
			names[i] = strings.TrimSuffix(names[i], ".")
		}
		return names, sysErr(err)
	}
	arpa, err := dns.ReverseAddr(ip.String())
	if err != nil {
		return nil, fmt.Errorf("resolver: PTR %s: %w", ip, err)
	}
	rrs, err := r.query(ctx, arpa, dns.TypePTR)
	var names []string
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok {
			names = append(names, strings.TrimSuffix(p.Ptr, "."))
		}
	}
	return names, err
}

// IP returns the IPv4 and IPv6 addresses of a host name.
func (r *Resolver) IP(ctx context.Context, host string) ([]netip.Addr, error) {
	if len(r.servers) == 0 {
		addrs, err := r.sys.LookupNetIP(ctx, "ip", host)
		return addrs, sysErr(err)
	}
	var addrs []netip.Addr
	var errs []error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, dns.Fqdn(host), t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
					addrs = append(addrs, ip)
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(a.AAAA); ok {
					addrs = append(addrs, ip)
				}
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	if len(errs) == 2 && errors.Is(errs[0], ErrNotFound) && errors.Is(errs[1], ErrNotFound) {
		return nil, fmt.Errorf("resolver: %s: %w", host, ErrNotFound)
	}
	return nil, errors.Join(errs...)
}

// MX returns the mail exchangers of a domain, sorted by preference.
func (r *Resolver) MX(ctx context.Context, domain string) ([]*net.MX, error) {
	var mxs []*net.MX
	if len(r.servers) == 0 {
		var err error
		mxs, err = r.sys.LookupMX(ctx, domain)
		if err != nil {
			return nil, sysErr(err)
		}
	} else {
		rrs, err := r.query(ctx, dns.Fqdn(domain), dns.TypeMX)
		if err != nil {
			return nil, err
		}
		for _, rr := range rrs {
			if m, ok := rr.(*dns.MX); ok {
				mxs = append(mxs, &net.MX{Host: m.Mx, Pref: m.Preference})
			}
		}
	}
	for _, m := range mxs {
		m.Host = strings.TrimSuffix(m.Host, ".")
	}
	slices.SortStableFunc(mxs, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	return mxs, nil
}

// query asks the configured servers in turn until one answers, over UDP
// and over TCP when the answer was truncated.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	in, err := r.exchange(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	if in.Rcode == dns.RcodeNameError {
		return nil, fmt.Errorf("resolver: %s %s: %w", dns.TypeToString[qtype], name, ErrNotFound)
	}
	out := answers(in, qtype)
	if len(out) == 0 {
		return nil, fmt.Errorf("resolver: %s %s: %w", dns.TypeToString[qtype], name, ErrNotFound)
	}
	return out, nil
}

// answers returns the records of the asked type in an answer.
func answers(in *dns.Msg, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range in.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	return out
}

// exchange asks the configured servers in turn until one answers with
// NOERROR or NXDOMAIN, over UDP and over TCP when the answer was
// truncated, and returns that answer whole (its TTLs and its authority
// section's SOA tell how long it may be cached).
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	var lastErr error
	start := r.next.Add(1)
	for i := range r.servers {
		server := r.servers[(int(start)+i)%len(r.servers)]
		qctx, cancel := context.WithTimeout(ctx, r.timeout)
		in, _, err := r.udp.ExchangeContext(qctx, m, server)
		if err == nil && in.Truncated {
			in, _, err = r.tcp.ExchangeContext(qctx, m, server)
		}
		cancel()
		if err != nil {
			lastErr = fmt.Errorf("resolver: %s %s at %s: %w", dns.TypeToString[qtype], name, server, err)
			continue
		}
		switch in.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return in, nil
		default:
			lastErr = fmt.Errorf("resolver: %s %s at %s: %s", dns.TypeToString[qtype], name, server, dns.RcodeToString[in.Rcode])
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// sysErr maps the system resolver's "not found" to ErrNotFound.
func sysErr(err error) error {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
