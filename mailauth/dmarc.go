package mailauth

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// DMARC results (RFC 7489 11.2).
const (
	DMARCNone      = "none" // no policy published, or not evaluated
	DMARCPass      = "pass"
	DMARCFail      = "fail"
	DMARCTempError = "temperror"
	DMARCPermError = "permerror"
)

// DMARC policies (p=, sp=).
const (
	PolicyNone       = "none"
	PolicyQuarantine = "quarantine"
	PolicyReject     = "reject"
)

// DMARC is the DMARC evaluation of a message.
type DMARC struct {
	Result string `json:"result"`           // one of the DMARC* results
	Domain string `json:"domain,omitempty"` // the RFC5322.From domain
	// RecordDomain is where the policy was found: Domain, or its
	// organizational domain (RFC 7489 6.6.3).
	RecordDomain string `json:"record_domain,omitempty"`
	Record       string `json:"record,omitempty"` // the TXT record, verbatim
	// Policy is the domain owner's request for a failing message (p=, or
	// sp= for a subdomain found by the organizational domain's record);
	// Applied is what is left of it after pct= (RFC 7489 6.6.4): the next
	// less strict policy for the messages outside the percentage.
	Policy      string `json:"policy,omitempty"`
	Applied     string `json:"applied,omitempty"`
	SPFAligned  bool   `json:"spf_aligned"`
	DKIMAligned bool   `json:"dkim_aligned"`
	Reason      string `json:"reason,omitempty"`
	// Quarantine is the quarantine the listener's mail flow policy sends
	// the message to (its DMARC quarantine action), for the work queue
	// to hold it there; "" when the policy did not quarantine it.
	Quarantine string `json:"quarantine,omitempty"`
}

// CheckDMARC evaluates DMARC for a message from fromDomain (FromDomain)
// given the SPF result of its MAIL FROM identity and its DKIM results.
// fromErr is FromDomain's error, if it had one: such a message cannot be
// evaluated (permerror).
func (c *Checker) CheckDMARC(ctx context.Context, fromDomain string, fromErr error, spfRes SPF, dkims []DKIM) DMARC {
	if fromErr != nil {
		if errors.Is(fromErr, ErrNoFrom) {
			return DMARC{Result: DMARCNone, Reason: fromErr.Error()}
		}
		return DMARC{Result: DMARCPermError, Reason: fromErr.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	d := DMARC{Domain: fromDomain}
	org := OrgDomain(fromDomain)
	rec, txt, err := c.lookup(ctx, fromDomain)
	d.RecordDomain = fromDomain
	if errors.Is(err, dmarc.ErrNoPolicy) && org != fromDomain {
		rec, txt, err = c.lookup(ctx, org)
		d.RecordDomain = org
	}
	d.Record = txt
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		d.Result, d.RecordDomain, d.Reason = DMARCNone, "", "no DMARC record"
		return d
	case err != nil && dmarc.IsTempFail(err):
		d.Result, d.Reason = DMARCTempError, err.Error()
		return d
	case err != nil:
		d.Result, d.Reason = DMARCPermError, err.Error()
		return d
	}
	d.Policy = string(rec.Policy)
	if d.RecordDomain != fromDomain && rec.SubdomainPolicy != "" {
		d.Policy = string(rec.SubdomainPolicy)
	}

	if spfRes.Result == SPFPass {
		d.SPFAligned = aligned(spfRes.Domain, fromDomain, rec.SPFAlignment == dmarc.AlignmentStrict)
	}
	for _, k := range dkims {
		if k.Result == DKIMPass && aligned(k.Domain, fromDomain, rec.DKIMAlignment == dmarc.AlignmentStrict) {
			d.DKIMAligned = true
		}
	}
	if d.SPFAligned || d.DKIMAligned {
		d.Result = DMARCPass
		return d
	}
	d.Result = DMARCFail
	d.Applied = d.Policy
	if rec.Percent != nil && *rec.Percent < 100 && c.percent() >= *rec.Percent {
		switch d.Policy {
		case PolicyReject:
			d.Applied = PolicyQuarantine
		case PolicyQuarantine:
			d.Applied = PolicyNone
		}
		d.Reason = "outside pct=" + strconv.Itoa(*rec.Percent)
	}
	return d
}

func (c *Checker) percent() int {
	if c.Percent != nil {
		return c.Percent()
	}
	return rand.IntN(100)
}

// lookup finds the DMARC record of a domain (RFC 7489 6.6.3): the TXT
// records at _dmarc.<domain> that start with v=DMARC1; exactly one must.
func (c *Checker) lookup(ctx context.Context, domain string) (*dmarc.Record, string, error) {
	a := dnsAdapter{c.DNS}
	txts, err := a.LookupTXT(ctx, "_dmarc."+domain)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, "", dmarc.ErrNoPolicy
		}
		// Through the library's own lookup, to get its temporary error.
		_, lerr := dmarc.LookupWithOptions(domain, &dmarc.LookupOptions{
			LookupTXT: func(string) ([]string, error) { return nil, err },
		})
		return nil, "", lerr
	}
	var found []string
	for _, t := range txts {
		// "v=DMARC1" first, with spaces allowed around "=" (RFC 7489 6.4).
		k, _, _ := strings.Cut(t, ";")
		if name, val, ok := strings.Cut(k, "="); ok && strings.TrimSpace(name) == "v" && strings.TrimSpace(val) == "DMARC1" {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return nil, "", dmarc.ErrNoPolicy
	case 1:
	default:
		// RFC 7489 6.6.3: more than one record is no policy.
		return nil, "", dmarc.ErrNoPolicy
	}
	rec, err := dmarc.Parse(found[0])
	if err != nil {
		return nil, found[0], err
	}
	return rec, found[0], nil
}

// OrgDomain is the organizational domain of a domain (RFC 7489 3.2): its
// registrable part by the public suffix list, or the domain itself when it
// is a public suffix.
func OrgDomain(domain string) string {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return domain
	}
	return org
}

// aligned compares an authenticated domain with the From domain (RFC 7489
// 3.1): equal (strict) or of the same organizational domain (relaxed).
func aligned(authDomain, fromDomain string, strict bool) bool {
	a := strings.ToLower(strings.TrimSuffix(authDomain, "."))
	f := strings.ToLower(fromDomain)
	if a == "" {
		return false
	}
	if strict {
		return a == f
	}
	return OrgDomain(a) == OrgDomain(f)
}
