package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/tracking"
)

// trackGW is a relaying gateway with the tracking page on and a short
// unsuccessful-connection timeout, so that a silent client times out
// within the test.
func trackGW(t *testing.T, hop string) (*gw, string) {
	t.Helper()
	g := newGW(t, "5s")
	web := freePort(t)
	cfg := fmt.Sprintf(`hostname: mx.test
data_dir: %s
shutdown_timeout: 5s
listeners:
  - name: InboundMail
    interface: Management
    address: %s
    timeouts: {unsuccessful: 2s}
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
routes:
  - {domain: ALL, hosts: ["%s"]}
delivery:
  destinations:
    - {domain: default, tls: off}
  bounce: {initial_retry: 200ms, max_retry: 1s}
logs:
  injection_debug:
    - {hosts: [127.0.0.1], sessions: 100}
http: {address: "%s", token: sesame}
`, g.dir, g.addr, hop, web)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g, web
}

// session opens an SMTP session up to an accepted RCPT.
func session(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	expect := func(cmd, code string) {
		t.Helper()
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			if !strings.HasPrefix(l, code) {
				t.Fatalf("%s: got %q, want %s", cmd, l, code)
			}
			if l[3] != '-' {
				return
			}
		}
	}
	expect("", "220")
	expect("EHLO client.test", "250")
	expect("MAIL FROM:<app@client.test>", "250")
	expect("RCPT TO:<bob@example.net>", "250")
	return c, r
}

// The acceptance test of message tracking: five messages end in five ways
// at a real gateway, and the CLI and the HTTP API tell each one right.
func TestTrackingEndToEnd(t *testing.T) {
	hop := startNextHop(t, 0, "nobody@example.net")
	g, web := trackGW(t, hop.addr)
	g.start()

	if _, err := sendToken(g.addr, "alice@example.org", "bob@example.net", "delivered-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := sendToken(g.addr, "alice@example.org", "nobody@example.net", "bounced-1"); err != nil {
		t.Fatal(err)
	}
	// RST in the middle of DATA.
	c, r := session(t, g.addr)
	fmt.Fprint(c, "DATA\r\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "354") {
		t.Fatalf("DATA: %q", l)
	}
	fmt.Fprint(c, "Subject: cut\r\n\r\nhalf a message\r\n")
	smtptest.WaitPeerRead(t, c) // a reset discards what is unread
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	// QUIT before DATA.
	c, r = session(t, g.addr)
	fmt.Fprint(c, "QUIT\r\n")
	r.ReadString('\n')
	c.Close()
	// Silence until the listener's timeout.
	c, _ = session(t, g.addr)
	defer c.Close()
	g.waitLog(`ended cause=timeout-unsuccessful`)

	// The store catches up within the feed's second.
	var ms []tracking.Message
	wait.Until(t, "6 messages settled in the tracking store", func() bool {
		ms = trackJSON(t, g, "--limit", "50")
		return len(ms) >= 6 && allSettled(ms)
	})
	byToken := map[string]tracking.Message{}
	for _, m := range ms {
		switch {
		case m.Status == tracking.Aborted:
			byToken[string(m.Abort)] = m
		case m.BounceOf != 0:
			byToken["dsn"] = m
		default:
			byToken[m.Subject] = m
		}
	}
	for _, w := range []struct {
		key    string
		status tracking.Status
		abort  tracking.Abort
		state  string
	}{
		{"delivered-1", tracking.Delivered, "", ""},
		{"bounced-1", tracking.Bounced, "", ""},
		{"dsn", tracking.Delivered, "", ""},
		{"peer_reset", tracking.Aborted, tracking.AbortPeerReset, "data"},
		{"sender_quit", tracking.Aborted, tracking.AbortSenderQuit, "rcpt"},
		{"timeout", tracking.Aborted, tracking.AbortTimeout, "rcpt"},
	} {
		m, ok := byToken[w.key]
		if !ok {
			t.Errorf("no message for %s among %+v", w.key, ms)
			continue
		}
		if m.Status != w.status || m.Abort != w.abort || m.AbortState != w.state || m.Host != "mx.test" || m.ICID == 0 && w.key != "dsn" {
			t.Errorf("%s: status %s abort %q state %q host %s ICID %d", w.key, m.Status, m.Abort, m.AbortState, m.Host, m.ICID)
		}
	}

	// explain, in the words of the seeds.
	for key, want := range map[string]string{
		"peer_reset":  "firewall, an SMTP-inspecting device",
		"sender_quit": "The sending client gave up",
		"timeout":     "unsuccessful-connection timeout",
		"bounced-1":   "550 5.1.1",
		"delivered-1": "Delivered",
	} {
		out := mg(t, "explain", "--config", g.config, fmt.Sprint(byToken[key].MID))
		if !strings.Contains(out, want) {
			t.Errorf("explain %s (MID %d) lacks %q:\n%s", key, byToken[key].MID, want, out)
		}
	}
	out := mg(t, "explain", "--config", g.config, "--aborts", "--since", "1h")
	for _, want := range []string{"3 aborted receptions", "peer_reset", "sender_quit", "timeout", "127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain --aborts lacks %q:\n%s", want, out)
		}
	}
	lost := byToken["peer_reset"]
	out = mg(t, "track", "--config", g.config, "--mid", fmt.Sprint(lost.MID), "--events")
	for _, want := range []string{"ICID " + fmt.Sprint(lost.ICID) + " lost", "Message aborted MID " + fmt.Sprint(lost.MID) + " Receiving aborted", "cause=peer-reset",
		fmt.Sprint(lost.ICID) + " Rcvd: 'MAIL FROM:<app@client.test>'", fmt.Sprint(lost.ICID) + " Sent: '354 "} {
		if !strings.Contains(out, want) {
			t.Errorf("track --events lacks %q:\n%s", want, out)
		}
	}
	out = mg(t, "findevent", "--config", g.config, "-f", "app@client.test")
	if n := strings.Count(out, "The following lines are of MID"); n != 3 {
		t.Errorf("findevent -f found %d messages:\n%s", n, out)
	}

	// The API, with its token.
	get := func(path, token string) (int, []byte) {
		req, _ := http.NewRequest("GET", "http://"+web+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	if code, _ := get("/api/messages", ""); code != http.StatusUnauthorized {
		t.Errorf("API without the token: %d", code)
	}
	code, body := get("/api/messages?status=aborted", "sesame")
	var aborted []tracking.Message
	if err := json.Unmarshal(body, &aborted); code != 200 || err != nil || len(aborted) != 3 {
		t.Errorf("GET /api/messages?status=aborted: %d %v %s", code, err, body)
	}
	code, body = get(fmt.Sprintf("/api/messages/mx.test/%d", lost.MID), "sesame")
	if code != 200 || !bytes.Contains(body, []byte("SMTP-inspecting device")) || !bytes.Contains(body, []byte(`"abort":"peer_reset"`)) {
		t.Errorf("GET one message: %d %s", code, body)
	}
	if code, _ := get("/", ""); code != 200 {
		t.Errorf("the page: %d", code)
	}
}

func allSettled(ms []tracking.Message) bool {
	for _, m := range ms {
		if !tracking.Status(m.Status).Final() {
			return false
		}
	}
	return true
}

func trackJSON(t *testing.T, g *gw, args ...string) []tracking.Message {
	t.Helper()
	out := mg(t, append([]string{"track", "--config", g.config, "--json"}, args...)...)
	var ms []tracking.Message
	for l := range strings.Lines(out) {
		var m tracking.Message
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("track --json: %v: %q", err, l)
		}
		ms = append(ms, m)
	}
	return ms
}

func mg(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && !strings.Contains(stderr.String(), "no matching") {
		t.Fatalf("mailgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// The mail log is the source of truth: a gateway killed before its feed
// wrote, or whose store was lost, catches up from the log at its next
// start.
func TestTrackingCatchesUpFromTheLog(t *testing.T) {
	hop := startNextHop(t, 0)
	g, _ := trackGW(t, hop.addr)
	g.start()
	for i := range 5 {
		if _, err := sendToken(g.addr, "alice@example.org", "bob@example.net", fmt.Sprintf("before-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	g.waitLog(`(?s)(Message finished MID \d+ done.*){5}`)
	g.signal(syscall.SIGKILL)
	g.wait()
	// Lose the store altogether.
	for _, f := range []string{"tracking.db", "tracking.db-wal", "tracking.db-shm"} {
		os.Remove(filepath.Join(g.dir, f))
	}
	g.start()
	if _, err := sendToken(g.addr, "alice@example.org", "bob@example.net", "after"); err != nil {
		t.Fatal(err)
	}
	var ms []tracking.Message
	wait.Until(t, "after restart, 6 messages settled in the store", func() bool {
		ms = trackJSON(t, g)
		return len(ms) == 6 && allSettled(ms)
	})
	for _, m := range ms {
		if m.Status != tracking.Delivered || m.Subject == "" {
			t.Errorf("MID %d: %s %q", m.MID, m.Status, m.Subject)
		}
	}
}

// A Cisco ESA pushing its mail log by syslog is tracked under its own host
// name, next to the gateway's own messages.
func TestTrackingSyslog(t *testing.T) {
	g := newGW(t, "5s")
	sl := freePort(t)
	cfg := fmt.Sprintf(`hostname: mx.test
data_dir: %s
listeners:
  - {name: InboundMail, interface: Management, address: %s}
tracking: {syslog: "%s"}
http: {address: ""}
`, g.dir, g.addr, sl)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	c, err := net.Dial("tcp", sl)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lines := []string{
		"New SMTP ICID 7 interface Data 1 (10.0.0.1) address 198.51.100.20 reverse dns host mta.example.org verified yes",
		"Start MID 8 ICID 7",
		"MID 8 ICID 7 From: <news@example.org>",
		"MID 8 ICID 7 RID 0 To: <user@example.com>",
		"MID 8 Subject 'pushed by syslog'",
		"MID 8 queued for delivery",
		"New SMTP DCID 9 interface 10.0.0.1 address 10.0.0.25 port 25",
		"Delivery start DCID 9 MID 8 to RID [0]",
		"Message done DCID 9 MID 8 to RID [0]",
		"Message finished MID 8 done",
	}
	stamp := time.Now().Format("Jan _2 15:04:05")
	for _, l := range lines {
		msg := fmt.Sprintf("<166>%s esa1.example.org mail_logs: Info: %s", stamp, l)
		fmt.Fprintf(c, "%d %s", len(msg), msg) // RFC 6587 octet counting
	}
	var ms []tracking.Message
	wait.Until(t, "the syslog lines tracked", func() bool {
		ms = trackJSON(t, g, "--host", "esa1.example.org")
		return len(ms) == 1 && ms[0].Status == tracking.Delivered
	})
	if ms[0].MID != 8 || ms[0].Subject != "pushed by syslog" || ms[0].RemoteIP != "198.51.100.20" {
		t.Errorf("tracked %+v", ms[0])
	}
}

// mailgate import reads a real ESA log (gzipped, and again from standard
// input): the second time changes nothing, and track finds what the log
// says.
func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(cfg, []byte("hostname: mx.test\ndata_dir: "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../maillog/testdata/cribl-cisco-esa-mailtext.log")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	gzPath := filepath.Join(dir, "mail.@20141119T091600.s.gz")
	if err := os.WriteFile(gzPath, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mg(t, "import", "--config", cfg, "--host", "esa1.example.com", gzPath)
	if !strings.Contains(out, "imported 1000 lines") || strings.Contains(out, " 0 new") {
		t.Errorf("first import: %s", out)
	}
	cmd := exec.Command(binary, "import", "--config", cfg, "--host", "esa1.example.com", "-")
	cmd.Stdin = bytes.NewReader(raw)
	again, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(again), " 0 new, ") {
		t.Errorf("second import (stdin): %v: %s", err, again)
	}
	// A message CASE dropped, as the sample's lines say.
	ms := trackJSON(t, &gw{config: cfg}, "--host", "esa1.example.com", "--mid", "24611530")
	if len(ms) != 1 || ms[0].Status != tracking.Dropped || ms[0].AbortReason != "Dropped by CASE" || ms[0].Recipients[0].Address != "zuser27@mycompany.com" {
		t.Errorf("MID 24611530: %+v", ms)
	}
	if ms := trackJSON(t, &gw{config: cfg}, "--host", "esa1.example.com", "--status", "delivered", "--limit", "1000"); len(ms) < 20 {
		t.Errorf("%d delivered messages tracked from the sample", len(ms))
	}
}

// mailgate import of a syslog server's file (no <PRI>, no year) files each
// line under its own host; findevent prints the lines as they were logged,
// whatever the viewer's time zone; RFC 2047 subjects are found by their
// words and by their raw text; a pipe without --year is dated from the
// clock with a warning.
func TestImportSyslogFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(cfg, []byte("hostname: mx.test\ndata_dir: "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := "../../tracking/testdata/import/syslog-hosts.log"
	mg(t, "import", "--config", cfg, "--host", "gw1", "--year", "2026", file, "../../tracking/testdata/import/subject-2047.log")
	for host, sender := range map[string]string{"esa1.example.edu": "alice@example.net", "esa2.example.edu": "bob@example.org"} {
		if ms := trackJSON(t, &gw{config: cfg}, "--host", host, "--mid", "100"); len(ms) != 1 || ms[0].Sender != sender {
			t.Errorf("%s MID 100: %+v, want one message from %s", host, ms, sender)
		}
	}

	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "findevent", "--config", cfg, "--host", "esa2.example.edu", "-m", "100")
	cmd.Env = append(os.Environ(), "TZ=Asia/Tokyo")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("findevent: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "The following lines are of MID 100 on esa2.example.edu") {
		t.Fatalf("findevent printed:\n%s", out)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(string(raw), l+"\n") || !strings.Contains(l, " esa2.example.edu mail_logs: Info: ") {
			t.Errorf("findevent printed %q, which is not a line esa2 logged", l)
		}
	}

	if ms := trackJSON(t, &gw{config: cfg}, "--subject", "Été à Paris"); len(ms) != 1 || ms[0].MID != 300 {
		t.Errorf("track --subject 'Été à Paris': %+v", ms)
	}
	if out := mg(t, "findevent", "--config", cfg, "-s", "=?UTF-8?B?w4l0w6kgw6AgUGFyaXM=?="); !strings.Contains(out, "MID 300 Subject '=?UTF-8?B?w4l0w6kgw6AgUGFyaXM=?='") {
		t.Errorf("findevent -s with the raw subject printed:\n%s", out)
	}

	cmd = exec.Command(binary, "import", "--config", cfg, "--host", "gw2", "-")
	cmd.Stdin = strings.NewReader("Jun 26 10:42:21 Start MID 500 ICID 50\nJun 26 10:42:21 mail_logs: Info: Start MID 500 ICID 50\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "dated from the clock (give --year)") {
		t.Errorf("import from a pipe without --year: %v, stderr %q", err, stderr.String())
	}
}
