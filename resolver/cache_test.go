package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// bigTXT is a TXT record longer than an answer the cache keeps.
var bigTXT = strings.Repeat(`"`+strings.Repeat("x", 250)+`" `, 20)

// cacheZone: auth.test's SOA says to keep negative answers 300s (its
// MINIMUM; the SOA's own TTL is longer). nosoa.test has none.
var cacheZone = []string{
	"auth.test. 3600 IN SOA ns.auth.test. hostmaster.auth.test. 1 3600 600 86400 300",
	`auth.test. 60 IN TXT "v=spf1 a mx -all"`,
	"auth.test. 60 IN MX 20 mx2.auth.test.",
	"auth.test. 90 IN MX 10 mx.auth.test.",
	"mx.auth.test. 120 IN A 192.0.2.1",
	"mx.auth.test. 30 IN AAAA 2001:db8::1",
	"a.auth.test. 60 IN A 192.0.2.2",
	`long.auth.test. 86400 IN TXT "v=spf1 -all"`,
	`zero.auth.test. 0 IN TXT "v=spf1 -all"`,
	`split.auth.test. 60 IN TXT "v=spf1 ip4:192.0.2.0/24" " -all"`,
	"big.auth.test. 60 IN TXT " + bigTXT,
	"2.0.192.in-addr.arpa. 600 IN SOA ns.auth.test. hostmaster.auth.test. 1 3600 600 86400 120",
	"1.2.0.192.in-addr.arpa. 600 IN PTR mx.auth.test.",
	`nosoa.test. 60 IN TXT "v=spf1 -all"`,
}

// cachedResolver is a resolver on d with a cache of size answers and a
// clock the test moves.
func cachedResolver(d *smtptest.DNS, size int, timeout time.Duration) (*Resolver, *time.Time) {
	r := New([]string{d.Addr}, timeout).WithCache(size)
	now := time.Now()
	r.answers.now = func() time.Time { return now }
	return r, &now
}

// TestAnswerCache: each kind of answer is kept for as long as it should
// be, and no longer: asked once, then not again until the TTL has run out
// (one second before it, no query; at it, one). Failures are never kept.
// The answer from the cache is the answer from the DNS, errors included.
func TestAnswerCache(t *testing.T) {
	d := smtptest.StartDNS(t, cacheZone...)
	d.ServFail("broken.test")
	d.Silence("silent.test")
	txt := func(name string) func(context.Context, *Resolver) (string, error) {
		return func(ctx context.Context, r *Resolver) (string, error) {
			txts, err := r.TXT(ctx, name)
			return strings.Join(txts, "|"), err
		}
	}
	tests := []struct {
		name   string // the query that counts
		lookup func(context.Context, *Resolver) (string, error)
		want   string
		err    error         // errors.Is; nil: none
		ttl    time.Duration // 0: not kept
	}{
		{"auth.test", txt("auth.test"), "v=spf1 a mx -all", nil, time.Minute},
		{"split.auth.test", txt("split.auth.test"), "v=spf1 ip4:192.0.2.0/24 -all", nil, time.Minute},
		// The lowest TTL of the answer.
		{"auth.test", func(ctx context.Context, r *Resolver) (string, error) {
			mxs, err := r.MX(ctx, "auth.test")
			var s []string
			for _, m := range mxs {
				s = append(s, fmt.Sprintf("%d %s", m.Pref, m.Host))
			}
			return strings.Join(s, "|"), err
		}, "10 mx.auth.test|20 mx2.auth.test", nil, time.Minute},
		// A and AAAA together: the shorter-lived of the two.
		{"mx.auth.test", func(ctx context.Context, r *Resolver) (string, error) {
			ips, err := r.IP(ctx, "mx.auth.test")
			return fmt.Sprint(ips), err
		}, "[192.0.2.1 2001:db8::1]", nil, 30 * time.Second},
		{"1.2.0.192.in-addr.arpa", func(ctx context.Context, r *Resolver) (string, error) {
			names, err := r.PTR(ctx, netip.MustParseAddr("192.0.2.1"))
			return strings.Join(names, "|"), err
		}, "mx.auth.test", nil, 10 * time.Minute},
		// A day's TTL is kept an hour; a TTL of 0 not at all.
		{"long.auth.test", txt("long.auth.test"), "v=spf1 -all", nil, MaxAnswerTTL},
		{"zero.auth.test", txt("zero.auth.test"), "v=spf1 -all", nil, 0},
		// Too big to keep.
		{"big.auth.test", txt("big.auth.test"), strings.Repeat(strings.Repeat("x", 250), 20), nil, 0},
		// Negative answers: the SOA's MINIMUM (RFC 2308), NXDOMAIN and
		// NODATA each as itself.
		{"nx.auth.test", txt("nx.auth.test"), "", ErrNoName, 5 * time.Minute},
		{"a.auth.test", txt("a.auth.test"), "", ErrNoData, 5 * time.Minute},
		{"9.2.0.192.in-addr.arpa", func(ctx context.Context, r *Resolver) (string, error) {
			names, err := r.PTR(ctx, netip.MustParseAddr("192.0.2.9"))
			return strings.Join(names, "|"), err
		}, "", ErrNoName, 2 * time.Minute},
		{"nx.auth.test", func(ctx context.Context, r *Resolver) (string, error) {
			ips, err := r.IP(ctx, "nx.auth.test")
			return fmt.Sprint(ips), err
		}, "[]", ErrNoName, 5 * time.Minute},
		// Without a SOA, a negative answer is not kept.
		{"nx.nosoa.test", txt("nx.nosoa.test"), "", ErrNoName, 0},
		// Failures: SERVFAIL, no answer.
		{"x.broken.test", txt("x.broken.test"), "", errServer, 0},
		{"x.silent.test", txt("x.silent.test"), "", errServer, 0},
	}
	for _, tt := range tests {
		r, now := cachedResolver(d, 100, 300*time.Millisecond)
		ctx := context.Background()
		ask := func(when string, asks bool) {
			t.Helper()
			before := d.Queries(tt.name)
			got, err := tt.lookup(ctx, r)
			if got != tt.want || !isErr(err, tt.err) {
				t.Errorf("%s %s: %q, %v; want %q, %v", tt.name, when, got, err, tt.want, tt.err)
			}
			if n := d.Queries(tt.name) - before; (n > 0) != asks {
				t.Errorf("%s %s: %d queries, want asked %v", tt.name, when, n, asks)
			}
		}
		ask("first", true)
		if tt.ttl == 0 {
			ask("again", true)
			continue
		}
		ask("again", false)
		*now = now.Add(tt.ttl - time.Second)
		ask("a second before the TTL ends", false)
		*now = now.Add(time.Second)
		ask("when the TTL ends", true)
	}
}

// errServer stands for an error that is not ErrNotFound: a server that
// failed, which is worth asking again.
var errServer = errors.New("a failure")

func isErr(err, want error) bool {
	switch want {
	case nil:
		return err == nil
	case errServer:
		return err != nil && !errors.Is(err, ErrNotFound)
	}
	if want == ErrNoName && errors.Is(err, ErrNoData) || want == ErrNoData && errors.Is(err, ErrNoName) {
		return false
	}
	return errors.Is(err, want) && errors.Is(err, ErrNotFound)
}

// TestAnswerCacheTypes: a question is kept under its name and its type. A
// name without TXT records (NODATA) still has its address; a name that
// does not exist (NXDOMAIN) for one type is asked again for another, as
// the answers come from the zone, not from a guess.
func TestAnswerCacheTypes(t *testing.T) {
	d := smtptest.StartDNS(t, cacheZone...)
	r, _ := cachedResolver(d, 100, time.Second)
	ctx := context.Background()
	if _, err := r.TXT(ctx, "a.auth.test"); !errors.Is(err, ErrNoData) {
		t.Fatalf("TXT of a name with only an address: %v", err)
	}
	if ips, err := r.IP(ctx, "a.auth.test"); err != nil || fmt.Sprint(ips) != "[192.0.2.2]" {
		t.Errorf("IP after a cached NODATA for TXT: %v, %v", ips, err)
	}
	if _, err := r.TXT(ctx, "a.auth.test"); !errors.Is(err, ErrNoData) {
		t.Errorf("TXT from the cache: %v", err)
	}
	if n := d.Queries("a.auth.test"); n != 3 { // TXT, A, AAAA
		t.Errorf("%d queries for a.auth.test, want 3", n)
	}
	// One name however it is written (SPF's macros keep the case).
	for _, name := range []string{"auth.test", "AUTH.Test.", "auth.TEST"} {
		if txts, err := r.TXT(ctx, name); err != nil || len(txts) != 1 {
			t.Errorf("TXT %s = %q, %v", name, txts, err)
		}
	}
	if n := d.Queries("auth.test"); n != 1 {
		t.Errorf("%d queries for auth.test written three ways, want 1", n)
	}
}

// TestAnswerCacheOwned: what a caller gets is its own: changing it does
// not change what the next caller gets.
func TestAnswerCacheOwned(t *testing.T) {
	d := smtptest.StartDNS(t, cacheZone...)
	r, _ := cachedResolver(d, 100, time.Second)
	ctx := context.Background()
	txts, _ := r.TXT(ctx, "auth.test")
	txts[0] = "changed"
	mxs, _ := r.MX(ctx, "auth.test")
	mxs[0].Host = "changed"
	ips, _ := r.IP(ctx, "mx.auth.test")
	ips[0] = netip.Addr{}
	if txts, _ := r.TXT(ctx, "auth.test"); txts[0] != "v=spf1 a mx -all" {
		t.Errorf("TXT = %q", txts)
	}
	if mxs, _ := r.MX(ctx, "auth.test"); mxs[0].Host != "mx.auth.test" {
		t.Errorf("MX = %v", mxs[0])
	}
	if ips, _ := r.IP(ctx, "mx.auth.test"); ips[0] != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("IP = %v", ips)
	}
	if n := d.Total(); n != 4 {
		t.Errorf("%d queries, want 4 (TXT, MX, A, AAAA)", n)
	}
}

// TestAnswerCacheShared: concurrent identical lookups share one query; a
// waiter whose own context ends stops waiting; one whose query was asked
// by a caller that gave up asks again instead of taking that caller's
// error.
func TestAnswerCacheShared(t *testing.T) {
	d := smtptest.StartDNS(t, cacheZone...)
	for _, size := range []int{100, 1} {
		t.Run(fmt.Sprint("size ", size), func(t *testing.T) {
			r, _ := cachedResolver(d, size, 5*time.Second)
			name := fmt.Sprintf("s%d.auth.test", size)
			d.Add(t, name+` 60 IN TXT "v=spf1 -all"`)
			release := d.Hold(t, name)
			k := answerKey{dns.TypeTXT, name}
			const n = 20
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					if txts, err := r.TXT(context.Background(), name); err != nil || len(txts) != 1 {
						t.Errorf("TXT = %q, %v", txts, err)
					}
				})
			}
			wait.Until(t, "all lookups but one waiting for the first", func() bool { return r.answers.waiting(k) == n-1 })
			// One more, that gives up while it waits.
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := make(chan error)
			go func() {
				_, err := r.TXT(ctx, name)
				gaveUp <- err
			}()
			wait.Until(t, "the last lookup waiting", func() bool { return r.answers.waiting(k) == n })
			cancel()
			if err := <-gaveUp; !errors.Is(err, context.Canceled) {
				t.Errorf("a lookup whose context ended: %v", err)
			}
			release()
			wg.Wait()
			if q := d.Queries(name); q != 1 {
				t.Errorf("%d queries for %d lookups at once, want 1", q, n)
			}
		})
	}

	t.Run("the first gives up", func(t *testing.T) {
		r, _ := cachedResolver(d, 100, 5*time.Second)
		name := "abandoned.auth.test"
		d.Add(t, name+` 60 IN TXT "v=spf1 -all"`)
		release := d.Hold(t, name)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second) // long enough for the second to start waiting, on a busy machine
		defer cancel()
		first := make(chan error)
		go func() {
			_, err := r.TXT(ctx, name)
			first <- err
		}()
		wait.Until(t, "the first query", func() bool { return d.Queries(name) == 1 })
		second := make(chan error)
		go func() {
			txts, err := r.TXT(context.Background(), name)
			if err == nil && (len(txts) != 1 || txts[0] != "v=spf1 -all") {
				err = fmt.Errorf("TXT = %q", txts)
			}
			second <- err
		}()
		wait.Until(t, "the second lookup waiting", func() bool { return r.answers.waiting(answerKey{dns.TypeTXT, name}) == 1 })
		if err := <-first; err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("the first lookup, past its deadline: %v", err)
		}
		wait.Until(t, "the second lookup asking again", func() bool { return d.Queries(name) == 2 })
		release()
		if err := <-second; err != nil {
			t.Errorf("the second lookup: %v", err)
		}
	})
}

// TestAnswerCacheBound: the cache never holds more than its size.
func TestAnswerCacheBound(t *testing.T) {
	d := smtptest.StartDNS(t, cacheZone...)
	r, _ := cachedResolver(d, 16, time.Second)
	for i := range 100 {
		if _, err := r.TXT(context.Background(), fmt.Sprintf("n%d.auth.test", i)); !errors.Is(err, ErrNoName) {
			t.Fatal(err)
		}
		if n := r.answers.len(); n > 16 || n == 0 {
			t.Fatalf("after %d lookups the cache holds %d answers, want 1 to 16", i+1, n)
		}
	}
}

// TestAnswerCacheOff: without WithCache, or with size 0, every lookup asks.
func TestAnswerCacheOff(t *testing.T) {
	d := smtptest.StartDNS(t, cacheZone...)
	for i, r := range []*Resolver{New([]string{d.Addr}, time.Second), New([]string{d.Addr}, time.Second).WithCache(0)} {
		name := fmt.Sprintf("r%d.auth.test", i)
		d.Add(t, name+` 60 IN TXT "v=spf1 -all"`)
		for range 2 {
			if _, err := r.TXT(context.Background(), name); err != nil {
				t.Fatal(err)
			}
		}
		if n := d.Queries(name); n != 2 {
			t.Errorf("resolver %d: %d queries for 2 lookups, want 2", i, n)
		}
	}
}

// TestAnswerCacheSystem: with the system's resolver (no dns.servers),
// which tells no TTL, answers and "not found" are kept systemTTL, failures
// not at all. Go's own resolver is pointed at the test server.
func TestAnswerCacheSystem(t *testing.T) {
	d := smtptest.StartDNS(t, cacheZone...)
	d.ServFail("broken.test")
	r, now := cachedResolver(d, 100, time.Second)
	r.servers = nil
	r.sys = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, network, d.Addr)
	}}
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		lookup func() (any, error)
		want   string
		kept   bool
	}{
		{"auth.test", func() (any, error) { return r.TXT(ctx, "auth.test.") }, "[v=spf1 a mx -all]", true},
		{"mx.auth.test", func() (any, error) { return r.IP(ctx, "mx.auth.test.") }, "[192.0.2.1 2001:db8::1]", true},
		{"nx.auth.test", func() (any, error) { return r.TXT(ctx, "nx.auth.test.") }, "[]", true},
		{"x.broken.test", func() (any, error) { return r.TXT(ctx, "x.broken.test.") }, "[]", false},
	} {
		start := *now
		ask := func(when string, asks bool) {
			t.Helper()
			before := d.Queries(tt.name)
			got, err := tt.lookup()
			if s := fmt.Sprint(got); s != tt.want || (err == nil) != (tt.name == "auth.test" || tt.name == "mx.auth.test") {
				t.Errorf("%s %s: %s, %v; want %s", tt.name, when, s, err, tt.want)
			}
			if tt.name == "nx.auth.test" && !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", tt.name, err)
			}
			if n := d.Queries(tt.name) - before; (n > 0) != asks {
				t.Errorf("%s %s: %d queries, want asked %v", tt.name, when, n, asks)
			}
		}
		ask("first", true)
		ask("again", !tt.kept)
		*now = start.Add(systemTTL - time.Second)
		ask("a second before systemTTL", !tt.kept)
		*now = start.Add(systemTTL)
		ask("at systemTTL", true)
		*now = start
	}
}
