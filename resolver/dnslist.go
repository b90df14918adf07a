package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNS lists (DNSBL, DNSWL; RFC 5782): a list publishes an A record, its
// "code" (127.0.0.2 and up), at the reversed client address under its zone
// for each address it lists; no record (NXDOMAIN) means not listed.

// ListName returns the name a DNS list is asked about an address (RFC 5782
// sections 2.1 and 2.4): the four octets of an IPv4 address, or the 32
// nibbles of an IPv6 address, in reverse order, then the zone. An
// IPv4-mapped IPv6 address is asked as the IPv4 address.
func ListName(ip netip.Addr, zone string) string {
	ip = ip.Unmap()
	zone = dns.Fqdn(zone)
	if ip.Is4() {
		b := ip.As4()
		return fmt.Sprintf("%d.%d.%d.%d.%s", b[3], b[2], b[1], b[0], zone)
	}
	const hex = "0123456789abcdef"
	b := ip.As16()
	var sb strings.Builder
	sb.Grow(64 + len(zone))
	for i := len(b) - 1; i >= 0; i-- {
		sb.WriteByte(hex[b[i]&0xf])
		sb.WriteByte('.')
		sb.WriteByte(hex[b[i]>>4])
		sb.WriteByte('.')
	}
	sb.WriteString(zone)
	return sb.String()
}

// MaxListTTL caps how long a DNS list's answer is kept: a list that
// publishes a day's TTL would otherwise keep a delisted client blocked for
// that day.
const MaxListTTL = time.Hour

// DNSList asks the DNS list zone about ip. It returns the list's codes for
// the address (its A records), none when the list does not list it
// (NXDOMAIN, or a name without A records), and how long the answer may be
// kept: the lowest TTL of the records, or for "not listed" the SOA's
// negative TTL (RFC 2308), 0 when the answer has no SOA; at most
// MaxListTTL. An error is a list that did not answer (timeout, SERVFAIL):
// the address is neither listed nor not.
func (r *Resolver) DNSList(ctx context.Context, ip netip.Addr, zone string) (codes []netip.Addr, ttl time.Duration, err error) {
	name := ListName(ip, zone)
	if len(r.servers) == 0 {
		addrs, err := r.sys.LookupNetIP(ctx, "ip4", name)
		if err = sysErr(err); errors.Is(err, ErrNotFound) {
			return nil, systemTTL, nil
		} else if err != nil {
			return nil, 0, fmt.Errorf("resolver: DNS list %s: %w", zone, err)
		}
		for _, a := range addrs {
			codes = append(codes, a.Unmap())
		}
		return codes, systemTTL, nil
	}
	in, err := r.exchange(ctx, name, dns.TypeA)
	if err != nil {
		return nil, 0, fmt.Errorf("resolver: DNS list %s: %w", zone, err)
	}
	var minTTL uint32 = uint32(MaxListTTL / time.Second)
	for _, rr := range answers(in, dns.TypeA) {
		if ip, ok := netip.AddrFromSlice(rr.(*dns.A).A.To4()); ok {
			codes = append(codes, ip)
			minTTL = min(minTTL, rr.Header().Ttl)
		}
	}
	if len(codes) > 0 {
		return codes, time.Duration(minTTL) * time.Second, nil
	}
	return nil, negativeTTL(in, MaxListTTL), nil
}

// ListAnswer is what one DNS list said of a client.
type ListAnswer struct {
	Zone  string       // lower case, without the trailing dot
	Codes []netip.Addr // the list's A records for the client; none: not listed
	// Err is set when the list did not answer in time or failed: the
	// client is then neither listed nor not.
	Err error
}

// Lists looks clients up in DNS lists, several at once under one timeout,
// and caches the answers, listed or not, for as long as their TTLs allow.
// Concurrent lookups of one client in one list share one query.
type Lists struct {
	r       *Resolver
	timeout time.Duration
	cache   *cache[listKey, []netip.Addr]
}

type listKey struct {
	zone string
	ip   netip.Addr
}

func (k listKey) String() string { return "DNS list " + k.zone + " " + k.ip.String() }

// Defaults of NewLists.
const (
	DefaultListTimeout   = 2 * time.Second
	DefaultListCacheSize = 1 << 16
)

// NewLists makes a DNS list client on r. timeout bounds one Lookup, all
// its lists together (default DefaultListTimeout); size bounds the cache
// (entries; 0: no cache, below 0: DefaultListCacheSize).
func NewLists(r *Resolver, timeout time.Duration, size int) *Lists {
	if timeout <= 0 {
		timeout = DefaultListTimeout
	}
	if size < 0 {
		size = DefaultListCacheSize
	}
	return &Lists{r: r, timeout: timeout, cache: newCache[listKey, []netip.Addr](size)}
}

// Lookup asks every zone about ip at once and returns their answers in the
// order of zones, within the timeout: a list that has not answered by then
// has Err set. Zones are written as in the HAT (lower case, no trailing
// dot).
func (l *Lists) Lookup(ctx context.Context, ip netip.Addr, zones []string) []ListAnswer {
	out := make([]ListAnswer, len(zones))
	for a := range l.Each(ctx, ip, zones) {
		out[slices.Index(zones, a.Zone)] = a
	}
	return out
}

// Each asks every zone about ip at once and sends each answer as it comes,
// within the timeout (a list that has not answered by then is sent with Err
// set), then closes the channel. The channel has room for every answer:
// a caller that has seen enough may stop reading, and the lookups still
// end at the timeout.
func (l *Lists) Each(ctx context.Context, ip netip.Addr, zones []string) <-chan ListAnswer {
	ip = ip.Unmap().WithZone("")
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	out := make(chan ListAnswer, len(zones))
	var wg sync.WaitGroup
	for _, z := range zones {
		wg.Go(func() {
			codes, err := l.one(ctx, listKey{zone: z, ip: ip})
			out <- ListAnswer{Zone: z, Codes: codes, Err: err}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out
}

func (l *Lists) one(ctx context.Context, k listKey) ([]netip.Addr, error) {
	return l.cache.get(ctx, k, func(ctx context.Context) ([]netip.Addr, time.Duration, error) {
		return l.r.DNSList(ctx, k.ip, k.zone)
	})
}

// Cached reports how many answers the cache holds.
func (l *Lists) Cached() int { return l.cache.len() }
