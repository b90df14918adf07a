package dkimsign_test

import (
	"bytes"
	"crypto"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/internal/smtptest"
)

// keys are made once: an RSA key takes a while under the race detector.
var keys = sync.OnceValue(func() map[string]crypto.Signer {
	m := map[string]crypto.Signer{}
	for name, spec := range map[string]struct {
		typ  string
		bits int
	}{"rsa2048": {"rsa", 2048}, "rsa1024": {"rsa", 1024}, "ed25519": {"ed25519", 0}} {
		k, _, err := dkimsign.GenerateKey(spec.typ, spec.bits)
		if err != nil {
			panic(err)
		}
		m[name] = k
	}
	return m
})

func profile(t testing.TB, name, domain, selector, key, canon string, users ...string) *dkimsign.Profile {
	h, b, _ := strings.Cut(canon, "/")
	if len(users) == 0 {
		users = []string{domain}
	}
	return &dkimsign.Profile{Name: name, Domain: domain, Selector: selector, Key: keys()[key],
		HeaderCanon: h, BodyCanon: b, Headers: dkimsign.DefaultHeaders, Oversign: dkimsign.DefaultOversign, Users: users}
}

// zone is the DNS records of profiles, made by Record as keygen prints
// them.
func zone(t testing.TB, ps ...*dkimsign.Profile) *smtptest.DNS {
	var rrs []string
	for _, p := range ps {
		rr, err := dkimsign.Record(p.Domain, p.Selector, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	return smtptest.StartDNS(t, rrs...)
}

// sign writes msg to a Message in pieces of chunk bytes and returns the
// result and the message as stored: the field first.
func sign(t testing.TB, x *dkimsign.Profiles, envFrom string, msg []byte, chunk int) (dkimsign.Result, []byte) {
	t.Helper()
	m := x.Sign(envFrom)
	for p := msg; len(p) > 0; {
		n := min(chunk, len(p))
		if k, err := m.Write(p[:n]); err != nil || k != n {
			t.Fatalf("Write = %d, %v", k, err)
		}
		p = p[n:]
	}
	res, err := m.Close()
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return res, append([]byte(res.Field), msg...)
}

const plain = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hello\r\n" +
	"Date: Mon, 07 Dec 2026 11:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello Bob.\r\n"

// folded has folded fields, spaces where relaxed canonicalization
// collapses them, and trailing blank lines that both forms drop.
const folded = "From: \"Alice\r\n Example\" <alice@example.com>\r\nTo: bob@example.org,\r\n\tcarol@example.org\r\n" +
	"Subject:   a  long\r\n  subject   folded \r\n\tthree times\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nline  with   spaces  \r\n\r\nend\r\n\r\n\r\n"

// big is a message of a few MiB, so that the body streams through in many
// writes.
func big() string {
	var b strings.Builder
	b.WriteString("From: alice@example.com\r\nSubject: big\r\n\r\n")
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "line %d of a big message, with a tab\tand  spaces \r\n", i)
	}
	return b.String()
}

// TestSignVerifies: what a Message signs verifies with dkimpy (the
// independent implementation, over DNS from the records Record makes) and
// with go-msgauth's verifier, for each key type, each canonicalization,
// folded headers, a message without a body and one of several MiB written
// in pieces of every size.
func TestSignVerifies(t *testing.T) {
	tests := []struct {
		name, key, canon, msg string
		chunk                 int
	}{
		{"rsa relaxed", "rsa2048", "relaxed/relaxed", plain, 1 << 20},
		{"rsa simple", "rsa2048", "simple/simple", plain, 1 << 20},
		{"rsa relaxed/simple folded", "rsa2048", "relaxed/simple", folded, 7},
		{"rsa simple/relaxed folded", "rsa2048", "simple/relaxed", folded, 1},
		{"rsa1024", "rsa1024", "relaxed/relaxed", plain, 3},
		{"ed25519 relaxed folded", "ed25519", "relaxed/relaxed", folded, 5},
		{"ed25519 simple", "ed25519", "simple/simple", plain, 64},
		{"no body", "rsa2048", "relaxed/relaxed", "From: alice@example.com\r\nSubject: empty\r\n", 4},
		{"empty body", "ed25519", "simple/simple", "From: alice@example.com\r\n\r\n", 4},
		{"big relaxed", "rsa2048", "relaxed/relaxed", big(), 65 << 10},
		{"big simple", "ed25519", "simple/simple", big(), 8191},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := profile(t, "example_com", "example.com", "s1", tt.key, tt.canon)
			x, err := dkimsign.New([]*dkimsign.Profile{p})
			if err != nil {
				t.Fatal(err)
			}
			dns := zone(t, p)
			res, signed := sign(t, x, "bounce@example.net", []byte(tt.msg), tt.chunk)
			if res.Outcome != dkimsign.Signed {
				t.Fatalf("outcome %q", res.Text())
			}
			if want := "signing with example_com - matches alice@example.com"; res.Text() != want {
				t.Errorf("line %q, want %q", res.Text(), want)
			}
			if ok, out := smtptest.DKIMVerify(t, dns.Addr, signed); !ok {
				t.Errorf("dkimpy: %s\n%s", out, res.Field)
			}
			if strings.Contains(tt.msg, "\r\n\r\n") {
				// go-msgauth's verifier reads no header without the
				// blank line; dkimpy does, as RFC 5322 allows.
				verifyGo(t, p, signed)
			}
			// The same message changed in transit fails: the check can.
			changed := bytes.Replace(signed, []byte("\r\n\r\n"), []byte("\r\n\r\nX"), 1)
			if !bytes.Contains(changed, []byte("\r\n\r\nX")) {
				changed = append(signed, "X\r\n"...)
			}
			if ok, out := smtptest.DKIMVerify(t, dns.Addr, changed); ok {
				t.Errorf("dkimpy verified a changed body: %s", out)
			}
		})
	}
}

// verifyGo verifies with go-msgauth, the key given directly.
func verifyGo(t *testing.T, p *dkimsign.Profile, msg []byte) {
	t.Helper()
	v, err := dkimsign.RecordValue(p.Key)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return []string{v}, nil }})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Errorf("go-msgauth: %v %+v", err, vs)
	}
}

// TestOversign: a field of the default oversign set added after signing
// breaks the signature, as does a second From; a field outside the signed
// set does not.
func TestOversign(t *testing.T) {
	p := profile(t, "example_com", "example.com", "s1", "ed25519", "relaxed/relaxed")
	x, err := dkimsign.New([]*dkimsign.Profile{p})
	if err != nil {
		t.Fatal(err)
	}
	dns := zone(t, p)
	_, signed := sign(t, x, "", []byte(plain), 100)
	field, rest, _ := strings.Cut(string(signed), "\r\n\r\n")
	if !strings.Contains(strings.Join(strings.Fields(field), ""), "h=from:from:") {
		t.Errorf("From is not oversigned:\n%s", field)
	}
	tests := []struct {
		name, add string
		ok        bool
	}{
		{"unsigned field", "X-Mailer: later\r\n", true},
		{"second From", "From: mallory@example.net\r\n", false},
		{"Cc where there was none", "Cc: mallory@example.net\r\n", false},
		{"second Subject", "Subject: buy now\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := field + "\r\n" + tt.add + "\r\n" + rest
			if ok, out := smtptest.DKIMVerify(t, dns.Addr, []byte(msg)); ok != tt.ok {
				t.Errorf("verified %v, want %v: %s", ok, tt.ok, out)
			}
		})
	}
}

// TestLookup: which profile signs, by which address, and the line for each
// outcome.
func TestLookup(t *testing.T) {
	com := profile(t, "example_com", "example.com", "s1", "ed25519", "relaxed/relaxed", "example.com", ".example.com")
	org := profile(t, "example_org", "example.org", "s1", "ed25519", "relaxed/relaxed")
	ceo := profile(t, "ceo", "ceo.example.com", "s1", "ed25519", "relaxed/relaxed", "ceo@example.com")
	x, err := dkimsign.New([]*dkimsign.Profile{com, org, ceo})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, envFrom, header, line string
		profile                     *dkimsign.Profile
	}{
		{"From's domain", "x@elsewhere.test", "From: a@example.com\r\n", "signing with example_com - matches a@example.com", com},
		{"second domain", "", "From: \"B\" <b@Example.ORG>\r\n", "signing with example_org - matches b@Example.ORG", org},
		{"subdomain", "", "From: c@mail.eu.example.com\r\n", "signing with example_com - matches c@mail.eu.example.com", com},
		{"address before domain", "", "From: CEO@example.com\r\n", "signing with ceo - matches CEO@example.com", ceo},
		{"envelope when no From", "d@example.org", "Subject: x\r\n", "signing with example_org - matches d@example.org", org},
		{"envelope when From matches nothing", "list@example.org", "From: e@elsewhere.test\r\n", "signing with example_org - matches list@example.org", org},
		{"first of several From", "", "From: f@example.org, g@example.com\r\n", "signing with example_org - matches f@example.org", org},
		{"unparsable From with brackets", "", "From: a \"b <h@example.com>\r\n", "signing with example_com - matches h@example.com", com},
		{"encoded display name", "", "From: =?koi8-r?B?98HTWQ==?= <i@example.com>\r\n", "signing with example_com - matches i@example.com", com},
		{"no profile", "x@elsewhere.test", "From: j@elsewhere.test\r\n", "cannot sign - no profile matches j@elsewhere.test", nil},
		{"not the parent domain of .example.com", "", "From: k@com\r\n", "cannot sign - no profile matches k@com", nil},
		{"no address", "", "Subject: nothing\r\n", "cannot sign - no identifiable sending address", nil},
		{"already signed by the domain", "", "DKIM-Signature: v=1; a=rsa-sha256; d=Example.com;\r\n s=x; b=abc\r\nFrom: l@example.com\r\n",
			"cannot sign - already signed", com},
		{"signed by another domain", "", "DKIM-Signature: v=1; d=example.net; s=x; b=abc\r\nFrom: m@example.com\r\n",
			"signing with example_com - matches m@example.com", com},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := sign(t, x, tt.envFrom, []byte(tt.header+"\r\nbody\r\n"), 9)
			if res.Text() != tt.line {
				t.Errorf("line %q, want %q", res.Text(), tt.line)
			}
			if res.Profile != tt.profile {
				t.Errorf("profile %v, want %v", res.Profile, tt.profile)
			}
			if (res.Field != "") != (res.Outcome == dkimsign.Signed) {
				t.Errorf("field %q with outcome %d", res.Field, res.Outcome)
			}
		})
	}
}

// TestNew refuses a user claimed by two profiles and a profile that does
// not sign From.
func TestNew(t *testing.T) {
	a := profile(t, "a", "example.com", "s1", "ed25519", "relaxed/relaxed")
	b := profile(t, "b", "example.net", "s1", "ed25519", "relaxed/relaxed", "EXAMPLE.com")
	b.Users = []string{"example.com"}
	if _, err := dkimsign.New([]*dkimsign.Profile{a, b}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("two profiles for example.com: %v", err)
	}
	c := profile(t, "c", "example.org", "s1", "ed25519", "relaxed/relaxed")
	c.Headers = []string{"Subject"}
	if _, err := dkimsign.New([]*dkimsign.Profile{c}); err == nil {
		t.Error("a profile that does not sign From was accepted")
	}
}

// TestHeaderTooLong: a header beyond MaxHeader is not held, nor signed.
func TestHeaderTooLong(t *testing.T) {
	p := profile(t, "a", "example.com", "s1", "ed25519", "relaxed/relaxed")
	x, err := dkimsign.New([]*dkimsign.Profile{p})
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: a@example.com\r\n" + strings.Repeat("X-Long: "+strings.Repeat("y", 990)+"\r\n", dkimsign.MaxHeader/1000+10) + "\r\nbody\r\n"
	res, _ := sign(t, x, "", []byte(msg), 4096)
	if res.Outcome != dkimsign.HeaderTooLong || res.Text() != "cannot sign - header too long" {
		t.Errorf("outcome %d %q", res.Outcome, res.Text())
	}
}

// TestAbort: a Message given up ends (its signer's goroutine with it) and
// then fails to Close.
func TestAbort(t *testing.T) {
	p := profile(t, "a", "example.com", "s1", "ed25519", "relaxed/relaxed")
	x, _ := dkimsign.New([]*dkimsign.Profile{p})
	m := x.Sign("")
	if _, err := m.Write([]byte(plain[:len(plain)-4])); err != nil {
		t.Fatal(err)
	}
	m.Abort()
	if res, err := m.Close(); err == nil || res.Outcome != dkimsign.Failed {
		t.Errorf("Close after Abort: %v %q", err, res.Text())
	}
}

// TestHeaderEndSplit: the blank line that ends the header is found however
// the writes cut it, so that the body streams through instead of being
// held as more header (which would end as HeaderTooLong).
func TestHeaderEndSplit(t *testing.T) {
	p := profile(t, "a", "example.com", "s1", "ed25519", "simple/simple")
	x, _ := dkimsign.New([]*dkimsign.Profile{p})
	head := "From: a@example.com\r\nSubject: split\r\n\r\n"
	body := strings.Repeat("a line of the body\r\n", dkimsign.MaxHeader/20+100)
	for cut := len(head) - 4; cut < len(head); cut++ {
		m := x.Sign("")
		for _, part := range []string{head[:cut], head[cut:] + body} {
			if _, err := m.Write([]byte(part)); err != nil {
				t.Fatal(err)
			}
		}
		res, err := m.Close()
		if err != nil || res.Outcome != dkimsign.Signed {
			t.Errorf("cut at %d of %d: %v %q", cut, len(head), err, res.Text())
			continue
		}
		verifyGo(t, p, []byte(res.Field+head+body))
	}
}

// TestNoFrom: a message without a From field, matched by its envelope
// sender, is signed with From in h= all the same (the signature then
// covers its absence), even by a profile that oversigns nothing.
func TestNoFrom(t *testing.T) {
	p := profile(t, "a", "example.com", "s1", "ed25519", "relaxed/relaxed")
	p.Oversign = nil
	x, _ := dkimsign.New([]*dkimsign.Profile{p})
	res, signed := sign(t, x, "a@example.com", []byte("Subject: no from\r\n\r\nbody\r\n"), 100)
	if res.Outcome != dkimsign.Signed {
		t.Fatalf("%q", res.Text())
	}
	if !strings.Contains(strings.Join(strings.Fields(res.Field), ""), "h=from:subject;") {
		t.Errorf("h= is not from:subject:\n%s", res.Field)
	}
	verifyGo(t, p, signed)
}
