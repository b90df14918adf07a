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

	answers *cache[answerKey, answer] // nil: none (WithCache)
}

// ErrNotFound is a name that does not exist or has no record of the type
// asked (NXDOMAIN or NODATA): a permanent answer, unlike a timeout.
// Answers of the configured servers say which, by ErrNoName or ErrNoData
// (both are ErrNotFound); the system's resolver does not tell.
var ErrNotFound = errors.New("resolver: no such record")

// The two kinds of ErrNotFound (RFC 2308 1): they are kept apart, in the
// cache too, as a name that exists without a record of one type may have
// records of another.
var (
	ErrNoName error = notFound("resolver: no such name (NXDOMAIN)")
	ErrNoData error = notFound("resolver: no record of the type (NODATA)")
)

type notFound string

func (e notFound) Error() string        { return string(e) }
func (e notFound) Is(target error) bool { return target == ErrNotFound }

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

// Answer cache limits (WithCache).
const (
	DefaultCacheSize = 1 << 14
	// MaxAnswerTTL caps how long an answer is kept, as resolvers cap a
	// day's TTL: a changed SPF record or DKIM key is seen within the hour.
	MaxAnswerTTL = time.Hour
	// maxAnswerSize is the most octets of records an answer kept may
	// hold, so that the cache's memory is bounded by its size in entries
	// (16384 of 4 KiB: 64 MiB at worst, a few MiB for ordinary SPF, DKIM
	// and DMARC records). A larger answer is asked again each time.
	maxAnswerSize = 4096
)

// systemTTL is how long an answer of the system's resolver is kept (DNS
// list answers and, with WithCache, the others): it does not tell the
// record's TTL. A minute keeps a burst of mail from one domain from asking
// again and again, and a changed record is seen a minute late at most.
const systemTTL = time.Minute

// WithCache makes r keep up to size answers of PTR, IP, MX and TXT (see
// cache): positive ones for their records' lowest TTL, "no such name" and
// "no such record" for the SOA's negative TTL (RFC 2308; not at all
// without a SOA), each at most MaxAnswerTTL; failures (timeouts, SERVFAIL)
// never, so that each lookup that meets one asks again. Identical lookups
// in flight share one query. With the system's resolver, answers and "not
// found" are kept systemTTL. size 0 is no cache; WithCache is called
// before r is used, and returns r.
func (r *Resolver) WithCache(size int) *Resolver {
	if size > 0 {
		r.answers = newCache[answerKey, answer](size)
	}
	return r
}

// answerKey is what an answer is cached under: the question, the name in
// lower case without the root's dot. IP's A and AAAA answers are kept
// together under TypeA, as IP returns them together.
type answerKey struct {
	qtype uint16
	name  string
}

func (k answerKey) String() string { return dns.TypeToString[k.qtype] + " " + k.name }

// answer is what one of PTR, IP, MX or TXT returns.
type answer struct {
	strs  []string // PTR, TXT
	addrs []netip.Addr
	mxs   []net.MX
}

// clone copies an answer out of the cache: callers own what they get.
func (a answer) clone() answer {
	a.strs, a.addrs, a.mxs = slices.Clone(a.strs), slices.Clone(a.addrs), slices.Clone(a.mxs)
	return a
}

// size is about the octets the answer holds.
func (a answer) size() int {
	n := 16*len(a.addrs) + 8*len(a.mxs)
	for _, s := range a.strs {
		n += len(s)
	}
	for _, m := range a.mxs {
		n += len(m.Host)
	}
	return n
}

// lookup returns the answer of fetch for the question (qtype, name), from
// the cache when there is one.
func (r *Resolver) lookup(ctx context.Context, qtype uint16, name string, fetch func(context.Context) (answer, time.Duration, error)) (answer, error) {
	if r.answers == nil {
		a, _, err := fetch(ctx)
		return a, err
	}
	// Without the trailing dot: a name as the libraries write it is kept
	// under itself, without an allocation.
	k := answerKey{qtype: qtype, name: strings.ToLower(strings.TrimSuffix(name, "."))}
	a, err := r.answers.get(ctx, k, func(ctx context.Context) (answer, time.Duration, error) {
		a, ttl, err := fetch(ctx)
		if a.size() > maxAnswerSize {
			ttl = 0
		}
		return a, ttl, err
	})
	return a.clone(), err
}

// sysTTL is how long an answer of the system's resolver is kept: not at
// all when it failed.
func sysTTL(err error) time.Duration {
	if err == nil || errors.Is(err, ErrNotFound) {
		return systemTTL
	}
	return 0
}

// PTR returns the names of an address, without trailing dots.
func (r *Resolver) PTR(ctx context.Context, ip netip.Addr) ([]string, error) {
	arpa, err := dns.ReverseAddr(ip.String())
	if err != nil {
		return nil, fmt.Errorf("resolver: PTR %s: %w", ip, err)
	}
	a, err := r.lookup(ctx, dns.TypePTR, arpa, func(ctx context.Context) (answer, time.Duration, error) {
		if len(r.servers) == 0 {
			names, err := r.sys.LookupAddr(ctx, ip.String())
			for i := range names {
				names[i] = strings.TrimSuffix(names[i], ".")
			}
			err = sysErr(err)
			return answer{strs: names}, sysTTL(err), err
		}
		rrs, ttl, err := r.query(ctx, arpa, dns.TypePTR)
		var names []string
		for _, rr := range rrs {
			if p, ok := rr.(*dns.PTR); ok {
				names = append(names, strings.TrimSuffix(p.Ptr, "."))
			}
		}
		return answer{strs: names}, ttl, err
	})
	return a.strs, err
}

// IP returns the IPv4 and IPv6 addresses of a host name.
func (r *Resolver) IP(ctx context.Context, host string) ([]netip.Addr, error) {
	a, err := r.lookup(ctx, dns.TypeA, host, func(ctx context.Context) (answer, time.Duration, error) {
		if len(r.servers) == 0 {
			addrs, err := r.sys.LookupNetIP(ctx, "ip", host)
			err = sysErr(err)
			return answer{addrs: addrs}, sysTTL(err), err
		}
		return r.ip(ctx, host)
	})
	return a.addrs, err
}

// ip asks the servers for host's A and AAAA records. The answer is kept
// as long as the shorter-lived of the two, and not at all when one failed
// (the addresses of the other are then all there is, for now).
func (r *Resolver) ip(ctx context.Context, host string) (answer, time.Duration, error) {
	var addrs []netip.Addr
	var errs []error
	ttl := MaxAnswerTTL
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, rttl, err := r.query(ctx, dns.Fqdn(host), t)
		ttl = min(ttl, rttl)
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
		return answer{addrs: addrs}, ttl, nil
	}
	if len(errs) == 2 && errors.Is(errs[0], ErrNotFound) && errors.Is(errs[1], ErrNotFound) {
		kind := ErrNoData
		if errors.Is(errs[0], ErrNoName) {
			kind = ErrNoName
		}
		return answer{}, ttl, fmt.Errorf("resolver: %s: %w", host, kind)
	}
	return answer{}, 0, errors.Join(errs...)
}

// MX returns the mail exchangers of a domain, sorted by preference.
func (r *Resolver) MX(ctx context.Context, domain string) ([]*net.MX, error) {
	a, err := r.lookup(ctx, dns.TypeMX, domain, func(ctx context.Context) (answer, time.Duration, error) {
		var mxs []net.MX
		if len(r.servers) == 0 {
			sys, err := r.sys.LookupMX(ctx, domain)
			if err = sysErr(err); err != nil {
				return answer{}, sysTTL(err), err
			}
			for _, m := range sys {
				mxs = append(mxs, *m)
			}
			return answer{mxs: sortMX(mxs)}, systemTTL, nil
		}
		rrs, ttl, err := r.query(ctx, dns.Fqdn(domain), dns.TypeMX)
		for _, rr := range rrs {
			if m, ok := rr.(*dns.MX); ok {
				mxs = append(mxs, net.MX{Host: m.Mx, Pref: m.Preference})
			}
		}
		return answer{mxs: sortMX(mxs)}, ttl, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, len(a.mxs))
	for i := range a.mxs {
		out[i] = &a.mxs[i]
	}
	return out, nil
}

// sortMX trims the hosts' trailing dots and sorts by preference.
func sortMX(mxs []net.MX) []net.MX {
	for i := range mxs {
		mxs[i].Host = strings.TrimSuffix(mxs[i].Host, ".")
	}
	slices.SortStableFunc(mxs, func(a, b net.MX) int { return int(a.Pref) - int(b.Pref) })
	return mxs
}

// query asks the configured servers for name's records of qtype, and
// says how long the answer may be kept: for records, their lowest TTL (the
// CNAMEs that led to them included); for ErrNoName or ErrNoData, the
// negative TTL of the SOA that came with it, 0 without one (RFC 2308 5);
// at most MaxAnswerTTL. A failure is never kept (0).
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, time.Duration, error) {
	in, err := r.exchange(ctx, name, qtype)
	if err != nil {
		return nil, 0, err
	}
	if in.Rcode == dns.RcodeNameError {
		return nil, negativeTTL(in, MaxAnswerTTL), fmt.Errorf("resolver: %s %s: %w", dns.TypeToString[qtype], name, ErrNoName)
	}
	out := answers(in, qtype)
	if len(out) == 0 {
		return nil, negativeTTL(in, MaxAnswerTTL), fmt.Errorf("resolver: %s %s: %w", dns.TypeToString[qtype], name, ErrNoData)
	}
	ttl := uint32(MaxAnswerTTL / time.Second)
	for _, rr := range in.Answer {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return out, time.Duration(ttl) * time.Second, nil
}

// negativeTTL is how long a negative answer may be kept (RFC 2308 5): the
// lower of its SOA's TTL and the SOA's MINIMUM field, at most limit; 0
// when the answer has no SOA.
func negativeTTL(in *dns.Msg, limit time.Duration) time.Duration {
	for _, rr := range in.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(limit, time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second)
		}
	}
	return 0
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
