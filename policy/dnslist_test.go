package policy

import (
	"net/netip"
	"slices"
	"testing"
)

// dnslistHAT has an allow list (a DNSWL) before the block lists, as an
// administrator writes it: the first match wins, so a client on both is
// accepted.
func dnslistHAT(t testing.TB) *HAT {
	return &HAT{
		Groups: []SenderGroup{
			{Name: "RELAY_SG", Rules: rules(t, "127.0.0.1"), Policy: "RELAYED"},
			{Name: "ALLOWED", Rules: rules(t, "dnslist[list.dnswl.test:127.0.10.0/24]"), Policy: "ACCEPTED"},
			{Name: "BLOCKED", Rules: rules(t, "dnslist[zen.bl.test:127.0.0.2-127.0.0.9]", "10.9.9.9"), Policy: "REFUSE"},
			{Name: "SUSPECT", Rules: rules(t, "dnslist[zen.bl.test:127.0.0.10-127.0.0.11]", "dnslist[other.bl.test]"), Policy: "THROTTLED"},
			{Name: "PARTNER", Rules: rules(t, "mx.partner.test", "dnslist[list.dnswl.test]"), Policy: "ACCEPTED"},
		},
		Policies: map[string]*Policy{
			"RELAYED":   {Name: "RELAYED", Action: Relay, TLS: TLSPreferred},
			"ACCEPTED":  {Name: "ACCEPTED", Action: Accept, TLS: TLSPreferred},
			"THROTTLED": {Name: "THROTTLED", Action: Accept, TLS: TLSPreferred},
			"REFUSE":    {Name: "REFUSE", Action: TCPRefuse, TLS: TLSOff},
		},
		Default: "ACCEPTED",
	}
}

func answers(c Client, zone string, codes ...string) Client {
	if c.DNSLists == nil {
		c.DNSLists = map[string][]netip.Addr{}
	}
	c.DNSLists[zone] = nil
	for _, a := range codes {
		c.DNSLists[zone] = append(c.DNSLists[zone], netip.MustParseAddr(a))
	}
	return c
}

func TestHATDecideDNSList(t *testing.T) {
	h := dnslistHAT(t)
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                string
		client              Client
		group, rule, policy string
		zone, code          string // Decision.DNSList
	}{
		{"listed", answers(ip("192.0.2.1"), "zen.bl.test", "127.0.0.2"),
			"BLOCKED", "dnslist[zen.bl.test:127.0.0.2-127.0.0.9]", "REFUSE", "zen.bl.test", "127.0.0.2"},
		{"IPv6 listed", answers(ip("2001:db8::1"), "zen.bl.test", "127.0.0.4"),
			"BLOCKED", "dnslist[zen.bl.test:127.0.0.2-127.0.0.9]", "REFUSE", "zen.bl.test", "127.0.0.4"},
		{"second code counts", answers(ip("192.0.2.1"), "zen.bl.test", "127.0.0.1", "127.0.0.3"),
			"BLOCKED", "dnslist[zen.bl.test:127.0.0.2-127.0.0.9]", "REFUSE", "zen.bl.test", "127.0.0.3"},
		{"other code, other group", answers(ip("192.0.2.1"), "zen.bl.test", "127.0.0.10"),
			"SUSPECT", "dnslist[zen.bl.test:127.0.0.10-127.0.0.11]", "THROTTLED", "zen.bl.test", "127.0.0.10"},
		{"code outside every range", answers(ip("192.0.2.1"), "zen.bl.test", "127.0.0.12"),
			"None", "ALL", "ACCEPTED", "", ""},
		{"not listed", answers(ip("192.0.2.1"), "zen.bl.test"),
			"None", "ALL", "ACCEPTED", "", ""},
		{"list did not answer", ip("192.0.2.1"),
			"None", "ALL", "ACCEPTED", "", ""},
		{"allow list first", answers(answers(ip("192.0.2.1"), "zen.bl.test", "127.0.0.2"), "list.dnswl.test", "127.0.10.3"),
			"ALLOWED", "dnslist[list.dnswl.test:127.0.10.0/24]", "ACCEPTED", "list.dnswl.test", "127.0.10.3"},
		{"allow list with a code it does not count", answers(answers(ip("192.0.2.1"), "zen.bl.test", "127.0.0.2"), "list.dnswl.test", "127.0.11.3"),
			"BLOCKED", "dnslist[zen.bl.test:127.0.0.2-127.0.0.9]", "REFUSE", "zen.bl.test", "127.0.0.2"},
		{"address rule in the same group", ip("10.9.9.9"),
			"BLOCKED", "10.9.9.9", "REFUSE", "", ""},
		{"relay client", answers(ip("127.0.0.1"), "zen.bl.test", "127.0.0.2"),
			"RELAY_SG", "127.0.0.1", "RELAYED", "", ""},
	}
	for _, tt := range tests {
		d := h.Decide(tt.client)
		if d.Group != tt.group || d.Rule != tt.rule || d.Policy.Name != tt.policy {
			t.Errorf("%s: Decide = SG %s match %s (%s), want SG %s match %s (%s)", tt.name, d.Group, d.Rule, d.Policy.Name, tt.group, tt.rule, tt.policy)
		}
		var want ListMatch
		if tt.zone != "" {
			want = ListMatch{Zone: tt.zone, Code: netip.MustParseAddr(tt.code)}
		}
		if d.DNSList != want {
			t.Errorf("%s: Decision.DNSList = %+v, want %+v", tt.name, d.DNSList, want)
		}
	}
}

func TestHATDNSListsFor(t *testing.T) {
	h := dnslistHAT(t)
	all := []string{"list.dnswl.test", "zen.bl.test", "other.bl.test"}
	if got := h.DNSLists(); !slices.Equal(got, all) {
		t.Errorf("DNSLists() = %q, want %q", got, all)
	}
	for _, tt := range []struct {
		client Client
		want   []string
	}{
		{ip("127.0.0.1"), nil}, // RELAY_SG, before any list
		{ip("10.9.9.9"), []string{"list.dnswl.test", "zen.bl.test"}}, // its rule comes after two lists
		{ip("192.0.2.1"), all},
		{host("192.0.2.1", "mx.partner.test", true), all}, // the name rule comes after every list
	} {
		if got := h.DNSListsFor(tt.client); !slices.Equal(got, tt.want) {
			t.Errorf("DNSListsFor(%v) = %q, want %q", tt.client.IP, got, tt.want)
		}
	}
	if got := testHAT(t).DNSLists(); got != nil {
		t.Errorf("a HAT without dnslist rules names %q", got)
	}
}

func TestHATDecided(t *testing.T) {
	h := dnslistHAT(t)
	pending := func(zones ...string) map[string]bool {
		m := map[string]bool{}
		for _, z := range zones {
			m[z] = true
		}
		return m
	}
	allowed := answers(ip("192.0.2.1"), "list.dnswl.test", "127.0.10.1")
	blocked := answers(answers(ip("192.0.2.1"), "list.dnswl.test"), "zen.bl.test", "127.0.0.2")
	for _, tt := range []struct {
		name    string
		client  Client
		pending map[string]bool
		want    bool
	}{
		{"relay client, nothing answered", ip("127.0.0.1"), pending("list.dnswl.test", "zen.bl.test", "other.bl.test"), true},
		{"first list out", ip("192.0.2.1"), pending("list.dnswl.test", "zen.bl.test", "other.bl.test"), false},
		{"allow-listed, the block lists out", allowed, pending("zen.bl.test", "other.bl.test"), true},
		{"blocked, a later list out", blocked, pending("other.bl.test"), true},
		{"blocked, but the allow list out", answers(ip("192.0.2.1"), "zen.bl.test", "127.0.0.2"), pending("list.dnswl.test", "other.bl.test"), false},
		// 10.9.9.9 is in BLOCKED after zen.bl.test's rule: that one first.
		{"address rule after a list out", ip("10.9.9.9"), pending("zen.bl.test"), false},
		{"address rule, the lists before it answered", answers(answers(ip("10.9.9.9"), "list.dnswl.test"), "zen.bl.test"), pending("other.bl.test"), true},
		{"not listed, a list out", answers(answers(ip("192.0.2.1"), "list.dnswl.test"), "zen.bl.test"), pending("other.bl.test"), false},
		{"all answered", ip("192.0.2.1"), pending(), true},
	} {
		if got := h.Decided(tt.client, tt.pending); got != tt.want {
			t.Errorf("%s: Decided = %v, want %v", tt.name, got, tt.want)
		}
	}
}
