package outbound_test

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// TestConnectionCache: an idle delivery connection waits in the cache for
// the next message of its destination, up to connection_cache_time and
// max_messages_per_connection; the ESA's lines show one DCID carrying the
// messages, each with its "Delivery start", and one "DCID n close".
func TestConnectionCache(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		n     int   // messages, each sent once the one before is done
		conns []int // messages per DCID, in order
	}{
		{"cached", "  connection_cache_time: 1h\n", 4, []int{4}},
		{"per-connection limit", "  connection_cache_time: 1h\n  destinations: [{domain: default, max_messages_per_connection: 2}]\n", 5, []int{2, 2, 1}},
		{"no cache", "  connection_cache_time: 0s\n", 3, []int{1, 1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
			h := newHop(t).serve(lns...)
			g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, c.yaml)})
			for range c.n {
				g.finished(g.message("alice@gw.test", "bob@d.test"))
			}
			g.stop() // closes the cached connection, well before its hour
			var got []int
			for _, d := range dcidOrder(g.lines.Snapshot()) {
				got = append(got, d.msgs)
				if !d.closed {
					t.Errorf("no DCID %s close", d.id)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.conns) {
				t.Errorf("messages per DCID %v, want %v", got, c.conns)
			}
			if conns, _ := h.stats(); conns != len(c.conns) {
				t.Errorf("the next hop saw %d connections, want %d", conns, len(c.conns))
			}
		})
	}
}

type dcidUse struct {
	id     string
	msgs   int
	closed bool
}

// dcidOrder lists the DCIDs that carried messages, in the order they
// started, with their messages and whether their close was logged after.
func dcidOrder(all []string) []dcidUse {
	start := regexp.MustCompile(`^Delivery start DCID (\d+) `)
	closed := regexp.MustCompile(`^DCID (\d+) close$`)
	var out []dcidUse
	at := map[string]int{}
	for _, l := range all {
		if m := start.FindStringSubmatch(l); m != nil {
			i, ok := at[m[1]]
			if !ok {
				i = len(out)
				at[m[1]] = i
				out = append(out, dcidUse{id: m[1]})
			}
			out[i].msgs++
		}
		if m := closed.FindStringSubmatch(l); m != nil {
			if i, ok := at[m[1]]; ok {
				out[i].closed = true
			}
		}
	}
	return out
}

// TestCachedConnectionClosedByNextHop: a next hop that closes a connection
// while it waits in the cache (after an idle timeout, with a 421 or
// silently) or right after each message loses nothing: every message is
// delivered once, on a fresh connection when needed, and none is deferred.
func TestCachedConnectionClosedByNextHop(t *testing.T) {
	cases := []struct {
		name  string
		serve func(t *testing.T, ln net.Listener) counter
		burst bool // send the messages at once instead of one after another
	}{
		{"421 on idle timeout", func(t *testing.T, ln net.Listener) counter {
			h := newHop(t)
			h.cfg.IdleTimeout = 50 * time.Millisecond
			return h.serve(ln)
		}, false},
		{"silent close when idle", func(t *testing.T, ln net.Listener) counter {
			return serveScript(t, ln, &scriptHop{idle: 50 * time.Millisecond})
		}, false},
		{"close after each message", func(t *testing.T, ln net.Listener) counter {
			return serveScript(t, ln, &scriptHop{closeAfter: true})
		}, false},
		{"close after each message, messages waiting", func(t *testing.T, ln net.Listener) counter {
			return serveScript(t, ln, &scriptHop{closeAfter: true})
		}, true},
		// The close that no look at the socket can see coming: it comes
		// as the transaction starts, the way an idle timeout may race it.
		{"close at a connection's second MAIL", func(t *testing.T, ln net.Listener) counter {
			return serveScript(t, ln, &scriptHop{dropSecondMail: true})
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
			h := c.serve(t, lns[0])
			g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port,
				"  connection_cache_time: 1h\n  destinations: [{domain: default, max_connections: 1}]\n")})
			const n = 6
			var mids []uint64
			for i := range n {
				mid := g.message("alice@gw.test", "bob@d.test")
				mids = append(mids, mid)
				if c.burst {
					continue
				}
				g.finished(mid)
				if i < n-1 {
					// The next message only once the next hop has closed
					// the connection, which waits in the cache.
					wait.Until(t, "the next hop closed the connection", func() bool { return h.open() == 0 })
				}
			}
			for _, mid := range mids {
				g.finished(mid)
			}
			if got := h.count(); got != n {
				t.Errorf("the next hop got %d messages, want %d", got, n)
			}
			if l := g.lines.Grep(`Delayed|pending till|Possible Delivery`); len(l) > 0 {
				t.Errorf("deferrals logged: %q", l)
			}
			if l := g.lines.Grep(`^Message done `); len(l) != n {
				t.Errorf("%d Message done lines, want %d", len(l), n)
			}
			if conns := len(dcidOrder(g.lines.Snapshot())); conns < n && !c.burst {
				t.Errorf("%d DCIDs carried messages, want %d: a closed connection was used", conns, n)
			}
		})
	}
}

// TestCachedConnectionsCountAgainstLimits: a cached connection takes a
// slot of max_concurrency, and gives it up when another destination has
// work and no slot: the other destination's mail does not wait for the
// cache time.
func TestCachedConnectionsCountAgainstLimits(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3")
	h := newHop(t).serve(lns...)
	zone := append(mxZone("a.test", "127.0.0.2"), mxZone("b.test", "127.0.0.3")...)
	g := newGateway(t, setup{zone: zone, yaml: deliveryYAML(port, "  max_concurrency: 1\n  connection_cache_time: 1h\n")})
	a := g.message("alice@gw.test", "bob@a.test")
	g.finished(a)
	wait.Until(t, "a.test's connection cached", func() bool { return g.m.Status().Cached == 1 })
	b := g.message("alice@gw.test", "bob@b.test")
	g.finished(b) // an hour without the cache giving the slot up
	all := g.lines.Snapshot()
	use := dcidOrder(all)
	if len(use) != 2 || !use[0].closed {
		t.Fatalf("DCIDs %+v, want a.test's closed, then b.test's", use)
	}
	closeAt := indexOf(all, "DCID "+use[0].id+" close")
	startAt := indexOf(all, "Delivery start DCID "+use[1].id+" ")
	if closeAt < 0 || startAt < closeAt {
		t.Errorf("b.test's delivery started before a.test's cached connection closed:\n%s", strings.Join(all, "\n"))
	}
	if _, peak := h.stats(); peak != 1 {
		t.Errorf("%d connections at once, want max_concurrency 1", peak)
	}
}

func indexOf(all []string, prefix string) int {
	for i, l := range all {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

// counter is what the tests above need of a next hop.
type counter interface {
	count() int // messages accepted
	open() int  // connections open
}

func (h *hop) count() int { return len(h.messages()) }

func (h *hop) open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.live)
}

// scriptHop is a next hop written line by line, for what a well-behaved
// server does not do: close a connection right after the 250 of a message,
// or silently after an idle time.
type scriptHop struct {
	closeAfter bool          // close the connection after each message's 250
	idle       time.Duration // close silently after this long without a command; 0: never
	// dropSecondMail closes the connection, without a reply, at its
	// second MAIL FROM.
	dropSecondMail bool

	mu    sync.Mutex
	msgs  int
	conns int
}

func (r *scriptHop) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs
}

func (r *scriptHop) open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

func serveScript(t *testing.T, ln net.Listener, r *scriptHop) *scriptHop {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				r.mu.Lock()
				r.conns--
				r.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return r
}

func (r *scriptHop) handle(c net.Conn) {
	br := bufio.NewReader(c)
	reply := func(s string) bool {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Write([]byte(s + "\r\n"))
		return err == nil
	}
	if !reply("220 raw.test ESMTP") {
		return
	}
	inData, mails := false, 0
	for {
		timeout := 30 * time.Second
		if r.idle > 0 && !inData {
			timeout = r.idle
		}
		c.SetReadDeadline(time.Now().Add(timeout))
		line, err := br.ReadString('\n')
		if err != nil {
			return // the idle close: no 421, just the FIN
		}
		line = strings.TrimRight(line, "\r\n")
		if inData {
			if line == "." {
				inData = false
				r.mu.Lock()
				r.msgs++
				r.mu.Unlock()
				if !reply("250 2.0.0 Ok: queued") || r.closeAfter {
					return
				}
			}
			continue
		}
		switch verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0]); verb {
		case "EHLO":
			reply("250-raw.test\r\n250 PIPELINING")
		case "DATA":
			inData = true
			reply("354 go ahead")
		case "MAIL":
			if mails++; mails == 2 && r.dropSecondMail {
				return
			}
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}
