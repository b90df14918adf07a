package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailgate/mailgate/internal/tmpfs"
	"github.com/mailgate/mailgate/internal/wait"
)

// alertConfig is the gateway of the alert tests: its alerts go to
// admin@alerts.test, which a route sends to the test's next hop (as all
// other mail); %s are the data_dir, extra top-level keys, the listener's
// address, its extra keys, extra routes and extra alerts keys.
const alertConfig = `hostname: mx.test
data_dir: %s
shutdown_timeout: 5s
%s
listeners:
  - name: InboundMail
    interface: Management
    address: %s
%s
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
routes:
%s
  - {domain: ALL, hosts: ["%s"]}
delivery:
  destinations:
    - {domain: default, tls: off}
  bounce: {initial_retry: 200ms, max_retry: 500ms}
tracking: {enabled: false}
http: {address: ""}
alerts:
  to: [admin@alerts.test]
  check_interval: 100ms
  repeat_interval: 1h
%s
`

type alertSetup struct {
	dataDir, top, listener, routes, alerts string
}

func alertGW(t *testing.T, hop *nextHop, s alertSetup) *gw {
	t.Helper()
	g := newGW(t, "5s")
	if s.dataDir != "" {
		g.dir = s.dataDir
	}
	cfg := fmt.Sprintf(alertConfig, g.dir, s.top, g.addr, s.listener, s.routes, hop.addr, s.alerts)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

var subjectRe = regexp.MustCompile(`(?m)^Subject: (.*)\r$`)

// alertsReceived are the subjects of the alerts the next hop received
// that match re.
func alertsReceived(hop *nextHop, re string) []string {
	rx := regexp.MustCompile(re)
	_, msgs := hop.delivered()
	var out []string
	for _, m := range msgs {
		if len(m.to) == 0 || m.to[0] != "admin@alerts.test" {
			continue
		}
		if sm := subjectRe.FindSubmatch(m.data); sm != nil && rx.Match(sm[1]) {
			out = append(out, string(sm[1]))
		}
	}
	return out
}

// waitAlert waits until the next hop received an alert whose subject
// matches re, and returns the subject.
func waitAlert(t *testing.T, hop *nextHop, re string) string {
	t.Helper()
	var got []string
	wait.Until(t, "an alert "+re, func() bool {
		got = alertsReceived(hop, re)
		return len(got) > 0
	})
	return got[0]
}

// A destination that refuses connections for longer than
// destination_down: the Warning reaches the administrator, in the ESA's
// subject form, and the mail log has the ESA's line; its repeats are
// suppressed while a second destination's alert comes and goes; when it
// takes mail again, the Information alert "Cleared" follows.
func TestAlertDestinationDown(t *testing.T) {
	hop := startNextHop(t, 0)
	closed1, closed2 := freePort(t), freePort(t)
	g := alertGW(t, hop, alertSetup{
		routes: fmt.Sprintf("  - {domain: refused.test, hosts: [\"%s\"]}\n  - {domain: refused2.test, hosts: [\"%s\"]}", closed1, closed2),
		alerts: "  destination_down: 1s"})
	g.start()
	if _, err := sendRawEnvelope(g.addr, "a@example.org", "x@refused.test", "Subject: t\r\n\r\nt\r\n"); err != nil {
		t.Fatal(err)
	}
	subj := waitAlert(t, hop, `^Warning-mx\.test: \(System\) Destination refused\.test has been down for [1-9]\d*s$`)
	g.waitLog(`Info: A System/Warning alert was sent to admin@alerts\.test with subject "` + regexp.QuoteMeta(subj) + `"\.\n`)
	// The alert is a generated message of its own, tracked by its lines.
	g.waitLog(`Info: MID \d+ Subject '` + regexp.QuoteMeta(subj) + `'\n`)

	// A second destination down, a second alert: by then the first
	// condition held for many rounds, and was not mailed again.
	if _, err := sendRawEnvelope(g.addr, "a@example.org", "y@refused2.test", "Subject: t\r\n\r\nt\r\n"); err != nil {
		t.Fatal(err)
	}
	waitAlert(t, hop, `^Warning-mx\.test: \(System\) Destination refused2\.test has been down`)
	if got := alertsReceived(hop, `Destination refused\.test has been down`); len(got) != 1 {
		t.Errorf("alerts of refused.test: %q, want one (repeats suppressed for repeat_interval)", got)
	}

	// refused.test takes mail again: its message is delivered, and the
	// end of the condition is told.
	startNextHopAt(t, closed1, 0)
	waitAlert(t, hop, `^Information-mx\.test: \(System\) Cleared: Destination refused\.test has been down`)
	if got := alertsReceived(hop, `Cleared: Destination refused2\.test`); len(got) != 0 {
		t.Errorf("refused2.test is still down, yet: %q", got)
	}
	if !strings.Contains(g.stderr.String(), `msg="mailgate: alert" class=System severity=Warning key="destination refused.test"`) {
		t.Errorf("the gateway's log lacks the alert:\n%s", g.stderr)
	}
}

// The disk floor, for real: data_dir on a small tmpfs, filled. Below
// disk_free_below (by default twice the floor) a Hardware Warning, below min_free_space a Critical
// (the alert still fits: a generated message may use half the floor),
// and the space given back, "Cleared".
func TestAlertDiskSpace(t *testing.T) {
	mnt := tmpfs.Mount(t, 24<<20)
	hop := startNextHop(t, 0)
	g := alertGW(t, hop, alertSetup{dataDir: filepath.Join(mnt, "data"), top: "min_free_space: 4M"}) // disk_free_below: auto, twice the floor
	g.start()
	fill := tmpfs.Fill(t, mnt, "fill", 6<<20)
	waitAlert(t, hop, `^Warning-mx\.test: \(Hardware\) Free disk space [56]\.\d MiB is below 8\.0 MiB$`)
	tmpfs.Fill(t, mnt, "fill", 3<<20)
	waitAlert(t, hop, `^Critical-mx\.test: \(Hardware\) Free disk space [23]\.\d MiB is below the floor of 4\.0 MiB: new mail is refused$`)
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	waitAlert(t, hop, `^Information-mx\.test: \(Hardware\) Cleared: Free disk space [23]\.\d MiB is below the floor`)
	if got := alertsReceived(hop, `^Warning-mx\.test: \(Hardware\)`); len(got) != 1 {
		t.Errorf("Warnings %q: want one (the Critical replaced it, the Warning did not come back on the way up)", got)
	}
}

// The mail log on a file system that is full: its writes fail, the
// Critical alert says so (it goes through the spool, on another file
// system), and once space is back and a write succeeds, "Cleared".
func TestAlertMailLogFailing(t *testing.T) {
	mnt := tmpfs.Mount(t, 4<<20)
	hop := startNextHop(t, 0)
	logPath := filepath.Join(mnt, "mail_logs", "mail_logs.current")
	g := alertGW(t, hop, alertSetup{top: "logs:\n  mail: {path: " + logPath + "}"})
	g.start()
	fill := tmpfs.Fill(t, mnt, "fill", 0)
	// The file's last page has room still: more lines than a page holds.
	for i := range 10 {
		if _, err := sendRawEnvelope(g.addr, "a@example.org", "b@example.com", fmt.Sprintf("Subject: t%d\r\n\r\nt\r\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", g.stderr)
		}
	}()
	waitAlert(t, hop, `^Critical-mx\.test: \(System\) The mail log cannot be written: `+regexp.QuoteMeta(logPath)+`$`)
	_, msgs := hop.delivered()
	var body string
	for _, m := range msgs {
		if strings.Contains(string(m.data), "The mail log cannot be written") {
			body = string(m.data)
		}
	}
	if !strings.Contains(body, "no space left on device") || !strings.Contains(body, "What to do:\r\nFree space on the log's file system") {
		t.Errorf("the alert does not say why nor what to do:\n%s", body)
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	waitAlert(t, hop, `^Information-mx\.test: \(System\) Cleared: The mail log cannot be written`)
}

// The tracking store unreachable: PostgreSQL on a port where nothing
// listens. Mail flows; the Critical alert says the store is unreachable
// and why.
func TestAlertTrackingStore(t *testing.T) {
	hop := startNextHop(t, 0)
	g := alertGW(t, hop, alertSetup{top: fmt.Sprintf("tracking: {enabled: true, driver: postgres, dsn: \"postgres://mailgate@%s/test?connect_timeout=2\"}", freePort(t)),
		alerts: "  probe_timeout: 2s"})
	// alertConfig's "tracking: {enabled: false}" comes later in the file:
	// a key given twice is an error, so the test's replaces it.
	b, _ := os.ReadFile(g.config)
	os.WriteFile(g.config, []byte(strings.Replace(string(b), "tracking: {enabled: false}\n", "", 1)), 0o644)
	g.start()
	waitAlert(t, hop, `^Critical-mx\.test: \(System\) The tracking store \(postgres\) is unreachable$`)
	_, msgs := hop.delivered()
	if !strings.Contains(string(msgs[0].data), "connect: connection refused") {
		t.Errorf("the alert does not say why:\n%s", msgs[0].data)
	}
	if _, err := sendRawEnvelope(g.addr, "a@example.org", "b@example.com", "Subject: t\r\nX-Token: flows\r\n\r\nt\r\n"); err != nil {
		t.Fatalf("mail does not flow without the store: %v", err)
	}
	wait.Until(t, "the message delivered", func() bool { tok, _ := hop.delivered(); return tok["flows"] == 1 })
}

// A served certificate close to its expiry: a Warning with the days left.
func TestAlertCertificate(t *testing.T) {
	hop := startNextHop(t, 0)
	dir := t.TempDir()
	cert := writeCert(t, dir, "soon", time.Now().Add(10*24*time.Hour+time.Hour))
	g := alertGW(t, hop, alertSetup{listener: fmt.Sprintf("    tls: {cert: %s, key: %s}", cert.Cert, cert.Key)})
	g.start()
	waitAlert(t, hop, `^Warning-mx\.test: \(System\) The TLS certificate `+regexp.QuoteMeta(cert.Cert)+` expires in 11 day\(s\)$`)
}

// A queue that grows and ages behind a destination that refuses: the
// size and the age Warnings, each once.
func TestAlertQueue(t *testing.T) {
	hop := startNextHop(t, 0)
	g := alertGW(t, hop, alertSetup{routes: fmt.Sprintf("  - {domain: refused.test, hosts: [\"%s\"]}", freePort(t)),
		alerts: "  queue_max_messages: 2\n  queue_max_age: 1s\n  destination_down: 1h"})
	g.start()
	var first uint64
	for i := range 3 {
		mid, err := sendRawEnvelope(g.addr, "a@example.org", fmt.Sprintf("u%d@refused.test", i), "Subject: t\r\n\r\nt\r\n")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = mid
		}
	}
	waitAlert(t, hop, `^Warning-mx\.test: \(System\) The queue holds [3-5] messages, more than 2$`)
	waitAlert(t, hop, fmt.Sprintf(`^Warning-mx\.test: \(System\) The oldest message in the queue, MID %d, has waited \d+s$`, first))
	if got := alertsReceived(hop, `^Warning-mx\.test: \(System\) The queue holds`); len(got) != 1 {
		t.Errorf("size alerts %q, want one", got)
	}
}

// tcpProxy forwards connections to a server until killed; it can listen
// again on the same address, as a server that comes back.
type tcpProxy struct {
	t        *testing.T
	addr, to string

	mu       sync.Mutex
	ln       net.Listener
	conns    []net.Conn
	accepted int
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, to string) *tcpProxy {
	p := &tcpProxy{t: t, addr: "127.0.0.1:0", to: to}
	p.listen()
	t.Cleanup(func() { p.kill(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) listen() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.DialTimeout("tcp", p.to, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln {
				// Killed while this one was being dialled: it must not
				// outlive the server.
				p.mu.Unlock()
				c.Close()
				s.Close()
				return
			}
			p.conns = append(p.conns, c, s)
			p.accepted++
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, s); c.Close() }()
		}
	}()
}

// kill closes the listener and every connection: the server is gone.
func (p *tcpProxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// The tracking store lost after it was open: PostgreSQL behind a proxy
// the test kills. The Critical alert comes from the probe's query (the
// store was open); once the proxy is back, "Cleared".
func TestAlertTrackingStoreLost(t *testing.T) {
	const pg = "127.0.0.1:5432"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, "postgres://root@"+pg+"/test?sslmode=disable")
	if err != nil {
		if os.Getenv("CI") == "1" {
			t.Fatalf("PostgreSQL: %v", err)
		}
		t.Skipf("no PostgreSQL on %s: %v", pg, err)
	}
	defer admin.Close(context.Background())
	schema := fmt.Sprintf("mg_alert_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, "postgres://root@"+pg+"/test?sslmode=disable"); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	proxy := startProxy(t, pg)
	hop := startNextHop(t, 0)
	g := alertGW(t, hop, alertSetup{top: fmt.Sprintf("tracking: {enabled: true, driver: postgres, dsn: \"postgres://root@%s/test?sslmode=disable&search_path=%s&connect_timeout=2\"}", proxy.addr, schema),
		alerts: "  probe_timeout: 1s"})
	b, _ := os.ReadFile(g.config)
	os.WriteFile(g.config, []byte(strings.Replace(string(b), "tracking: {enabled: false}\n", "", 1)), 0o644)
	g.start()
	// Open: the store made its tables.
	wait.Until(t, "the tracking store's tables", func() bool {
		var n int
		admin.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&n)
		return n > 0
	})
	proxy.kill()
	waitAlert(t, hop, `^Critical-mx\.test: \(System\) The tracking store \(postgres\) is unreachable$`)
	proxy.listen()
	waitAlert(t, hop, `^Information-mx\.test: \(System\) Cleared: The tracking store \(postgres\) is unreachable$`)
	if got := alertsReceived(hop, `^Critical-mx\.test: \(System\) The tracking store`); len(got) != 1 {
		t.Errorf("alerts %q, want one", got)
	}
}
