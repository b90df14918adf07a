package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func rules(t testing.TB, texts ...string) []Rule {
	t.Helper()
	var rs []Rule
	for _, s := range texts {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

// testHAT is ordered so that a later group overlaps an earlier one.
func testHAT(t testing.TB) *HAT {
	return &HAT{
		Groups: []SenderGroup{
			{Name: "RELAY_SG", Rules: rules(t, "127.0.0.1", "::1"), Policy: "RELAYED"},
			{Name: "BLOCKED_LIST", Rules: rules(t, "10.9.9.9", ".spam.example"), Policy: "BLOCKED"},
			{Name: "INTERNAL", Rules: rules(t, "10.0.0.0/8"), Policy: "TRUSTED"},
			{Name: "NEVER", Rules: rules(t, "10.1.0.0/16"), Policy: "BLOCKED"}, // shadowed by INTERNAL
			{Name: "EMPTY", Policy: "BLOCKED"},
			{Name: "PARTNER", Rules: rules(t, "mx.partner.net", "2001:db8::/32"), Policy: "TRUSTED"},
			{Name: "REFUSED", Rules: rules(t, "192.0.2.0/24"), Policy: "REFUSE"},
		},
		Policies: map[string]*Policy{
			"RELAYED":  {Name: "RELAYED", Action: Relay, TLS: TLSPreferred},
			"BLOCKED":  {Name: "BLOCKED", Action: Reject, TLS: TLSOff},
			"TRUSTED":  {Name: "TRUSTED", Action: Accept, TLS: TLSRequired},
			"ACCEPTED": {Name: "ACCEPTED", Action: Accept, TLS: TLSPreferred},
			"REFUSE":   {Name: "REFUSE", Action: TCPRefuse, TLS: TLSOff},
		},
		Default: "ACCEPTED",
	}
}

func TestHATDecide(t *testing.T) {
	h := testHAT(t)
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		client                    Client
		group, rule, policy, verb string
	}{
		{ip("127.0.0.1"), "RELAY_SG", "127.0.0.1", "RELAYED", "RELAY"},
		{ip("::ffff:127.0.0.1"), "RELAY_SG", "127.0.0.1", "RELAYED", "RELAY"},
		{ip("::1"), "RELAY_SG", "::1", "RELAYED", "RELAY"},
		// 10.9.9.9 is inside INTERNAL too, but BLOCKED_LIST comes first.
		{ip("10.9.9.9"), "BLOCKED_LIST", "10.9.9.9", "BLOCKED", "REJECT"},
		{host("10.9.9.8", "host.spam.example", true), "BLOCKED_LIST", ".spam.example", "BLOCKED", "REJECT"},
		// Unverified: the name rule is skipped, the address decides.
		{host("10.9.9.8", "host.spam.example", false), "INTERNAL", "10.0.0.0/8", "TRUSTED", "ACCEPT"},
		{ip("10.1.2.3"), "INTERNAL", "10.0.0.0/8", "TRUSTED", "ACCEPT"},
		{host("198.51.100.7", "mx.partner.net", true), "PARTNER", "mx.partner.net", "TRUSTED", "ACCEPT"},
		{host("198.51.100.7", "mx.partner.net", false), "None", "ALL", "ACCEPTED", "ACCEPT"},
		{ip("2001:db8::25"), "PARTNER", "2001:db8::/32", "TRUSTED", "ACCEPT"},
		{ip("192.0.2.99"), "REFUSED", "192.0.2.0/24", "REFUSE", "TCPREFUSE"},
		{ip("203.0.113.1"), "None", "ALL", "ACCEPTED", "ACCEPT"},
		{ip("2001:db9::1"), "None", "ALL", "ACCEPTED", "ACCEPT"},
	}
	for _, tt := range tests {
		d := h.Decide(tt.client)
		got := fmt.Sprintf("%s SG %s match %s (%s)", d.ESAAction(), d.Group, d.Rule, d.Policy.Name)
		want := fmt.Sprintf("%s SG %s match %s (%s)", tt.verb, tt.group, tt.rule, tt.policy)
		if got != want {
			t.Errorf("Decide(%+v) = %s, want %s", tt.client, got, want)
		}
	}
}

func TestHATNeedsHostname(t *testing.T) {
	ipOnly := &HAT{
		Groups:   []SenderGroup{{Name: "G", Rules: rules(t, "10.0.0.0/8", "::1", "ALL"), Policy: "P"}},
		Policies: map[string]*Policy{"P": {Action: Accept, BannerText: "$RemoteIP $Group $HATEntry $Hostnames"}},
		Default:  "P",
	}
	if ipOnly.NeedsHostname() {
		t.Error("a HAT of address rules and no $Hostname needs a host name")
	}
	if !testHAT(t).NeedsHostname() {
		t.Error("a HAT with .spam.example does not need a host name")
	}
	banner := &HAT{Policies: map[string]*Policy{"P": {Action: Reject, RejectText: "go away $HOSTNAME"}}, Default: "P"}
	if !banner.NeedsHostname() {
		t.Error("a HAT whose reject text uses $HOSTNAME does not need a host name")
	}
}

func TestHATValidate(t *testing.T) {
	h := &HAT{
		Groups: []SenderGroup{
			{Name: "A", Policy: "P"},
			{Name: "A", Policy: "P"},
			{Name: "none", Policy: "P"},
			{Name: "B", Policy: "MISSING"},
		},
		Policies: map[string]*Policy{
			"P": {Action: Accept, TLS: TLSOff},
			"Q": {Action: "continue", TLS: "sometimes"},
			"R": nil,
		},
		Default: "DEFAULT",
	}
	err := h.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken HAT")
	}
	want := []string{
		`default policy "DEFAULT" is not defined`,
		`sender group "A" is defined twice`,
		`sender group name "none" is reserved for the default policy`,
		`sender group "B": policy "MISSING" is not defined`,
		`policy "Q": action "continue" is not supported`,
		`policy "Q": unknown tls mode "sometimes"`,
		`policy "R" is nil`,
	}
	got := strings.Split(err.Error(), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Validate() =\n%s\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

func TestParseAction(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Action
		esa  string
	}{
		{"accept", Accept, "ACCEPT"}, {"RELAY", Relay, "RELAY"}, {"Reject", Reject, "REJECT"},
		{"tcprefuse", TCPRefuse, "TCPREFUSE"},
	} {
		a, err := ParseAction(tt.in)
		if err != nil || a != tt.want || a.ESA() != tt.esa {
			t.Errorf("ParseAction(%q) = %q (%s), %v; want %q (%s)", tt.in, a, a.ESA(), err, tt.want, tt.esa)
		}
	}
	for _, in := range []string{"", "continue", "deny", "accept "} {
		if a, err := ParseAction(in); err == nil {
			t.Errorf("ParseAction(%q) = %q, want an error", in, a)
		}
	}
}

func TestExpand(t *testing.T) {
	d := Decision{Group: "PARTNER", Rule: ".partner.net"}
	verified := host("::ffff:198.51.100.7", "mx.partner.net.", true)
	tests := []struct {
		text   string
		client Client
		want   string
	}{
		{"mail.example.com ESMTP", verified, "mail.example.com ESMTP"},
		{"$Group via $HATEntry from $RemoteIP ($Hostname) org $OrgID", verified,
			"PARTNER via .partner.net from 198.51.100.7 (mx.partner.net) org None"},
		{"$group $HOSTNAME $remoteip $hatentry", verified, "PARTNER mx.partner.net 198.51.100.7 .partner.net"},
		{"hello $Hostname", host("198.51.100.7", "mx.partner.net", false), "hello Unknown"},
		{"hello $Hostname", ip("198.51.100.7"), "hello None"},
		{"$Hostnames $Foo $ $$Group 100$", verified, "$Hostnames $Foo $ $PARTNER 100$"},
		{"$Group.$Group-$Group", verified, "PARTNER.PARTNER-PARTNER"},
		// A verified name can still hold anything its owner put in DNS.
		{"hi $Hostname", host("198.51.100.7", "evil\r\n250 ok\x00é", true), "hi evil??250 ok???"},
	}
	for _, tt := range tests {
		if got := Expand(tt.text, d, tt.client); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func BenchmarkHATDecide(b *testing.B) {
	h := testHAT(b)
	for _, c := range []Client{ip("127.0.0.1"), ip("203.0.113.1")} {
		b.Run(c.IP.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.Decide(c)
			}
		})
	}
}

func BenchmarkExpand(b *testing.B) {
	d := Decision{Group: "PARTNER", Rule: ".partner.net"}
	c := host("198.51.100.7", "mx.partner.net", true)
	b.ReportAllocs()
	for b.Loop() {
		Expand("$Hostname ESMTP ready for $Group ($RemoteIP)", d, c)
	}
}

// FuzzExpand checks that no host name a client can put in DNS gets a line
// break (or any byte that is not printable ASCII) into an expanded banner.
func FuzzExpand(f *testing.F) {
	f.Add("mx.example.com", "$Hostname ESMTP $Group")
	f.Add("evil\r\n250 ok", "hi $hostname")
	f.Fuzz(func(t *testing.T, name, text string) {
		for i := 0; i < len(text); i++ {
			if text[i] < ' ' || text[i] >= 0x7f {
				return // configured texts are checked by the config package
			}
		}
		c := Client{IP: netip.MustParseAddr("192.0.2.1"), Host: name, Verified: true}
		out := Expand(text, Decision{Group: "G", Rule: ".example.com"}, c)
		for i := 0; i < len(out); i++ {
			if out[i] < ' ' || out[i] >= 0x7f {
				t.Fatalf("Expand(%q) with host %q = %q", text, name, out)
			}
		}
	})
}
