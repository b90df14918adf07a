package outbound_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp"
)

// dcidsOf maps each DCID to the number of messages it carried.
func dcidsOf(all []string) map[string]int {
	rx := regexp.MustCompile(`^Delivery start DCID (\d+) `)
	n := map[string]int{}
	for _, l := range all {
		if m := rx.FindStringSubmatch(l); m != nil {
			n[m[1]]++
		}
	}
	return n
}

// TestConnectionReuse: messages for one destination share a connection,
// up to max_messages_per_connection each.
func TestConnectionReuse(t *testing.T) {
	cases := []struct {
		perConn int
		want    []int // messages per connection, in order
	}{
		{50, []int{10}},
		{4, []int{4, 4, 2}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.perConn), func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
			h := newHop(t)
			h.delay = 20 * time.Millisecond // the first message is slow: the rest queue up behind it
			h.serve(lns...)
			g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), defer_: true, yaml: deliveryYAML(port,
				fmt.Sprintf("  destinations: [{domain: default, max_connections: 1, max_messages_per_connection: %d}]\n", c.perConn))})
			var mids []uint64
			for i := 0; i < 10; i++ {
				mids = append(mids, g.message("alice@gw.test", fmt.Sprintf("u%d@d.test", i)))
			}
			g.start()
			for _, mid := range mids {
				g.finished(mid)
			}
			g.lines.WaitN(t, len(c.want), `^DCID \d+ close$`)
			var got []int
			for _, n := range dcidsOf(g.lines.Snapshot()) {
				got = append(got, n)
			}
			// Map order is random; the counts as a multiset.
			if fmt.Sprint(slices.Sorted(slices.Values(got))) != fmt.Sprint(slices.Sorted(slices.Values(c.want))) {
				t.Errorf("messages per connection %v, want %v", got, c.want)
			}
			if conns, _ := h.stats(); conns != len(c.want) {
				t.Errorf("the host saw %d connections, want %d", conns, len(c.want))
			}
		})
	}
}

// TestConnectionLimit: a destination never has more than max_connections
// open, and uses them when it has the work.
func TestConnectionLimit(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	h.delay = 30 * time.Millisecond
	h.serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), defer_: true, yaml: deliveryYAML(port,
		"  destinations: [{domain: d.test, max_connections: 3, max_messages_per_connection: 2}]\n")})
	var mids []uint64
	for i := 0; i < 30; i++ {
		mids = append(mids, g.message("alice@gw.test", "bob@d.test"))
	}
	g.start()
	for _, mid := range mids {
		g.finished(mid)
	}
	if _, peak := h.stats(); peak != 3 {
		t.Errorf("at most %d connections at once, want 3", peak)
	}
}

// TestSlowDestinationDoesNotStarve: a destination whose host takes its
// time has the gateway's every connection slot at first; as its
// connections end, the slots go in turn to the other destination, whose
// mail all leaves while the slow one is still at work.
func TestSlowDestinationDoesNotStarve(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3")
	h := newHop(t) // one server for both, to count their connections together
	h.delay, h.slow = 150*time.Millisecond, "127.0.0.2"
	h.serve(lns...)
	zone := append(mxZone("slow.test", "127.0.0.2"), mxZone("fast.test", "127.0.0.3")...)
	g := newGateway(t, setup{zone: zone, defer_: true, yaml: deliveryYAML(port,
		"  max_concurrency: 4\n  destinations: [{domain: default, max_connections: 4, max_messages_per_connection: 2}]\n")})
	var slowMIDs, fastMIDs []uint64
	for i := 0; i < 40; i++ {
		slowMIDs = append(slowMIDs, g.message("alice@gw.test", "bob@slow.test"))
	}
	for i := 0; i < 20; i++ {
		fastMIDs = append(fastMIDs, g.message("alice@gw.test", "bob@fast.test"))
	}
	g.start()
	for _, mid := range fastMIDs {
		g.finished(mid)
	}
	slowDone := 0
	for _, m := range h.messages() {
		if m.at == "127.0.0.2" {
			slowDone++
		}
	}
	if slowDone >= len(slowMIDs) {
		t.Errorf("the slow destination got all %d messages before the fast one got its last", slowDone)
	}
	for _, mid := range slowMIDs {
		g.finished(mid)
	}
	if _, peak := h.stats(); peak != 4 {
		t.Errorf("at most %d connections at once, want max_concurrency 4", peak)
	}
}

// TestRestart: what is in the spool at Start is delivered, recipients
// already delivered before are not sent again, and a deferred recipient
// waits for its time.
func TestRestart(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t).serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), defer_: true, yaml: deliveryYAML(port, "")})
	a := g.message("alice@gw.test", "x@d.test", "y@d.test")
	b := g.message("alice@gw.test", "z@d.test")
	c := g.message("alice@gw.test", "later@d.test")
	ctx := context.Background()
	// Before the "crash": x was delivered, and b's delivery was under way
	// (an attempt counted, the state still pending).
	if err := g.spool.SetRecipientState(ctx, a, []int{0}, queue.RecipientState{Status: queue.Delivered, Attempts: 1, Last: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := g.spool.SetRecipientState(ctx, b, []int{0}, queue.RecipientState{Attempts: 1, Last: time.Now()}); err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(300 * time.Millisecond)
	if err := g.spool.SetRecipientState(ctx, c, []int{0}, queue.RecipientState{Attempts: 1, Next: next}); err != nil {
		t.Fatal(err)
	}
	g.start()
	g.finished(a)
	g.finished(b)
	g.finished(c)
	// Against the recorded time itself: the spool's fsyncs above may take
	// longer than the wait.
	if time.Now().Before(next) {
		t.Errorf("a deferred recipient was tried before its time")
	}
	var to []string
	for _, m := range h.messages() {
		to = append(to, m.to...)
	}
	if strings.Join(slices.Sorted(slices.Values(to)), ",") != "later@d.test,y@d.test,z@d.test" {
		t.Errorf("delivered to %v, want y, z and later", to)
	}
	if got := g.lines.Grep(fmt.Sprintf(`^Delivery start DCID \d+ MID %d to RID \[1\]$`, a)); len(got) != 1 {
		t.Errorf("MID %d: want one delivery of RID 1 only; lines:\n%s", a, strings.Join(g.lines.Snapshot(), "\n"))
	}
	if n := g.spool.Stats().Messages; n != 0 {
		t.Errorf("%d messages left in the spool", n)
	}
}

// TestStopCutsOff: Stop with a delivery under way waits for it until its
// context ends, then cuts it; the message is delivered after a restart.
func TestStopCutsOff(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	h.delay = 2 * time.Second
	h.serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "")})
	mid := g.message("alice@gw.test", "bob@d.test")
	g.lines.WaitFor(t, `^Delivery start `)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := g.m.Stop(ctx); err == nil {
		t.Errorf("Stop returned nil with a delivery cut off")
	}
	g.m = nil
	if states, err := g.spool.RecipientStates(mid); err != nil || states[0].Status != queue.Pending {
		t.Fatalf("after the cut: %v %v, want the recipient pending", states, err)
	}
	if got := g.lines.Grep(`^(Delayed|Bounced|Message done)`); len(got) != 0 {
		t.Errorf("a cut-off delivery logged an outcome: %q", got)
	}
	h.setDelay(0)
	g.start()
	g.finished(mid)
}

// TestStopGraceful: deliveries under way finish within Stop's time.
func TestStopGraceful(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	h.delay = 200 * time.Millisecond
	h.serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "")})
	mid := g.message("alice@gw.test", "bob@d.test")
	g.lines.WaitFor(t, `^Delivery start `)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.m.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	g.m = nil
	g.finished(mid)
	g.lines.WaitFor(t, `^DCID \d+ close$`)
}

// TestBoundedMemory: 2,000 queued messages, at most 50 in memory at once,
// all delivered to Postfix's smtp-sink.
func TestBoundedMemory(t *testing.T) {
	sink := smtptest.Sink(t, "127.0.0.1:0")
	g := newGateway(t, setup{defer_: true, yaml: "delivery:\n  max_active_messages: 50\n" +
		fmt.Sprintf("routes: [{domain: ALL, hosts: [%q]}]\n", sink)})
	const n = 2000
	for i := 0; i < n-200; i++ {
		g.message("alice@gw.test", fmt.Sprintf("u%d@d%d.test", i, i%7))
	}
	g.start()
	for i := 0; i < 200; i++ { // while it runs, through Enqueue
		g.message("alice@gw.test", fmt.Sprintf("v%d@d.test", i))
	}
	wait.UntilWithin(t, time.Minute, fmt.Sprintf("%d messages delivered", n), func() bool { return g.m.Status().Delivered == n })
	// The peak holds the most messages ever in memory at once, which
	// sampling the count could miss.
	st := g.m.Status()
	if st.PeakActive > 50 || st.PeakActive < 10 {
		t.Errorf("peak of %d messages in memory, want at most 50 (and more than a few)", st.PeakActive)
	}
	g.lines.WaitN(t, n, `^Message finished MID \d+ done$`)
	if m := g.spool.Stats().Messages; m != 0 {
		t.Errorf("%d messages left in the spool", m)
	}
}

// TestDeadDestination: a host that accepts connections and never speaks.
// One connection attempt at a time finds out (not max_connections of
// them); when it times out, every message waiting for the destination is
// deferred, and they leave memory until their retry.
func TestDeadDestination(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := lns[0].Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // silent: no greeting
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), defer_: true, yaml: deliveryYAML(port,
		"  timeouts: {greeting: 500ms}\n  bounce: {initial_retry: 1h, max_retry: 1h}\n")})
	const n = 20
	for i := 0; i < n; i++ {
		g.message("alice@gw.test", fmt.Sprintf("u%d@d.test", i))
	}
	g.start()
	g.lines.WaitN(t, n, `^MID \d+ to RID \[0\] pending till `)
	errs := g.lines.Grep(`^Connection Error: `)
	if len(errs) != 1 {
		t.Errorf("%d connection attempts, want 1:\n%s", len(errs), strings.Join(errs, "\n"))
	} else if !strings.Contains(errs[0], "details: timeout (greeting) ") {
		t.Errorf("Connection Error %q, want a greeting timeout", errs[0])
	}
	if got := g.lines.Grep(`^Delayed: DCID [1-9]\d* MID \d+ .* - 4.4.0 - Other network problem \('000', \['timeout \(greeting\)'\]\)$`); len(got) != n {
		t.Errorf("%d Delayed lines, want %d", len(got), n)
	}
	wait.Until(t, "deferred messages leave memory", func() bool { return g.m.Status().Active == 0 })
}

// TestFailedConnectionKeepsTheNextJob: a 421 after the first message ends
// its connection; the messages queued behind it on that connection are
// delivered on the next one, and the deferred one on its retry. (A failed
// transaction once took the next ready job with it and left that message
// in flight until a restart.)
func TestFailedConnectionKeepsTheNextJob(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	var mu sync.Mutex
	first := true
	h.data = func([]byte) smtp.Reply {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return smtp.Reply{Code: 421, Enhanced: "4.3.2", Text: "closing"}
		}
		return smtp.Reply{}
	}
	h.serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), defer_: true, yaml: deliveryYAML(port,
		"  destinations: [{domain: default, max_connections: 1}]\n  bounce: {initial_retry: 50ms, max_retry: 50ms}\n")})
	var mids []uint64
	for i := 0; i < 5; i++ {
		mids = append(mids, g.message("alice@gw.test", fmt.Sprintf("u%d@d.test", i)))
	}
	g.start()
	for _, mid := range mids {
		g.finished(mid)
	}
	if n := len(h.messages()); n != len(mids) {
		t.Errorf("the host got %d messages, want %d", n, len(mids))
	}
}
