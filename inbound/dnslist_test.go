package inbound_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
)

// listsConfig: an allow list (DNSWL) before the block lists, as the HAT's
// first match wins; %[1]s is data_dir, %[2]s the listener's address, %[3]s
// the DNS server, %[4]s dns.dnslist_timeout.
const listsConfig = `
hostname: mx.test
data_dir: %[1]s
listeners:
  - name: InboundMail
    interface: Management
    address: "%[2]s"
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}
        - {name: ALLOWED, match: ["dnslist[list.wl.test:127.0.10.0/24]"], policy: ACCEPTED}
        - {name: BLOCKED, match: ["dnslist[zen.bl.test:127.0.0.2-127.0.0.11]"], policy: BLOCKED}
        - {name: REFUSED, match: ["dnslist[refuse.bl.test]"], policy: REFUSE}
      policies:
        RELAYED: {action: relay}
        REFUSE: {action: tcprefuse}
      default_policy: ACCEPTED
    rat:
      - {domain: ALL, action: accept}
dns: {servers: ["%[3]s"], timeout: 30s, dnslist_timeout: %[4]s}
`

// listsZone: the lists' entries for the test clients, and SOAs, so that
// "not listed" may be cached.
var listsZone = []string{
	"zen.bl.test. 3600 IN SOA ns.bl.test. hostmaster.bl.test. 1 3600 600 86400 300",
	"list.wl.test. 3600 IN SOA ns.wl.test. hostmaster.wl.test. 1 3600 600 86400 300",
	"refuse.bl.test. 3600 IN SOA ns.bl.test. hostmaster.bl.test. 1 3600 600 86400 300",
	"20.0.0.127.zen.bl.test. 60 IN A 127.0.0.2",
	"21.0.0.127.zen.bl.test. 60 IN A 127.0.0.12", // a code the rule does not count
	"23.0.0.127.zen.bl.test. 60 IN A 127.0.0.2",  // listed, but allowed first
	"23.0.0.127.list.wl.test. 60 IN A 127.0.10.1",
	"24.0.0.127.list.wl.test. 60 IN A 127.0.9.1", // allow-listed with a code the rule does not count
	"24.0.0.127.zen.bl.test. 60 IN A 127.0.0.11",
	"25.0.0.127.refuse.bl.test. 60 IN A 127.0.0.2",
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.zen.bl.test. 60 IN A 127.0.0.3",
}

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type listsHarness struct {
	*harness
	dns  *smtptest.DNS
	slog *syncBuffer // the gateway's own diagnostics
}

// startLists runs a listener on address with the HAT of listsConfig, whose
// lists the tests' DNS server answers from listsZone.
func startLists(t *testing.T, address, listTimeout string) *listsHarness {
	t.Helper()
	d := smtptest.StartDNS(t, listsZone...)
	dir := t.TempDir()
	cfg, err := config.Parse(fmt.Appendf(nil, listsConfig, dir, address, d.Addr, listTimeout), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, lines: smtptest.NewLines(), served: make(chan error, 1)}
	if h.ids, err = queue.OpenCounters(filepath.Join(dir, "counters")); err != nil {
		t.Fatal(err)
	}
	if h.spool, err = queue.Open(filepath.Join(dir, "spool"), queue.Options{}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	r := resolver.New(cfg.DNS.Servers, cfg.DNS.Timeout)
	h.srv = &inbound.Server{Hostname: cfg.Hostname, Spool: h.spool, IDs: h.ids, Events: h.lines,
		DNS:    inbound.NewResolver(r, cfg.DNS.Timeout),
		Lists:  resolver.NewLists(r, cfg.DNS.ListTimeout, cfg.DNS.ListCacheSize),
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if h.ln, err = h.srv.Listen(cfg.Listeners[0]); err != nil {
		t.Fatal(err)
	}
	h.addr = h.ln.Addr().String()
	go func() { h.served <- h.ln.Serve() }()
	t.Cleanup(h.stop)
	return &listsHarness{harness: h, dns: d, slog: logs}
}

// connect runs one connection from the client address: the banner must
// begin with banner ("" when the connection is to be closed without a
// word), then QUIT. It returns the connection's lines, with N for the IDs.
func (h *listsHarness) connect(from, banner string) []string {
	h.t.Helper()
	since := len(h.lines.Snapshot())
	end := `^mailgate: ICID \d+ ended`
	if banner == "" {
		end = `^ICID 0 TCPREFUSE`
	}
	ended := len(h.lines.Grep(end))
	c := h.dial(from)
	if banner == "" {
		if b, err := c.R.ReadByte(); err == nil {
			h.t.Errorf("%s: TCPREFUSE sent a byte %q", from, b)
		}
	} else {
		c.Expect(banner)
		c.Send("QUIT\r\n")
		c.Reply()
	}
	h.lines.WaitN(h.t, ended+1, end)
	var out []string
	for _, l := range h.lines.Snapshot()[since:] {
		if m := ownRe.FindStringSubmatch(l); m != nil {
			// mailgate's own line, for the cause of a refusal.
			out = append(out, "mailgate: ICID N ended "+m[1]+m[2])
			continue
		}
		out = append(out, idRe.ReplaceAllString(l, "$1 N"))
	}
	return out
}

var ownRe = regexp.MustCompile(`^mailgate: ICID \d+ ended (cause=\S+).*?( detail=.*)?$`)

// TestDNSListHAT: what a client's listings make of its connection, in the
// ESA's words.
func TestDNSListHAT(t *testing.T) {
	h := startLists(t, "127.0.0.1:0", "2s")
	for _, tt := range []struct {
		name, client, banner string
		lines                []string
	}{
		{"listed: the reject banner", "127.0.0.20", "554 mx.test Access denied", []string{
			"New SMTP ICID N interface Management (127.0.0.1) address %s reverse dns host unknown verified no",
			"ICID N REJECT SG BLOCKED match dnslist[zen.bl.test:127.0.0.2-127.0.0.11] SBRS not enabled",
			"ICID N close",
			"mailgate: ICID N ended cause=policy detail='HAT REJECT SG BLOCKED match dnslist[zen.bl.test:127.0.0.2-127.0.0.11]'",
		}},
		{"listed with a code not counted", "127.0.0.21", "220 mx.test ESMTP", []string{
			"New SMTP ICID N interface Management (127.0.0.1) address %s reverse dns host unknown verified no",
			"ICID N ACCEPT SG None match ALL SBRS not enabled",
			"ICID N close",
			"mailgate: ICID N ended cause=quit",
		}},
		{"not listed", "127.0.0.22", "220 mx.test ESMTP", []string{
			"New SMTP ICID N interface Management (127.0.0.1) address %s reverse dns host unknown verified no",
			"ICID N ACCEPT SG None match ALL SBRS not enabled",
			"ICID N close",
			"mailgate: ICID N ended cause=quit",
		}},
		{"allow list before the block list", "127.0.0.23", "220 mx.test ESMTP", []string{
			"New SMTP ICID N interface Management (127.0.0.1) address %s reverse dns host unknown verified no",
			"ICID N ACCEPT SG ALLOWED match dnslist[list.wl.test:127.0.10.0/24] SBRS not enabled",
			"ICID N close",
			"mailgate: ICID N ended cause=quit",
		}},
		{"allow-listed with a code not counted", "127.0.0.24", "554", []string{
			"New SMTP ICID N interface Management (127.0.0.1) address %s reverse dns host unknown verified no",
			"ICID N REJECT SG BLOCKED match dnslist[zen.bl.test:127.0.0.2-127.0.0.11] SBRS not enabled",
			"ICID N close",
			"mailgate: ICID N ended cause=policy detail='HAT REJECT SG BLOCKED match dnslist[zen.bl.test:127.0.0.2-127.0.0.11]'",
		}},
		{"refused without a word, before any ICID", "127.0.0.25", "", []string{
			"ICID N TCPREFUSE SG REFUSED match dnslist[refuse.bl.test] SBRS not enabled",
		}},
	} {
		got := h.connect(tt.client, tt.banner)
		if len(tt.lines) > 1 {
			tt.lines[0] = fmt.Sprintf(tt.lines[0], tt.client)
		}
		if strings.Join(got, "\n") != strings.Join(tt.lines, "\n") {
			t.Errorf("%s (%s): lines\n%s\nwant\n%s", tt.name, tt.client, strings.Join(got, "\n"), strings.Join(tt.lines, "\n"))
		}
	}
	// The relay client comes before every list and costs no lookup.
	h.connect("127.0.0.1", "220")
	for _, z := range []string{"list.wl.test", "zen.bl.test", "refuse.bl.test"} {
		if n := h.dns.Queries(resolver.ListName(netip.MustParseAddr("127.0.0.1"), z)); n != 0 {
			t.Errorf("%s asked %d times about the relay client", z, n)
		}
	}
	if s := h.slog.String(); strings.Contains(s, "DNS list") {
		t.Errorf("a DNS list failed:\n%s", s)
	}
}

// TestDNSListIPv6: an IPv6 client is asked by its nibbles.
func TestDNSListIPv6(t *testing.T) {
	h := startLists(t, "[::1]:0", "2s")
	got := h.connect("::1", "554 mx.test Access denied")
	if len(got) < 2 || got[0] != "New SMTP ICID N interface Management (::1) address ::1 reverse dns host unknown verified no" ||
		got[1] != "ICID N REJECT SG BLOCKED match dnslist[zen.bl.test:127.0.0.2-127.0.0.11] SBRS not enabled" {
		t.Errorf("lines\n%s", strings.Join(got, "\n"))
	}
}

// TestDNSListCache: a second connection of a client is decided from the
// cache, its listing and its absences from the other lists alike.
func TestDNSListCache(t *testing.T) {
	h := startLists(t, "127.0.0.1:0", "2s")
	client := netip.MustParseAddr("127.0.0.20")
	h.connect("127.0.0.20", "554")
	h.connect("127.0.0.20", "554")
	// Every list of the HAT is asked at once (list.wl.test and
	// refuse.bl.test say no), each once for the two connections. BLOCKED
	// decides before refuse.bl.test has answered, maybe before its query
	// has arrived; the second connection shares it or finds it cached.
	for _, z := range []string{"list.wl.test", "zen.bl.test", "refuse.bl.test"} {
		name := resolver.ListName(client, z)
		wait.Until(t, z+" asked", func() bool { return h.dns.Queries(name) > 0 })
		if n := h.dns.Queries(name); n != 1 {
			t.Errorf("%s asked %d times about %s in two connections, want once", z, n, client)
		}
	}
}

// TestDNSListTimeout: a list server that never answers delays the banner
// by the timeout, not more, and the client is not matched; the gateway's
// log says which list failed.
func TestDNSListTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	h := startLists(t, "127.0.0.1:0", timeout.String())
	h.dns.Silence("zen.bl.test")
	start := time.Now()
	got := h.connect("127.0.0.20", "220 mx.test ESMTP")
	took := time.Since(start)
	if took > timeout+3*time.Second {
		t.Errorf("the banner came after %v, with a DNS list timeout of %v", took, timeout)
	}
	if len(got) < 2 || got[1] != "ICID N ACCEPT SG None match ALL SBRS not enabled" {
		t.Errorf("lines\n%s", strings.Join(got, "\n"))
	}
	if h.dns.Queries(resolver.ListName(netip.MustParseAddr("127.0.0.20"), "zen.bl.test")) == 0 {
		t.Error("the silent list was never asked")
	}
	if s := h.slog.String(); !strings.Contains(s, "DNS list did not answer") || !strings.Contains(s, "zone=zen.bl.test") || !strings.Contains(s, "client=127.0.0.20") {
		t.Errorf("the gateway's log does not name the list that failed:\n%s", s)
	}
}

// TestDNSListDecidedEarly: a client that a list places ahead of a silent
// list gets its banner without waiting for that one.
func TestDNSListDecidedEarly(t *testing.T) {
	const timeout = 20 * time.Second
	h := startLists(t, "127.0.0.1:0", timeout.String())
	h.dns.Silence("refuse.bl.test") // REFUSED comes last
	for _, tt := range []struct{ client, banner, hat string }{
		{"127.0.0.23", "220", "ICID N ACCEPT SG ALLOWED match dnslist[list.wl.test:127.0.10.0/24] SBRS not enabled"},
		{"127.0.0.20", "554", "ICID N REJECT SG BLOCKED match dnslist[zen.bl.test:127.0.0.2-127.0.0.11] SBRS not enabled"},
	} {
		start := time.Now()
		got := h.connect(tt.client, tt.banner)
		if took := time.Since(start); took > timeout/2 {
			t.Errorf("%s: the session took %v: it waited for the silent list", tt.client, took)
		}
		if len(got) < 2 || got[1] != tt.hat {
			t.Errorf("%s: lines\n%s", tt.client, strings.Join(got, "\n"))
		}
		name := resolver.ListName(netip.MustParseAddr(tt.client), "refuse.bl.test")
		wait.Until(t, "the silent list asked about "+tt.client, func() bool { return h.dns.Queries(name) > 0 })
	}
}
