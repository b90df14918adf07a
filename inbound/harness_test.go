package inbound_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
)

// lines is an event sink that keeps the ESA text of every event.
type lines struct {
	mu   sync.Mutex
	all  []string
	wake chan struct{}
}

func newLines() *lines { return &lines{wake: make(chan struct{}, 1)} }

func (l *lines) Emit(e event.Entry) {
	l.mu.Lock()
	l.all = append(l.all, string(maillog.AppendMessage(nil, e.Event)))
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

// waitFor waits until a line matching re has been emitted and returns all
// lines so far.
func (l *lines) waitFor(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(10 * time.Second)
	for {
		all := l.snapshot()
		for _, s := range all {
			if rx.MatchString(s) {
				return all
			}
		}
		select {
		case <-l.wake:
		case <-deadline:
			t.Fatalf("no line matches %q; lines:\n%s", re, strings.Join(all, "\n"))
		}
	}
}

// dnsServer answers PTR and A queries from a table, on loopback.
type dnsServer struct {
	addr    string
	records map[string][]dns.RR
}

func startDNS(t *testing.T, zone ...string) *dnsServer {
	t.Helper()
	s := &dnsServer{records: map[string][]dns.RR{}}
	for _, z := range zone {
		rr, err := dns.NewRR(z)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ToLower(rr.Header().Name)
		s.records[name] = append(s.records[name], rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		found := false
		for _, rr := range s.records[strings.ToLower(q.Name)] {
			found = true
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if !found {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	s.addr = pc.LocalAddr().String()
	return s
}

// standardZone: 127.0.0.1 has a PTR whose name has no A record (verified
// no, as in the seed); 127.0.0.2 is a verified partner host.
var standardZone = []string{
	"1.0.0.127.in-addr.arpa. 60 IN PTR ns.example.com.",
	"2.0.0.127.in-addr.arpa. 60 IN PTR mx1.partner.test.",
	"mx1.partner.test. 60 IN A 127.0.0.2",
}

const baseConfig = `
hostname: mx.test
data_dir: %s
listeners:
  - name: InboundMail
    interface: Management
    address: 127.0.0.1:0
    timeouts: {unsuccessful: %s, total: %s}
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}
        - {name: PARTNERS, match: [.partner.test], policy: PARTNER}
        - {name: BLOCKLIST, match: [127.0.0.66], policy: BLOCKED}
        - {name: REFUSED, match: [127.0.0.67], policy: REFUSE}
        - {name: LIMITED, match: [127.0.0.68], policy: LIMITED}
      policies:
        RELAYED: {action: relay}
        PARTNER: {action: accept, max_message_size: 2KB}
        REFUSE: {action: tcprefuse}
        LIMITED: {action: accept, max_concurrency_per_ip: 1, max_messages_per_connection: 1, max_recipients_per_message: 2}
      default_policy: ACCEPTED
    rat:
      - {domain: example.com, action: accept}
      - {domain: ALL, action: reject}
dns: {servers: ["%s"], timeout: 2s}
logs:
  injection_debug:
    - {hosts: [.partner.test], sessions: 1}
`

type harness struct {
	t      *testing.T
	cfg    *config.Config
	srv    *inbound.Server
	ln     *inbound.Listener
	spool  *queue.Spool
	ids    *queue.Counters
	lines  *lines
	debug  *maillog.Writer
	addr   string
	served chan error
}

type opts struct {
	unsuccessful, total string
	yaml                string // replaces baseConfig
}

func start(t *testing.T, o opts) *harness {
	t.Helper()
	if o.unsuccessful == "" {
		o.unsuccessful = "5m"
	}
	if o.total == "" {
		o.total = "15m"
	}
	if o.yaml == "" {
		o.yaml = baseConfig
	}
	d := startDNS(t, standardZone...)
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(o.yaml, dir, o.unsuccessful, o.total, d.addr)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, lines: newLines(), served: make(chan error, 1)}
	if h.ids, err = queue.OpenCounters(filepath.Join(dir, "counters")); err != nil {
		t.Fatal(err)
	}
	if h.spool, err = queue.Open(filepath.Join(dir, "spool"), queue.Options{}); err != nil {
		t.Fatal(err)
	}
	h.srv = &inbound.Server{Hostname: cfg.Hostname, Spool: h.spool, IDs: h.ids, Events: h.lines,
		DNS: inbound.NewResolver(resolver.New(cfg.DNS.Servers, cfg.DNS.Timeout), cfg.DNS.Timeout), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	for _, dl := range cfg.Logs.InjectionDebug {
		if h.debug, err = maillog.Open(dl.Path, maillog.Options{}); err != nil {
			t.Fatal(err)
		}
		h.srv.Debug = append(h.srv.Debug, inbound.NewDebugLog(dl.Hosts, dl.Sessions, h.debug))
	}
	if h.ln, err = h.srv.Listen(cfg.Listeners[0]); err != nil {
		t.Fatal(err)
	}
	h.addr = h.ln.Addr().String()
	go func() { h.served <- h.ln.Serve() }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.ln.Shutdown(ctx)
	if err := <-h.served; err != nil {
		h.t.Errorf("Serve: %v", err)
	}
	h.spool.Close()
	h.ids.Close()
	if h.debug != nil {
		h.debug.Close()
	}
}

// client is a raw SMTP peer on a real TCP connection.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dial connects from the given loopback address ("" for 127.0.0.1).
func (h *harness) dial(from string) *client {
	h.t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: h.t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) reply() string {
	c.t.Helper()
	var out []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply (after %q): %v", out, err)
		}
		l = strings.TrimRight(l, "\r\n")
		out = append(out, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(out, "\n")
		}
	}
}

func (c *client) expect(prefix string) string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want %q...", r, prefix)
	}
	return r
}

func (c *client) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

// rst closes with a reset (SO_LINGER 0), as a firewall cutting the
// connection would look to the gateway.
func (c *client) rst() {
	c.c.(*net.TCPConn).SetLinger(0)
	c.c.Close()
}

// tlsUpgrade runs the client side of STARTTLS after the 220.
func (c *client) tlsUpgrade() {
	c.t.Helper()
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.c, c.r = tc, bufio.NewReader(tc)
}

var (
	idRe = regexp.MustCompile(`\b(ICID|MID) \d+`)
	ipRe = regexp.MustCompile(`\b\d+\.\d+\.\d+\.\d+\b`)
	tsRe = regexp.MustCompile(`^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} Info: `)
)

// normalize takes times, IDs and IP addresses out of a line.
func normalize(s string) string {
	s = tsRe.ReplaceAllString(s, "")
	s = idRe.ReplaceAllString(s, "$1 N")
	return ipRe.ReplaceAllString(s, "IP")
}

func readSeed(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		out = append(out, normalize(l))
	}
	return out
}

// esaLines drops mailgate's own lines.
func esaLines(all []string) []string {
	var out []string
	for _, l := range all {
		if !strings.HasPrefix(l, "mailgate:") {
			out = append(out, normalize(l))
		}
	}
	return out
}

func ownLine(t *testing.T, all []string) string {
	t.Helper()
	for _, l := range all {
		if strings.HasPrefix(l, "mailgate:") {
			return l
		}
	}
	t.Fatalf("no mailgate: line in\n%s", strings.Join(all, "\n"))
	return ""
}
