package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/tmpfs"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/metrics"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
	"github.com/mailgate/mailgate/tracking/storetest"
)

// scrape GETs /metrics with the bearer token and parses it with
// Prometheus' own text parser.
func scrape(t *testing.T, url, token string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", url, res.StatusCode, err, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, b)
	}
	return fams, string(b)
}

// value is the sample of family name whose labels include want (name=value
// pairs), summed over the matching series: counter, gauge, or a
// histogram's count. -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	sum, found := 0.0, false
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				ok = false
			}
		}
		if !ok {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	if !found {
		return -1
	}
	return sum
}

// sendSMTP sends one message with Go's SMTP client from a loopback
// address, without STARTTLS; the error is the server's refusal, if any.
func sendSMTP(addr, local, from string, to []string, body string) error {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, "mx.test")
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string { return freePort(t) }

const metricsConfig = `hostname: mx.test
data_dir: %[1]s
shutdown_timeout: 5s
listeners:
  - name: InboundMail
    interface: Management
    address: %[2]s
    health_checks: [127.0.0.5]
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}
        - {name: BLOCKED, match: [127.0.0.66], policy: BLOCK}
        - {name: REFUSED, match: [127.0.0.67], policy: REFUSE}
        - {name: SMALL, match: [127.0.0.3], policy: SMALL}
      policies:
        RELAYED: {action: relay}
        BLOCK: {action: reject}
        REFUSE: {action: tcprefuse}
        SMALL: {action: relay, max_message_size: 1KB}
      default_policy: ACCEPTED
    rat:
      - {domain: example.net, action: accept}
      - {domain: ALL, action: reject}
  - name: Submission
    interface: Submission
    address: %[3]s
    hat:
      sender_groups: []
      default_policy: ACCEPTED
    auth: {users: users, required: true, failure_delay: 0s, max_failures: 100}
routes:
  - {domain: down.test, hosts: ["%[4]s"]}
  - {domain: ALL, hosts: ["%[5]s"]}
delivery:
  destinations:
    - {domain: default, tls: off}
  bounce: {initial_retry: 1h}
logs:
  mail: {path: %[6]s}
tracking:
  syslog: {address: "%[7]s", allow: [127.0.0.9]}
http: {address: "%[8]s", token: t0k, metrics_token: scr4pe}
alerts: {check_interval: 100ms}
`

// Declared families that no traffic of TestMetricsAfterTraffic moves, and
// why; each is a gauge at zero in a quiet gateway, or a counter of an
// overflow that the test named moves for real, scraped by the metrics
// package's TestScrapeOverflowCounters.
var notMovedByTraffic = map[string]string{
	"mailgate_connections_open":               "gauge: 0 when no connection is open",
	"mailgate_delivery_active_messages":       "gauge: 0 once the queue manager has let go of the messages",
	"mailgate_delivery_waiting_messages":      "gauge: 0 unless memory is full (outbound TestBoundedMemory)",
	"mailgate_delivery_connections":           "gauge: 0 between deliveries",
	"mailgate_tracking_lag_seconds":           "gauge: 0 once the store holds everything (tracking TestFeedLag)",
	"mailgate_mail_log_dropped_lines_total":   "the writer's 32 MiB buffer full (maillog TestWriterHungDisk; metrics TestScrapeOverflowCounters)",
	"mailgate_tracking_dropped_entries_total": "the feed's buffer of 65,536 entries full (tracking TestFeedCatchesUp; metrics TestScrapeOverflowCounters)",
}

// Real traffic of every kind through the binary, then /metrics scraped
// and read with Prometheus' parser: each value is what the traffic made,
// promtool accepts the output, and every family declared moved.
func TestMetricsAfterTraffic(t *testing.T) {
	promtool := need(t, "promtool")
	hop := startNextHop(t, 0, "nobody@example.net")
	g := newGW(t, "5s")
	logDir := tmpfs.Mount(t, 1<<20)
	sub, syslogAddr, web := freePort(t), freePort(t), freePort(t)
	cfg := fmt.Sprintf(metricsConfig, g.dir, g.addr, sub, closedPort(t), hop.addr,
		filepath.Join(logDir, "mail_logs.current"), syslogAddr, web)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	passwd(t, filepath.Join(g.dir, "users"), "alice@example.com", "right password")
	// Records of an earlier run whose log is gone: the feed finds the gap.
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(g.dir, "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, storetest.Messages("mx.test", 1, 5, true)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	g.start()
	url := "http://" + web + "/metrics"

	// Connections: a health check, a refused and a rejected client.
	probe := smtptest.Dial(t, g.addr, "127.0.0.1") // not a health checker: a lost connection
	probe.Expect("220")
	probe.C.Close()
	c := smtptest.Dial(t, g.addr, "127.0.0.5")
	c.Expect("220")
	c.C.Close()
	if c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.67")}, Timeout: 5 * time.Second}).Dial("tcp", g.addr); err == nil {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.ReadAll(c) // closed without a banner
		c.Close()
	}
	c = smtptest.Dial(t, g.addr, "127.0.0.66")
	c.Expect("554")
	c.Cmd("QUIT", "221")

	// Relayed: delivered, refused by the next hop (a bounce, its DSN
	// delivered), a bounce that bounces (dropped), a route that is down.
	msg := "Subject: metrics\r\n\r\nbody\r\n"
	if err := sendSMTP(g.addr, "127.0.0.1", "sender@example.org", []string{"ok@example.net", "nobody@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	if err := sendSMTP(g.addr, "127.0.0.1", "", []string{"nobody@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	if err := sendSMTP(g.addr, "127.0.0.1", "sender@example.org", []string{"x@down.test"}, msg); err != nil {
		t.Fatal(err)
	}
	// Refused: a recipient by the RAT, then QUIT with the message open; a
	// message over the policy's size.
	c = smtptest.Dial(t, g.addr, "127.0.0.2")
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@elsewhere.test>", "550")
	c.Cmd("RCPT TO:<b@example.net>", "250")
	c.Cmd("QUIT", "221")
	if err := sendSMTP(g.addr, "127.0.0.3", "a@example.org", []string{"b@example.net"}, strings.Repeat("x", 2000)+"\r\n"); err == nil || !strings.Contains(err.Error(), "552") {
		t.Errorf("a message over the size limit: %v, want 552", err)
	}
	// AUTH: a wrong password, then the right one.
	if r := tryAuth(t, sub, "alice@example.com", "wrong"); !strings.HasPrefix(r, "535") {
		t.Errorf("AUTH with a wrong password: %q", r)
	}
	if r := tryAuth(t, sub, "alice@example.com", "right password"); !strings.HasPrefix(r, "235") {
		t.Errorf("AUTH: %q", r)
	}
	// Syslog from a sender not allowed.
	sc, err := (&net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.1")}}).Dial("udp", syslogAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(sc, "<166>%s esa.test mail_logs: Info: Start MID 1 ICID 1", time.Now().Format(time.Stamp))
	sc.Close()

	wait.Until(t, "the deliveries, the bounce, the deferral and the gap", func() bool {
		fams, _ := scrape(t, url, "scr4pe")
		return value(fams, "mailgate_delivered_recipients_total", "destination", "ALL") == 2 &&
			value(fams, "mailgate_bounced_recipients_total", "destination", "ALL") == 2 &&
			value(fams, "mailgate_deferred_recipients_total", "destination", "down.test") == 1 &&
			value(fams, "mailgate_tracking_lost_gaps_total") >= 1 &&
			value(fams, "mailgate_syslog_dropped_messages_total") >= 1
	})

	// The mail log's disk full: messages whose lines cannot be written
	// (more than the page of the file's end that the tmpfs holds already).
	filler := tmpfs.Fill(t, logDir, "filler", 0)
	const late = 5
	for range late {
		if err := sendSMTP(g.addr, "127.0.0.1", "sender@example.org", []string{"late@example.net"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, "the mail log's write errors and the late messages delivered", func() bool {
		fams, _ := scrape(t, url, "scr4pe")
		return value(fams, "mailgate_mail_log_write_errors_total") >= 1 &&
			value(fams, "mailgate_delivered_recipients_total", "destination", "ALL") == 2+late &&
			value(fams, "mailgate_alerts_total", "class", "System", "severity", "Critical") >= 1 // the mail log's
	})
	os.Remove(filler)
	g.stderr.Wait(t, `mailgate: mail log writes failing`)

	fams, text := scrape(t, url, "scr4pe")
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mailgate_connections_total", []string{"listener", "InboundMail", "cause", "health-check"}, 1},
		// The probe not from a checker, and Go's client that closes after
		// the 552 without QUIT.
		{"mailgate_connections_total", []string{"listener", "InboundMail", "cause", "peer-closed"}, 2},
		{"mailgate_connections_total", []string{"listener", "InboundMail", "cause", "policy"}, 1},
		{"mailgate_connections_total", []string{"listener", "Submission", "cause", "quit"}, 2},
		{"mailgate_hat_decisions_total", []string{"action", "tcprefuse"}, 1},
		{"mailgate_hat_decisions_total", []string{"action", "reject"}, 1},
		{"mailgate_hat_decisions_total", []string{"listener", "InboundMail", "action", "relay"}, float64(5 + late)}, // a probe, the messages
		{"mailgate_received_messages_total", []string{"listener", "InboundMail"}, float64(3 + late)},
		{"mailgate_received_recipients_total", []string{"listener", "InboundMail"}, float64(4 + late)},
		{"mailgate_received_messages_total", []string{"listener", "Submission"}, 0},
		{"mailgate_rejected_recipients_total", []string{"listener", "InboundMail", "by", "RAT"}, 1},
		{"mailgate_receiving_failed_total", []string{"listener", "InboundMail", "reason", "Message size exceeds limit"}, 1},
		{"mailgate_aborted_messages_total", []string{"listener", "InboundMail", "reason", "Receiving aborted by sender"}, 1},
		{"mailgate_auth_total", []string{"listener", "Submission", "outcome", "failed"}, 1},
		{"mailgate_auth_total", []string{"listener", "Submission", "outcome", "succeeded"}, 1},
		// ok@, nobody@ (one transaction), the null sender's, the DSN, late@.
		{"mailgate_delivery_attempts_total", []string{"destination", "ALL"}, float64(3 + late)},
		{"mailgate_delivery_transaction_seconds", []string{"destination", "ALL"}, float64(3 + late)},
		{"mailgate_delivery_attempts_total", []string{"destination", "down.test"}, 1},
		{"mailgate_delivery_transaction_seconds", []string{"destination", "down.test"}, -1}, // no transaction ran
		{"mailgate_delivered_recipients_total", []string{"destination", "ALL"}, float64(2 + late)},
		{"mailgate_bounced_recipients_total", []string{"destination", "ALL"}, 2},
		{"mailgate_deferred_recipients_total", []string{"destination", "down.test"}, 1},
		{"mailgate_generated_bounces_total", nil, 1},
		{"mailgate_dropped_messages_total", []string{"reason", "double-bounce"}, 1},
		{"mailgate_queue_messages", nil, 1},
		{"mailgate_queue_recipients", nil, 1},
		{"mailgate_ready", nil, 1},
		{"mailgate_connections_open", []string{"listener", "InboundMail"}, 0},
	} {
		if got := value(fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if v := value(fams, "mailgate_received_bytes_total", "listener", "InboundMail"); v < float64((3+late)*len(msg)) {
		t.Errorf("received bytes %v, want at least %d", v, (3+late)*len(msg))
	}
	if v := value(fams, "mailgate_queue_oldest_message_age_seconds"); v <= 0 || v > 600 {
		t.Errorf("oldest message age %v", v)
	}
	if v := value(fams, "mailgate_spool_commit_batch_records"); v < 5 {
		t.Errorf("spool batches %v, want one at least per message", v)
	}
	if v, b := value(fams, "mailgate_mail_log_lost_lines_total"), value(fams, "mailgate_mail_log_write_errors_total"); v < 1 || b < 1 {
		t.Errorf("mail log: %v lines lost in %v errors, want some", v, b)
	}

	// promtool, Prometheus' own linter.
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// Every family declared moved, but the documented ones and those of
	// the mail pipeline, which TestPipelineMetrics moves, and of the
	// scanners, which TestScanRejectAtData moves.
	for _, name := range metrics.New(metrics.Options{}).Names() {
		if slices.Contains(movedByPipelineTraffic, name) || slices.Contains(movedByScanTraffic, name) {
			continue
		}
		if why, ok := notMovedByTraffic[name]; ok {
			if _, listed := fams[name]; !listed {
				t.Errorf("%s (%s) is not exposed at all", name, why)
			}
			continue
		}
		if !moved(fams[name]) {
			t.Errorf("%s was not moved by any of the traffic", name)
		}
	}
	for name := range notMovedByTraffic {
		if !slices.Contains(metrics.New(metrics.Options{}).Names(), name) {
			t.Errorf("notMovedByTraffic names %s, which is not declared", name)
		}
	}
}

// moved reports whether some sample of f is not zero.
func moved(f *dto.MetricFamily) bool {
	if f == nil {
		return false
	}
	for _, m := range f.GetMetric() {
		if m.GetCounter().GetValue() != 0 || m.GetGauge().GetValue() != 0 || m.GetHistogram().GetSampleCount() != 0 {
			return true
		}
	}
	return false
}
