package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/policy"
)

// TestDNSLists: dnslist rules in sender groups, the DNS list keys, and the
// mistakes they can hold, each at its line.
func TestDNSLists(t *testing.T) {
	c := parseString(t, `
listeners:
  - name: L
    address: 127.0.0.1:0
    hat:
      sender_groups:
        - name: ALLOWED
          match: ["dnslist[list.dnswl.test:127.0.10.0/24]"]
          policy: ACCEPTED
        - name: BLOCKED_LIST
          match:
            - dnslist[zen.bl.test:127.0.0.2-127.0.0.11]
            - dnslist[other.bl.test]
          policy: BLOCKED
dns: {dnslist_timeout: 750ms, dnslist_cache_size: 0}
`)
	if c.DNS.ListTimeout != 750*time.Millisecond || c.DNS.ListCacheSize != 0 {
		t.Errorf("dns = %+v", c.DNS)
	}
	h := c.Listeners[0].HAT
	if got := strings.Join(h.DNSLists(), " "); got != "list.dnswl.test zen.bl.test other.bl.test" {
		t.Errorf("DNS lists %q", got)
	}
	listed := policy.Client{IP: netip.MustParseAddr("192.0.2.1"), DNSLists: map[string][]netip.Addr{
		"zen.bl.test": {netip.MustParseAddr("127.0.0.11")}, "list.dnswl.test": {netip.MustParseAddr("127.0.11.1")}}}
	if d := h.Decide(listed); d.ESAAction()+" SG "+d.Group+" match "+d.Rule != "REJECT SG BLOCKED_LIST match dnslist[zen.bl.test:127.0.0.2-127.0.0.11]" {
		t.Errorf("Decide = %s SG %s match %s", d.ESAAction(), d.Group, d.Rule)
	}

	for _, tt := range []struct{ yaml, want string }{
		{"dns:\n  timeout: 1s\n  dnslist_timeout: 0s\n", "test.yaml:3: dns.dnslist_timeout: duration 0s is below the minimum 1ms"},
		{"dns:\n  dnslist_cache_size: -1\n", "test.yaml:2: dns.dnslist_cache_size: -1 is below the minimum 0"},
		{"dns:\n  dnslist_cache_size: lots\n", "test.yaml:2: dns.dnslist_cache_size: want a whole number"},
		{"listeners:\n  - name: L\n    address: 127.0.0.1:0\n    hat:\n      sender_groups:\n        - name: G\n          policy: BLOCKED\n          match:\n            - 10.0.0.1\n            - dnslist[zen.bl.test:127.0.0.2-]\n",
			`test.yaml:10: listeners[0].hat.sender_groups[0].match[1]: invalid rule "dnslist[zen.bl.test:127.0.0.2-]": DNS list code "127.0.0.2-": range end: empty octet`},
		{"logs:\n  injection_debug:\n    - hosts:\n        - dnslist[zen.bl.test]\n",
			"test.yaml:4: logs.injection_debug[0].hosts[0]: DNS list rules are for sender groups only"},
	} {
		if got := problemsOf(t, tt.yaml).Error(); !strings.Contains(got, tt.want) {
			t.Errorf("problems\n%s\nwant %s", got, tt.want)
		}
	}
}
