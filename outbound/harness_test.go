package outbound_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/debuglog"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
	"github.com/mailgate/mailgate/smtp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	idRe = regexp.MustCompile(`\b(ICID|MID|DCID|DCID:|Message) [1-9]\d*`) // 0 means something
	szRe = regexp.MustCompile(`ready \d+ bytes`)
	ipRe = regexp.MustCompile(`\b127\.0\.0\.\d+\b`)
	tmRe = regexp.MustCompile(`\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}`)
	qRe  = regexp.MustCompile(`queued as \d+`)
	ptRe = regexp.MustCompile(`\bport:? \d+`)
)

// normalize takes IDs, loopback addresses, ports, sizes and times out of
// a line.
func normalize(s string) string {
	s = szRe.ReplaceAllString(s, "ready N bytes")
	s = idRe.ReplaceAllString(s, "$1 N")
	s = ipRe.ReplaceAllString(s, "IP")
	s = qRe.ReplaceAllString(s, "queued as N")
	s = ptRe.ReplaceAllStringFunc(s, func(p string) string { return p[:strings.IndexByte(p, ' ')] + " PORT" })
	return tmRe.ReplaceAllString(s, "TIME")
}

// hop is a next hop for the tests: mailgate's own SMTP engine listening on
// loopback addresses, with replies chosen by the test.
type hop struct {
	t   testing.TB
	cfg smtp.Config // Greeting, TLS

	// Scripted replies; a nil function or a zero Reply accepts.
	hello func(verb string) smtp.Reply // verb "ehlo" or "helo"
	rcpt  func(to string) smtp.Reply
	data  func(msg []byte) smtp.Reply
	delay time.Duration // before the reply to the message: a slow host
	slow  string        // if set, only this local address is slow

	mu     sync.Mutex
	got    []received
	conns  int // connections accepted
	cur    int
	peak   int // most connections open at once
	live   map[*smtp.Session]bool
	closed bool
	wg     sync.WaitGroup
}

// received is a message a hop accepted.
type received struct {
	from string
	to   []string
	data []byte
	at   string // the local address that received it
}

func newHop(t testing.TB) *hop {
	return &hop{t: t, cfg: smtp.Config{Hostname: "hop.test"}, live: make(map[*smtp.Session]bool)}
}

// serve accepts on the listeners until the test ends.
func (h *hop) serve(lns ...net.Listener) *hop {
	for _, ln := range lns {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				h.wg.Add(1)
				go func() {
					defer h.wg.Done()
					h.handle(c)
				}()
			}
		}()
	}
	h.t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
		h.mu.Lock()
		h.closed = true
		for s := range h.live {
			s.Kill()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

func (h *hop) handle(c net.Conn) {
	// A connection counts as open until its QUIT arrives: the client takes
	// the 221 for the end, and may open the next one before this session
	// has finished closing.
	ended := false
	end := func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !ended {
			ended = true
			h.cur--
		}
	}
	cfg := h.cfg
	cfg.Transcript = func(sent bool, line []byte) {
		if !sent && strings.EqualFold(string(line), "QUIT") {
			end()
		}
	}
	s := smtp.NewSession(c, &hopSession{h: h, at: c.LocalAddr().(*net.TCPAddr).IP.String()}, cfg)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.Close()
		return
	}
	h.live[s] = true
	h.conns++
	h.cur++
	h.peak = max(h.peak, h.cur)
	h.mu.Unlock()
	s.Serve(context.Background())
	end()
	h.mu.Lock()
	delete(h.live, s)
	h.mu.Unlock()
}

func (h *hop) setDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.delay = d
}

func (h *hop) messages() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.got...)
}

func (h *hop) stats() (conns, peak int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns, h.peak
}

type hopSession struct {
	h    *hop
	at   string
	from string
	to   []string
}

func (s *hopSession) Hello(verb, domain string) smtp.Reply {
	if s.h.hello != nil {
		return s.h.hello(verb)
	}
	return smtp.Reply{}
}

func (s *hopSession) Mail(from smtp.Path, p smtp.MailParams) smtp.Reply {
	s.from, s.to = from.String(), nil
	return smtp.Reply{}
}

func (s *hopSession) Rcpt(to smtp.Path) smtp.Reply {
	if s.h.rcpt != nil {
		if r := s.h.rcpt(to.String()); !r.IsZero() && !r.Positive() {
			return r
		}
	}
	s.to = append(s.to, to.String())
	return smtp.Reply{}
}

func (s *hopSession) Data(r io.Reader) smtp.Reply {
	msg, err := io.ReadAll(r)
	if err != nil {
		return smtp.Reply{} // the engine refuses it
	}
	s.h.mu.Lock()
	delay := s.h.delay
	if s.h.slow != "" && s.h.slow != s.at {
		delay = 0
	}
	s.h.mu.Unlock()
	time.Sleep(delay) // a slow host is the test's subject
	if s.h.data != nil {
		if r := s.h.data(msg); !r.IsZero() && !r.Positive() {
			return r
		}
	}
	s.h.mu.Lock()
	s.h.got = append(s.h.got, received{from: s.from, to: s.to, data: bytes.Clone(msg), at: s.at})
	n := len(s.h.got)
	s.h.mu.Unlock()
	return smtp.Reply{Code: 250, Enhanced: "2.0.0", Text: fmt.Sprintf("Ok: queued as %d", n)}
}

func (s *hopSession) DataFailed(err error)                        {}
func (s *hopSession) Reset()                                      {}
func (s *hopSession) TLS(cs tls.ConnectionState)                  {}
func (s *hopSession) BadCommand(smtp.BadKind, string, smtp.Reply) {}
func (s *hopSession) PlaintextDiscarded(int)                      {}

// gateway is a Manager on a spool of its own, with a DNS server on
// loopback.
type gateway struct {
	t         testing.TB
	attempted func(outbound.Attempt)
	events    event.Sink
	dir       string
	cfg       *config.Config
	spool     *queue.Spool
	ids       *queue.Counters
	lines     *smtptest.Lines
	log       *smtptest.Log // the Manager's log (warnings and errors)
	m         *outbound.Manager
	debug     []*debuglog.Log[string]
	dns       *smtptest.DNS
	// crashPoint, if set before start, is the Manager's (SetCrashPoint).
	crashPoint func(point string)
}

// setup is what a test changes of the gateway.
type setup struct {
	zone      []string               // DNS records
	yaml      string                 // more configuration (routes:, delivery:, logs:)
	tweak     func(*config.Delivery) // after parsing
	debug     []*debuglog.Log[string]
	events    event.Sink // instead of the lines (benchmarks)
	defer_    bool       // do not Start
	attempted func(outbound.Attempt)
	dir       string // data_dir; "": a new temporary directory
}

func newGateway(t testing.TB, s setup) *gateway {
	t.Helper()
	g := &gateway{t: t, dir: s.dir, lines: smtptest.NewLines(), log: smtptest.NewLog(), debug: s.debug, events: s.events, attempted: s.attempted}
	if g.dir == "" {
		g.dir = t.TempDir()
	}
	if g.events == nil {
		g.events = g.lines
	}
	g.dns = smtptest.StartDNS(t, s.zone...)
	text := fmt.Sprintf("hostname: gw.test\ndata_dir: %s\ndns: {servers: [%q], timeout: 2s}\n%s", g.dir, g.dns.Addr, s.yaml)
	var err error
	if g.cfg, err = config.Parse([]byte(text), "test.yaml"); err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	if s.tweak != nil {
		s.tweak(&g.cfg.Delivery)
	}
	if g.ids, err = queue.OpenCounters(filepath.Join(g.dir, "counters")); err != nil {
		t.Fatal(err)
	}
	g.openSpool()
	t.Cleanup(func() {
		g.stop()
		g.spool.Close()
		g.ids.Close()
	})
	if !s.defer_ {
		g.start()
	}
	return g
}

// openSpool opens the gateway's spool, as a start of the process does.
func (g *gateway) openSpool() {
	g.t.Helper()
	var err error
	if g.spool, err = queue.Open(filepath.Join(g.dir, "spool"), queue.Options{}); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gateway) start() {
	g.t.Helper()
	var err error
	o := outbound.Options{
		Hostname:  g.cfg.Hostname,
		Spool:     g.spool,
		IDs:       g.ids,
		Events:    g.events,
		Resolver:  resolver.New(g.cfg.DNS.Servers, g.cfg.DNS.Timeout),
		Routes:    g.cfg.Routes,
		Delivery:  g.cfg.Delivery,
		Debug:     g.debug,
		Attempted: g.attempted,
		Logger:    slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, g.log), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	outbound.SetCrashPoint(&o, g.crashPoint)
	g.m, err = outbound.New(o)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.m.Start(); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gateway) stop() {
	if g.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.m.Stop(ctx); err != nil {
		g.t.Errorf("Stop: %v", err)
	}
	g.m = nil
}

// message commits a message to the spool, as the listener does, and hands
// it to the Manager (when it runs). It returns the MID.
func (g *gateway) message(from string, to ...string) uint64 {
	g.t.Helper()
	mid, err := g.ids.Next(queue.MID)
	if err != nil {
		g.t.Fatal(err)
	}
	env := &queue.Envelope{MID: mid, ICID: 1, From: from, Received: time.Now(), ClientIP: "127.0.0.1"}
	for i, a := range to {
		env.Rcpts = append(env.Rcpts, queue.Recipient{RID: i, Addr: a})
	}
	body := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: test %d\r\nMessage-ID: <%d@gw.test>\r\n\r\nHello.\r\n.A line with a leading dot.\r\n", from, to[0], mid, mid)
	if err := g.spool.Commit(context.Background(), env, []byte(body)); err != nil {
		g.t.Fatal(err)
	}
	if g.m != nil {
		g.m.Enqueue(env)
	}
	return mid
}

// finished waits for "Message finished MID n done".
func (g *gateway) finished(mid uint64) {
	g.t.Helper()
	g.lines.WaitFor(g.t, fmt.Sprintf(`^Message finished MID %d done$`, mid))
}

// linesOf returns the lines about a MID (and the DCIDs that carried it),
// normalized, in order.
func (g *gateway) linesOf(mid uint64) []string {
	all := g.lines.Snapshot()
	m := regexp.MustCompile(fmt.Sprintf(`\bMID %d\b|Message %d\b`, mid, mid))
	dcids := map[string]bool{}
	dre := regexp.MustCompile(`DCID:? (\d+)`)
	for _, s := range all {
		if m.MatchString(s) {
			if d := dre.FindStringSubmatch(s); d != nil {
				dcids[d[1]] = true
			}
		}
	}
	var out []string
	for _, s := range all {
		d := dre.FindStringSubmatch(s)
		if m.MatchString(s) || d != nil && dcids[d[1]] {
			out = append(out, normalize(s))
		}
	}
	return out
}

func compareGolden(t *testing.T, path string, got []string) {
	t.Helper()
	text := strings.Join(got, "\n") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if text != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, text, want)
	}
}
