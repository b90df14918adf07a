package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mailgate/mailgate/internal/enginetest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/metrics"
)

// The real engines, one of each for the test binary (rspamd's first start
// compiles its rules). They die with the binary (enginetest's death
// signal); TestMain stops them.
var (
	rspamdEngine = &enginetest.Shared{Start: enginetest.Rspamd}
	clamdEngine  = &enginetest.Shared{Start: func() (*enginetest.Engine, error) { return enginetest.Clamd(25 << 20) }}
)

func stopScanEngines() {
	rspamdEngine.Stop()
	spamdEngine.Stop()
	clamdEngine.Stop()
}

// scanGW is a gateway whose listener accepts mail for every domain from
// loopback (the incoming policies apply), with scanners and policies.
func scanGW(t *testing.T, hop, scanners, policies string) *gw {
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
        - {name: INCOMING, match: [127.0.0.0/8], policy: ACCEPTED}
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
scanners:
%s
%s
`, g.dir, g.addr, hop, scanners, policies)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

// scanMail is a message with a token in its Subject and the given MIME
// body part (headers and body).
func scanMail(token, part string) string {
	return "From: a@example.org\r\nTo: b@example.net\r\nSubject: " + token + "\r\nX-Token: " + token +
		"\r\nMIME-Version: 1.0\r\n" + part
}

func b64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return out.String() + s + "\r\n"
}

func eicarZip(t *testing.T) []byte {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	w, err := z.Create("eicar.com")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(enginetest.EICAR))
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func midOf(t *testing.T, g *gw, token string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`MID (\d+) Subject '` + token + `'`).FindStringSubmatch(g.waitLog(`Subject '` + token + `'`))
	mid, _ := strconv.ParseUint(m[1], 10, 64)
	return mid
}

// EICAR in every shape through clamd, over SMTP: the ESA's verdict lines
// and "Dropped by antivirus" for each, nothing of them delivered; a clean
// message delivered after "antivirus negative".
func TestScanClamAV(t *testing.T) {
	e := clamdEngine.Get(t)
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  clamav: {address: "+e.Unix+"}", `mail_policies:
  incoming:
    - name: DEFAULT
      antivirus: clamav
`)
	g.start()
	zipped := eicarZip(t)
	var plainMID uint64
	for _, c := range []struct{ name, part string }{
		{"plain", "Content-Type: text/plain\r\n\r\n" + enginetest.EICAR + "\r\n"},
		{"attachment", "Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\n" +
			"Content-Type: application/octet-stream; name=eicar.com\r\nContent-Disposition: attachment; filename=eicar.com\r\n\r\n" + enginetest.EICAR + "\r\n--b1--\r\n"},
		{"base64", "Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: application/octet-stream; name=e.bin\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + b64([]byte(enginetest.EICAR)) + "--b1--\r\n"},
		{"zip", "Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: application/zip; name=e.zip\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + b64(zipped) + "--b1--\r\n"},
		{"nested", "Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
			"--inner\r\nContent-Type: text/plain\r\n\r\nhello\r\n--inner\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			b64([]byte(enginetest.EICAR)) + "--inner--\r\n--outer--\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := "av-" + c.name
			if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail(tok, c.part)); err != nil {
				t.Fatal(err)
			}
			mid := midOf(t, g, tok)
			if c.name == "plain" {
				plainMID = mid
			}
			l := g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
			want := []string{
				fmt.Sprintf("MID %d interim AV verdict using ClamAV VIRAL", mid),
				fmt.Sprintf("MID %d antivirus positive 'Eicar-Test-Signature.UNOFFICIAL'", mid),
				fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antivirus=ClamAV:positive:Eicar-Test-Signature.UNOFFICIAL action=drop", mid),
				fmt.Sprintf("Message aborted MID %d Dropped by antivirus", mid),
				fmt.Sprintf("Message finished MID %d done", mid),
			}
			linesInOrder(t, logLines(l, mid), want)
		})
	}
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("av-clean", "Content-Type: text/plain\r\n\r\nnothing here\r\n")); err != nil {
		t.Fatal(err)
	}
	mid := midOf(t, g, "av-clean")
	l := g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
	linesInOrder(t, logLines(l, mid), []string{fmt.Sprintf("MID %d interim AV verdict using ClamAV CLEAN", mid),
		fmt.Sprintf("MID %d antivirus negative", mid),
		fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antivirus=ClamAV:negative action=deliver", mid),
		fmt.Sprintf("MID %d queued for delivery", mid)})
	tokens, msgs := hop.delivered()
	if len(msgs) != 1 || tokens["av-clean"] != 1 {
		t.Errorf("delivered %v, want av-clean only", tokens)
	}
	// The tracking record has the verdicts, and explain says them.
	for _, c := range []struct {
		mid  uint64
		args []string
		want string
	}{
		{plainMID, []string{"track", "--json", "--events", "--mid"}, `"verdicts":[{"kind":"antivirus","engine":"ClamAV","verdict":"positive","detail":"Eicar-Test-Signature.UNOFFICIAL"}]`},
		{plainMID, []string{"explain", "--json"}, `"summary": "Dropped by anti-virus: ClamAV found 'Eicar-Test-Signature.UNOFFICIAL'; the sender was not told; release is not possible`},
		{mid, []string{"track", "--json", "--events", "--mid"}, `"verdicts":[{"kind":"antivirus","engine":"ClamAV","verdict":"negative"}]`},
		{mid, []string{"explain", "--json"}, `Scanning verdicts: anti-virus: ClamAV says negative.`},
	} {
		var out string
		defer func() {
			if t.Failed() {
				t.Logf("%s MID %d: %s", c.args[0], c.mid, out)
			}
		}()
		wait.Until(t, fmt.Sprintf("%s of MID %d says %s", c.args[0], c.mid, c.want), func() bool {
			args := append(append([]string{}, c.args[0], "--config", g.config), c.args[1:]...)
			b, _ := exec.Command(binary, append(args, fmt.Sprint(c.mid))...).Output()
			out = string(b)
			return strings.Contains(out, c.want)
		})
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

// linesInOrder checks that lines hold want's lines (as substrings) in order.
func linesInOrder(t *testing.T, lines, want []string) {
	t.Helper()
	i := 0
	for _, line := range lines {
		if i < len(want) && strings.Contains(line, want[i]) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("the log lacks %q in order:\n%s", want[i], strings.Join(lines, "\n"))
	}
}

const gtubeBody = "Content-Type: text/plain\r\n\r\nThis is spam.\r\n" + enginetest.GTUBE + "\r\n"

// GTUBE to two recipients whose policies act differently on spam: the
// message is split, one half dropped by RSPAMD, the other delivered with
// its subject tagged and a header added.
func TestScanRspamdSplit(t *testing.T) {
	e := rspamdEngine.Get(t)
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  rspamd: {url: http://"+e.TCP+"}", `mail_policies:
  incoming:
    - name: strict
      recipients: [ceo@example.com]
      antispam: {engine: rspamd, positive: drop}
    - name: DEFAULT
      antispam:
        engine: rspamd
        positive: {action: deliver, tag_subject: "[SPAM] ", add_header: "X-Spam-Verdict: positive"}
`)
	g.start()
	if err := sendMail(g.addr, "a@example.org", []string{"ceo@example.com", "x@example.net"}, scanMail("spam-split", gtubeBody)); err != nil {
		t.Fatal(err)
	}
	mid := midOf(t, g, "spam-split")
	l := g.waitLog(`was split creating MID \d+`)
	m := regexp.MustCompile(fmt.Sprintf(`MID %d was split creating MID (\d+) due to a per-recipient policy DEFAULT`, mid)).FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("no split line:\n%s", l)
	}
	child, _ := strconv.ParseUint(m[1], 10, 64)
	g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
	l = g.waitLog(fmt.Sprintf(`Message finished MID %d done`, child))
	linesInOrder(t, logLines(l, mid), []string{
		fmt.Sprintf("MID %d interim verdict using engine: RSPAMD spam positive", mid),
		fmt.Sprintf("MID %d using engine: RSPAMD spam positive", mid),
		fmt.Sprintf("mailgate: MID %d verdicts policy=strict table=inbound antispam=RSPAMD:positive action=drop", mid),
		fmt.Sprintf("Message aborted MID %d Dropped by RSPAMD", mid),
	})
	linesInOrder(t, logLines(l, child), []string{
		fmt.Sprintf("MID %d interim verdict using engine: RSPAMD spam positive", child),
		fmt.Sprintf("MID %d using engine: RSPAMD spam positive", child),
		fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antispam=RSPAMD:positive action=deliver", child),
		fmt.Sprintf("MID %d queued for delivery", child),
	})
	_, msgs := hop.delivered()
	if len(msgs) != 1 || strings.Join(msgs[0].to, ",") != "x@example.net" {
		t.Fatalf("delivered %d messages (%v), want one to x@example.net", len(msgs), msgs)
	}
	hdr, err := textproto.NewReader(bufioReader(msgs[0].data)).ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Get("Subject") != "[SPAM] spam-split" || hdr.Get("X-Spam-Verdict") != "positive" {
		t.Errorf("delivered Subject %q, X-Spam-Verdict %q", hdr.Get("Subject"), hdr.Get("X-Spam-Verdict"))
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

// Reject at SMTP time: GTUBE to recipients whose policies all say reject
// is answered 550 5.7.1, logged as a rejection after DATA, and neither
// queued nor delivered; a clean message is accepted and delivered.
func TestScanRejectAtData(t *testing.T) {
	e := rspamdEngine.Get(t)
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  rspamd: {url: http://"+e.TCP+"}", `mail_policies:
  incoming:
    - name: DEFAULT
      antispam: {engine: rspamd, positive: reject}
`)
	web := withMetrics(t, g)
	g.start()
	err := sendMail(g.addr, "a@example.org", []string{"b@example.net", "c@example.net"}, scanMail("spam-reject", gtubeBody))
	var te *textproto.Error
	if !asTextproto(err, &te) || te.Code != 550 || !strings.HasPrefix(te.Msg, "5.7.1 ") {
		t.Fatalf("DATA's reply: %v, want 550 5.7.1", err)
	}
	l := g.waitLog(`Message finished MID \d+ aborted`)
	// The Subject is logged when the message is queued: this one never was.
	icid := regexp.MustCompile(`ICID (\d+) Receiving Failed:`).FindStringSubmatch(l)
	if icid == nil {
		t.Fatalf("no Receiving Failed line:\n%s", l)
	}
	m := regexp.MustCompile(`Start MID (\d+) ICID ` + icid[1] + `\n`).FindStringSubmatch(l)
	mid, _ := strconv.ParseUint(m[1], 10, 64)
	lines := logLines(l, mid)
	linesInOrder(t, lines, []string{
		fmt.Sprintf("MID %d interim verdict using engine: RSPAMD spam positive", mid),
		fmt.Sprintf("MID %d using engine: RSPAMD spam positive", mid),
		fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antispam=RSPAMD:positive action=reject", mid),
		fmt.Sprintf("Message finished MID %d aborted", mid),
	})
	if !regexp.MustCompile(`ICID \d+ Receiving Failed: Rejected by RSPAMD spam positive`).MatchString(l) {
		t.Errorf("no rejection line:\n%s", l)
	}
	for _, line := range lines {
		if strings.Contains(line, "ready") || strings.Contains(line, "queued for delivery") {
			t.Errorf("a rejected message was queued: %s", line)
		}
	}
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("ham", "Content-Type: text/plain\r\n\r\nHello, see you at noon.\r\n")); err != nil {
		t.Fatal(err)
	}
	ham := midOf(t, g, "ham")
	g.waitLog(fmt.Sprintf(`Message finished MID %d done`, ham))
	// A message larger than the listener keeps in memory (it is staged on
	// disk as it arrives) is scanned from the stage and rejected too.
	big := scanMail("spam-big", "Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"+gtubeBody+
		"--b1\r\nContent-Type: application/octet-stream; name=pad.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
		b64(bytes.Repeat([]byte("padding "), 12000))+"--b1--\r\n")
	err = sendMail(g.addr, "a@example.org", []string{"b@example.net"}, big)
	if !asTextproto(err, &te) || te.Code != 550 {
		t.Errorf("a %d-byte spam's DATA reply: %v, want 550 5.7.1", len(big), err)
	}
	g.waitLog(`(?s)(Receiving Failed: Rejected by RSPAMD spam positive.*){2}`)
	tokens, _ := hop.delivered()
	if tokens["ham"] != 1 || tokens["spam-reject"] != 0 || tokens["spam-big"] != 0 {
		t.Errorf("delivered %v", tokens)
	}
	// The verdicts in the metrics: the two rejected at SMTP time (the
	// listener's summary lines), the ham the work queue scanned.
	fams, text := scrape(t, "http://"+web+"/metrics", "t0k")
	for _, tt := range []struct {
		verdict string
		want    float64
	}{{"positive", 2}, {"negative", 1}} {
		if v := value(fams, "mailgate_scan_verdicts_total", "engine", "rspamd", "verdict", tt.verdict); v != tt.want {
			t.Errorf("mailgate_scan_verdicts_total{engine=rspamd,verdict=%s} = %v, want %v", tt.verdict, v, tt.want)
		}
	}
	checkScanFamilies(t, fams, text)
	g.signal(syscall.SIGTERM)
	g.wait()
}

// An engine that is down: under tempfail the message waits in the work
// queue, not delivered; under deliver it goes on unscanned.
func TestScanEngineDown(t *testing.T) {
	down := freePort(t) // nothing listens there
	for _, c := range []struct {
		failure   string
		delivered bool
	}{{"tempfail", false}, {"deliver", true}} {
		t.Run(c.failure, func(t *testing.T) {
			hop := startNextHop(t, 0)
			g := scanGW(t, hop.addr, "  clamav: {address: \""+down+"\", timeout: 1s}", `mail_policies:
  incoming:
    - name: DEFAULT
      antivirus: clamav
      scan_failure: `+c.failure+`
`)
			g.start()
			if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("down", "Content-Type: text/plain\r\n\r\nhi\r\n")); err != nil {
				t.Fatal(err)
			}
			mid := midOf(t, g, "down")
			if c.delivered {
				g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
				if tokens, _ := hop.delivered(); tokens["down"] != 1 {
					t.Errorf("delivered %v", tokens)
				}
			} else {
				waitStderr(t, g, "the message waits in the work queue")
				out := mg(t, "workqueue", "--config", g.config)
				if !regexp.MustCompile(`1 messages?`).MatchString(out) {
					t.Errorf("workqueue:\n%s", out)
				}
				if tokens, _ := hop.delivered(); tokens["down"] != 0 {
					t.Errorf("delivered unscanned: %v", tokens)
				}
			}
			g.signal(syscall.SIGTERM)
			g.wait()
		})
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func asTextproto(err error, te **textproto.Error) bool { return errors.As(err, te) }

// waitStderr waits for the gateway's diagnostics to say s.
func waitStderr(t *testing.T, g *gw, s string) {
	t.Helper()
	wait.Until(t, "stderr says "+s, func() bool { return strings.Contains(g.stderr.String(), s) })
}

var spamdEngine = &enginetest.Shared{Start: enginetest.Spamd}

// GTUBE through spamd to four recipients whose policies act differently:
// split in four, one dropped, one bounced (the DSN to the sender), one
// delivered tagged, one delivered with a header; the lines name
// SPAMASSASSIN.
func TestScanSpamdActions(t *testing.T) {
	e := spamdEngine.Get(t)
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  spamassassin: {address: "+e.Unix+"}", `mail_policies:
  incoming:
    - name: p_drop
      recipients: [drop@example.net]
      antispam: {engine: spamassassin, positive: drop}
    - name: p_bounce
      recipients: [bounce@example.net]
      antispam: {engine: spamassassin, positive: bounce}
    - name: p_header
      recipients: [header@example.net]
      antispam: {engine: spamassassin, positive: {action: deliver, add_header: "X-Spam-Flag: YES"}}
    - name: DEFAULT
      antispam: spamassassin
`)
	g.start()
	rcpts := []string{"drop@example.net", "bounce@example.net", "header@example.net", "tag@example.net"}
	if err := sendMail(g.addr, "a@example.org", rcpts, scanMail("sa-actions", gtubeBody)); err != nil {
		t.Fatal(err)
	}
	mid := midOf(t, g, "sa-actions")
	// The parent keeps the first recipient's policy (drop); three children.
	l := g.waitLog(`(?s)(was split creating MID \d+.*){3}`)
	children := regexp.MustCompile(fmt.Sprintf(`MID %d was split creating MID (\d+) due to a per-recipient policy (\w+)`, mid)).FindAllStringSubmatch(l, -1)
	if len(children) != 3 {
		t.Fatalf("%d split lines, want 3:\n%s", len(children), l)
	}
	byPolicy := map[string]uint64{"p_drop": mid}
	for _, c := range children {
		n, _ := strconv.ParseUint(c[1], 10, 64)
		byPolicy[c[2]] = n
	}
	for pol, c := range map[string]struct{ action, last string }{
		"p_drop":   {"drop", "Message aborted MID %d Dropped by SPAMASSASSIN"},
		"p_bounce": {"bounce", "Message aborted MID %d Bounced by SPAMASSASSIN"},
		"p_header": {"deliver", "MID %d queued for delivery"},
		"DEFAULT":  {"deliver", "MID %d queued for delivery"},
	} {
		m := byPolicy[pol]
		l := g.waitLog(fmt.Sprintf(`Message finished MID %d done`, m))
		linesInOrder(t, logLines(l, m), []string{
			fmt.Sprintf("MID %d interim verdict using engine: SPAMASSASSIN spam positive", m),
			fmt.Sprintf("MID %d using engine: SPAMASSASSIN spam positive", m),
			fmt.Sprintf("mailgate: MID %d verdicts policy=%s table=inbound antispam=SPAMASSASSIN:positive action=%s", m, pol, c.action),
			fmt.Sprintf(c.last, m),
		})
	}
	wait.Until(t, "two deliveries and a DSN", func() bool { _, msgs := hop.delivered(); return len(msgs) >= 3 })
	_, msgs := hop.delivered()
	got := map[string]string{}
	for _, m := range msgs {
		hdr, _ := textproto.NewReader(bufioReader(m.data)).ReadMIMEHeader()
		switch {
		case m.from == "":
			got["dsn to "+strings.Join(m.to, ",")] = hdr.Get("X-Mailgate-Original-MID")
		default:
			got[strings.Join(m.to, ",")] = hdr.Get("Subject") + " | " + hdr.Get("X-Spam-Flag")
		}
	}
	want := map[string]string{
		"dsn to a@example.org": fmt.Sprint(byPolicy["p_bounce"]),
		"header@example.net":   "sa-actions | YES",
		"tag@example.net":      "[SPAM] sa-actions | ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v\nwant      %v", got, want)
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

// fakeEngine is a loopback listener that reads what it is sent and
// answers reply (nothing when reply is ""), counting its connections.
type fakeEngine struct {
	addr  string
	conns atomic.Int32
}

func startFakeEngine(t *testing.T, reply string) *fakeEngine {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Minute))
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					// clamd's stream ends with a zero-length chunk.
					if reply != "" && bytes.HasSuffix(buf[:n], []byte{0, 0, 0, 0}) {
						c.Write([]byte(reply))
						return
					}
				}
			}()
		}
	}()
	return f
}

// clamd answering garbage, under a policy that delivers unscanned: the
// message goes on, and its summary line says it was not scanned.
func TestScanEngineGarbage(t *testing.T) {
	f := startFakeEngine(t, "this is not clamd\x00")
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  clamav: {address: \""+f.addr+"\", timeout: 5s}", `mail_policies:
  incoming:
    - name: DEFAULT
      antivirus: clamav
      scan_failure: deliver
`)
	g.start()
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("garbage", "Content-Type: text/plain\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	mid := midOf(t, g, "garbage")
	l := g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
	linesInOrder(t, logLines(l, mid), []string{
		fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antivirus=clamav:unscanned action=deliver", mid),
		fmt.Sprintf("MID %d queued for delivery", mid),
	})
	if !strings.Contains(g.stderr.String(), "protocol error") {
		t.Errorf("stderr does not say why:\n%s", g.stderr.String())
	}
	if tokens, _ := hop.delivered(); tokens["garbage"] != 1 {
		t.Errorf("delivered %v", tokens)
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

// clamd down under tempfail: the message waits in the work queue; once
// clamd is there (its socket appears at the configured path) the retry
// scans and delivers it, once.
func TestScanEngineBack(t *testing.T) {
	e := clamdEngine.Get(t)
	sock := filepath.Join(t.TempDir(), "clamd.sock") // not there yet
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  clamav: {address: "+sock+", timeout: 5s}", `mail_policies:
  initial_retry: 1s
  max_retry: 2s
  incoming:
    - name: DEFAULT
      antivirus: clamav
`)
	g.start()
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("back", "Content-Type: text/plain\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	mid := midOf(t, g, "back")
	waitStderr(t, g, "the message waits in the work queue")
	if tokens, _ := hop.delivered(); tokens["back"] != 0 {
		t.Fatalf("delivered unscanned: %v", tokens)
	}
	if err := os.Symlink(e.Unix, sock); err != nil {
		t.Fatal(err)
	}
	// The retries come every 2 s at most (mail_policies.max_retry), well
	// within the wait, which the default's 30 s for the first would not.
	wait.UntilWithin(t, 25*time.Second, "delivered after clamd came back", func() bool {
		return strings.Contains(g.mailLog(), fmt.Sprintf("Message finished MID %d done", mid))
	})
	linesInOrder(t, logLines(g.mailLog(), mid), []string{
		fmt.Sprintf("MID %d antivirus negative", mid),
		fmt.Sprintf("MID %d queued for delivery", mid),
	})
	if tokens, _ := hop.delivered(); tokens["back"] != 1 {
		t.Errorf("delivered %v, want once", tokens)
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

// The gateway SIGKILLed while clamd (here a listener that never answers)
// holds its messages mid-scan: after the restart, with the real clamd,
// each is scanned and delivered exactly once.
func TestScanSIGKILLMidScan(t *testing.T) {
	e := clamdEngine.Get(t)
	slow := startFakeEngine(t, "")
	hop := startNextHop(t, 0)
	const policies = `mail_policies:
  workers: 4
  incoming:
    - name: DEFAULT
      antivirus: clamav
`
	g := scanGW(t, hop.addr, "  clamav: {address: \""+slow.addr+"\", timeout: 1m}", policies)
	g.start()
	const n = 3
	for i := range n {
		if err := sendMail(g.addr, "a@example.org", []string{"b@example.net", "c@example.net"}, scanMail(fmt.Sprintf("kill%d", i), "Content-Type: text/plain\r\n\r\nhi\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, "three messages mid-scan", func() bool { return slow.conns.Load() >= n })
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait()
	cfg, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.config, bytes.Replace(cfg, []byte(slow.addr), []byte(e.Unix), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	wait.Until(t, "every message delivered", func() bool {
		_, msgs := hop.delivered()
		return len(msgs) >= n
	})
	g.signal(syscall.SIGTERM)
	g.wait()
	tokens, msgs := hop.delivered()
	for i := range n {
		if tok := fmt.Sprintf("kill%d", i); tokens[tok] != 1 {
			t.Errorf("%s delivered %d times, want 1 (%d messages)", tok, tokens[tok], len(msgs))
		}
	}
	if c := strings.Count(g.mailLog(), "antivirus negative"); c != n {
		t.Errorf("%d antivirus lines, want %d", c, n)
	}
}

// rspamd's suspect threshold and the Spam quarantine: GTUBE (positive) is
// held in the "Spam" quarantine, a plain message (suspect by the
// threshold) delivered with its subject tagged.
func TestScanRspamdQuarantineSuspect(t *testing.T) {
	e := rspamdEngine.Get(t)
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  rspamd: {url: http://"+e.TCP+", thresholds: {suspect: -1000}}", `mail_policies:
  incoming:
    - name: DEFAULT
      antispam: {engine: rspamd, positive: quarantine}
`)
	g.start()
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("spam-q", gtubeBody)); err != nil {
		t.Fatal(err)
	}
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("suspect", "Content-Type: text/plain\r\n\r\nHello, see you at noon.\r\n")); err != nil {
		t.Fatal(err)
	}
	spam, suspect := midOf(t, g, "spam-q"), midOf(t, g, "suspect")
	l := g.waitLog(fmt.Sprintf(`MID %d quarantined to "Spam"`, spam))
	linesInOrder(t, logLines(l, spam), []string{
		fmt.Sprintf("MID %d using engine: RSPAMD spam positive", spam),
		fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antispam=RSPAMD:positive action=quarantine", spam),
		fmt.Sprintf(`MID %d quarantined to "Spam" (antispam:RSPAMD)`, spam),
	})
	l = g.waitLog(fmt.Sprintf(`Message finished MID %d done`, suspect))
	linesInOrder(t, logLines(l, suspect), []string{
		fmt.Sprintf("MID %d using engine: RSPAMD spam suspect", suspect),
		fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antispam=RSPAMD:suspect action=deliver", suspect),
		fmt.Sprintf("MID %d queued for delivery", suspect),
	})
	_, msgs := hop.delivered()
	if len(msgs) != 1 {
		t.Fatalf("%d delivered, want the suspect one", len(msgs))
	}
	if hdr, _ := textproto.NewReader(bufioReader(msgs[0].data)).ReadMIMEHeader(); hdr.Get("Subject") != "[SUSPECTED SPAM] suspect" {
		t.Errorf("Subject %q", hdr.Get("Subject"))
	}
	if out := mg(t, "quarantine", "list", "--config", g.config); !strings.Contains(out, fmt.Sprint(spam)) || !strings.Contains(out, "Spam") {
		t.Errorf("quarantine list:\n%s", out)
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

// A message over the policy's scan size: rspamd is not asked, the ESA's
// "too big" line is written and the policy's too_big action taken.
func TestScanTooBig(t *testing.T) {
	e := rspamdEngine.Get(t)
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  rspamd: {url: http://"+e.TCP+"}", `mail_policies:
  incoming:
    - name: DEFAULT
      antispam: {engine: rspamd, max_size: 200, too_big: drop}
`)
	g.start()
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("big", gtubeBody+strings.Repeat("padding line\r\n", 20))); err != nil {
		t.Fatal(err)
	}
	mid := midOf(t, g, "big")
	l := g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
	m := regexp.MustCompile(fmt.Sprintf(`MID %d ready (\d+) bytes`, mid)).FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("no ready line:\n%s", l)
	}
	// The size is the message's as stored and scanned: with the fields
	// the gateway added (Received, Authentication-Results), more than
	// the "ready" line's.
	tb := regexp.MustCompile(fmt.Sprintf(`MID %d was too big \((\d+)/200\) for scanning by RSPAMD`, mid)).FindStringSubmatch(l)
	if tb == nil {
		t.Fatalf("no too big line:\n%s", l)
	}
	if size, _ := strconv.Atoi(tb[1]); size < mustAtoi(m[1]) {
		t.Errorf("too big with %s bytes, below the %s received", tb[1], m[1])
	}
	linesInOrder(t, logLines(l, mid), []string{
		fmt.Sprintf("MID %d was too big (%s/200) for scanning by RSPAMD", mid, tb[1]),
		fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antispam=RSPAMD:too-big action=drop", mid),
		fmt.Sprintf("Message aborted MID %d Dropped by RSPAMD", mid),
	})
	if strings.Contains(l, fmt.Sprintf("MID %d using engine", mid)) {
		t.Error("rspamd was asked")
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

// movedByScanTraffic are the families that only a gateway with scanning
// engines moves (TestMetricsAfterTraffic's and TestPipelineMetrics' have
// none): TestScanRejectAtData moves each, and fails on one it does not.
var movedByScanTraffic = []string{
	"mailgate_scan_verdicts_total",
}

// withMetrics opens a scan gateway's HTTP server (token t0k) on a free
// loopback port, for /metrics, and returns its address.
func withMetrics(t *testing.T, g *gw) string {
	t.Helper()
	web := freePort(t)
	b, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), `http: {address: ""}`, `http: {address: "`+web+`", token: t0k}`, 1)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return web
}

// checkScanFamilies runs promtool on a scan gateway's /metrics, and checks
// that every family of movedByScanTraffic is declared and moved.
func checkScanFamilies(t *testing.T, fams map[string]*dto.MetricFamily, text string) {
	t.Helper()
	cmd := exec.Command(need(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	declared := metrics.New(metrics.Options{}).Names()
	for _, name := range movedByScanTraffic {
		if !slices.Contains(declared, name) {
			t.Errorf("movedByScanTraffic names %s, which is not declared", name)
		}
		if !moved(fams[name]) {
			t.Errorf("%s was not moved by the traffic", name)
		}
	}
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// A message over clamd's max_size is not sent in part: too big, then
// unscannable (never clean), and the default unscannable action delivers
// it with the ESA's subject tag.
func TestScanClamAVTooBig(t *testing.T) {
	e := clamdEngine.Get(t)
	hop := startNextHop(t, 0)
	g := scanGW(t, hop.addr, "  clamav: {address: "+e.Unix+", max_size: 300}", `mail_policies:
  incoming:
    - name: DEFAULT
      antivirus: clamav
`)
	g.start()
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, scanMail("av-big", "Content-Type: text/plain\r\n\r\n"+strings.Repeat("padding line\r\n", 40))); err != nil {
		t.Fatal(err)
	}
	mid := midOf(t, g, "av-big")
	l := g.waitLog(fmt.Sprintf(`Message finished MID %d done`, mid))
	linesInOrder(t, logLines(l, mid), []string{
		"/300) for scanning by ClamAV",
		fmt.Sprintf("MID %d antivirus unscannable", mid),
		fmt.Sprintf("mailgate: MID %d verdicts policy=DEFAULT table=inbound antivirus=ClamAV:unscannable action=deliver", mid),
		fmt.Sprintf("MID %d queued for delivery", mid),
	})
	_, msgs := hop.delivered()
	if len(msgs) != 1 {
		t.Fatalf("%d delivered", len(msgs))
	}
	if hdr, _ := textproto.NewReader(bufioReader(msgs[0].data)).ReadMIMEHeader(); hdr.Get("Subject") != "[WARNING: A/V UNSCANNABLE] av-big" {
		t.Errorf("Subject %q", hdr.Get("Subject"))
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}
