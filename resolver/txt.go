package resolver

import (
	"context"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TXT returns the TXT records of a name, each record's strings joined into
// one (as net.LookupTXT does; RFC 7208 3.3, RFC 6376 3.6.2.2). SPF, DKIM
// keys and DMARC policies are TXT records.
func (r *Resolver) TXT(ctx context.Context, name string) ([]string, error) {
	a, err := r.lookup(ctx, dns.TypeTXT, name, func(ctx context.Context) (answer, time.Duration, error) {
		if len(r.servers) == 0 {
			txts, err := r.sys.LookupTXT(ctx, name)
			err = sysErr(err)
			return answer{strs: txts}, sysTTL(err), err
		}
		rrs, ttl, err := r.query(ctx, dns.Fqdn(name), dns.TypeTXT)
		var txts []string
		for _, rr := range rrs {
			if t, ok := rr.(*dns.TXT); ok {
				txts = append(txts, strings.Join(t.Txt, ""))
			}
		}
		return answer{strs: txts}, ttl, err
	})
	return a.strs, err
}
