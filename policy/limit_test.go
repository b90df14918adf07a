package policy

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
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
		release, ok, why := l.Acquire(s.ip, s.perIP, s.total)
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
		if fromIP, all := l.Count(s.ip); fromIP != s.fromIP || all != s.all {
			t.Fatalf("step %d: Count(%v) = %d, %d; want %d, %d", i, s.ip, fromIP, all, s.fromIP, s.all)
		}
	}
	releases[0]()
	releases[0]() // twice: counted once
	if fromIP, all := l.Count(a); fromIP != 1 || all != 3 {
		t.Fatalf("after release: Count = %d, %d; want 1, 3", fromIP, all)
	}
	if _, ok, _ := l.Acquire(a, 2, 4); !ok {
		t.Fatal("a released slot cannot be acquired again")
	}
	for _, r := range releases {
		r()
	}
	if _, all := l.Count(a); all != 1 {
		t.Errorf("total = %d after releasing all but one", all)
	}
	if len(l.perIP) != 1 {
		t.Errorf("perIP map holds %d addresses, want 1 (released ones removed)", len(l.perIP))
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
				release, ok, _ := l.Acquire(addrs[i], perIP, total)
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
		if fromIP, all := l.Count(a); fromIP != 0 || all != 0 {
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
		ip := netip.MustParseAddr("192.0.2.1")
		for pb.Next() {
			release, ok, _ := l.Acquire(ip, 0, 0)
			if ok {
				release()
			}
		}
	})
}
