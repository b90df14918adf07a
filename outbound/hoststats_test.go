package outbound_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/outbound"
)

// TestHostStats: the gauges count the spool's recipients not final by
// destination, whatever is in memory (deliveries are suspended here), and
// HostRoute plans as a connection would.
func TestHostStats(t *testing.T) {
	g := newGateway(t, setup{
		zone:  append(mxZone("d.test", "127.0.0.2", "127.0.0.3"), "nx.test. 60 IN TXT \"no mail\""),
		yaml:  deliveryYAML(2525, "") + `routes: [{domain: .r.test, hosts: [{host: 127.0.0.9, port: 26, priority: 20}, {host: relay.r.test, port: 25, priority: 10}]}]` + "\n",
		tweak: func(d *config.Delivery) { d.Suspended = true },
	})
	first := g.message("alice@gw.test", "a@d.test", "b@D.test", "c@x.r.test")
	g.message("alice@gw.test", "d@y.r.test")

	q := g.m.QueueGauges()
	if q.Active != 4 || q.Unattempted != 4 || q.Attempted != 0 || q.OldestMID != first || q.Oldest.IsZero() {
		t.Errorf("queue gauges: %+v", q)
	}
	byName := map[string]outbound.HostGauges{}
	for _, h := range g.m.HostGauges("") {
		byName[h.Name] = h
	}
	if len(byName) != 2 || byName["d.test"].Active != 2 || byName[".r.test"].Active != 2 || byName[".r.test"].OldestMID != first {
		t.Errorf("host gauges: %+v", byName)
	}
	if one := g.m.HostGauges(".r.test"); len(one) != 1 || one[0].Active != 2 {
		t.Errorf("host gauges of .r.test: %+v", one)
	}
	if d := g.m.Destination("X.R.test"); d != ".r.test" {
		t.Errorf("destination of X.R.test: %q", d)
	}

	ctx := context.Background()
	if r := g.m.HostRoute(ctx, "D.test"); r.Route != "" || r.Destination != "d.test" ||
		!reflect.DeepEqual(r.Hosts, []string{"mx1.d.test", "mx2.d.test"}) ||
		!reflect.DeepEqual(r.Addresses, []string{"127.0.0.2:2525", "127.0.0.3:2525"}) || r.Error != "" {
		t.Errorf("route of d.test: %+v", r)
	}
	// relay.r.test does not resolve: the route's hosts by priority, the
	// address that does.
	if r := g.m.HostRoute(ctx, "x.r.test"); r.Route != ".r.test" ||
		!reflect.DeepEqual(r.Hosts, []string{"relay.r.test:25", "127.0.0.9:26"}) ||
		!reflect.DeepEqual(r.Addresses, []string{"127.0.0.9:26"}) {
		t.Errorf("route of x.r.test: %+v", r)
	}
	if r := g.m.HostRoute(ctx, "nx.test"); len(r.Addresses) != 0 || !strings.Contains(r.Error, "NXDomain") {
		t.Errorf("route of nx.test: %+v", r)
	}
}
