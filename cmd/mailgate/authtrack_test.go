package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/tracking"
)

// authConfig is a public listener that enforces SPF fail and DMARC
// p=reject, with a DNS block list in its HAT, and the tests' DNS server.
const authConfig = `hostname: mx.test
data_dir: %[1]s
shutdown_timeout: 5s
listeners:
  - name: InboundMail
    interface: Management
    address: %[2]s
    hat:
      sender_groups:
        - {name: BLOCKED, match: ["dnslist[zen.bl.test:127.0.0.2-127.0.0.11]"], policy: BLOCKED}
      policies:
        ACCEPTED:
          spf: {fail: reject}
          dmarc: {reject_policy: reject}
      default_policy: ACCEPTED
    rat:
      - {domain: mycompany.test, action: accept}
dns: {servers: ["%[3]s"], timeout: 5s}
delivery: {suspended: true}
http: {address: ""}
`

// TestTrackingAuthEndToEnd: a real gateway refuses a forged sender by SPF,
// a message by DMARC, and a client on a DNS list; `mailgate track` finds
// each by its result and `mailgate explain` says which check, which
// record, and what the domain's owner must fix.
func TestTrackingAuthEndToEnd(t *testing.T) {
	d := smtptest.StartDNS(t,
		`fail.test. 60 IN TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`pass.test. 60 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.bank.test. 60 IN TXT "v=DMARC1; p=reject"`,
		`3.0.0.127.zen.bl.test. 60 IN A 127.0.0.2`,
	)
	g := newGW(t, "5s")
	if err := os.WriteFile(g.config, []byte(fmt.Sprintf(authConfig, g.dir, g.addr, d.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()

	// SPF: fail.test does not list 127.0.0.1.
	c, r := dialFrom(t, "127.0.0.1", g.addr)
	reply(t, c, r, "", "220")
	reply(t, c, r, "EHLO client.test", "250")
	reply(t, c, r, "MAIL FROM:<alice@fail.test>", "550 5.7.1 SPF unauthorized mail is prohibited.")
	// DMARC: SPF passes for pass.test, which is not bank.test, and nothing
	// is signed: bank.test's p=reject is enforced.
	reply(t, c, r, "MAIL FROM:<bob@pass.test>", "250")
	reply(t, c, r, "RCPT TO:<joe@mycompany.test>", "250")
	reply(t, c, r, "DATA", "354")
	reply(t, c, r, "From: <ceo@bank.test>\r\nTo: <joe@mycompany.test>\r\nSubject: wire\r\n\r\nPay now.\r\n.", "550 5.7.1 DMARC unauthenticated mail is prohibited.")
	reply(t, c, r, "QUIT", "221")
	c.Close()
	// A client the block list lists.
	c, r = dialFrom(t, "127.0.0.3", g.addr)
	reply(t, c, r, "", "554")
	reply(t, c, r, "QUIT", "221")
	c.Close()
	g.waitLog(`ICID \d+ REJECT SG BLOCKED match dnslist\[zen\.bl\.test:127\.0\.0\.2-127\.0\.0\.11\]`)

	var spf, dmarc []tracking.Message
	wait.Until(t, "the refusals in the tracking store", func() bool {
		spf = trackJSON(t, g, "--spf", "fail")
		dmarc = trackJSON(t, g, "--dmarc", "fail")
		return len(spf) == 1 && len(dmarc) == 1 && spf[0].Status == tracking.Rejected && dmarc[0].Status == tracking.Rejected
	})
	if s := spf[0]; len(s.SPF) != 2 || s.SPF[1] != (tracking.SPFCheck{Identity: "mailfrom", Address: "alice@fail.test", Result: "fail"}) ||
		s.SPF[0].Identity != "helo" || s.AbortState != "mail" || s.DMARC != nil {
		t.Errorf("the SPF refusal's record: %+v", s)
	}
	if m := dmarc[0]; m.DMARC == nil || *m.DMARC != (tracking.DMARCCheck{Domain: "bank.test", Result: "fail"}) || m.MailFromSPF() != "pass" {
		t.Errorf("the DMARC refusal's record: %+v %+v", m, m.DMARC)
	}
	if ms := trackJSON(t, g, "--spf", "pass", "--dmarc", "fail", "--dkim", "pass"); len(ms) != 0 {
		t.Errorf("track --dkim pass found %d messages; none was signed", len(ms))
	}

	out := mg(t, "explain", "--config", g.config, fmt.Sprint(spf[0].MID))
	for _, w := range []string{"Rejected at MAIL FROM by SPF", "the SPF record of fail.test does not list 127.0.0.1", "'dig TXT fail.test'",
		"SPF: mailfrom identity alice@fail.test Fail (v=spf1)"} {
		if !strings.Contains(out, w) {
			t.Errorf("explain of the SPF refusal lacks %q:\n%s", w, out)
		}
	}
	out = mg(t, "explain", "--config", g.config, fmt.Sprint(dmarc[0].MID))
	for _, w := range []string{"Rejected at the end of DATA by DMARC", "DMARC check of bank.test", "SPF passed for pass.test, which is not bank.test's domain",
		"the log shows no DKIM signature", "The owner of bank.test must", "'dig TXT _dmarc.bank.test'"} {
		if !strings.Contains(out, w) {
			t.Errorf("explain of the DMARC refusal lacks %q:\n%s", w, out)
		}
	}
	icid := icidOf(t, g.mailLog(), "REJECT SG BLOCKED")
	out = mg(t, "explain", "--config", g.config, "--icid", icid)
	for _, w := range []string{"Refused at connect: the DNS list zen.bl.test lists 127.0.0.3", "'dig +short A 3.0.0.127.zen.bl.test'", "sender group placed before BLOCKED"} {
		if !strings.Contains(out, w) {
			t.Errorf("explain --icid %s lacks %q:\n%s", icid, w, out)
		}
	}
	// The summary of --events shows the results.
	out = mg(t, "track", "--config", g.config, "--events", "--mid", fmt.Sprint(dmarc[0].MID))
	if !regexp.MustCompile(`(?m)^DMARC +fail for bank\.test \(SPF aligned no, DKIM aligned no\)$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^SPF +pass \(mailfrom bob@pass\.test\)$`).MatchString(out) {
		t.Errorf("track --events:\n%s", out)
	}
}

// dialFrom connects to addr from a loopback address of the client's.
func dialFrom(t *testing.T, from, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, bufio.NewReader(c)
}

// reply sends cmd (none when "") and reads its reply, which must begin
// with want.
func reply(t *testing.T, c net.Conn, r *bufio.Reader, cmd, want string) {
	t.Helper()
	if cmd != "" {
		fmt.Fprintf(c, "%s\r\n", cmd)
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if !strings.HasPrefix(l, want) {
			t.Fatalf("%q: got %q, want %q", cmd, l, want)
		}
		if len(l) < 4 || l[3] != '-' {
			return
		}
	}
}

// icidOf is the ICID of the log line that holds s.
func icidOf(t *testing.T, log, s string) string {
	t.Helper()
	for l := range strings.Lines(log) {
		if _, rest, ok := strings.Cut(l, "Info: ICID "); ok && strings.Contains(l, s) {
			id, _, _ := strings.Cut(rest, " ")
			return id
		}
	}
	t.Fatalf("no line with %q in the mail log:\n%s", s, log)
	return ""
}
