package inbound_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/internal/debuglog"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/resolver"
)

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
	lines  *smtptest.Lines
	debug  *maillog.Writer
	log    *maillog.Writer // the mail log, when opts.mailLog asks for one
	addr   string
	served chan error
}

type opts struct {
	unsuccessful, total string
	yaml                string           // replaces baseConfig
	mailLog             *maillog.Options // also write the mail log, to data_dir/mail_logs.current
	setup               func(h *harness) // before the listener starts
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
	d := smtptest.StartDNS(t, standardZone...)
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(o.yaml, dir, o.unsuccessful, o.total, d.Addr)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, lines: smtptest.NewLines(), served: make(chan error, 1)}
	var events event.Sink = h.lines
	if o.mailLog != nil {
		if h.log, err = maillog.Open(filepath.Join(dir, "mail_logs.current"), *o.mailLog); err != nil {
			t.Fatal(err)
		}
		events = event.Multi{h.lines, h.log}
	}
	if h.ids, err = queue.OpenCounters(filepath.Join(dir, "counters")); err != nil {
		t.Fatal(err)
	}
	if h.spool, err = queue.Open(filepath.Join(dir, "spool"), queue.Options{}); err != nil {
		t.Fatal(err)
	}
	h.srv = &inbound.Server{Hostname: cfg.Hostname, Spool: h.spool, IDs: h.ids, Events: events,
		DNS: inbound.NewResolver(resolver.New(cfg.DNS.Servers, cfg.DNS.Timeout), cfg.DNS.Timeout), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	h.srv.DKIM = cfg.DKIMSigning
	for _, dl := range cfg.Logs.InjectionDebug {
		if h.debug, err = maillog.Open(dl.Path, maillog.Options{}); err != nil {
			t.Fatal(err)
		}
		h.srv.Debug = append(h.srv.Debug, debuglog.New(dl.Match, dl.Sessions, h.debug))
	}
	if o.setup != nil {
		o.setup(h)
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
	if h.log != nil {
		h.log.Close()
	}
}

// dial connects from the given loopback address ("" for 127.0.0.1).
func (h *harness) dial(from string) *smtptest.Conn {
	h.t.Helper()
	return smtptest.Dial(h.t, h.addr, from)
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
