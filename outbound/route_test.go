package outbound

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/mailgate/mailgate/config"
)

func TestRoutesLookup(t *testing.T) {
	rs := newRoutes([]config.Route{
		{Domain: "example.com"},
		{Domain: ".example.com"},
		{Domain: ".b.example.com"},
		{Domain: "ALL"},
	})
	cases := map[string]string{
		"example.com":     "example.com",
		"a.example.com":   ".example.com",
		"x.b.example.com": ".b.example.com", // the longest suffix
		"b.example.com":   ".example.com",   // ".b.example.com" is for its subdomains
		"other.org":       "ALL",
		"xexample.com":    "ALL", // a suffix, not a subdomain
	}
	for domain, want := range cases {
		if r := rs.lookup(domain); r == nil || r.Domain != want {
			t.Errorf("lookup(%s) = %v, want %s", domain, r, want)
		}
	}
	if r := newRoutes(nil).lookup("example.com"); r != nil {
		t.Errorf("no routes: lookup gave %v", r)
	}
}

func TestPlanRouteOrder(t *testing.T) {
	route := &config.Route{Domain: "ALL", Hosts: []config.RouteHost{
		{Host: "192.0.2.3", Port: 25, Priority: 20},
		{Host: "192.0.2.1", Port: 25, Priority: 10},
		{Host: "192.0.2.2", Port: 2525, Priority: 10},
	}}
	for rr, want := range []string{
		"[192.0.2.1:25 192.0.2.2:2525 192.0.2.3:25]",
		"[192.0.2.2:2525 192.0.2.1:25 192.0.2.3:25]",
		"[192.0.2.1:25 192.0.2.2:2525 192.0.2.3:25]",
	} {
		hops, err := planRoute(context.Background(), nil, route, uint32(rr))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hops {
			got = append(got, h.addr())
		}
		if fmt.Sprint(got) != want {
			t.Errorf("round %d: %v, want %s", rr, got, want)
		}
	}
}

func TestShuffleEqual(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		mxs := []*net.MX{{Host: "a", Pref: 10}, {Host: "b", Pref: 10}, {Host: "c", Pref: 20}, {Host: "d", Pref: 30}, {Host: "e", Pref: 30}}
		shuffleEqual(mxs)
		order := ""
		for _, m := range mxs {
			order += m.Host
		}
		if order[2] != 'c' || order[:2] != "ab" && order[:2] != "ba" || order[3:] != "de" && order[3:] != "ed" {
			t.Fatalf("order %s breaks preferences", order)
		}
		seen[order] = true
	}
	if len(seen) != 4 {
		t.Errorf("orders seen %v, want all 4", seen)
	}
}
