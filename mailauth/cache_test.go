package mailauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/resolver"
)

// TestChecksCached: with the resolver's cache, the checks of a second
// message from a domain ask the DNS nothing new, and find what they find
// without the cache; a DNS failure is not kept, so each message that meets
// it asks again and gets its own temperror.
func TestChecksCached(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := smtptest.StartDNS(t,
		"example.org. 3600 IN SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300",
		// The MAIL FROM's record walks a, mx and include: A, AAAA, MX,
		// the MX host's A and AAAA (NODATA, kept by the SOA), another TXT.
		`example.org. 300 IN TXT "v=spf1 a mx include:_spf.example.org -all"`,
		"example.org. 300 IN A 192.0.2.1",
		"example.org. 300 IN MX 10 mx.example.org.",
		"mx.example.org. 300 IN A 192.0.2.2",
		`_spf.example.org. 300 IN TXT "v=spf1 ip4:192.0.2.7 -all"`,
		`mx.example.org. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all"`,
		`s1._domainkey.example.org. 300 IN TXT "v=DKIM1; k=ed25519; p=`+base64.StdEncoding.EncodeToString(pub)+`"`,
		// The From domain is sub.example.org: no _dmarc there
		// (NXDOMAIN), the organizational domain's record applies.
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=reject"`,
		"example.net. 3600 IN SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 300",
		`example.net. 300 IN TXT "v=spf1 -all"`)
	d.ServFail("broken.test")

	signed := func(from string) []byte {
		var b bytes.Buffer
		msg := "From: <" + from + ">\r\nTo: <b@example.com>\r\nSubject: hi\r\n\r\nHello.\r\n"
		if err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: "example.org", Selector: "s1", Signer: key}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	plain := func(from string) []byte {
		return []byte("From: <" + from + ">\r\nTo: <b@example.com>\r\nSubject: hi\r\n\r\nHello.\r\n")
	}
	tests := []struct {
		what             string
		ip, helo, from   string
		msg              []byte
		spf, dkim, dmarc string // the MAIL FROM's SPF, the first signature's DKIM ("" none), DMARC
		asks             bool
	}{
		{"first message", "192.0.2.7", "mx.example.org", "a@example.org", signed("a@sub.example.org"), SPFPass, DKIMPass, DMARCPass, true},
		{"the same again", "192.0.2.7", "mx.example.org", "a@example.org", signed("a@sub.example.org"), SPFPass, DKIMPass, DMARCPass, false},
		{"another from the domain, another client", "198.51.100.1", "mx.example.org", "b@example.org", signed("b@sub.example.org"), SPFFail, DKIMPass, DMARCPass, false},
		{"unsigned", "198.51.100.1", "mx.example.org", "c@example.org", plain("c@sub.example.org"), SPFFail, "", DMARCFail, false},
		{"SERVFAIL", "192.0.2.7", "mx.example.org", "a@x.broken.test", plain("a@x.broken.test"), SPFTempError, "", DMARCTempError, true},
		{"SERVFAIL again", "192.0.2.7", "mx.example.org", "a@x.broken.test", plain("a@x.broken.test"), SPFTempError, "", DMARCTempError, true},
		{"a domain without DMARC", "192.0.2.7", "mx.example.org", "a@example.net", plain("a@example.net"), SPFFail, "", DMARCNone, true},
		{"and again", "192.0.2.7", "mx.example.org", "a@example.net", plain("a@example.net"), SPFFail, "", DMARCNone, false},
	}
	check := func(c *Checker, ip, helo, from string, msg []byte) (Results, DMARC) {
		ctx := context.Background()
		addr := netip.MustParseAddr(ip)
		r := Results{SPF: []SPF{c.CheckHELO(ctx, addr, helo), c.CheckMailFrom(ctx, addr, helo, from)}}
		var err error
		if r.DKIM, err = c.VerifyDKIM(ctx, bytes.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		fd, ferr := FromDomain(msg)
		return r, c.CheckDMARC(ctx, fd, ferr, r.SPF[1], r.DKIM)
	}
	cached := New(resolver.New([]string{d.Addr}, time.Second).WithCache(100))
	uncached := New(resolver.New([]string{d.Addr}, time.Second))
	for _, tt := range tests {
		before := d.Total()
		r, dm := check(cached, tt.ip, tt.helo, tt.from, tt.msg)
		if n := d.Total() - before; (n > 0) != tt.asks {
			t.Errorf("%s: %d queries, want asked %v", tt.what, n, tt.asks)
		}
		var dk string
		if len(r.DKIM) > 0 {
			dk = r.DKIM[0].Result
		}
		if r.SPF[1].Result != tt.spf || dk != tt.dkim || dm.Result != tt.dmarc {
			t.Errorf("%s: SPF %s, DKIM %q, DMARC %s (%s); want %s, %q, %s", tt.what, r.SPF[1].Result, dk, dm.Result, dm.Reason, tt.spf, tt.dkim, tt.dmarc)
		}
		if r.SPF[0].Result != SPFPass {
			t.Errorf("%s: HELO %+v", tt.what, r.SPF[0])
		}
		// The same results as without a cache.
		ur, udm := check(uncached, tt.ip, tt.helo, tt.from, tt.msg)
		if !reflect.DeepEqual(r, ur) || !reflect.DeepEqual(dm, udm) {
			t.Errorf("%s: with the cache\n%+v %+v\nwithout\n%+v %+v", tt.what, r, dm, ur, udm)
		}
	}
}
