// Package mailauth holds the sender-authentication checks of received mail:
// SPF (RFC 7208) for the HELO and MAIL FROM identities, DKIM verification
// (RFC 6376), DMARC (RFC 7489), and the Authentication-Results (RFC 8601)
// and Received-SPF header fields that report them. The checks are plain
// functions over typed inputs and outputs; what to do with a result (reject,
// defer, tag) is the mail flow policy's, in package policy, and the session
// that asks is package inbound's. Every DNS question goes through package
// resolver, so through the configured dns.servers, under the caller's
// context deadline.
//
// The standards are the libraries' (blitiri.com.ar/go/spf, go-msgauth's
// dkim, dmarc record parser and authres); DMARC's evaluation (alignment,
// pct, sp=, the organizational domain by the public suffix list) is here,
// as go-msgauth has none.
package mailauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mailgate/mailgate/resolver"
)

// Results are the checks of one message, as they travel with it: in the
// spool's envelope (Marshal), to tracking, content filters and explain.
// The JSON keys are those of the tracking record.
type Results struct {
	SPF   []SPF  `json:"spf,omitempty"`   // HELO then MAIL FROM, those that were checked
	DKIM  []DKIM `json:"dkim,omitempty"`  // one per signature, in header order
	DMARC *DMARC `json:"dmarc,omitempty"` // nil when not checked
	// DNSList is the DNS list whose HAT rule placed the client, for the
	// content filters' dnslist condition; nil when no dnslist rule
	// decided.
	DNSList *DNSList `json:"dnslist,omitempty"`
}

// DNSList is a DNS list's listing of the client: its zone and the code
// (the A record) the HAT's rule counted.
type DNSList struct {
	Zone string `json:"zone"`
	Code string `json:"code"`
}

// resultsVersion is the first byte of Marshal's encoding.
const resultsVersion = 1

// Marshal encodes the results for the spool's envelope: a version byte,
// then JSON.
func (r *Results) Marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// Strings, bools and slices of them: JSON cannot fail on these.
		panic("mailauth: " + err.Error())
	}
	return append([]byte{resultsVersion}, b...)
}

// Unmarshal decodes what Marshal made; empty input is no results.
func Unmarshal(b []byte) (*Results, error) {
	r := &Results{}
	if len(b) == 0 {
		return r, nil
	}
	if b[0] != resultsVersion {
		return nil, fmt.Errorf("mailauth: results version %d", b[0])
	}
	if err := json.Unmarshal(b[1:], r); err != nil {
		return nil, fmt.Errorf("mailauth: results: %w", err)
	}
	return r, nil
}

// MailFromSPF returns the MAIL FROM identity's SPF result, if it was checked.
func (r *Results) MailFromSPF() (SPF, bool) {
	for _, s := range r.SPF {
		if s.Identity == IdentityMailFrom {
			return s, true
		}
	}
	return SPF{}, false
}

// Checker runs the checks against a resolver.
type Checker struct {
	DNS *resolver.Resolver
	// Timeout bounds one check (all the lookups of one SPF evaluation, the
	// keys of all DKIM signatures, one DMARC policy discovery); default 20s,
	// RFC 7208 4.6.4's floor for SPF.
	Timeout time.Duration
	// MaxSignatures bounds the DKIM signatures verified per message
	// (default 5): each costs a key lookup and a hash of the body.
	MaxSignatures int
	// Percent, if set, draws the number (0-99) a DMARC pct= is compared
	// with; the default is random.
	Percent func() int
}

// New returns a checker on r.
func New(r *resolver.Resolver) *Checker {
	return &Checker{DNS: r}
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 20 * time.Second
}

// dnsAdapter gives the libraries the lookups of package resolver, with the
// errors they understand: *net.DNSError with IsNotFound for a name or record
// that does not exist, IsTemporary for every other failure (a timeout, a
// SERVFAIL, a truncated answer that TCP could not complete), which the
// libraries turn into temperror / tempfail.
type dnsAdapter struct {
	r *resolver.Resolver
}

func dnsErr(name string, err error) error {
	if err == nil {
		return nil
	}
	de := &net.DNSError{Err: err.Error(), Name: name}
	if errors.Is(err, resolver.ErrNotFound) {
		de.IsNotFound = true
	} else {
		de.IsTemporary = true
		de.IsTimeout = errors.Is(err, context.DeadlineExceeded)
	}
	return de
}

func (a dnsAdapter) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, err := a.r.TXT(ctx, name)
	return txts, dnsErr(name, err)
}

func (a dnsAdapter) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mxs, err := a.r.MX(ctx, name)
	return mxs, dnsErr(name, err)
}

func (a dnsAdapter) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := a.r.IP(ctx, host)
	out := make([]net.IPAddr, 0, len(addrs))
	for _, ip := range addrs {
		out = append(out, net.IPAddr{IP: net.IP(ip.Unmap().AsSlice())})
	}
	return out, dnsErr(host, err)
}

func (a dnsAdapter) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: addr, IsNotFound: true}
	}
	names, err := a.r.PTR(ctx, ip)
	return names, dnsErr(addr, err)
}
