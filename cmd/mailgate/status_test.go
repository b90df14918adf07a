package main

import (
	"encoding/json"
	"fmt"
	"net"
	netsmtp "net/smtp"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/stats"
)

// statusGW is a gateway with four destinations, each a route: ok.test and
// example.org (where the DSNs go) to a next hop that accepts, hard.test to
// the same next hop, which refuses nobody@hard.test with a 550, and
// down.test to a port where nothing listens. RELAYED takes three
// recipients a message.
func statusGW(t *testing.T, hop, dead string) *gw {
	t.Helper()
	g := newGW(t, "5s")
	cfg := fmt.Sprintf(`hostname: mx.test
data_dir: %s
shutdown_timeout: 5s
listeners:
  - name: InboundMail
    interface: Management
    address: %s
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
      policies:
        RELAYED: {action: relay, max_recipients_per_message: 3}
routes:
  - {domain: ok.test, hosts: ["%[3]s"]}
  - {domain: hard.test, hosts: ["%[3]s"]}
  - {domain: example.org, hosts: ["%[3]s"]}
  - {domain: down.test, hosts: ["%[4]s"]}
delivery:
  connection_cache_time: 0s        # the counts of open connections out are checked once deliveries end
  destinations:
    - {domain: default, max_connections: 10, tls: off}
  bounce: {initial_retry: 1h}
http: {address: ""}
`, g.dir, g.addr, hop, dead)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

// sendTo sends one message over its own connection with Go's SMTP client,
// and reports the recipients the gateway refused.
func sendTo(t *testing.T, addr, from string, to ...string) (refused int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := netsmtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(from); err != nil {
		t.Fatal(err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			refused++
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "Subject: status test\r\n\r\nfor %v\r\n", to)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	return refused
}

func statusJSON(t *testing.T, g *gw, args ...string) stats.Status {
	t.Helper()
	out, errs, code := mailgate(t, append(append([]string{"status"}, args...), "--json", "--config", g.config)...)
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, errs)
	}
	var st stats.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

// TestStatusCommands feeds the gateway a known traffic mix and checks what
// status, status detail, tophosts, hoststatus, rate and resetcounters show
// of it, in text and JSON, and that the Lifetime column survives a restart.
func TestStatusCommands(t *testing.T) {
	hop := startNextHop(t, 0, "nobody@hard.test")
	dead := freePort(t)
	g := statusGW(t, hop.addr, dead)
	g.start()

	// 1: five recipients, of which RELAYED's limit refuses two.
	if n := sendTo(t, g.addr, "alice@example.org", "a@ok.test", "b@ok.test", "c@ok.test", "d@ok.test", "e@ok.test"); n != 2 {
		t.Fatalf("%d recipients refused, want 2", n)
	}
	// 2: delivered. 3, 4: refused by the next hop, bounced: a DSN each
	// to alice@example.org (MIDs 7 and 8 at the earliest). 5, 6: their
	// destination is down, they wait for an hour.
	sendTo(t, g.addr, "alice@example.org", "a@ok.test")
	sendTo(t, g.addr, "alice@example.org", "nobody@hard.test")
	sendTo(t, g.addr, "alice@example.org", "nobody@hard.test")
	sendTo(t, g.addr, "alice@example.org", "x@down.test")
	sendTo(t, g.addr, "alice@example.org", "y@down.test")
	g.waitLog(`(?s)(MID \d+ to RID \[0\] pending till.*){2}`)
	g.waitLog(`(?s)(generated for bounce of MID.*){2}`)
	// The DSNs delivered too: every message but the two waiting finished.
	g.waitLog(`(?s)(Message finished MID \d+ done.*){6}`)

	want := map[stats.Counter]uint64{
		stats.InjMsgs: 6, stats.InjRecips: 8, stats.GenBounceRecips: 2, stats.RejectedRecips: 2,
		stats.DroppedMsgs: 0, stats.SoftBouncedEvts: 2, stats.CompletedRecips: 8, stats.HardBouncedRecips: 2,
		stats.HardBounces5XX: 2, stats.DNSHardBounces: 0, stats.ExpiredHardBounces: 0, stats.OtherHardBounces: 0,
		stats.DeliveredRecips: 6, stats.DeletedRecips: 0, stats.ConnIn: 6,
	}
	st := statusJSON(t, g, "detail")
	for k, n := range want {
		if r := st.Counter(k); r.Reset != n || r.Uptime != n || r.Lifetime != n {
			t.Errorf("%v: %+v, want %d in each column", k, r, n)
		}
	}
	if r := st.Counter(stats.ConnOut); r.Uptime < 3 {
		t.Errorf("conn_out: %+v, want at least one connection per destination", r)
	}
	if gg := st.Gauges; gg.Active != 2 || gg.Attempted != 2 || gg.Unattempted != 0 || gg.ConnIn != 0 || gg.KilobytesUsed < 0 || gg.KilobytesFree == nil {
		t.Errorf("gauges: %+v", gg)
	}
	// The first message for down.test is the oldest in the queue.
	m := regexp.MustCompile(`MID (\d+) ICID \d+ RID 0 To: <x@down\.test>`).FindStringSubmatch(g.mailLog())
	if m == nil || st.Oldest == nil || fmt.Sprint(st.Oldest.MID) != m[1] {
		t.Fatalf("oldest message: %+v, want the MID of x@down.test: %v", st.Oldest, m)
	}
	if st.IDs.MID != 8 || st.IDs.ICID != 6 || st.IDs.DCID < 3 {
		t.Errorf("current IDs: %+v, want MID 8, ICID 6", st.IDs)
	}
	// 8 recipients within the last minute: 480 an hour over one minute,
	// 96 over five, 32 over fifteen, as the ESA reckons.
	for _, r := range st.Rates {
		if r.Name == "inj_recips" && (r.Last1 != 480 || r.Last5 != 96 || r.Last15 != 32) {
			t.Errorf("rates of inj_recips: %+v", r)
		}
	}

	out, errs, code := mailgate(t, "status", "detail", "--config", g.config)
	if code != 0 {
		t.Fatalf("status detail: exit %d: %s", code, errs)
	}
	for _, re := range []string{
		`(?m)^Status as of: {18}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \S+$`,
		`(?m)^Last counter reset: {12}Never$`,
		`(?m)^System status: {17}Online$`,
		`(?m)^Oldest Message: {16}(\d+ secs?|\d+ mins?( \d+ secs?)?)$`,
		`(?m)^Counters: +Reset +Uptime +Lifetime$`,
		`(?m)^    Messages Received +6 +6 +6$`,
		`(?m)^    Recipients Received +8 +8 +8$`,
		`(?m)^    Gen\. Bounce Recipients +2 +2 +2$`,
		`(?m)^    Rejected Recipients +2 `,
		`(?m)^    Soft Bounced Events +2 `,
		`(?m)^    Completed Recipients +8 `,
		`(?m)^      Hard Bounced Recipients +2 `,
		`(?m)^        5XX Hard Bounces +2 `,
		`(?m)^      Delivered Recipients +6 `,
		`(?m)^    Message ID \(MID\) +8$`,
		`(?m)^Rates \(Events Per Hour\): +1-Minute +5-Minutes +15-Minutes$`,
		`(?m)^    Recipients Received +480 +96 +32$`,
		`(?m)^Gauges: +Current$`,
		`(?m)^    Active Recipients +2$`,
		`(?m)^      Attempted Recipients +2$`,
		`(?m)^    Kilobytes Free + *[\d,]+$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status detail lacks %s:\n%s", re, out)
		}
	}

	// tophosts: down.test first by active recipients, marked down.
	out, errs, code = mailgate(t, "tophosts", "--config", g.config)
	if code != 0 {
		t.Fatalf("tophosts: exit %d: %s", code, errs)
	}
	for _, re := range []string{
		`(?m)^Recipient Host +Active Recip\. +Conn\. Out +Deliv\. Recip\. +Soft Bounced +Hard Bounced$`,
		`(?m)^1\*  down\.test +2 +0 +0 +2 +0$`,
		`(?m)^\d   ok\.test +0 +0 +4 +0 +0$`,
		`(?m)^\d   example\.org +0 +0 +2 +0 +0$`,
		`(?m)^\d   hard\.test +0 +0 +0 +0 +2$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("tophosts lacks %s:\n%s", re, out)
		}
	}
	for _, tc := range []struct {
		sort  string
		first string
	}{{"delivered", "ok.test"}, {"soft", "down.test"}, {"hard", "hard.test"}, {"active", "down.test"}} {
		out, errs, code = mailgate(t, "tophosts", "--sort", tc.sort, "--json", "--config", g.config)
		var hosts []stats.Host
		if err := json.Unmarshal([]byte(out), &hosts); code != 0 || err != nil || len(hosts) != 4 || hosts[0].Name != tc.first {
			t.Errorf("tophosts --sort %s --json: exit %d %v, want 4 hosts, %s first: %s%s", tc.sort, code, err, tc.first, out, errs)
		}
	}
	if _, errs, code = mailgate(t, "tophosts", "--sort", "size", "--config", g.config); code != 2 {
		t.Errorf("tophosts --sort size: exit %d, want 2: %s", code, errs)
	}

	// hoststatus of the destination that is down, and of one that is up.
	out, errs, code = mailgate(t, "hoststatus", "down.test", "--config", g.config)
	if code != 0 {
		t.Fatalf("hoststatus: exit %d: %s", code, errs)
	}
	for _, re := range []string{
		`(?m)^Host mail status for: down\.test$`,
		`(?m)^Host up/down: {9}down$`,
		`(?m)^    Soft Bounced Events +2$`,
		`(?m)^    Active Recipients +2$`,
		`(?m)^      Attempted Recipients +2$`,
		`(?m)^Oldest Message {5}.* \(MID ` + m[1] + `\)$`,
		`(?m)^Last Activity {6}\w{3} \w{3} `,
		`(?m)^    down\.test: ` + regexp.QuoteMeta(dead) + `$`,
		`(?m)^Ordered IP addresses: ` + regexp.QuoteMeta(dead) + `$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("hoststatus down.test lacks %s:\n%s", re, out)
		}
	}
	out, errs, code = mailgate(t, "hoststatus", "OK.test", "--json", "--config", g.config)
	var hs stats.HostStatus
	if err := json.Unmarshal([]byte(out), &hs); code != 0 || err != nil {
		t.Fatalf("hoststatus --json: exit %d %v: %s%s", code, err, out, errs)
	}
	if h := hs.Host; h.Down || h.Get(stats.DeliveredRecips) != 4 || h.Get(stats.CompletedRecips) != 4 || h.Gauges.Active != 0 ||
		hs.Route.Route != "ok.test" || len(hs.Route.Addresses) != 1 || hs.Route.Addresses[0] != hop.addr {
		t.Errorf("hoststatus ok.test: %+v", hs)
	}
	if _, errs, code = mailgate(t, "hoststatus", "unknown.test", "--config", g.config); code != 1 || !strings.Contains(errs, "no record of host: unknown.test") {
		t.Errorf("hoststatus of an unknown host: exit %d: %s", code, errs)
	}

	// rate, two lines a second apart.
	out, errs, code = mailgate(t, "rate", "1", "--count", "2", "--config", g.config)
	if code != 0 {
		t.Fatalf("rate: exit %d: %s", code, errs)
	}
	if !regexp.MustCompile(`^ +Time +Connections Recipients +Recipients +Queue\n +In +Out +Received +Delta +Completed +Delta K-Used\n` +
		`(\d\d:\d\d:\d\d +0 +0 +8 +0 +8 +0 +\d+\n){2}$`).MatchString(out) {
		t.Errorf("rate 1 --count 2:\n%s", out)
	}

	out, errs, code = mailgate(t, "rate", "1", "--count", "1", "--json", "--config", g.config)
	var line map[string]any
	if err := json.Unmarshal([]byte(out), &line); code != 0 || err != nil || line["recips_received"] != 8.0 || line["recips_completed"] != 8.0 || line["recips_received_delta"] != 0.0 {
		t.Errorf("rate --json: exit %d %v: %s%s", code, err, out, errs)
	}
	if _, errs, code = mailgate(t, "rate", "0", "--config", g.config); code != 2 {
		t.Errorf("rate 0: exit %d, want 2: %s", code, errs)
	}

	// resetcounters zeroes Reset, and the destinations' counters; not
	// Uptime, nor Lifetime.
	if out, errs, code = mailgate(t, "resetcounters", "--config", g.config); code != 0 || !strings.HasPrefix(out, "Counters reset: ") {
		t.Fatalf("resetcounters: exit %d: %s%s", code, out, errs)
	}
	st = statusJSON(t, g)
	if r := st.Counter(stats.InjMsgs); r.Reset != 0 || r.Uptime != 6 || r.Lifetime != 6 || st.LastReset.IsZero() {
		t.Errorf("after resetcounters: %+v, last reset %v", r, st.LastReset)
	}
	out, _, _ = mailgate(t, "tophosts", "--json", "--config", g.config)
	var hosts []stats.Host
	if err := json.Unmarshal([]byte(out), &hosts); err != nil || len(hosts) != 1 || hosts[0].Name != "down.test" || hosts[0].Get(stats.SoftBouncedEvts) != 0 || hosts[0].Gauges.Active != 2 {
		t.Errorf("tophosts after resetcounters: %v %s", err, out)
	}

	// A restart: Lifetime goes on, Uptime and Reset start again.
	g.signal(syscall.SIGTERM)
	if err := g.wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, g.stderr)
	}
	g.start()
	sendTo(t, g.addr, "alice@example.org", "b@ok.test")
	// The delivery may end before the client's connection does.
	g.waitLog(`ICID 7 close`)
	g.waitLog(`Message finished MID 9 done`)
	st = statusJSON(t, g)
	if r := st.Counter(stats.InjMsgs); r.Reset != 1 || r.Uptime != 1 || r.Lifetime != 7 {
		t.Errorf("inj_msgs after a restart and a message: %+v, want 1, 1, 7", r)
	}
	if r := st.Counter(stats.DeliveredRecips); r.Uptime != 1 || r.Lifetime != 7 {
		t.Errorf("delivered_recips after a restart and a message: %+v, want uptime 1, lifetime 7", r)
	}
	if st.Gauges.Active != 2 || st.IDs.MID != 9 {
		t.Errorf("after a restart: gauges %+v, IDs %+v", st.Gauges, st.IDs)
	}
}
