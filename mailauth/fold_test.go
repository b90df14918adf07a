package mailauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/resolver"
)

// TestFoldedHeader: a header field folded over 100,000 lines (100 MB), or
// over 3,000 long lines, or 5,000 fields, is refused at once with ErrHeaderTooLarge, where the
// library would take minutes; a signed message with a To of 1,500
// addresses, one per line, or 1,900 fields of two lines, still verifies.
func TestFoldedHeader(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := smtptest.StartDNS(t, `s1._domainkey.example.org. 300 IN TXT "v=DKIM1; k=ed25519; p=`+base64.StdEncoding.EncodeToString(pub)+`"`)
	c := New(resolver.New([]string{d.Addr}, time.Second))
	sign := func(hdr string) []byte {
		var b bytes.Buffer
		if err := dkim.Sign(&b, strings.NewReader(hdr+"Subject: hi\r\n\r\nHello.\r\n"), &dkim.SignOptions{Domain: "example.org", Selector: "s1", Signer: key}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	var to, many strings.Builder
	to.WriteString("From: <a@example.org>\r\nTo: <r0@example.com>")
	for i := 1; i < 1500; i++ {
		to.WriteString(",\r\n <r" + strings.Repeat("x", 20) + "@example.com>")
	}
	to.WriteString("\r\n")
	many.WriteString("From: <a@example.org>\r\n")
	for range 1900 {
		many.WriteString("X-Many: " + strings.Repeat("y", 100) + "\r\n " + strings.Repeat("y", 100) + "\r\n")
	}
	huge := "From: <a@example.org>\r\nX-Folded: a" + strings.Repeat("\r\n "+strings.Repeat("z", 998), 100000) + "\r\n"

	for _, tt := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"To of 1,500 lines, signed", sign(to.String()), nil},
		{"1,900 fields of two lines, signed", sign(many.String()), nil},
		{"5,000 fields", []byte("From: <a@example.org>\r\n" + strings.Repeat("X-F: f\r\n", 5000) + "\r\nbody\r\n"), ErrHeaderTooLarge},
		{"a field of 100,000 lines", []byte(huge + "\r\nbody\r\n"), ErrHeaderTooLarge},
		// Within the lines, past the copies: 3 MB copied 3,000 times.
		{"a field of 3,000 lines of 1,000 bytes", []byte("From: <a@example.org>\r\nX-Folded: a" + strings.Repeat("\r\n "+strings.Repeat("z", 998), 3000) + "\r\n\r\nbody\r\n"), ErrHeaderTooLarge},
	} {
		start := time.Now()
		res, err := c.VerifyDKIM(context.Background(), bytes.NewReader(tt.msg))
		took := time.Since(start)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if tt.want == nil && (len(res) != 1 || res[0].Result != DKIMPass) {
			t.Errorf("%s: %+v, want one pass", tt.name, res)
		}
		if took > 10*time.Second {
			t.Errorf("%s: took %v", tt.name, took)
		}
		t.Logf("%s: %v", tt.name, took)
	}
}
