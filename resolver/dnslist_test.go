package resolver

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
)

func TestListName(t *testing.T) {
	for _, tt := range []struct{ ip, zone, want string }{
		{"192.0.2.99", "zen.spamhaus.org", "99.2.0.192.zen.spamhaus.org."},
		{"127.0.0.2", "bl.test.", "2.0.0.127.bl.test."},
		{"::ffff:127.0.0.2", "bl.test", "2.0.0.127.bl.test."},
		// RFC 5782 section 2.4's example.
		{"2001:db8:1:2:3:4:567:89ab", "ugly.example.com",
			"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com."},
		{"::1", "bl.test", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test."},
	} {
		if got := ListName(netip.MustParseAddr(tt.ip), tt.zone); got != tt.want {
			t.Errorf("ListName(%s, %s) = %s, want %s", tt.ip, tt.zone, got, tt.want)
		}
	}
}

// listZone: bl.test lists 127.0.0.2 (two codes) and ::1 (one); nodata.test
// has a name without A records; nosoa.test answers NXDOMAIN without a SOA.
var listZone = []string{
	"bl.test. 3600 IN SOA ns.bl.test. hostmaster.bl.test. 1 3600 600 86400 300",
	"2.0.0.127.bl.test. 120 IN A 127.0.0.2",
	"2.0.0.127.bl.test. 60 IN A 127.0.0.10",
	"2.0.0.127.bl.test. 60 IN TXT \"listed, see https://bl.test/127.0.0.2\"",
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test. 300 IN A 127.0.0.4",
	"3.0.0.127.bl.test. 86400 IN A 127.0.0.3",
	"nodata.test. 600 IN SOA ns.nodata.test. hostmaster.nodata.test. 1 3600 600 86400 900",
	"2.0.0.127.nodata.test. 60 IN TXT \"no A here\"",
	"2.0.0.127.nosoa.test. 60 IN A 127.0.0.2",
}

func TestDNSList(t *testing.T) {
	d := smtptest.StartDNS(t, listZone...)
	d.ServFail("broken.test")
	r := New([]string{d.Addr}, 2*time.Second)
	tests := []struct {
		ip, zone string
		codes    []string
		ttl      time.Duration
		err      bool
	}{
		{"127.0.0.2", "bl.test", []string{"127.0.0.2", "127.0.0.10"}, time.Minute, false}, // the lowest TTL
		{"::ffff:127.0.0.2", "bl.test", []string{"127.0.0.2", "127.0.0.10"}, time.Minute, false},
		{"::1", "bl.test", []string{"127.0.0.4"}, 5 * time.Minute, false},
		{"127.0.0.3", "bl.test", []string{"127.0.0.3"}, MaxListTTL, false},
		// Not listed: NXDOMAIN, cached for the SOA's minimum (RFC 2308).
		{"127.0.0.5", "bl.test", nil, 5 * time.Minute, false},
		{"::2", "bl.test", nil, 5 * time.Minute, false},
		// NODATA is not listed either; the SOA's own TTL is lower here.
		{"127.0.0.2", "nodata.test", nil, 10 * time.Minute, false},
		// No SOA: not listed, and not to be cached.
		{"127.0.0.3", "nosoa.test", nil, 0, false},
		{"127.0.0.2", "broken.test", nil, 0, true},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		codes, ttl, err := r.DNSList(ctx, netip.MustParseAddr(tt.ip), tt.zone)
		cancel()
		var want []netip.Addr
		for _, c := range tt.codes {
			want = append(want, netip.MustParseAddr(c))
		}
		if !slices.Equal(codes, want) || ttl != tt.ttl || (err != nil) != tt.err {
			t.Errorf("DNSList(%s, %s) = %v, %v, %v; want %v, %v, error %v", tt.ip, tt.zone, codes, ttl, err, want, tt.ttl, tt.err)
		}
	}
}

// TestListsLookup: the lists are asked at once under one timeout; a list
// that never answers costs the timeout, not more, and is an error, not a
// listing; answers are cached for their TTL, negative ones too.
func TestListsLookup(t *testing.T) {
	d := smtptest.StartDNS(t, listZone...)
	d.Silence("dead.test")
	d.ServFail("broken.test")
	const timeout = 300 * time.Millisecond
	l := NewLists(New([]string{d.Addr}, 5*time.Second), timeout, 100)
	now := time.Now()
	l.cache.now = func() time.Time { return now }
	client := netip.MustParseAddr("127.0.0.2")

	start := time.Now()
	got := l.Lookup(context.Background(), client, []string{"dead.test", "bl.test", "broken.test", "nosoa.test"})
	took := time.Since(start)
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("Lookup took %v with a silent list, want the timeout %v (and a margin)", took, timeout)
	}
	if len(got) != 4 {
		t.Fatalf("Lookup = %+v", got)
	}
	if got[0].Zone != "dead.test" || got[0].Err == nil || got[0].Codes != nil {
		t.Errorf("silent list: %+v, want an error", got[0])
	}
	if got[1].Zone != "bl.test" || got[1].Err != nil || !slices.Equal(got[1].Codes, []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.10")}) {
		t.Errorf("bl.test: %+v", got[1])
	}
	if got[2].Err == nil {
		t.Errorf("SERVFAIL list: %+v, want an error", got[2])
	}
	if got[3].Err != nil || len(got[3].Codes) != 1 {
		t.Errorf("nosoa.test: %+v", got[3])
	}

	// The failed lists are asked again; the others answer from the cache.
	before := map[string]int{}
	names := map[string]string{}
	for _, z := range []string{"dead.test", "bl.test", "broken.test", "nosoa.test"} {
		names[z] = ListName(client, z)
		before[z] = d.Queries(names[z])
	}
	l.Lookup(context.Background(), client, []string{"dead.test", "bl.test", "broken.test", "nosoa.test"})
	for z, asked := range map[string]bool{"dead.test": true, "bl.test": false, "broken.test": true, "nosoa.test": false} {
		if n := d.Queries(names[z]) - before[z]; (n > 0) != asked {
			t.Errorf("%s asked %d more times, want asked %v", z, n, asked)
		}
	}

	// Negative caching: 127.0.0.5 is not on bl.test for the SOA's 300s.
	unlisted := netip.MustParseAddr("127.0.0.5")
	name := ListName(unlisted, "bl.test")
	for i := range 3 {
		a := l.Lookup(context.Background(), unlisted, []string{"bl.test"})
		if a[0].Err != nil || a[0].Codes != nil {
			t.Fatalf("unlisted: %+v", a[0])
		}
		if n := d.Queries(name); n != 1 {
			t.Errorf("lookup %d: bl.test asked %d times about %s, want once", i, n, unlisted)
		}
	}
	// Without a SOA, "not listed" is not kept.
	name = ListName(unlisted, "nosoa.test")
	for i := range 2 {
		l.Lookup(context.Background(), unlisted, []string{"nosoa.test"})
		if n := d.Queries(name); n != i+1 {
			t.Errorf("lookup %d: nosoa.test asked %d times, want %d", i, n, i+1)
		}
	}
	// Expiry: the listing's lowest TTL is 60s.
	n := d.Queries(names["bl.test"])
	now = now.Add(59 * time.Second)
	l.Lookup(context.Background(), client, []string{"bl.test"})
	if d.Queries(names["bl.test"]) != n {
		t.Error("bl.test asked again before the TTL ran out")
	}
	now = now.Add(time.Second)
	l.Lookup(context.Background(), client, []string{"bl.test"})
	if d.Queries(names["bl.test"]) != n+1 {
		t.Error("bl.test not asked again when the TTL ran out")
	}
}

// TestListsShared: concurrent lookups of one client share one query.
func TestListsShared(t *testing.T) {
	d := smtptest.StartDNS(t, listZone...)
	l := NewLists(New([]string{d.Addr}, 5*time.Second), 5*time.Second, 0) // no cache
	client := netip.MustParseAddr("::1")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if a := l.Lookup(context.Background(), client, []string{"bl.test"}); a[0].Err != nil || len(a[0].Codes) != 1 {
				t.Errorf("Lookup = %+v", a)
			}
		})
	}
	wg.Wait()
	if n := d.Queries(ListName(client, "bl.test")); n < 1 || n > 20 {
		t.Errorf("%d queries for 20 lookups", n)
	}
	if l.Cached() != 0 {
		t.Errorf("a cache of size 0 holds %d answers", l.Cached())
	}
}

// TestListsCacheBound: the cache never holds more than its size.
func TestListsCacheBound(t *testing.T) {
	d := smtptest.StartDNS(t, listZone...)
	l := NewLists(New([]string{d.Addr}, 5*time.Second), 5*time.Second, 16)
	for i := range 100 {
		ip := netip.AddrFrom4([4]byte{127, 1, 0, byte(i)})
		l.Lookup(context.Background(), ip, []string{"bl.test"})
		if n := l.Cached(); n > 16 || n == 0 {
			t.Fatalf("after %d lookups the cache holds %d answers, want 1 to 16", i+1, n)
		}
	}
}
