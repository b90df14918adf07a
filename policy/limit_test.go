package policy

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimiterCounts(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	aMapped := netip.MustParseAddr("::ffff:192.0.2.1")
	b := netip.MustParseAddr("2001:db8::1")
	var l Limiter
	var releases []func()
	type step struct {
		ip           netip.Addr
		perIP, total int
		ok           bool
		why          string
		fromIP, all  int // Count after the step
	}
	steps := []step{
		{a, 2, 3, true, "", 1, 1},
		{aMapped, 2, 3, true, "", 2, 2}, // the same host seen on a dual-stack socket
		{a, 2, 3, false, TooManyFromHost, 2, 2},
		{b, 2, 3, true, "", 1, 3},
		{b, 2, 3, false, TooManyToListener, 1, 3},
		{b, 0, 0, true, "", 2, 4}, // 0: no limit
	}
	for i, s := range steps {
		release, ok, why := l.Acquire(ClientKey(s.ip, 64), s.perIP, s.total)
		if ok != s.ok || why != s.why {
			t.Fatalf("step %d: Acquire(%v, %d, %d) = %v, %q; want %v, %q", i, s.ip, s.perIP, s.total, ok, why, s.ok, s.why)
		}
		if release == nil {
			t.Fatalf("step %d: nil release", i)
		}
		if ok {
			releases = append(releases, release)
		} else {
			release() // a no-op; must not disturb the counts
		}
		if fromIP, all := l.Count(ClientKey(s.ip, 64)); fromIP != s.fromIP || all != s.all {
			t.Fatalf("step %d: Count(%v) = %d, %d; want %d, %d", i, s.ip, fromIP, all, s.fromIP, s.all)
		}
	}
	releases[0]()
	releases[0]() // twice: counted once
	if fromIP, all := l.Count(ClientKey(a, 64)); fromIP != 1 || all != 3 {
		t.Fatalf("after release: Count = %d, %d; want 1, 3", fromIP, all)
	}
	if _, ok, _ := l.Acquire(ClientKey(a, 64), 2, 4); !ok {
		t.Fatal("a released slot cannot be acquired again")
	}
	for _, r := range releases {
		r()
	}
	if _, all := l.Count(ClientKey(a, 64)); all != 1 {
		t.Errorf("total = %d after releasing all but one", all)
	}
	if len(l.client) != 1 {
		t.Errorf("client map holds %d clients, want 1 (released ones removed)", len(l.client))
	}
}

// TestLimiterConcurrent hammers one Limiter from many goroutines and checks
// that the limits hold at every moment and that every count returns to zero.
func TestLimiterConcurrent(t *testing.T) {
	const (
		workers = 16
		rounds  = 2000
		perIP   = 3
		total   = 10
	)
	addrs := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("::ffff:192.0.2.2"), netip.MustParseAddr("2001:db8::1"),
	}
	var (
		l        Limiter
		live     atomic.Int64
		liveByIP [3]atomic.Int64 // addrs[1] and addrs[2] are the same host
		refused  atomic.Int64
		wg       sync.WaitGroup
	)
	slot := func(i int) int {
		switch i {
		case 0:
			return 0
		case 1, 2:
			return 1
		}
		return 2
	}
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				i := (w + r) % len(addrs)
				release, ok, _ := l.Acquire(ClientKey(addrs[i], 64), perIP, total)
				if !ok {
					refused.Add(1)
					continue
				}
				if n := live.Add(1); n > total {
					t.Errorf("%d live connections, limit %d", n, total)
				}
				if n := liveByIP[slot(i)].Add(1); n > perIP {
					t.Errorf("%d live connections from one host, limit %d", n, perIP)
				}
				liveByIP[slot(i)].Add(-1)
				live.Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	for _, a := range addrs {
		if fromIP, all := l.Count(ClientKey(a, 64)); fromIP != 0 || all != 0 {
			t.Errorf("Count(%v) = %d, %d after all connections ended", a, fromIP, all)
		}
	}
	if refused.Load() == 0 {
		t.Log("no acquisition was refused; the limits were not exercised this run")
	}
}

func BenchmarkLimiterAcquire(b *testing.B) {
	var l Limiter
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ip := ClientKey(netip.MustParseAddr("192.0.2.1"), 64)
		for pb.Next() {
			release, ok, _ := l.Acquire(ip, 0, 0)
			if ok {
				release()
			}
		}
	})
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		bits int
		want string
	}{
		{"192.0.2.1", 64, "192.0.2.1/32"},
		{"::ffff:192.0.2.1", 64, "192.0.2.1/32"}, // IPv4 on a dual-stack socket
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", 64, "2001:db8:1:2::/64"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"},
		{"::1", 64, "::/64"},
		{"::1", 0, "::1/128"}, // 0: each address alone
	} {
		if got := ClientKey(netip.MustParseAddr(tc.ip), tc.bits).String(); got != tc.want {
			t.Errorf("ClientKey(%s, %d) = %s, want %s", tc.ip, tc.bits, got, tc.want)
		}
	}
}

// Two addresses of one IPv6 /64 share the per-client limit; an address of
// the next /64 does not.
func TestLimiterIPv6Grouping(t *testing.T) {
	var l Limiter
	for i, tc := range []struct {
		ip string
		ok bool
	}{
		{"2001:db8:0:1::1", true},
		{"2001:db8:0:1::2", true},
		{"2001:db8:0:1:ffff:ffff:ffff:ffff", false},
		{"2001:db8:0:2::1", true},
	} {
		if _, ok, _ := l.Acquire(ClientKey(netip.MustParseAddr(tc.ip), DefaultIPv6ClientBits), 2, 0); ok != tc.ok {
			t.Errorf("step %d: Acquire(%s) ok = %v, want %v", i, tc.ip, ok, tc.ok)
		}
	}
}

func TestRates(t *testing.T) {
	var r Rates
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	m := time.Minute
	client := func(kind RateKind, ip string, max int) RateLimit {
		return RateLimit{RateKey{Kind: kind, Client: ClientKey(netip.MustParseAddr(ip), 64)}, max}
	}
	group := func(kind RateKind, name string, max int) RateLimit {
		return RateLimit{RateKey{Kind: kind, Group: name}, max}
	}
	a := func(max int) RateLimit { return client(RateConnections, "192.0.2.1", max) }
	b := func(max int) RateLimit { return client(RateConnections, "2001:db8::1", max) }
	b2 := func(max int) RateLimit { return client(RateConnections, "2001:db8::2", max) } // b's /64
	g := func(max int) RateLimit { return group(RateConnections, "L/SUSPECT", max) }
	type step struct {
		at      time.Duration // after t0
		count   bool
		limits  []RateLimit
		ok      bool
		refused RateLimit // when not ok
	}
	for i, s := range []step{
		{0, true, []RateLimit{a(2)}, true, RateLimit{}},
		{10 * time.Second, true, []RateLimit{a(2)}, true, RateLimit{}},
		{20 * time.Second, true, []RateLimit{a(2)}, false, a(2)}, // third in the minute
		{20 * time.Second, true, []RateLimit{b(2)}, true, RateLimit{}},
		{20 * time.Second, false, []RateLimit{client(RateRecipients, "192.0.2.1", 2)}, true, RateLimit{}}, // another kind
		{59 * time.Second, true, []RateLimit{a(2)}, false, a(2)},
		{m, true, []RateLimit{a(2)}, true, RateLimit{}}, // the window began at t0 and ended
		{m, true, []RateLimit{a(0)}, true, RateLimit{}}, // 0: no limit
		{m, true, []RateLimit{b2(2)}, true, RateLimit{}},
		{m, true, []RateLimit{b(2)}, false, b(2)}, // b and b2 are one /64
		// A group counts its clients together, and a refusal by either
		// limit is counted in both (count true) or in neither (false).
		{2 * m, true, []RateLimit{a(5), g(2)}, true, RateLimit{}},
		{2 * m, true, []RateLimit{b(5), g(2)}, true, RateLimit{}},
		{2 * m, true, []RateLimit{b(5), g(2)}, false, g(2)},
		{2 * m, true, []RateLimit{b(2), g(0)}, false, b(2)}, // b's count holds the group's refusal
		{2 * m, true, []RateLimit{b(2), g(2)}, false, b(2)}, // both reached: the first is named, both count it
		{2 * m, true, []RateLimit{g(4)}, false, g(4)},
		{2 * m, false, []RateLimit{client(RateRecipients, "2001:db8::1", 1), group(RateRecipients, "L/SUSPECT", 1)}, true, RateLimit{}},
		{2 * m, false, []RateLimit{client(RateRecipients, "192.0.2.1", 3), group(RateRecipients, "L/SUSPECT", 1)}, false, group(RateRecipients, "L/SUSPECT", 1)},
		{2 * m, false, []RateLimit{client(RateRecipients, "192.0.2.1", 2)}, true, RateLimit{}}, // the refusal was not counted for a
		{2 * m, false, []RateLimit{client(RateRecipients, "192.0.2.1", 2)}, false, client(RateRecipients, "192.0.2.1", 2)},
	} {
		window := ConnectionRateWindow
		if s.limits[0].Key.Kind == RateRecipients {
			window = RecipientRateWindow
		}
		ok, refused := r.Take(window, t0.Add(s.at), s.count, s.limits...)
		if ok != s.ok || refused != s.refused {
			t.Errorf("step %d: Take = %v, %+v; want %v, %+v", i, ok, refused, s.ok, s.refused)
		}
	}
	// A sweep a minute later drops the connection windows and keeps the
	// recipient windows, which last an hour.
	r.Take(ConnectionRateWindow, t0.Add(4*m), true, a(1))
	if n := r.Len(); n != 4 { // a's new connection window; a's, b's and the group's recipients
		t.Errorf("after the sweep %d windows are held, want 4", n)
	}
	bRcpt := client(RateRecipients, "2001:db8::1", 2)
	if ok, _ := r.Take(RecipientRateWindow, t0.Add(4*m), false, bRcpt); !ok {
		t.Error("b's second recipient refused")
	}
	if ok, _ := r.Take(RecipientRateWindow, t0.Add(4*m), false, bRcpt); ok {
		t.Error("the sweep lost b's recipient count")
	}
}
