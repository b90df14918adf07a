package mailauth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestAuthServID(t *testing.T) {
	for _, tt := range []struct{ v, want string }{
		{"mx.test; dkim=pass", "mx.test"},
		{"mx.test 1; spf=pass", "mx.test"},
		{"  (comment (nested)) mx.test;", "mx.test"},
		{`"mx.test"; none`, "mx.test"},
		{`"m\"x"; none`, `m"x`},
		{"mx.test", "mx.test"},
		{"(only a comment", ""},
		{"", ""},
	} {
		if got := AuthServID(tt.v); got != tt.want {
			t.Errorf("AuthServID(%q) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestStripAuthResults(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
		n              int
	}{
		{"ours", "Authentication-Results: mx.test; dkim=pass\r\nFrom: a\r\n\r\nbody\r\nAuthentication-Results: mx.test; x\r\n",
			"From: a\r\n\r\nbody\r\nAuthentication-Results: mx.test; x\r\n", 1},
		{"case and folding", "Subject: s\r\nauthentication-results:\r\n MX.Test;\r\n\tdmarc=pass\r\nFrom: a\r\n\r\n", "Subject: s\r\nFrom: a\r\n\r\n", 1},
		{"another host's stays", "Authentication-Results: other.test; spf=pass\r\n\r\n", "Authentication-Results: other.test; spf=pass\r\n\r\n", 0},
		{"a prefix of ours is not ours", "Authentication-Results: mx.test.evil; spf=pass\r\n\r\n", "Authentication-Results: mx.test.evil; spf=pass\r\n\r\n", 0},
		{"bare LF", "Authentication-Results: mx.test; a\nX: y\n\n", "X: y\n\n", 1},
		{"cut off at the end of the head", "X: y\r\nAuthentication-Results: mx.test; dkim=pa", "X: y\r\nAuthentication-Results: mx.test; dkim=pa", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, n := StripAuthResults([]byte(tt.in), "mx.test")
			if string(got) != tt.want || n != tt.n {
				t.Errorf("got %q (%d), want %q (%d)", got, n, tt.want, tt.n)
			}
		})
	}
}

// TestStripAuthResultsAllocs: a header without Authentication-Results
// fields, most messages', is walked without allocating.
func TestStripAuthResultsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	head := []byte("Received: from client.example.org (client.example.org [192.0.2.7])\r\n\tby mx.test with ESMTP id 42\r\n" +
		"From: Alice <a@example.org>\r\nTo: <b@example.net>\r\nSubject: a subject\r\n" +
		"Message-ID: <1@example.org>\r\n\r\nbody\r\n")
	if n := testing.AllocsPerRun(100, func() { StripAuthResults(head, "mx.test") }); n != 0 {
		t.Errorf("StripAuthResults allocates %v times", n)
	}
}

func TestUnfold(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{" mx.test; dkim=pass\r\n", "mx.test; dkim=pass"},
		{"\r\n MX.Test;\r\n\tdmarc=pass\r\n", "MX.Test;\tdmarc=pass"},
		{" a\n b\r c\n", "a b c"},
		{"\t\r\n", ""},
		{"x", "x"},
	} {
		if got := unfold([]byte(tt.raw)); got != tt.want {
			t.Errorf("unfold(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestFromDomain(t *testing.T) {
	for _, tt := range []struct {
		head, want string
		err        error
	}{
		{"From: Alice <a@Example.ORG>\r\n\r\n", "example.org", nil},
		{"From: a@example.org, b@example.org\r\n\r\n", "example.org", nil},
		{"From: a@example.org, b@example.net\r\n\r\n", "", ErrMultipleFrom},
		{"From: a@example.org\r\nFrom: a@example.org\r\n\r\n", "", ErrMultipleFrom},
		{"To: a@example.org\r\n\r\n", "", ErrNoFrom},
		{"From: \"broken <a@example.org>\r\n\r\n", "example.org", nil},
		{"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\n\r\n", "example.org", nil},
	} {
		got, err := FromDomain([]byte(tt.head))
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("FromDomain(%q) = %q, %v; want %q, %v", tt.head, got, err, tt.want, tt.err)
		}
	}
}

func TestOrgDomain(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"mail.example.com", "example.com"},
		{"a.b.example.co.uk", "example.co.uk"},
		{"example.com", "example.com"},
		{"co.uk", "co.uk"},
		{"Sub.Example.COM.", "example.com"},
	} {
		if got := OrgDomain(tt.in); got != tt.want {
			t.Errorf("OrgDomain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAligned(t *testing.T) {
	for _, tt := range []struct {
		auth, from string
		strict     bool
		want       bool
	}{
		{"example.com", "example.com", true, true},
		{"mail.example.com", "example.com", true, false},
		{"mail.example.com", "example.com", false, true},
		{"example.com", "news.example.com", false, true},
		{"example.net", "example.com", false, false},
		{"evil.co.uk", "example.co.uk", false, false},
		{"", "example.com", false, false},
	} {
		if got := aligned(tt.auth, tt.from, tt.strict); got != tt.want {
			t.Errorf("aligned(%q, %q, strict %v) = %v", tt.auth, tt.from, tt.strict, got)
		}
	}
}

func TestResultsRoundTrip(t *testing.T) {
	r := &Results{
		SPF:   []SPF{{Identity: IdentityMailFrom, Address: "a@example.org", Domain: "example.org", Result: SPFFail, Reason: "matched all"}},
		DKIM:  []DKIM{{Result: DKIMPass, Domain: "example.org", Selector: "s1", Identifier: "@example.org"}},
		DMARC: &DMARC{Result: DMARCFail, Domain: "example.org", Policy: PolicyReject, Applied: PolicyQuarantine},
	}
	b := r.Marshal()
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.DMARC == nil || *got.DMARC != *r.DMARC || got.SPF[0] != r.SPF[0] || got.DKIM[0] != r.DKIM[0] {
		t.Errorf("round trip gave %+v", got)
	}
	if !bytes.Contains(b, []byte(`"spf":`)) || !bytes.Contains(b, []byte(`"dkim":`)) || !bytes.Contains(b, []byte(`"dmarc":`)) {
		t.Errorf("the encoding lacks the tracking record's keys: %s", b)
	}
	if _, err := Unmarshal(append([]byte{9}, b[1:]...)); err == nil {
		t.Error("an unknown version was read")
	}
}

func TestAuthenticationResultsField(t *testing.T) {
	r := &Results{
		SPF: []SPF{{Identity: IdentityHELO, Address: "postmaster@mx.example.org", Result: SPFNone},
			{Identity: IdentityMailFrom, Address: "a@example.org", Result: SPFPass}},
		DKIM:  []DKIM{{Result: DKIMFail, Domain: "example.org", Selector: "s1", Identifier: "@example.org", Reason: "body hash did not verify"}},
		DMARC: &DMARC{Result: DMARCPass, Domain: "example.org", Policy: PolicyReject, SPFAligned: true},
	}
	want := "Authentication-Results: mx.test;\r\n" +
		"\tspf=none smtp.helo=mx.example.org;\r\n" +
		"\tspf=pass smtp.mailfrom=a@example.org;\r\n" +
		"\tdkim=fail reason=\"body hash did not verify\" header.d=example.org header.i=@example.org header.s=s1;\r\n" +
		"\tdmarc=pass header.from=example.org policy.dmarc=reject\r\n"
	if got := r.AuthenticationResults("mx.test"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := (&Results{}).AuthenticationResults("mx.test"); got != "Authentication-Results: mx.test; none\r\n" {
		t.Errorf("no results: %q", got)
	}
	rs := ReceivedSPF(r.SPF[1], "192.0.2.7", "mx.example.org", "mx.test")
	if !strings.HasPrefix(rs, "Received-SPF: Pass (mx.test: domain of a@example.org designates 192.0.2.7 as permitted sender)\r\n\t") ||
		!strings.HasSuffix(rs, "identity=mailfrom;\r\n") {
		t.Errorf("Received-SPF: %q", rs)
	}
}

// FuzzHeader: the parsers of what a client sends (the header's fields, the
// authserv-id, the From domain) never panic, and stripping removes only
// whole fields of our authserv-id.
func FuzzHeader(f *testing.F) {
	f.Add([]byte("Authentication-Results: mx.test; dkim=pass\r\nFrom: a@b.c\r\n\r\nbody"))
	f.Add([]byte("From: \"x\" <a@b.c>, (c) d@e.f\r\n folded\r\nAuthentication-Results: (x \\) \"mx.test\"\r\n\r\n"))
	f.Add([]byte("Authentication-Results:\n\tmx.test\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		out, n := StripAuthResults(head, "mx.test")
		if n == 0 && !bytes.Equal(out, head) {
			t.Fatalf("nothing stripped but the head changed")
		}
		if len(out) > len(head) {
			t.Fatalf("stripping grew the head")
		}
		if n > 0 {
			for sc := (fieldScanner{msg: out}); sc.next(); {
				if sc.is("Authentication-Results") && strings.EqualFold(AuthServID(unfold(sc.raw)), "mx.test") {
					t.Fatalf("a field of ours survived: %q", sc.raw)
				}
			}
		}
		FromDomain(head)
		selectors(head)
	})
}
