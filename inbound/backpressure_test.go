package inbound_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/resolver"
)

// TestBackpressure: the next hop takes nothing for a while (its gate is
// shut) while one client sends message after message. Past the high mark
// the gateway logs the delay state, past the hard mark MAIL FROM gets 452
// 4.3.1 and the queue stops growing; once the next hop takes mail again
// every message that got its 250 is delivered, and the state clears.
func TestBackpressure(t *testing.T) {
	hop := startGatedHop(t)
	const high, hard = 4, 8
	extra := fmt.Sprintf("routes:\n  - {domain: ALL, hosts: [%q]}\n"+
		"delivery: {max_concurrency: 1, connection_cache_time: 0s}\n"+
		"limits: {queue_high_water: %d, queue_hard_water: %d, in_flow_delay: 10ms}\n", hop.addr, high, hard)
	h := start(t, opts{yaml: baseConfig + strings.ReplaceAll(extra, "%", "%%"), setup: func(h *harness) {
		h.srv.Pressure = inbound.NewPressure(h.cfg.Limits, h.spool.Load, h.lines)
		m, err := outbound.New(outbound.Options{Hostname: h.cfg.Hostname, Spool: h.spool, IDs: h.ids, Events: h.lines,
			Resolver: resolver.New(h.cfg.DNS.Servers, h.cfg.DNS.Timeout), Routes: h.cfg.Routes, Delivery: h.cfg.Delivery,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			hop.open() // a delivery held at the gate ends
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := m.Stop(ctx); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
		h.srv.Queued = m.Enqueue
	}})

	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	send := func() string {
		c.Send("MAIL FROM:<a@client.test>\r\n")
		if r := c.Reply(); !strings.HasPrefix(r, "250") {
			return r
		}
		c.Cmd("RCPT TO:<b@example.com>", "250")
		c.Cmd("DATA", "354")
		c.Cmd("Subject: load\r\n\r\nHello.\r\n.", "250")
		return "250"
	}
	accepted, refusal := 0, ""
	for range 3 * hard { // bounded: the hard mark comes long before
		r := send()
		if r != "250" {
			refusal = r
			break
		}
		accepted++
		if n, _ := h.spool.Load(); n > hard+1 {
			t.Fatalf("%d messages in the spool after %d accepted, above the hard mark %d (+1 for the one session)", n, accepted, hard)
		}
	}
	if refusal != "452 4.3.1 Insufficient system resources" {
		t.Fatalf("after %d messages: %q, want 452 4.3.1 Insufficient system resources", accepted, refusal)
	}
	if accepted != hard+1 {
		t.Errorf("%d messages accepted before the refusal, want %d (the hard mark, +1)", accepted, hard+1)
	}
	h.lines.WaitFor(t, `^mailgate: resource conservation level=delay cause=messages messages=5 `)
	h.lines.WaitFor(t, `^mailgate: resource conservation level=refuse cause=messages messages=9 `)
	h.lines.WaitFor(t, `^ICID \d+ Receiving Failed: Insufficient system resources$`)

	hop.open()
	wait.Until(t, "every accepted message delivered", func() bool { return hop.count() == accepted })
	wait.Until(t, "the spool emptied", func() bool { n, _ := h.spool.Load(); return n == 0 })
	if r := send(); r != "250" {
		t.Fatalf("after the queue drained: %q, want 250", r)
	}
	h.lines.WaitFor(t, `^mailgate: resource conservation level=off cause=- messages=0 `)
	c.Cmd("QUIT", "221")
	// The next hop counts a message before its 250; the gateway logs it
	// after.
	if l := h.lines.WaitN(t, accepted+1, `^Message done `); len(l) != accepted+1 {
		t.Errorf("%d Message done lines, want %d", len(l), accepted+1)
	}
	if n := hop.count(); n != accepted+1 {
		t.Errorf("the next hop got %d messages, want %d", n, accepted+1)
	}
}

// gatedHop is a next hop that holds each message's final reply until its
// gate is opened: a next hop that takes nothing, then everything.
type gatedHop struct {
	addr string
	gate chan struct{}
	once sync.Once

	mu   sync.Mutex
	msgs int
}

func (g *gatedHop) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedHop) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.msgs
}

func startGatedHop(t *testing.T) *gatedHop {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedHop{addr: ln.Addr().String(), gate: make(chan struct{})}
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.serve(c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		g.open()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return g
}

func (g *gatedHop) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	reply := func(s string) { c.Write([]byte(s + "\r\n")) }
	reply("220 hop.test ESMTP")
	inData := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case inData && line == ".":
			inData = false
			<-g.gate
			g.mu.Lock()
			g.msgs++
			g.mu.Unlock()
			reply("250 2.0.0 Ok: queued")
		case inData:
		case strings.HasPrefix(strings.ToUpper(line), "EHLO"):
			reply("250-hop.test\r\n250 PIPELINING")
		case strings.EqualFold(line, "DATA"):
			inData = true
			reply("354 go ahead")
		case strings.EqualFold(line, "QUIT"):
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}
