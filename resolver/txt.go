package resolver

import (
	"context"
	"strings"

	"github.com/miekg/dns"
)

// TXT returns the TXT records of a name, each record's strings joined into
// one (as net.LookupTXT does; RFC 7208 3.3, RFC 6376 3.6.2.2). SPF, DKIM
// keys and DMARC policies are TXT records.
func (r *Resolver) TXT(ctx context.Context, name string) ([]string, error) {
	if len(r.servers) == 0 {
		txts, err := r.sys.LookupTXT(ctx, name)
		return txts, sysErr(err)
	}
	rrs, err := r.query(ctx, dns.Fqdn(name), dns.TypeTXT)
	var txts []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			txts = append(txts, strings.Join(t.Txt, ""))
		}
	}
	return txts, err
}
