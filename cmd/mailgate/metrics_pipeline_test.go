package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/metrics"
)

// metricsPipelineConfig: one listener whose HAT asks two DNS lists (bl.test
// blocks the clients it lists; dead.test answers SERVFAIL), relays
// 127.0.0.1 with DKIM signing, and accepts the other clients with SPF,
// DKIM and DMARC verified; the outgoing policy runs the test stage qhold
// (a quarantine its X-Quarantine field names) and content filters that
// quarantine, drop and bounce; the quarantines of each way out.
const metricsPipelineConfig = `hostname: mx.test
data_dir: %[1]s
shutdown_timeout: 5s
dns: {servers: ["%[2]s"], timeout: 2s}
listeners:
  - name: InboundMail
    interface: Management
    address: %[3]s
    hat:
      sender_groups:
        - {name: BLOCKED, match: ["dnslist[bl.test]"], policy: BLOCK}
        - {name: SUSPECT, match: ["dnslist[dead.test]"], policy: BLOCK}
        - {name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}
      policies:
        BLOCK: {action: reject}
        RELAYED: {action: relay, dkim_signing: true}
      default_policy: ACCEPTED
    rat:
      - {domain: ALL, action: accept}
routes:
  - {domain: ALL, hosts: ["%[4]s"]}
delivery:
  destinations:
    - {domain: default, tls: off}
  bounce: {initial_retry: 200ms, max_retry: 1s}
http: {address: "%[5]s", token: t0k}
%[6]s
quarantines:
  - {name: Policy, retention: 1h}
  - {name: Short, retention: 2s, on_expiry: release}
  - {name: Gone, retention: 2s, on_expiry: delete}
  - {name: Small, retention: 1h, on_expiry: delete, max_size: 2KB}
content_filters:
  - {name: q_policy, conditions: [{header: X-Q, matches: "^Policy$"}], actions: [{quarantine: Policy}]}
  - {name: q_short,  conditions: [{header: X-Q, matches: "^Short$"}], actions: [{quarantine: Short}]}
  - {name: q_gone,   conditions: [{header: X-Q, matches: "^Gone$"}], actions: [{quarantine: Gone}]}
  - {name: q_small,  conditions: [{header: X-Q, matches: "^Small$"}], actions: [{quarantine: Small}]}
  - {name: a_drop,   conditions: [{header: Subject, matches: "^drop"}], actions: [drop]}
  - {name: a_bounce, conditions: [{header: Subject, matches: "^bounce"}], actions: [bounce]}
mail_policies:
  outgoing:
    - name: DEFAULT
      content_filters: [qhold, q_policy, q_short, q_gone, q_small, a_drop, a_bounce]
`

// movedByPipelineTraffic are the families that TestMetricsAfterTraffic's
// gateway (no DNS lists, signing or mail policies) cannot move:
// TestPipelineMetrics moves each, and fails on one it does not.
var movedByPipelineTraffic = []string{
	"mailgate_spf_results_total",
	"mailgate_dkim_results_total",
	"mailgate_dmarc_results_total",
	"mailgate_dnslist_matches_total",
	"mailgate_dnslist_lookup_failures_total",
	"mailgate_dkim_signing_total",
	"mailgate_workqueue_messages",
	"mailgate_workqueue_oldest_message_age_seconds",
	"mailgate_workqueue_in_messages_total",
	"mailgate_workqueue_out_messages_total",
	"mailgate_stage_runs_total",
	"mailgate_stage_duration_seconds",
	"mailgate_content_filter_matches_total",
	"mailgate_quarantine_messages",
	"mailgate_quarantine_bytes",
	"mailgate_quarantined_messages_total",
	"mailgate_quarantine_released_messages_total",
	"mailgate_quarantine_deleted_messages_total",
}

// The mail pipeline's metrics after real traffic through the binary: the
// DNS lists of the tests' DNS server (a listing, a list that fails), SPF,
// DKIM (the gateway's own signature, verified when the signed message
// comes back in) and DMARC, DKIM signing, the stages' outcomes, the
// content filters, the quarantines' ways in and out; promtool accepts
// the output, and every family of movedByPipelineTraffic moved.
func TestPipelineMetrics(t *testing.T) {
	promtool := need(t, "promtool")
	record, profile := keygen(t, "--out", filepath.Join(t.TempDir(), "com.pem"), "example.com", "s1")
	dnsd := smtptest.StartDNS(t, record,
		`example.com. 60 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.example.com. 60 IN TXT "v=DMARC1; p=reject"`,
		`spf-fail.test. 60 IN TXT "v=spf1 -all"`,
		`_dmarc.spf-fail.test. 60 IN TXT "v=DMARC1; p=none"`,
		`bl.test. 60 IN SOA ns.bl.test. hostmaster.bl.test. 1 3600 600 86400 300`,
		`2.0.0.127.bl.test. 60 IN A 127.0.0.2`,
	)
	dnsd.ServFail("dead.test")
	hop := startNextHop(t, 0)
	g := stagesGW(t, hop.addr, "")
	web := freePort(t)
	cfg := fmt.Sprintf(metricsPipelineConfig, g.dir, dnsd.Addr, g.addr, hop.addr, web, "dkim_signing_profiles:\n"+profile)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	url := "http://" + web + "/metrics"
	qcmd := func(args ...string) { mg(t, append(append([]string{"quarantine"}, args...), "--config", g.config)...) }

	// A client the DNS list lists: refused at the banner.
	c := smtptest.Dial(t, g.addr, "127.0.0.2")
	c.Expect("554")
	c.Cmd("QUIT", "221")

	// Relayed and signed (the profile's domain), not signed (no profile),
	// dropped, bounced, refused by a stage (a quarantine that does not
	// exist: it stays in the work queue, retried), quarantined in each
	// quarantine; Small's 2 KB take one message of 1.5 KB.
	signed := "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: signed\r\nX-Token: signed\r\n\r\nsigned body\r\n"
	if err := sendMail(g.addr, "alice@example.com", []string{"bob@example.net"}, signed); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"drop", "bounce"} {
		if _, err := sendToken(g.addr, "a@example.org", "b@example.net", tok); err != nil {
			t.Fatal(err)
		}
	}
	sendHeld(t, g, "stuck", "X-Quarantine: Nowhere\r\n", 0)
	release := sendHeld(t, g, "qrelease", "X-Q: Policy\r\n", 0)
	del := sendHeld(t, g, "qdelete", "X-Q: Policy\r\n", 0)
	sendHeld(t, g, "qkept", "X-Q: Policy\r\n", 0)
	sendHeld(t, g, "qshort", "X-Q: Short\r\n", 0)
	sendHeld(t, g, "qgone", "X-Q: Gone\r\n", 0)
	sendHeld(t, g, "qsmall1", "X-Q: Small\r\n", 1500)
	sendHeld(t, g, "qsmall2", "X-Q: Small\r\n", 1500)
	g.waitLog(fmt.Sprintf(`MID %d quarantined to "Policy"`, del))
	qcmd("release", fmt.Sprint(release), "Policy")
	qcmd("delete", fmt.Sprint(del), "Policy")

	// Received from outside: the signed message as the next hop got it,
	// sent back (SPF, DKIM and DMARC pass), and a sender whose domain's
	// SPF and DMARC fail.
	var back []byte
	wait.Until(t, "the signed message at the next hop", func() bool {
		_, msgs := hop.delivered()
		for _, m := range msgs {
			if tokenRe.Match(m.data) && strings.Contains(string(m.data), "X-Token: signed\r\n") {
				back = m.data
			}
		}
		return back != nil
	})
	if err := sendMailFrom("127.0.0.3", g.addr, "alice@example.com", []string{"bob@example.net"}, string(back)); err != nil {
		t.Fatal(err)
	}
	failing := "From: x@spf-fail.test\r\nSubject: spf\r\nX-Token: spf\r\n\r\nbody\r\n"
	if err := sendMailFrom("127.0.0.3", g.addr, "x@spf-fail.test", []string{"bob@example.net"}, failing); err != nil {
		t.Fatal(err)
	}

	var fams map[string]*dto.MetricFamily
	var text string
	wait.Until(t, "the expiries, the queue full, the checks and the stuck message", func() bool {
		fams, text = scrape(t, url, "t0k")
		return value(fams, "mailgate_quarantine_released_messages_total", "quarantine", "Short", "reason", "expired") == 1 &&
			value(fams, "mailgate_quarantine_deleted_messages_total", "quarantine", "Gone", "reason", "expired") == 1 &&
			value(fams, "mailgate_quarantine_released_messages_total", "quarantine", "Small", "reason", "queue full") == 1 &&
			value(fams, "mailgate_dmarc_results_total", "result", "fail") == 1 &&
			value(fams, "mailgate_dmarc_results_total", "result", "pass") == 1 &&
			value(fams, "mailgate_stage_runs_total", "stage", "qhold", "outcome", "error") >= 1
	})
	// Incoming, the HELO (client.test: no SPF record) and MAIL FROM of two
	// messages.
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mailgate_spf_results_total", []string{"identity", "helo", "result", "none"}, 2},
		{"mailgate_spf_results_total", []string{"identity", "mailfrom", "result", "pass"}, 1},
		{"mailgate_spf_results_total", []string{"identity", "mailfrom", "result", "fail"}, 1},
		{"mailgate_dkim_results_total", []string{"result", "pass"}, 1},
		{"mailgate_dkim_results_total", []string{"result", "permfail"}, -1},
		{"mailgate_dnslist_matches_total", []string{"zone", "bl.test"}, 1},
		{"mailgate_dnslist_matches_total", []string{"zone", "dead.test"}, 0},
		{"mailgate_hat_decisions_total", []string{"action", "reject"}, 1},
		{"mailgate_dkim_signing_total", []string{"outcome", "signed"}, 1},
		// drop, bounce, stuck and the seven held: a@example.org has no profile.
		{"mailgate_dkim_signing_total", []string{"outcome", "no profile matches"}, 10},
		{"mailgate_stage_runs_total", []string{"stage", "a_drop", "outcome", "drop"}, 1},
		{"mailgate_stage_runs_total", []string{"stage", "a_bounce", "outcome", "bounce"}, 1},
		{"mailgate_stage_runs_total", []string{"stage", "q_policy", "outcome", "quarantine"}, 3},
		{"mailgate_stage_runs_total", []string{"stage", "q_small", "outcome", "quarantine"}, 2},
		{"mailgate_content_filter_matches_total", []string{"filter", "q_policy"}, 3},
		{"mailgate_content_filter_matches_total", []string{"filter", "a_drop"}, 1},
		{"mailgate_content_filter_matches_total", []string{"filter", "a_bounce"}, 1},
		{"mailgate_content_filter_matches_total", []string{"filter", "q_gone"}, 1},
		{"mailgate_dropped_messages_total", []string{"reason", "content filter 'a_drop'"}, 1},
		{"mailgate_quarantined_messages_total", []string{"quarantine", "Policy"}, 3},
		{"mailgate_quarantined_messages_total", []string{"quarantine", "Small"}, 2},
		{"mailgate_quarantined_messages_total", []string{"quarantine", "Virus"}, 0},
		{"mailgate_quarantine_released_messages_total", []string{"quarantine", "Policy", "reason", "manual"}, 1},
		{"mailgate_quarantine_deleted_messages_total", []string{"quarantine", "Policy", "reason", "manual"}, 1},
		{"mailgate_quarantine_messages", []string{"quarantine", "Policy"}, 1},
		{"mailgate_quarantine_messages", []string{"quarantine", "Small"}, 1},
		{"mailgate_quarantine_messages", []string{"quarantine", "Short"}, 0},
		{"mailgate_workqueue_messages", nil, 1},
	} {
		if got := value(fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if v := value(fams, "mailgate_dnslist_lookup_failures_total", "zone", "dead.test"); v < 1 {
		t.Errorf("dead.test's failures: %v, want some", v)
	}
	if v := value(fams, "mailgate_quarantine_bytes", "quarantine", "Small"); v < 1500 || v > 2048 {
		t.Errorf("Small holds %v bytes, want one message of 1.5 KB", v)
	}
	if v := value(fams, "mailgate_workqueue_oldest_message_age_seconds"); v <= 0 || v > 600 {
		t.Errorf("the work queue's oldest message is %vs old", v)
	}
	// In: the eleven relayed, the two received, the three released
	// (again); out: all but the stuck one.
	if in, out := value(fams, "mailgate_workqueue_in_messages_total"), value(fams, "mailgate_workqueue_out_messages_total"); in != 16 || out != 15 {
		t.Errorf("work queue in %v, out %v, want 16 and 15", in, out)
	}
	// q_policy ran on every relayed message but the stuck one, once.
	if v := value(fams, "mailgate_stage_duration_seconds", "stage", "q_policy"); v != 10 {
		t.Errorf("q_policy's runs timed: %v, want 10", v)
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	declared := metrics.New(metrics.Options{}).Names()
	for _, name := range movedByPipelineTraffic {
		if !slices.Contains(declared, name) {
			t.Errorf("movedByPipelineTraffic names %s, which is not declared", name)
		}
		if !moved(fams[name]) {
			t.Errorf("%s was not moved by the traffic", name)
		}
	}
}
