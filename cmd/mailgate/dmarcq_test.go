package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// dmarcqConfig is a listener whose policy quarantines mail that fails
// DMARC for a domain asking p=quarantine, relaying to the next hop, with
// the tests' DNS server; %[5]s is mail_policies or nothing.
const dmarcqConfig = `hostname: mx.test
data_dir: %[1]s
shutdown_timeout: 5s
listeners:
  - name: InboundMail
    interface: Management
    address: %[2]s
    hat:
      sender_groups:
        - {name: INBOUND, match: [127.0.0.0/8], policy: DMARCQ}
      policies:
        DMARCQ:
          action: accept
          dmarc: {quarantine_policy: quarantine}
    rat:
      - {domain: example.net, action: accept}
routes:
  - {domain: ALL, hosts: ["%[3]s"]}
delivery:
  destinations:
    - {domain: default, tls: off}
dns: {servers: ["%[4]s"], timeout: 5s}
http: {address: ""}
%[5]s`

// dmarcqGW starts a gateway of dmarcqConfig.
func dmarcqGW(t *testing.T, hop, dns, extra string) *gw {
	t.Helper()
	g := newGW(t, "5s")
	if err := os.WriteFile(g.config, []byte(fmt.Sprintf(dmarcqConfig, g.dir, g.addr, hop, dns, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	return g
}

// sendDMARC sends a message from bob@other.test (SPF passes) whose From:
// is from, with a token, and returns its MID.
func sendDMARC(t *testing.T, g *gw, from, token string) uint64 {
	t.Helper()
	msg := fmt.Sprintf("From: <%s>\r\nTo: <joe@example.net>\r\nSubject: %s\r\nX-Token: %s\r\n\r\nbody of %s\r\n", from, token, token, token)
	if err := sendMail(g.addr, "bob@other.test", []string{"joe@example.net"}, msg); err != nil {
		t.Fatalf("send %s: %v", token, err)
	}
	m := regexp.MustCompile(`MID (\d+) Subject '` + token + `'`).FindStringSubmatch(g.waitLog(`Subject '` + token + `'`))
	mid, _ := strconv.ParseUint(m[1], 10, 64)
	return mid
}

// delivered returns the message of token as the next hop got it.
func (h *nextHop) deliveredMessage(token string) string {
	_, msgs := h.delivered()
	for _, m := range msgs {
		if tok := tokenRe.FindSubmatch(m.data); tok != nil && string(tok[1]) == token {
			return string(m.data)
		}
	}
	return ""
}

// TestDMARCQuarantine, over real SMTP through the binary, with the tests'
// DNS server: a message failing DMARC for example.org (p=quarantine) is
// held in the Policy quarantine with the reason DMARC, listed by
// `mailgate quarantine list`, explained, and delivered once released;
// without mail_policies it is delivered tagged, and the action line
// proves it.
func TestDMARCQuarantine(t *testing.T) {
	d := smtptest.StartDNS(t,
		`other.test. 60 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.example.org. 60 IN TXT "v=DMARC1; p=quarantine"`,
	)
	hop := startNextHop(t, 0)

	t.Run("work queue", func(t *testing.T) {
		g := dmarcqGW(t, hop.addr, d.Addr, "mail_policies:\n  incoming:\n    - name: DEFAULT\n")
		cfg := []string{"--config", g.config}
		mid := sendDMARC(t, g, "ceo@example.org", "dq-held")
		// Aligned (SPF passes for other.test): delivered at once.
		passed := sendDMARC(t, g, "bob@other.test", "dq-pass")
		g.waitLog(fmt.Sprintf(`MID %d quarantined to "Policy" \(DMARC\)`, mid))
		want := []string{
			fmt.Sprintf(`MID %d DMARC: Message from domain example.org, DMARC fail (SPF aligned False, DKIM aligned False)`, mid),
			fmt.Sprintf(`MID %d DMARC: Message from domain example.org, policy quarantine, action quarantine`, mid),
			fmt.Sprintf(`MID %d matched all recipients for per-recipient policy DEFAULT in the inbound table`, mid),
			fmt.Sprintf(`MID %d quarantined to "Policy" (DMARC)`, mid),
		}
		lines := logLines(g.mailLog(), mid)
		if !inOrder(lines, want) {
			t.Errorf("lines\n%s\nlack in order\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		out := mg(t, append([]string{"quarantine", "list"}, cfg...)...)
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+Policy\s.*dq-held\s+DMARC$`, mid)).MatchString(out) {
			t.Errorf("quarantine list:\n%s", out)
		}
		wait.Until(t, "the aligned message delivered", func() bool { return deliveredTimes(hop, "dq-pass") == 1 })
		if l := logLines(g.mailLog(), passed); strings.Contains(strings.Join(l, "\n"), "quarantine") {
			t.Errorf("the aligned message:\n%s", strings.Join(l, "\n"))
		}
		if deliveredTimes(hop, "dq-held") != 0 {
			t.Fatal("the quarantined message was delivered")
		}
		wait.Until(t, "explained as quarantined for DMARC", func() bool {
			b, _ := execBinary("explain", "--config", g.config, fmt.Sprint(mid))
			return strings.Contains(b, `holds it in the "Policy" quarantine`) &&
				strings.Contains(b, "quarantined because DMARC failed for example.org (p=quarantine)")
		})

		mg(t, append([]string{"quarantine", "release", fmt.Sprint(mid)}, cfg...)...)
		g.waitLog(fmt.Sprintf(`MID %d released from quarantine "Policy" \(manual\)\n.*MID %d queued for delivery`, mid, mid))
		wait.Until(t, "the released message delivered", func() bool { return deliveredTimes(hop, "dq-held") == 1 })
		body := hop.deliveredMessage("dq-held")
		if strings.Contains(body, "X-Mailgate-DMARC") || !strings.Contains(body, "dmarc=fail") {
			t.Errorf("delivered:\n%s", body)
		}
		g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
		if n := strings.Count(g.mailLog(), fmt.Sprintf(`MID %d quarantined to`, mid)); n != 1 {
			t.Errorf("quarantined %d times, want once (not again after the release)", n)
		}
	})

	t.Run("no work queue", func(t *testing.T) {
		g := dmarcqGW(t, hop.addr, d.Addr, "")
		mid := sendDMARC(t, g, "ceo@example.org", "dq-tag")
		line := fmt.Sprintf(`MID %d DMARC: Message from domain example.org, policy quarantine, action tag X-Mailgate-DMARC`, mid)
		g.waitLog(regexp.QuoteMeta(line))
		wait.Until(t, "the tagged message delivered", func() bool { return deliveredTimes(hop, "dq-tag") == 1 })
		if body := hop.deliveredMessage("dq-tag"); !strings.HasPrefix(body, "X-Mailgate-DMARC: quarantine\r\n") {
			t.Errorf("delivered untagged:\n%s", body)
		}
		wait.Until(t, "explained as tagged, its line quoted", func() bool {
			b, _ := execBinary("explain", "--config", g.config, fmt.Sprint(mid))
			return strings.Contains(b, `It was tagged for quarantine because DMARC failed for example.org (p=quarantine): "`+line+`"`)
		})
	})
}
