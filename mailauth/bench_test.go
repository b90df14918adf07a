package mailauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/resolver"
)

// BenchmarkChecks is the work of one message with every check on, against
// a DNS server on loopback: SPF of HELO and MAIL FROM, one RSA-2048 DKIM
// signature over a 4 KiB message, DMARC. It measures the checks, not a
// session (bench/receive.sh does that).
func BenchmarkChecks(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	p := base64.StdEncoding.EncodeToString(pub)
	d := smtptest.StartDNS(b,
		`example.org. 60 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`mx.example.org. 60 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`s1._domainkey.example.org. 60 IN TXT "v=DKIM1; k=rsa; p=`+p[:200]+`" "`+p[200:]+`"`,
		`_dmarc.example.org. 60 IN TXT "v=DMARC1; p=reject"`)
	var msg bytes.Buffer
	body := "From: <a@example.org>\r\nTo: <b@example.net>\r\nSubject: bench\r\n\r\n" + strings.Repeat("a line of a message body, 64 octets long..........................\r\n", 60)
	if err := dkim.Sign(&msg, strings.NewReader(body), &dkim.SignOptions{Domain: "example.org", Selector: "s1", Signer: key}); err != nil {
		b.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.7")
	ctx := context.Background()
	// uncached: every check asks the DNS server; cached: the resolver as
	// mailgate serve makes it (dns.cache_size), every answer kept after
	// the first message.
	for _, size := range []int{0, resolver.DefaultCacheSize} {
		name := "uncached"
		if size > 0 {
			name = "cached"
		}
		c := New(resolver.New([]string{d.Addr}, time.Second).WithCache(size))
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := Results{SPF: []SPF{c.CheckHELO(ctx, ip, "mx.example.org"), c.CheckMailFrom(ctx, ip, "mx.example.org", "a@example.org")}}
				var err error
				r.DKIM, err = c.VerifyDKIM(ctx, bytes.NewReader(msg.Bytes()))
				if err != nil || len(r.DKIM) != 1 || r.DKIM[0].Result != DKIMPass {
					b.Fatalf("DKIM %+v %v", r.DKIM, err)
				}
				from, ferr := FromDomain(msg.Bytes())
				dm := c.CheckDMARC(ctx, from, ferr, r.SPF[1], r.DKIM)
				if dm.Result != DMARCPass {
					b.Fatalf("DMARC %+v", dm)
				}
				_ = r.AuthenticationResults("mx.test")
			}
		})
	}
}

// BenchmarkStripAuthResults is the walk every received message's header
// gets (inbound strips forged results of ours before anything reads it).
func BenchmarkStripAuthResults(b *testing.B) {
	head := []byte("Received: from client.example.org (client.example.org [192.0.2.7])\r\n\tby mx.test with ESMTP id 42\r\n" +
		"From: Alice <a@example.org>\r\nTo: <b@example.net>\r\nSubject: a subject\r\nDate: Mon, 7 Dec 2026 14:00:00 +0000\r\n" +
		"Message-ID: <1@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + strings.Repeat("body\r\n", 100))
	b.ReportAllocs()
	for b.Loop() {
		StripAuthResults(head, "mx.test")
	}
}
