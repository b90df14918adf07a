package rspamd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/enginetest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/scan"
)

var engine = enginetest.Shared{Start: enginetest.Rspamd}

func TestMain(m *testing.M) {
	code := m.Run()
	engine.Stop()
	os.Exit(code)
}

func client(t *testing.T, opt Options) *Client {
	t.Helper()
	c, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func msg(mid uint64, body []byte) *scan.Message {
	m := &scan.Message{MID: mid, ClientIP: netip.MustParseAddr("192.0.2.1"), ClientHost: "mx.example.com", Helo: "mx.example.com",
		Sender: "alice@example.com", Recipients: []string{"bob@example.org"}}
	return m.Bytes(body)
}

var (
	gtube = enginetest.Mail("alice@example.com", "bob@example.org", "test", enginetest.GTUBE)
	clean = enginetest.Mail("alice@example.com", "bob@example.org", "lunch", "Shall we have lunch at noon?\n")
)

// TestRealVerdicts: rspamd rejects GTUBE (positive) and lets a plain
// message pass (negative).
func TestRealVerdicts(t *testing.T) {
	e := engine.Get(t)
	c := client(t, Options{URL: "http://" + e.TCP})
	if err := c.Ping(enginetest.Context(t)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		body   []byte
		class  scan.SpamClass
		action string
		symbol string
	}{
		{"GTUBE", gtube, scan.Positive, "reject", "GTUBE"},
		{"clean", clean, scan.Negative, "no action", "MIME_GOOD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := c.ScanSpam(enginetest.Context(t), msg(1, tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if v.Class != tt.class || v.Action != tt.action || !slices.Contains(v.Names(), tt.symbol) {
				t.Errorf("verdict %v %q %v, want %v %q with %s", v.Class, v.Action, v.Names(), tt.class, tt.action, tt.symbol)
			}
			if v.Required != 15 {
				t.Errorf("required score %v, want rspamd's reject score 15", v.Required)
			}
		})
	}
}

// TestRealEnvelope: the envelope reaches rspamd's rules (its symbols) and
// its log (the line an rspamd admin greps by queue id).
func TestRealEnvelope(t *testing.T) {
	e := engine.Get(t)
	c := client(t, Options{URL: "http://" + e.TCP})
	for _, tt := range []struct {
		name    string
		m       *scan.Message
		symbols []string // present
		absent  []string
	}{
		{"envelope sender equals From", msg(2, clean), []string{"FROM_EQ_ENVFROM"}, []string{"FORGED_SENDER"}},
		{"another envelope sender", func() *scan.Message { m := msg(3, clean); m.Sender = "x@other.net"; return m }(),
			[]string{"FORGED_SENDER", "FROM_NEQ_ENVFROM"}, []string{"FROM_EQ_ENVFROM"}},
		{"HELO an IP address", func() *scan.Message { m := msg(4, clean); m.Helo = "192.0.2.1"; return m }(),
			[]string{"HFILTER_HELO_BADIP"}, nil},
		{"HELO a name", msg(5, clean), nil, []string{"HFILTER_HELO_BADIP"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := c.ScanSpam(enginetest.Context(t), tt.m)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.symbols {
				if !slices.Contains(v.Names(), s) {
					t.Errorf("no %s in %v", s, v.Names())
				}
			}
			for _, s := range tt.absent {
				if slices.Contains(v.Names(), s) {
					t.Errorf("%s in %v", s, v.Names())
				}
			}
		})
	}

	m := msg(424242, clean)
	m.User, m.Recipients = "alice", []string{"bob@example.org", "carol@example.org"}
	if _, err := c.ScanSpam(enginetest.Context(t), m); err != nil {
		t.Fatal(err)
	}
	want := []string{"qid: <424242>", "ip: 192.0.2.1", "user: alice", "from: <alice@example.com>", "rcpts: <bob@example.org,carol@example.org>"}
	var line string
	wait.Until(t, "rspamd's log line of queue id 424242", func() bool {
		b, _ := os.ReadFile(e.Log)
		for l := range strings.Lines(string(b)) {
			if strings.Contains(l, "qid: <424242>") {
				line = l
				return true
			}
		}
		return false
	})
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("rspamd logged\n%s\nwithout %q", line, w)
		}
	}
}

func ptr(f float64) *float64 { return &f }

// TestParse: rspamd's actions and scores map to the ESA's classes, by
// default and with thresholds.
func TestParse(t *testing.T) {
	reply := func(action string, score float64) []byte {
		return fmt.Appendf(nil, `{"is_skipped":false,"score":%v,"required_score":15.0,"action":%q,`+
			`"symbols":{"A":{"name":"A","score":1.5,"options":["x"]},"B":{"name":"B","score":3.0},"C":{"name":"C","score":1.5}}}`, score, action)
	}
	for _, tt := range []struct {
		action string
		score  float64
		t      scan.Thresholds
		want   scan.SpamClass
	}{
		{"reject", 16, scan.Thresholds{}, scan.Positive},
		{"soft reject", 16, scan.Thresholds{}, scan.Negative},
		{"rewrite subject", 8, scan.Thresholds{}, scan.Suspect},
		{"add header", 6, scan.Thresholds{}, scan.Suspect},
		{"greylist", 4, scan.Thresholds{}, scan.Negative},
		{"no action", 0, scan.Thresholds{}, scan.Negative},
		{"no action", 10, scan.Thresholds{Positive: ptr(10)}, scan.Positive},
		{"reject", 9.9, scan.Thresholds{Positive: ptr(10)}, scan.Negative},
		{"no action", 5, scan.Thresholds{Suspect: ptr(5)}, scan.Suspect},
		{"add header", 4.9, scan.Thresholds{Suspect: ptr(5)}, scan.Negative},
		{"reject", 20, scan.Thresholds{Suspect: ptr(5)}, scan.Positive},
		{"no action", 7, scan.Thresholds{Suspect: ptr(5), Positive: ptr(7)}, scan.Positive},
		{"no action", -3, scan.Thresholds{Suspect: ptr(-5), Positive: ptr(7)}, scan.Suspect},
	} {
		t.Run(fmt.Sprintf("%s %v %v", tt.action, tt.score, tt.want), func(t *testing.T) {
			v, err := Parse(reply(tt.action, tt.score), tt.t)
			if err != nil {
				t.Fatal(err)
			}
			if v.Class != tt.want || v.Score != tt.score || v.Action != tt.action || v.Required != 15 {
				t.Errorf("got %v %v %q %v, want %v %v %q 15", v.Class, v.Score, v.Action, v.Required, tt.want, tt.score, tt.action)
			}
			if got := v.Names(); !slices.Equal(got, []string{"B", "A", "C"}) || !slices.Equal(v.Symbols[1].Options, []string{"x"}) {
				t.Errorf("symbols %+v, want B, A (x), C: by score, then name", v.Symbols)
			}
		})
	}
}

// faultPeer is an HTTP server on loopback standing in for a broken rspamd.
func faultPeer(t *testing.T, h http.HandlerFunc) (url string, conns *atomic.Int32) {
	conns = new(atomic.Int32)
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s.URL, conns
}

func TestFaults(t *testing.T) {
	reply := func(code int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code); w.Write([]byte(body)) }
	}
	for _, tt := range []struct {
		name string
		url  func(t *testing.T) string
		want error
		text string
	}{
		{"stopped", func(t *testing.T) string { return "http://" + enginetest.ClosedAddr(t) }, scan.ErrUnavailable, "connection refused"},
		{"not JSON", func(t *testing.T) string { u, _ := faultPeer(t, reply(200, "hello")); return u }, scan.ErrProtocol, "not /checkv2's JSON"},
		{"no action", func(t *testing.T) string { u, _ := faultPeer(t, reply(200, `{"score":1}`)); return u }, scan.ErrProtocol, "no action"},
		{"unknown action", func(t *testing.T) string {
			u, _ := faultPeer(t, reply(200, `{"score":1,"action":"shred"}`))
			return u
		}, scan.ErrProtocol, `unknown action "shred"`},
		{"server error", func(t *testing.T) string {
			u, _ := faultPeer(t, reply(500, `{"error":"cannot allocate task"}`))
			return u
		}, scan.ErrEngine, "HTTP 500: cannot allocate task"},
		{"bad request", func(t *testing.T) string { u, _ := faultPeer(t, reply(400, ``)); return u }, scan.ErrProtocol, "HTTP 400"},
		{"not HTTP", func(t *testing.T) string { return garbagePeer(t, "220 mail.example.com ESMTP\r\n") }, scan.ErrProtocol, "malformed HTTP"},
		{"closes at once", func(t *testing.T) string { return garbagePeer(t, "") }, scan.ErrUnavailable, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, Options{URL: tt.url(t), Timeout: 10 * time.Second})
			_, err := c.ScanSpam(enginetest.Context(t), msg(1, clean))
			var se *scan.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Engine != "rspamd" || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v, want %v with %q", err, tt.want, tt.text)
			}
		})
	}
}

// garbagePeer answers each HTTP request with text, not HTTP, and closes
// the connection.
func garbagePeer(t *testing.T, text string) string {
	read := func(br *bufio.Reader) error {
		// The whole request is read first: the client must see the
		// reply, not a failed write.
		req, err := http.ReadRequest(br)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, req.Body)
		return err
	}
	return "http://" + enginetest.StartPeer(t, &enginetest.Peer{Read: read, Reply: text}).Addr
}

// TestTimeout: a peer that takes the request and never answers costs the
// timeout, not more.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	u, _ := faultPeer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := client(t, Options{URL: u, Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := c.ScanSpam(context.Background(), msg(1, clean))
	if !errors.Is(err, scan.ErrTimeout) {
		t.Fatalf("error %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout of 300ms took %v", d)
	}
	// The caller's deadline counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c = client(t, Options{URL: u, Timeout: time.Hour})
	if _, err := c.ScanSpam(ctx, msg(1, clean)); !errors.Is(err, scan.ErrTimeout) {
		t.Fatalf("error %v, want a timeout", err)
	}
}

// TestConcurrencyAndKeepAlive: no more requests in flight than allowed,
// all of them answered, over kept-alive connections.
func TestConcurrencyAndKeepAlive(t *testing.T) {
	var inflight enginetest.InFlight
	release, done := make(chan struct{}), make(chan struct{})
	u, conns := faultPeer(t, func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"IP", "Helo", "From", "Queue-Id", "Deliver-To"} {
			if r.Header.Get(h) == "" {
				http.Error(w, `{"error":"no `+h+` header"}`, 400)
				return
			}
		}
		inflight.Enter()
		defer inflight.Leave()
		select {
		case <-release:
		case <-done: // the test failed early: let the server close
			return
		}
		w.Write([]byte(`{"score":0.5,"required_score":15,"action":"no action","symbols":{}}`))
	})
	t.Cleanup(func() { close(done) }) // before the server's Close, which waits for the handlers
	const limit = 3
	c := client(t, Options{URL: u, Concurrency: limit, Timeout: time.Minute})
	enginetest.CheckConcurrency(t, &inflight, release, limit, 10, func(i int) error {
		_, err := c.ScanSpam(context.Background(), msg(uint64(i+1), clean))
		return err
	})
	if n := conns.Load(); n > limit {
		t.Errorf("%d connections for a limit of %d", n, limit)
	}
	// One request at a time reuses one connection.
	before := conns.Load()
	go func() {
		for range 5 {
			release <- struct{}{}
		}
	}()
	for range 5 {
		if _, err := c.ScanSpam(context.Background(), msg(99, clean)); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load() - before; n != 0 {
		t.Errorf("5 requests in turn opened %d new connections, want 0 (kept alive)", n)
	}
}

// TestTooBig: a message over max_size is not sent.
func TestTooBig(t *testing.T) {
	var hits atomic.Int32
	u, _ := faultPeer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	c := client(t, Options{URL: u, MaxSize: 100})
	body := make([]byte, 101)
	_, err := c.ScanSpam(context.Background(), msg(1, body))
	var tb *scan.TooBigError
	if !errors.As(err, &tb) || *tb != (scan.TooBigError{Engine: "rspamd", Size: 101, Limit: 100}) {
		t.Fatalf("error %v, want too big (101/100)", err)
	}
	if hits.Load() != 0 {
		t.Error("the message was sent")
	}
	if _, err := c.ScanSpam(context.Background(), msg(1, body[:100])); errors.As(err, &tb) {
		t.Errorf("a message of max_size: %v", err)
	}
}
