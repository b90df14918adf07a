package policy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// ip makes an unverified client with no host name.
func ip(s string) Client { return Client{IP: netip.MustParseAddr(s)} }

// host makes a client with a host name, verified or not.
func host(addr, name string, verified bool) Client {
	return Client{IP: netip.MustParseAddr(addr), Host: name, Verified: verified}
}

// listed makes a client with the answers of one DNS list.
func listed(addr, zone string, codes ...string) Client {
	c := ip(addr)
	c.DNSLists = map[string][]netip.Addr{zone: nil}
	for _, a := range codes {
		c.DNSLists[zone] = append(c.DNSLists[zone], netip.MustParseAddr(a))
	}
	return c
}

func TestRuleMatch(t *testing.T) {
	tests := []struct {
		rule  string
		match []Client
		miss  []Client
	}{
		{"10.1.1.1",
			[]Client{ip("10.1.1.1"), ip("::ffff:10.1.1.1")},
			[]Client{ip("10.1.1.2"), ip("10.1.1.0"), ip("::1"), ip("::10.1.1.1"), {}}},
		{"::1",
			[]Client{ip("::1"), ip("0:0:0:0:0:0:0:1")},
			[]Client{ip("127.0.0.1"), ip("::2")}},
		{"fe80::1",
			[]Client{ip("fe80::1"), ip("fe80::1%eth0")},
			[]Client{ip("fe80::2")}},
		{"10.1.0.0/16",
			[]Client{ip("10.1.0.0"), ip("10.1.255.255"), ip("::ffff:10.1.2.3")},
			[]Client{ip("10.2.0.0"), ip("10.0.255.255"), ip("2001:db8::1")}},
		{"2001:db8::/32",
			[]Client{ip("2001:db8::"), ip("2001:db8::1"), ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")},
			[]Client{ip("2001:db9::"), ip("2001:db7:ffff::1"), ip("10.0.0.1")}},
		{"0.0.0.0/0",
			[]Client{ip("0.0.0.0"), ip("255.255.255.255"), ip("::ffff:1.2.3.4")},
			[]Client{ip("::1"), ip("2001:db8::1")}},
		{"::/0",
			[]Client{ip("::"), ip("2001:db8::1"), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
			[]Client{ip("10.0.0.1"), ip("::ffff:10.0.0.1")}},
		{"::ffff:10.0.0.0/104",
			[]Client{ip("10.1.2.3"), ip("::ffff:10.255.0.1")},
			[]Client{ip("11.0.0.1"), ip("2001:db8::1")}},
		{"::ffff:192.0.2.1",
			[]Client{ip("192.0.2.1"), ip("::ffff:192.0.2.1")},
			[]Client{ip("192.0.2.2")}},
		{"10.1.1.10-20",
			[]Client{ip("10.1.1.10"), ip("10.1.1.15"), ip("10.1.1.20"), ip("::ffff:10.1.1.11")},
			[]Client{ip("10.1.1.9"), ip("10.1.1.21"), ip("10.1.2.15"), ip("10.2.1.15")}},
		{"10.1.1.10-10",
			[]Client{ip("10.1.1.10")},
			[]Client{ip("10.1.1.11"), ip("10.1.1.9")}},
		{"10.1.1.10-10.1.2.20",
			[]Client{ip("10.1.1.10"), ip("10.1.1.255"), ip("10.1.2.0"), ip("10.1.2.20")},
			[]Client{ip("10.1.1.9"), ip("10.1.2.21"), ip("10.1.3.0")}},
		{"2001:db8::1-2001:db8::ff",
			[]Client{ip("2001:db8::1"), ip("2001:db8::80"), ip("2001:db8::ff")},
			[]Client{ip("2001:db8::"), ip("2001:db8::100"), ip("0.0.0.1")}},
		{"10.2.3",
			[]Client{ip("10.2.3.0"), ip("10.2.3.255")},
			[]Client{ip("10.2.4.0"), ip("10.2.2.255"), ip("10.20.3.1")}},
		{"10.2.3.",
			[]Client{ip("10.2.3.0"), ip("10.2.3.7")},
			[]Client{ip("10.2.4.0")}},
		{"10.2",
			[]Client{ip("10.2.0.0"), ip("10.2.255.255")},
			[]Client{ip("10.3.0.0"), ip("10.1.255.255")}},
		{"10.",
			[]Client{ip("10.0.0.0"), ip("10.255.255.255")},
			[]Client{ip("11.0.0.0"), ip("9.255.255.255")}},
		{"mx.partner.net",
			[]Client{host("192.0.2.1", "mx.partner.net", true), host("192.0.2.1", "MX.Partner.NET.", true)},
			[]Client{host("192.0.2.1", "mx.partner.net", false), host("192.0.2.1", "a.mx.partner.net", true),
				host("192.0.2.1", "partner.net", true), host("192.0.2.1", "mx.partner.net.evil", true), ip("192.0.2.1")}},
		{"MX.Partner.net.",
			[]Client{host("2001:db8::1", "mx.partner.net", true)},
			[]Client{host("2001:db8::1", "mx2.partner.net", true)}},
		{"exa_mple.com",
			[]Client{host("192.0.2.1", "exa_mple.com", true)},
			[]Client{host("192.0.2.1", "example.com", true)}},
		{".example.com",
			[]Client{host("192.0.2.1", "a.example.com", true), host("192.0.2.1", "b.a.EXAMPLE.com.", true)},
			[]Client{host("192.0.2.1", "example.com", true), host("192.0.2.1", "badexample.com", true),
				host("192.0.2.1", "a.example.com", false), host("192.0.2.1", "a.example.com.au", true), ip("192.0.2.1")}},
		{".example.com.",
			[]Client{host("192.0.2.1", "mx.example.com", true)},
			[]Client{host("192.0.2.1", "example.com", true)}},
		{"ALL",
			[]Client{ip("10.0.0.1"), ip("::1"), host("192.0.2.1", "a.example.com", false), {}},
			nil},
		{"all",
			[]Client{ip("10.0.0.1")},
			nil},
		// Without codes: any answer in 127.0.0.0/8 but Spamhaus's error
		// codes (127.255.255.x), whatever the client's family.
		{"dnslist[zen.spamhaus.org]",
			[]Client{listed("192.0.2.1", "zen.spamhaus.org", "127.0.0.2"), listed("2001:db8::1", "zen.spamhaus.org", "127.0.0.4"),
				listed("192.0.2.1", "zen.spamhaus.org", "127.0.0.0"), listed("192.0.2.1", "zen.spamhaus.org", "127.255.254.255"),
				listed("192.0.2.1", "zen.spamhaus.org", "::ffff:127.0.0.10"),
				listed("192.0.2.1", "zen.spamhaus.org", "127.255.255.254", "127.0.0.3")},
			[]Client{ip("192.0.2.1"), listed("192.0.2.1", "zen.spamhaus.org"), listed("192.0.2.1", "zen.spamhaus.org", "127.255.255.254"),
				listed("192.0.2.1", "zen.spamhaus.org", "127.255.255.0"), listed("192.0.2.1", "zen.spamhaus.org", "126.255.255.255"),
				listed("192.0.2.1", "zen.spamhaus.org", "128.0.0.0"), listed("192.0.2.1", "zen.spamhaus.org", "198.51.100.1"),
				listed("192.0.2.1", "bl.example.org", "127.0.0.2")}},
		{"DNSList[Zen.Spamhaus.ORG.]",
			[]Client{listed("192.0.2.1", "zen.spamhaus.org", "127.0.0.2")},
			[]Client{listed("192.0.2.1", "zen.spamhaus.org.", "127.0.0.2")}},
		{"dnslist[zen.spamhaus.org:127.0.0.2-127.0.0.11]",
			[]Client{listed("192.0.2.1", "zen.spamhaus.org", "127.0.0.2"), listed("192.0.2.1", "zen.spamhaus.org", "127.0.0.11"),
				listed("192.0.2.1", "zen.spamhaus.org", "127.0.0.1", "127.0.0.5")},
			[]Client{listed("192.0.2.1", "zen.spamhaus.org", "127.0.0.1"), listed("192.0.2.1", "zen.spamhaus.org", "127.0.0.12"),
				listed("192.0.2.1", "zen.spamhaus.org", "127.0.1.2")}},
		{"dnslist[list.dnswl.org: 127.0.0.0-10 , 127.0.15.0/30]",
			[]Client{listed("192.0.2.1", "list.dnswl.org", "127.0.0.10"), listed("192.0.2.1", "list.dnswl.org", "127.0.15.3")},
			[]Client{listed("192.0.2.1", "list.dnswl.org", "127.0.0.11"), listed("192.0.2.1", "list.dnswl.org", "127.0.15.4")}},
		{"dnslist[bl.example.org:127.0.0.2]",
			[]Client{listed("::1", "bl.example.org", "127.0.0.2")},
			[]Client{listed("::1", "bl.example.org", "127.0.0.3")}},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.rule)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.rule, err)
			continue
		}
		if r.String() != tt.rule {
			t.Errorf("ParseRule(%q).String() = %q", tt.rule, r.String())
		}
		for _, c := range tt.match {
			if !r.Match(c) {
				t.Errorf("rule %q does not match %+v", tt.rule, c)
			}
		}
		for _, c := range tt.miss {
			if r.Match(c) {
				t.Errorf("rule %q matches %+v", tt.rule, c)
			}
		}
	}
}

func TestParseRuleTrimsSpace(t *testing.T) {
	r, err := ParseRule("  10.1.1.0/24 ")
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != "10.1.1.0/24" {
		t.Errorf("String() = %q, want the entry without the spaces", r.String())
	}
}

func TestParseRuleErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `invalid rule "": empty`},
		{"   ", `invalid rule "": empty`},
		{".", `invalid rule ".": empty host name`},
		{"..", "empty host name"},
		{"10.0.0.0/33", `invalid rule "10.0.0.0/33": prefix length 33 is beyond 32 for IPv4`},
		{"10.1.1.20-10", `invalid rule "10.1.1.20-10": range end 10 is below its start 10.1.1.20`},
		{"10.1.2.1-10.1.1.1", "range end 10.1.1.1 is below its start 10.1.2.1"},
		{"300.1.1.1", `invalid rule "300.1.1.1": octet 300 is out of range (0-255)`},
		{"1.2.3.1000", "octet 1000 is out of range"},
		{"exa mple.com", `invalid rule "exa mple.com": invalid character ' ' in host name`},
		{"ex@mple.com", `invalid character '@' in host name`},
		{"10.1.1.1/24", "host bits are set (the network is 10.1.1.0/24)"},
		{"2001:db8::1/32", "host bits are set (the network is 2001:db8::/32)"},
		{"10.1.1.1.", "a full address cannot end with a dot"},
		{"10..1.1", "empty octet"},
		{"1.2.3.4.5", "more than four octets"},
		{"010.1.1.1", `octet "010" has a leading zero`},
		{"10.1.1.1-10.1.1", `range end: "10.1.1" is not an IPv4 address (four octets)`},
		{"10.1.1.5-256", "range end: octet 256 is out of range"},
		{"10.1.1.10-", "range end: empty octet"},
		{"-10.1.1.1", `range start: "" is not an IPv4 address`},
		{"10.1.1-5", `range start: "10.1.1" is not an IPv4 address`},
		{"10.1.1.1-2-3", `range end: octet "2-3" is not a number`},
		{"10.1.1.0/", `prefix length "" is not a number`},
		{"10.1.1.0/+8", `prefix length "+8" is not a number`},
		{"10.1.1.0/8/8", `prefix length "8/8" is not a number`},
		{"2001:db8::/129", "prefix length out of range"},
		{"2001:db8::zz", "2001:db8::zz"},
		{"fe80::1%eth0", "zoned IPv6 addresses cannot be matched"},
		{"::1-10.0.0.1", "range mixes IPv4 and IPv6"},
		{"::ff-::1", "range end ::1 is below its start ::ff"},
		{"*.example.com", "wildcards are not supported"},
		{"sbrs[-10.0:-3.0]", "SenderBase reputation rules are not supported"},
		{"dnslist[zen.spamhaus.org", `a DNS list rule ends with "]"`},
		{"dnslist[]", "DNS list zone: empty host name"},
		{"dnslist[localhost]", `DNS list zone "localhost" is not a domain name`},
		{"dnslist[zen spamhaus.org]", "invalid character ' ' in host name"},
		{"dnslist[zen.spamhaus.org:]", "empty DNS list code"},
		{"dnslist[zen.spamhaus.org:127.0.0.2,]", "empty DNS list code"},
		{"dnslist[zen.spamhaus.org:127.0.0.300]", `DNS list code "127.0.0.300": octet 300 is out of range`},
		{"dnslist[zen.spamhaus.org:127.0.0.11-2]", "range end 2 is below its start 127.0.0.11"},
		{"dnslist[zen.spamhaus.org:::1]", "the codes are IPv4 addresses (A records)"},
		{"..example.com", "empty label in host name"},
		{"a..example.com", "empty label in host name"},
		{"münchen.de", "non-ASCII host name"},
		{strings.Repeat("a", 64) + ".com", "longer than 63 bytes"},
		{strings.Repeat("abcdefghi.", 26) + "com", "more than 253"},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.in)
		if err == nil {
			t.Errorf("ParseRule(%q) = %v, want an error containing %q", tt.in, r, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRule(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestRuleNeedsHostname(t *testing.T) {
	for _, tt := range []struct {
		rule string
		want bool
	}{
		{"10.1.1.1", false}, {"10.1", false}, {"::1", false}, {"ALL", false},
		{"mx.example.com", true}, {".example.com", true}, {"dnslist[bl.example.org]", false},
	} {
		r, err := ParseRule(tt.rule)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.NeedsHostname(); got != tt.want {
			t.Errorf("ParseRule(%q).NeedsHostname() = %v, want %v", tt.rule, got, tt.want)
		}
	}
}

func TestZeroRuleMatchesNothing(t *testing.T) {
	var r Rule
	for _, c := range []Client{ip("10.0.0.1"), ip("::1"), host("10.0.0.1", "a.example", true), {}} {
		if r.Match(c) {
			t.Errorf("zero Rule matches %+v", c)
		}
	}
}

// FuzzParseRule checks that any text either fails to parse or gives a rule
// that prints as the (trimmed) text, parses back to the same rule, and
// matches the clients at its own edges.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"10.1.1.1", "::1", "10.1.0.0/16", "2001:db8::/32", "10.1.1.10-20", "10.1.1.10-10.1.2.20",
		"10.2.3", "10.2.3.", "10.2", "mx.partner.net", ".example.com", "ALL", "10.0.0.0/33",
		"10.1.1.20-10", "300.1.1.1", "exa mple.com", ".", "", "::ffff:10.0.0.0/104", "::1-::ff",
		"sbrs[-1:1]", "fe80::1%lo", "dnslist[zen.spamhaus.org]", "dnslist[bl.example:127.0.0.2-127.0.0.11,127.0.1]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		if r.String() != strings.TrimSpace(s) {
			t.Fatalf("ParseRule(%q).String() = %q", s, r.String())
		}
		again, err := ParseRule(r.String())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("ParseRule(%q) = %+v, reparsed %+v, %v", s, r, again, err)
		}
		switch r.kind {
		case ruleAll:
		case ruleIP:
			if !r.lo.IsValid() || r.hi.Less(r.lo) || r.lo.Is4In6() || r.hi.Is4In6() || r.lo.BitLen() != r.hi.BitLen() {
				t.Fatalf("ParseRule(%q): bad range %v-%v", s, r.lo, r.hi)
			}
			if !r.Match(Client{IP: r.lo}) || !r.Match(Client{IP: r.hi}) {
				t.Fatalf("ParseRule(%q) does not match its own range %v-%v", s, r.lo, r.hi)
			}
		case ruleHost:
			if !r.Match(Client{Host: strings.ToUpper(r.name), Verified: true}) {
				t.Fatalf("ParseRule(%q) does not match its own name", s)
			}
		case ruleDomain:
			if !r.Match(Client{Host: "x" + r.name, Verified: true}) || r.Match(Client{Host: r.name[1:], Verified: true}) {
				t.Fatalf("ParseRule(%q): wrong matching of its own domain", s)
			}
		case ruleDNSList:
			if len(r.codes) == 0 || r.DNSList() != r.name || r.Match(Client{}) {
				t.Fatalf("ParseRule(%q): a DNS list rule without codes, or matching an unlisted client", s)
			}
			for _, cr := range r.codes {
				if !cr.lo.Is4() || !cr.hi.Is4() || cr.hi.Less(cr.lo) {
					t.Fatalf("ParseRule(%q): bad code range %v-%v", s, cr.lo, cr.hi)
				}
				for _, a := range []netip.Addr{cr.lo, cr.hi} {
					if !r.Match(Client{DNSLists: map[string][]netip.Addr{r.name: {a}}}) {
						t.Fatalf("ParseRule(%q) does not match its own code %v", s, a)
					}
				}
			}
		default:
			t.Fatalf("ParseRule(%q) gave kind %d", s, r.kind)
		}
	})
}

func BenchmarkRuleMatch(b *testing.B) {
	rules := []string{"10.1.1.1", "10.1.0.0/16", "2001:db8::/32", ".example.com"}
	c := host("::ffff:10.1.2.3", "mx.example.com", true)
	for _, s := range rules {
		r, err := ParseRule(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s, func(b *testing.B) {
			for b.Loop() {
				r.Match(c)
			}
		})
	}
}
