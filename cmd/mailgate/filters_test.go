package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// filterConfig: one listener whose HAT places clients on the DNS list
// bl.test in LISTED (accepted, as everyone else), SPF, DKIM and DMARC
// verified (acting on nothing), everything routed to hop; the content
// filters of every condition kind (each adds X-Matched: <its name>) and
// of every action (keyed on the Subject's first word), in the DEFAULT
// incoming policy.
const filterConfig = `hostname: mx.test
data_dir: %s
shutdown_timeout: 5s
dns: {servers: ["%s"], timeout: 2s}
listeners:
  - name: InboundMail
    interface: Management
    address: %s
    hat:
      sender_groups:
        - {name: LISTED, match: ["dnslist[bl.test]"], policy: ACCEPTED}
      default_policy: ACCEPTED
    rat:
      - {domain: ALL, action: accept}
routes:
  - {domain: ALL, hosts: ["%s"]}
delivery:
  destinations:
    - {domain: default, max_connections: 10, tls: off}
  bounce: {initial_retry: 200ms, max_retry: 1s}
http: {address: ""}
content_filters:
  - {name: c_header,   conditions: [{header: X-Case, matches: "^header-hit$"}], actions: [{add_header: "X-Matched: c_header"}]}
  - {name: c_body,     conditions: [{body: "wire transfer now"}], actions: [{add_header: "X-Matched: c_body"}]}
  - {name: c_attname,  conditions: [{attachment_name: "*.scr"}], actions: [{add_header: "X-Matched: c_attname"}]}
  - {name: c_declared, conditions: [{declared_type: application/pdf}], actions: [{add_header: "X-Matched: c_declared"}]}
  - {name: c_detected, conditions: [{detected_type: application/x-msdownload}], actions: [{add_header: "X-Matched: c_detected"}]}
  - {name: c_size,     conditions: [{size_over: 100k}], actions: [{add_header: "X-Matched: c_size"}]}
  - {name: c_rcpts,    conditions: [{recipients_over: 2}], actions: [{add_header: "X-Matched: c_rcpts"}]}
  - {name: c_spf,      conditions: [{spf: fail}], actions: [{add_header: "X-Matched: c_spf"}]}
  - {name: c_dmarc,    conditions: [{dmarc: fail}], actions: [{add_header: "X-Matched: c_dmarc"}]}
  - {name: c_dnslist,  conditions: [{dnslist: bl.test}], actions: [{add_header: "X-Matched: c_dnslist"}]}
  - {name: a_log,      conditions: [{header: Subject, matches: "^log "}], actions: [{log_entry: "Suspicious text found"}]}
  - {name: a_tag,      conditions: [{header: Subject, matches: "^tag "}], actions: [{tag_subject: "[EXT]"}]}
  - {name: a_strip,    conditions: [{header: Subject, matches: "^strip "}], actions: [{strip_header: X-Secret}, {add_header: "X-Added: yes"}]}
  - {name: a_altrcpt,  conditions: [{header: Subject, matches: "^altrcpt "}], actions: [{alternate_recipient: review@example.org}]}
  - {name: a_althost,  conditions: [{header: Subject, matches: "^althost "}], actions: [{alternate_host: "%s"}]}
  - {name: a_notify,   conditions: [{header: Subject, matches: "^notify "}], actions: [{notify: admin@example.org}]}
  - {name: a_skip,     conditions: [{header: Subject, matches: "^skip "}], actions: [{add_header: "X-Skip: yes"}, skip_remaining]}
  - {name: a_tail,     conditions: [{header: Subject, matches: "^(skip|tail) "}], actions: [{add_header: "X-Tail: yes"}]}
  - {name: a_drop,     conditions: [{header: Subject, matches: "^drop "}], actions: [{log_entry: "dropping"}, drop]}
  - {name: a_bounce,   conditions: [{header: Subject, matches: "^bounce "}], actions: [bounce]}
mail_policies:
  incoming:
    - name: DEFAULT
      content_filters: [c_header, c_body, c_attname, c_declared, c_detected, c_size, c_rcpts, c_spf, c_dmarc, c_dnslist,
        a_log, a_tag, a_strip, a_altrcpt, a_althost, a_notify, a_skip, a_tail, a_drop, a_bounce]
`

// sendMailFrom sends one message over its own connection with Go's SMTP
// client, from a local address of the test's choice ("": the system's; a
// client a DNS list lists).
func sendMailFrom(local, addr, from string, rcpts []string, msg string) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		return err
	}
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func filterTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "filter", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deepMessage nests n multiparts; the attachment at the bottom is past
// the MIME parser's depth limit.
func deepMessage(n int) string {
	var b strings.Builder
	b.WriteString("From: a@pass.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")
	for i := range n {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: application/octet-stream; name=\"deep.scr\"\r\n\r\nMZ\x90\x00 wire transfer now\r\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.String()
}

// topHeader is a delivered message's own header (not one quoted in a DSN).
func topHeader(data []byte) string {
	h, _, _ := strings.Cut(string(data), "\r\n\r\n")
	return h + "\r\n"
}

func headerValues(h, name string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^`+name+`: (.*)\r$`).FindAllStringSubmatch(h, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestContentFilters: through the binary over SMTP, a content filter of
// each condition kind on the message that meets it (and none on those
// that do not), and each action as the mail log, the next hop, the
// alternate host and the sender's mailbox see it; broken MIME gets a
// verdict; the tracking records of the dropped and bounced messages say
// so.
func TestContentFilters(t *testing.T) {
	dnsd := smtptest.StartDNS(t,
		`pass.test. 60 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`spf-fail.test. 60 IN TXT "v=spf1 -all"`,
		`_dmarc.dmarc.test. 60 IN TXT "v=DMARC1; p=reject"`,
		`2.0.0.127.bl.test. 60 IN A 127.0.0.2`,
	)
	hop := startNextHop(t, 0)
	hop2 := startNextHop(t, 0)
	g := newGW(t, "5s")
	if err := os.WriteFile(g.config, []byte(fmt.Sprintf(filterConfig, g.dir, dnsd.Addr, g.addr, hop.addr, hop2.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()

	plain := func(tok, subject, extra string) string {
		return fmt.Sprintf("From: Alice <a@pass.test>\r\nTo: bob@example.net\r\nSubject: %s\r\nX-Token: %s\r\n%s\r\nShall we meet at noon?\r\n", subject, tok, extra)
	}
	withToken := func(tok, eml string) string { return "X-Token: " + tok + "\r\n" + eml }
	type send struct {
		tok, local, from string
		rcpts            []string
		msg              string
	}
	bob := []string{"bob@example.net"}
	conds := []struct {
		send
		matched []string // the filters that must match, in order
	}{
		{send{"none", "", "a@pass.test", bob, plain("none", "lunch", "")}, nil},
		{send{"header", "", "a@pass.test", bob, plain("header", "lunch", "X-Case: header-hit\r\n")}, []string{"c_header"}},
		{send{"body", "", "a@pass.test", bob, withToken("body", filterTestdata(t, "base64-body.eml"))}, []string{"c_body"}},
		{send{"nested", "", "a@pass.test", bob, withToken("nested", filterTestdata(t, "nested.eml"))}, []string{"c_attname", "c_declared"}},
		{send{"exe", "", "a@pass.test", bob, withToken("exe", filterTestdata(t, "exe-as-txt.eml"))}, []string{"c_detected"}},
		{send{"size", "", "a@pass.test", bob, plain("size", "lunch", "") + strings.Repeat("filler line of text\r\n", 6000)}, []string{"c_size"}},
		{send{"rcpts", "", "a@pass.test", []string{"bob@example.net", "carol@example.net", "dan@example.net"}, plain("rcpts", "lunch", "")}, []string{"c_rcpts"}},
		{send{"spf", "", "a@spf-fail.test", bob, strings.Replace(plain("spf", "lunch", ""), "a@pass.test", "a@spf-fail.test", 1)}, []string{"c_spf"}},
		{send{"dmarc", "", "a@pass.test", bob, strings.Replace(plain("dmarc", "lunch", ""), "a@pass.test", "x@dmarc.test", 1)}, []string{"c_dmarc"}},
		{send{"dnslist", "127.0.0.2", "a@pass.test", bob, plain("dnslist", "lunch", "")}, []string{"c_dnslist"}},
		{send{"unterminated", "", "a@pass.test", bob, withToken("unterminated", filterTestdata(t, "unterminated.eml"))}, []string{"c_body", "c_detected"}},
		{send{"deep", "", "a@pass.test", bob, withToken("deep", deepMessage(1000))}, nil},
	}
	actions := []send{
		{"log", "", "a@pass.test", bob, plain("log", "log t", "")},
		{"tag", "", "a@pass.test", bob, plain("tag", "tag t", "")},
		{"strip", "", "a@pass.test", bob, plain("strip", "strip t", "X-Secret: 42\r\n")},
		{"altrcpt", "", "a@pass.test", bob, plain("altrcpt", "altrcpt t", "")},
		{"althost", "", "a@pass.test", bob, plain("althost", "althost t", "")},
		{"notify", "", "a@pass.test", bob, plain("notify", "notify t", "")},
		{"skip", "", "a@pass.test", bob, plain("skip", "skip t", "")},
		{"tail", "", "a@pass.test", bob, plain("tail", "tail t", "")},
		{"drop", "", "a@pass.test", bob, plain("drop", "drop t", "")},
		{"bounce", "", "a@pass.test", bob, plain("bounce", "bounce t", "")},
	}
	mids := map[string]uint64{}
	all := actions
	for _, c := range conds {
		all = append(all, c.send)
	}
	for _, s := range all {
		local := s.local
		if local == "" {
			local = "127.0.0.1"
		}
		if err := sendMailFrom(local, g.addr, s.from, s.rcpts, s.msg); err != nil {
			t.Fatalf("send %s: %v", s.tok, err)
		}
	}
	// The action messages' MIDs, by their Subject lines.
	l := g.waitLog(fmt.Sprintf(`(?s)(MID \d+ ready.*){%d}`, len(all)))
	for _, s := range actions {
		m := regexp.MustCompile(`MID (\d+) Subject '` + s.tok + ` t'`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("no Subject line for %s", s.tok)
		}
		mids[s.tok], _ = strconv.ParseUint(m[1], 10, 64)
	}

	// Everything but the dropped and bounced message arrives, once, the
	// notification and the DSN with them.
	byToken := map[string][]hopMessage{}
	var notes, dsns []hopMessage
	collect := func(h *nextHop) {
		_, msgs := h.delivered()
		for _, m := range msgs {
			hdr := topHeader(m.data)
			switch {
			case strings.Contains(hdr, "Auto-Submitted: auto-generated"):
				notes = append(notes, m)
			case strings.Contains(hdr, "multipart/report"):
				dsns = append(dsns, m)
			default:
				if tok := headerValues(hdr, "X-Token"); len(tok) == 1 {
					byToken[tok[0]] = append(byToken[tok[0]], m)
				}
			}
		}
	}
	want := len(all) // less the dropped and the bounced, plus the notification and the DSN
	wait.Until(t, "every message delivered", func() bool {
		byToken, notes, dsns = map[string][]hopMessage{}, nil, nil
		collect(hop)
		collect(hop2)
		n := len(notes) + len(dsns)
		for _, ms := range byToken {
			n += len(ms)
		}
		return n >= want
	})
	for tok, ms := range byToken {
		if len(ms) != 1 {
			t.Errorf("%s delivered %d times", tok, len(ms))
		}
	}

	// Conditions: exactly the filters that must match did.
	for _, c := range conds {
		ms := byToken[c.tok]
		if len(ms) == 0 {
			t.Errorf("%s: not delivered", c.tok)
			continue
		}
		if got := headerValues(topHeader(ms[0].data), "X-Matched"); !slices.Equal(got, c.matched) {
			t.Errorf("%s: matched %v, want %v", c.tok, got, c.matched)
		}
	}

	// Actions.
	lines := func(tok string) []string { return logLines(g.mailLog(), mids[tok]) }
	hasLine := func(tok, line string) {
		t.Helper()
		if !slices.Contains(lines(tok), line) {
			t.Errorf("%s: no line %q in:\n%s", tok, line, strings.Join(lines(tok), "\n"))
		}
	}
	hasLine("log", fmt.Sprintf("MID %d Custom Log Entry: Suspicious text found", mids["log"]))
	if m := byToken["tag"]; len(m) == 1 && !slices.Equal(headerValues(topHeader(m[0].data), "Subject"), []string{"[EXT] tag t"}) {
		t.Errorf("tag: Subject %q", headerValues(topHeader(m[0].data), "Subject"))
	}
	if m := byToken["strip"]; len(m) == 1 {
		h := topHeader(m[0].data)
		if len(headerValues(h, "X-Secret")) != 0 || !slices.Equal(headerValues(h, "X-Added"), []string{"yes"}) {
			t.Errorf("strip: header\n%s", h)
		}
	}
	if m := byToken["altrcpt"]; len(m) == 1 && !slices.Equal(m[0].to, []string{"review@example.org"}) {
		t.Errorf("altrcpt: delivered to %v", m[0].to)
	}
	_, at2 := hop2.delivered()
	if len(at2) != 1 || !strings.Contains(topHeader(at2[0].data), "X-Token: althost") {
		t.Errorf("the alternate host got %d messages, want the althost one", len(at2))
	}
	if m := byToken["skip"]; len(m) == 1 {
		h := topHeader(m[0].data)
		if len(headerValues(h, "X-Skip")) != 1 || len(headerValues(h, "X-Tail")) != 0 {
			t.Errorf("skip: the filters after a_skip ran:\n%s", h)
		}
	}
	if m := byToken["tail"]; len(m) == 1 && len(headerValues(topHeader(m[0].data), "X-Tail")) != 1 {
		t.Errorf("tail: a_tail did not run")
	}
	// Notify: a message to the address, with its own MID and the line
	// that links it.
	if len(notes) != 1 || !slices.Equal(notes[0].to, []string{"admin@example.org"}) || notes[0].from != "" ||
		!strings.Contains(string(notes[0].data), fmt.Sprintf("Subject: Notification: MID %d matched notify filter 'a_notify'", mids["notify"])) {
		for _, d := range notes {
			t.Errorf("notification from <%s> to %v:\n%s", d.from, d.to, d.data)
		}
		t.Errorf("%d notifications, want 1", len(notes))
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)Info: MID \d+ was generated based on MID %d by notify filter 'a_notify'$`, mids["notify"])).MatchString(g.mailLog()) {
		t.Errorf("no generated line for the notification")
	}
	// Drop: nothing delivered, the ESA's lines.
	if len(byToken["drop"]) != 0 {
		t.Error("drop: delivered")
	}
	hasLine("drop", fmt.Sprintf("MID %d Custom Log Entry: dropping", mids["drop"]))
	hasLine("drop", fmt.Sprintf("Message aborted MID %d Dropped by content filter 'a_drop' in the inbound table", mids["drop"]))
	hasLine("drop", fmt.Sprintf("Message finished MID %d done", mids["drop"]))
	// Bounce: the DSN in the sender's mailbox.
	if len(byToken["bounce"]) != 0 {
		t.Error("bounce: delivered")
	}
	hasLine("bounce", fmt.Sprintf("Message aborted MID %d Bounced by content filter 'a_bounce' in the inbound table", mids["bounce"]))
	if len(dsns) != 1 || !slices.Equal(dsns[0].to, []string{"a@pass.test"}) || dsns[0].from != "" ||
		!strings.Contains(string(dsns[0].data), fmt.Sprintf("X-Mailgate-Original-MID: %d", mids["bounce"])) ||
		!strings.Contains(string(dsns[0].data), "Status: 5.7.1") {
		for _, d := range dsns {
			t.Errorf("DSN from <%s> to %v:\n%s", d.from, d.to, d.data)
		}
		t.Errorf("%d DSNs, want 1", len(dsns))
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)Info: MID \d+ generated for bounce of MID %d$`, mids["bounce"])).MatchString(g.mailLog()) {
		t.Errorf("no generated line for the DSN")
	}

	// Tracking: the dropped and bounced messages' records say what ended
	// them.
	for tok, want := range map[string]string{"drop": "Dropped by content filter 'a_drop' in the inbound table",
		"bounce": "Bounced by the gateway: content filter 'a_bounce' in the inbound table refused the message after it was accepted; the sender gets a bounce."} {
		var out string
		defer func() {
			if t.Failed() {
				t.Logf("%s: %s", tok, out)
			}
		}()
		wait.Until(t, tok+" tracked", func() bool {
			b, _ := exec.Command(binary, "explain", "--config", g.config, "--json", fmt.Sprint(mids[tok])).Output()
			out = string(b)
			var e struct{ Summary string }
			return json.Unmarshal(b, &e) == nil && strings.Contains(e.Summary, want)
		})
	}
}
