package mailauth

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"blitiri.com.ar/go/spf"
)

// SPF identities (RFC 7208 2.3, 2.4).
const (
	IdentityHELO     = "helo"
	IdentityMailFrom = "mailfrom"
)

// SPF results (RFC 7208 2.6), as Authentication-Results writes them.
const (
	SPFNone      = "none"
	SPFNeutral   = "neutral"
	SPFPass      = "pass"
	SPFFail      = "fail"
	SPFSoftFail  = "softfail"
	SPFTempError = "temperror"
	SPFPermError = "permerror"
)

// SPF is the check of one identity.
type SPF struct {
	Identity string `json:"identity"` // IdentityHELO or IdentityMailFrom
	// Address is the identity as the ESA logs it: postmaster@<helo> for
	// HELO, and for MAIL FROM the sender, or postmaster@<helo> for the null
	// sender (RFC 7208 2.4).
	Address string `json:"address"`
	Domain  string `json:"domain"` // whose record was evaluated
	Result  string `json:"result"` // one of the SPF* results
	// Reason is why, for a person: the mechanism that matched, or the
	// error ("lookup limit reached", "void lookup limit reached", a DNS
	// error).
	Reason string `json:"reason,omitempty"`
}

// ESAResult is the result as the ESA's line writes it: Pass, Fail,
// SoftFail, None, Neutral, PermError, TempError.
func (s SPF) ESAResult() string {
	switch s.Result {
	case SPFSoftFail:
		return "SoftFail"
	case SPFPermError:
		return "PermError"
	case SPFTempError:
		return "TempError"
	case "":
		return "None"
	}
	return strings.ToUpper(s.Result[:1]) + s.Result[1:]
}

// CheckHELO checks the HELO identity (RFC 7208 2.3). A HELO that is not a
// domain name (an address literal, a bare word) has no SPF record: none.
func (c *Checker) CheckHELO(ctx context.Context, ip netip.Addr, helo string) SPF {
	s := SPF{Identity: IdentityHELO, Address: "postmaster@" + helo, Domain: helo}
	if !isDomain(helo) {
		s.Result, s.Reason = SPFNone, "HELO is not a domain name"
		return s
	}
	return c.check(ctx, ip, helo, s.Address, s)
}

// CheckMailFrom checks the MAIL FROM identity; for the null sender that is
// postmaster@<helo> (RFC 7208 2.4).
func (c *Checker) CheckMailFrom(ctx context.Context, ip netip.Addr, helo, from string) SPF {
	s := SPF{Identity: IdentityMailFrom, Address: from}
	if from == "" {
		s.Address = "postmaster@" + helo
	}
	i := strings.LastIndexByte(s.Address, '@')
	s.Domain = s.Address[i+1:]
	if !isDomain(s.Domain) {
		s.Result, s.Reason = SPFNone, "no domain to check"
		return s
	}
	return c.check(ctx, ip, helo, s.Address, s)
}

func (c *Checker) check(ctx context.Context, ip netip.Addr, helo, sender string, s SPF) SPF {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	res, err := spf.CheckHostWithSender(net.IP(ip.Unmap().AsSlice()), helo, sender,
		spf.WithContext(ctx), spf.WithResolver(dnsAdapter{c.DNS}))
	s.Result = string(res)
	if err != nil {
		s.Reason = err.Error()
	}
	if s.Result == "" {
		s.Result = SPFNone
	}
	return s
}

// isDomain reports whether s looks like a DNS domain name with at least two
// labels: what an SPF record can be published for.
func isDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_') {
				return false
			}
		}
	}
	return true
}
