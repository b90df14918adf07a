package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/internal/wait"
)

// quarantinePolicies: every outgoing message goes through tag1, the two
// quarantining test stages, dropfile and tag2. The quarantines: Policy and
// Virus (defaults, Policy's retention shortened), Short (released after
// 2s), Gone (deleted after 2s), Small (2 KB, releases its oldest).
const quarantinePolicies = `quarantines:
  - {name: Policy, retention: 1h}
  - {name: Short, retention: 2s, on_expiry: release}
  - {name: Gone, retention: 2s, on_expiry: delete}
  - {name: Small, retention: 1h, on_expiry: delete, max_size: 2KB}
mail_policies:
  outgoing:
    - name: DEFAULT
      content_filters: [tag1, qhold, qhold2, dropfile, tag2]
`

const quarantineToken = "s3cret-token"

// quarantineGW is a relaying gateway with the test stages, the
// quarantines above and its page on web with a token.
func quarantineGW(t *testing.T, hop string) (*gw, string) {
	t.Helper()
	g := stagesGW(t, hop, quarantinePolicies)
	web := freePort(t)
	cfg, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	with := strings.Replace(string(cfg), `http: {address: ""}`, fmt.Sprintf(`http: {address: "%s", token: %s}`, web, quarantineToken), 1)
	if err := os.WriteFile(g.config, []byte(with), 0o644); err != nil {
		t.Fatal(err)
	}
	return g, "http://" + web
}

// sendHeld sends a message with a token and extra header fields (the
// quarantines the test stages read) and returns its MID.
func sendHeld(t *testing.T, g *gw, token, fields string, pad int) uint64 {
	t.Helper()
	msg := fmt.Sprintf("From: a@example.org\r\nSubject: %s\r\nX-Token: %s\r\n%s\r\nbody of %s\r\n%s", token, token, fields, token, strings.Repeat(strings.Repeat("x", 98)+"\r\n", pad/100))
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, msg); err != nil {
		t.Fatalf("send %s: %v", token, err)
	}
	m := regexp.MustCompile(`MID (\d+) Subject '` + token + `'`).FindStringSubmatch(g.waitLog(`Subject '` + token + `'`))
	mid, _ := strconv.ParseUint(m[1], 10, 64)
	return mid
}

// deliveredTimes counts the deliveries of token at the next hop.
func deliveredTimes(h *nextHop, token string) int {
	tokens, _ := h.delivered()
	return tokens[token]
}

// deliveredHeaders returns the X-Test-Stage fields of token's delivery.
func deliveredStages(h *nextHop, token string) []string {
	_, msgs := h.delivered()
	for _, m := range msgs {
		if tok := tokenRe.FindSubmatch(m.data); tok != nil && string(tok[1]) == token {
			var out []string
			for _, line := range strings.Split(string(m.data), "\r\n") {
				if s, ok := strings.CutPrefix(line, "X-Test-Stage: "); ok {
					out = append(out, s)
				}
			}
			return out
		}
	}
	return nil
}

// execBinary runs a mailgate command and returns its output, stdout and
// stderr together.
func execBinary(args ...string) (string, error) {
	out, err := exec.Command(binary, args...).CombinedOutput()
	return string(out), err
}

// mgFails runs a mailgate command expected to fail, and returns its output
// and exit status.
func mgFails(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := execBinary(args...)
	code := 0
	if err != nil {
		code = 1
		if e, ok := err.(interface{ ExitCode() int }); ok {
			code = e.ExitCode()
		}
	}
	return out, code
}

// Quarantines end to end over SMTP, through the binary: a message held in
// two quarantines and released from both (rescanned by the stages after
// the quarantine, delivered once), deleted, released into a rescan that
// drops it, expired (both actions), pushed out by the size limit; the
// mail-log lines, the commands, the tracking record; then SIGKILL with
// messages in quarantine, and each released once after the restart.
func TestQuarantine(t *testing.T) {
	hop := startNextHop(t, 0)
	g, _ := quarantineGW(t, hop.addr)
	g.start()
	cfg := []string{"--config", g.config}

	// Held in Policy and Virus: every stage ran, nothing delivered.
	two := sendHeld(t, g, "qtwo", "X-Quarantine: Policy\r\nX-Quarantine2: Virus\r\n", 0)
	g.waitLog(fmt.Sprintf(`MID %d quarantined to "Virus" \(content filter:qhold2\)`, two))
	lines := logLines(g.mailLog(), two)
	want := []string{
		fmt.Sprintf(`MID %d quarantined to "Policy" (content filter:qhold)`, two),
		fmt.Sprintf(`MID %d quarantined to "Virus" (content filter:qhold2)`, two),
	}
	if got := lines[len(lines)-2:]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines end with\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	out := mg(t, append([]string{"quarantine", "list"}, cfg...)...)
	if !regexp.MustCompile(`(?m)^Policy\s+1\s`).MatchString(out) || !regexp.MustCompile(`(?m)^Virus\s+1\s`).MatchString(out) ||
		!regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+Policy\s.*qtwo\s+content filter:qhold$`, two)).MatchString(out) {
		t.Errorf("quarantine list:\n%s", out)
	}
	var l control.QuarantineList
	if err := json.Unmarshal([]byte(mg(t, append([]string{"quarantine", "list", "Virus", "--json"}, cfg...)...)), &l); err != nil ||
		len(l.Messages) != 1 || l.Messages[0].MID != two || l.Messages[0].Subject != "qtwo" || len(l.Messages[0].In) != 2 {
		t.Errorf("quarantine list Virus --json: %v %+v", err, l)
	}
	out = mg(t, append([]string{"quarantine", "show", fmt.Sprint(two)}, cfg...)...)
	for _, w := range []string{`In quarantine:  "Policy" since`, `expires in 1h (delete): content filter:qhold`, "Subject: qtwo", "--- text/plain ---\nbody of qtwo"} {
		if !strings.Contains(out, w) {
			t.Errorf("quarantine show lacks %q:\n%s", w, out)
		}
	}
	// The queue commands leave a quarantined message to the quarantines.
	if out, code := mgFails(t, append([]string{"queue", "delete", fmt.Sprint(two)}, cfg...)...); code != 1 || !strings.Contains(out, "in quarantine") {
		t.Errorf("queue delete of a quarantined message: exit %d\n%s", code, out)
	}
	// Tracking: quarantined, with the quarantine's name.
	wait.Until(t, "tracked as quarantined", func() bool {
		b, _ := execBinary("track", "--config", g.config, "--json", "--mid", fmt.Sprint(two))
		return strings.Contains(b, `"status":"quarantined"`) && strings.Contains(b, `held in the \"Policy\", \"Virus\" quarantines`)
	})

	// Released from one: still held in the other.
	mg(t, append([]string{"quarantine", "release", fmt.Sprint(two), "Policy"}, cfg...)...)
	g.waitLog(fmt.Sprintf(`MID %d released from quarantine "Policy" \(manual\)`, two))
	if deliveredTimes(hop, "qtwo") != 0 {
		t.Fatal("released from one of its two quarantines, the message was delivered")
	}
	wait.Until(t, "tracked as quarantined in Virus only", func() bool {
		b, _ := execBinary("track", "--config", g.config, "--json", "--mid", fmt.Sprint(two))
		return strings.Contains(b, `"status":"quarantined"`) && strings.Contains(b, `held in the \"Virus\" quarantine"`)
	})
	ranRe := regexp.MustCompile(fmt.Sprintf(`teststage: dropfile ran"? mid=%d\b`, two))
	rescans := len(ranRe.FindAllString(g.stderr.String(), -1))
	mg(t, append([]string{"quarantine", "release", fmt.Sprint(two)}, cfg...)...)
	g.waitLog(fmt.Sprintf(`Message finished MID %d done`, two))
	lines = logLines(g.mailLog(), two)
	want = []string{
		fmt.Sprintf(`MID %d released from quarantine "Policy" (manual)`, two),
		fmt.Sprintf(`MID %d released from quarantine "Virus" (manual)`, two),
		fmt.Sprintf(`MID %d released from all quarantines`, two),
		fmt.Sprintf(`MID %d queued for delivery`, two),
	}
	if !inOrder(lines, want) {
		t.Errorf("lines\n%s\nlack in order\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got := len(ranRe.FindAllString(g.stderr.String(), -1)); got != rescans+1 || rescans != 1 {
		t.Errorf("dropfile ran %d times before the release and %d after, want once each (the rescan)", rescans, got-rescans)
	}
	wait.Until(t, "qtwo delivered", func() bool { return deliveredTimes(hop, "qtwo") == 1 })
	// tag1's field from the first pass, tag2's once, from the rescan.
	if got := deliveredStages(hop, "qtwo"); strings.Join(got, "; ") != "tag1 DEFAULT after 0; tag2 DEFAULT after 1" {
		t.Errorf("delivered with stage fields %q", got)
	}
	wait.Until(t, "tracked as delivered", func() bool {
		b, _ := execBinary("track", "--config", g.config, "--json", "--mid", fmt.Sprint(two))
		return strings.Contains(b, `"status":"delivered"`)
	})

	// Deleted: the ESA's lines, nothing delivered, gone from the spool.
	del := sendHeld(t, g, "qdel", "X-Quarantine: Policy\r\n", 0)
	g.waitLog(fmt.Sprintf(`MID %d quarantined to "Policy"`, del))
	mg(t, append([]string{"quarantine", "delete", fmt.Sprint(del)}, cfg...)...)
	g.waitLog(fmt.Sprintf(`MID %d deleted from quarantine "Policy" \(manual\)\n.*Message finished MID %d done`, del, del))
	wait.Until(t, "tracked as dropped", func() bool {
		b, _ := execBinary("track", "--config", g.config, "--json", "--mid", fmt.Sprint(del))
		return strings.Contains(b, `"status":"dropped"`)
	})
	if out, code := mgFails(t, append([]string{"quarantine", "release", fmt.Sprint(del)}, cfg...)...); code != 1 {
		t.Errorf("release of a deleted message: exit %d\n%s", code, out)
	}
	if out, code := mgFails(t, append([]string{"quarantine", "list", "Nope"}, cfg...)...); code != 1 {
		t.Errorf("list of an unknown quarantine: exit %d\n%s", code, out)
	}

	// Released into a rescan that drops it: the stages after the
	// quarantine decide again.
	drop := sendHeld(t, g, "qdrop", "X-Quarantine: Policy\r\n", 0)
	g.waitLog(fmt.Sprintf(`MID %d quarantined to "Policy"`, drop))
	if err := os.WriteFile(filepath.Join(g.dir, "drop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mg(t, append([]string{"quarantine", "release", fmt.Sprint(drop), "Policy"}, cfg...)...)
	g.waitLog(fmt.Sprintf(`Message aborted MID %d Dropped by content filter 'dropfile' in the outbound table\n.*Message finished MID %d done`, drop, drop))
	if err := os.Remove(filepath.Join(g.dir, "drop")); err != nil {
		t.Fatal(err)
	}

	// Expiry: Short releases, Gone deletes.
	short := sendHeld(t, g, "qshort", "X-Quarantine: Short\r\n", 0)
	gone := sendHeld(t, g, "qgone", "X-Quarantine: Gone\r\n", 0)
	g.waitLog(fmt.Sprintf(`MID %d released from quarantine "Short" \(expired\)`, short))
	g.waitLog(fmt.Sprintf(`MID %d deleted from quarantine "Gone" \(expired\)\n.*Message finished MID %d done`, gone, gone))
	wait.Until(t, "qshort delivered", func() bool { return deliveredTimes(hop, "qshort") == 1 })

	// Size limit: two messages of 1.2 KB in 2 KB: the first goes on.
	first := sendHeld(t, g, "qsmall1", "X-Quarantine: Small\r\n", 1100)
	second := sendHeld(t, g, "qsmall2", "X-Quarantine: Small\r\n", 1100)
	g.waitLog(fmt.Sprintf(`MID %d released from quarantine "Small" \(queue full\)`, first))
	wait.Until(t, "qsmall1 delivered", func() bool { return deliveredTimes(hop, "qsmall1") == 1 })
	if l := g.mailLog(); strings.Contains(l, fmt.Sprintf(`MID %d released`, second)) {
		t.Error("the message coming in was released, not the oldest")
	}

	// SIGKILL with messages in quarantine: still there after the
	// restart, each released once.
	k1 := sendHeld(t, g, "qkill1", "X-Quarantine: Policy\r\n", 0)
	k2 := sendHeld(t, g, "qkill2", "X-Quarantine: Policy\r\nX-Quarantine2: Virus\r\n", 0)
	g.waitLog(fmt.Sprintf(`MID %d quarantined to "Virus"`, k2))
	mg(t, append([]string{"quarantine", "release", fmt.Sprint(k2), "Virus"}, cfg...)...)
	g.waitLog(fmt.Sprintf(`MID %d released from quarantine "Virus"`, k2))
	// explain names the quarantine still holding it, not the last line's.
	wait.Until(t, "explained as held in Policy", func() bool {
		b, _ := execBinary("explain", "--config", g.config, fmt.Sprint(k2))
		return strings.Contains(b, `holds it in the "Policy" quarantine; it was not delivered`)
	})
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait()
	g.start()
	if err := json.Unmarshal([]byte(mg(t, append([]string{"quarantine", "list", "Policy", "--json"}, cfg...)...)), &l); err != nil {
		t.Fatal(err)
	}
	var held []uint64
	for _, m := range l.Messages {
		held = append(held, m.MID)
	}
	if fmt.Sprint(held) != fmt.Sprint([]uint64{k1, k2}) {
		t.Errorf("after SIGKILL, Policy holds %v, want [%d %d]", held, k1, k2)
	}
	for _, tok := range []string{"qkill1", "qkill2"} {
		if deliveredTimes(hop, tok) != 0 {
			t.Errorf("%s delivered at the restart", tok)
		}
	}
	mg(t, append([]string{"quarantine", "release", fmt.Sprint(k1)}, cfg...)...)
	mg(t, append([]string{"quarantine", "release", fmt.Sprint(k2), "Policy"}, cfg...)...)
	g.waitLog(fmt.Sprintf(`MID %d released from all quarantines`, k2))
	wait.Until(t, "both delivered", func() bool { return deliveredTimes(hop, "qkill1") == 1 && deliveredTimes(hop, "qkill2") == 1 })
	g.signal(syscall.SIGTERM)
	g.wait()
	for _, tok := range []string{"qtwo", "qshort", "qsmall1", "qkill1", "qkill2"} {
		if n := deliveredTimes(hop, tok); n != 1 {
			t.Errorf("%s delivered %d times, want once", tok, n)
		}
	}
	for _, tok := range []string{"qdel", "qdrop", "qgone"} {
		if n := deliveredTimes(hop, tok); n != 0 {
			t.Errorf("%s delivered %d times, want never", tok, n)
		}
	}
}

// inOrder reports whether want's lines appear in lines in that order.
func inOrder(lines, want []string) bool {
	i := 0
	for _, l := range lines {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	return i == len(want)
}

// The quarantine API of the page: the token as for the rest of /api, and
// a release only from the page's own origin.
func TestQuarantineAPI(t *testing.T) {
	hop := startNextHop(t, 0)
	g, base := quarantineGW(t, hop.addr)
	g.start()
	mid := sendHeld(t, g, "qapi", "X-Quarantine: Policy\r\n", 0)
	g.waitLog(fmt.Sprintf(`MID %d quarantined to "Policy"`, mid))
	do := func(method, path, token string, hdr map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	msgs := "/api/quarantines/Policy/messages"
	one := fmt.Sprintf("%s/%d", msgs, mid)
	for _, c := range []struct {
		method, path, token string
		hdr                 map[string]string
		code                int
		body                string
	}{
		{"GET", "/api/quarantines", "", nil, 401, "needs the access token"},
		{"GET", "/api/quarantines", "wrong", nil, 401, "not the right one"},
		{"GET", "/api/quarantines", quarantineToken, nil, 200, `{"name":"Policy","retention":3600000000000,"on_expiry":"delete","max_size":1073741824,"messages":1,`},
		{"GET", msgs, "", nil, 401, ""},
		{"GET", msgs, quarantineToken, nil, 200, fmt.Sprintf(`"mid":%d,`, mid)},
		{"GET", "/api/quarantines/Nope/messages", quarantineToken, nil, 404, "no such quarantine"},
		{"GET", one, quarantineToken, nil, 200, `"text":"body of qapi\n"`},
		{"POST", one + "/release", "", nil, 401, ""},
		// The token, but from another site's page: refused.
		{"POST", one + "/release", quarantineToken, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403, "only this page"},
		{"POST", one + "/release", quarantineToken, map[string]string{"Origin": "http://evil.example"}, 403, "only this page"},
		{"GET", one + "/release", quarantineToken, nil, 404, "no such API endpoint"},
		{"POST", one + "/release", quarantineToken, map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}, 200, `"done":"release"`},
		{"POST", one + "/delete", quarantineToken, nil, 404, "not in quarantine"},
	} {
		code, body := do(c.method, c.path, c.token, c.hdr)
		if code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("%s %s (token %q, %v): %d %s\nwant %d with %q", c.method, c.path, c.token, c.hdr, code, body, c.code, c.body)
		}
	}
	wait.Until(t, "qapi delivered", func() bool { return deliveredTimes(hop, "qapi") == 1 })
	g.signal(syscall.SIGTERM)
	g.wait()
}

// Without mail policies there are no quarantines: the commands say so.
func TestQuarantineNone(t *testing.T) {
	g := newGW(t, "5s")
	g.start()
	out, code := mgFails(t, "quarantine", "list", "--config", g.config)
	if code != 1 {
		t.Errorf("exit %d, want 1: %s", code, out)
	}
	if !strings.Contains(out, "the gateway has no quarantines (no mail_policies in its configuration)") {
		t.Errorf("output: %s", out)
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

// needChromium returns node's path, or skips the test when the browser
// cannot run here (fails with CI=1), as web's page test does.
func needChromium(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") == "1" {
			t.Fatalf("CI=1 and %s: the browser test must run in CI", what)
		}
		t.Skipf("%s: skipping the browser test (apt-get install chromium; cd web/e2e && npm ci)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("no node")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing("no /usr/bin/chromium")
	}
	if _, err := os.Stat("../../web/e2e/node_modules/playwright-core/package.json"); err != nil {
		missing("no web/e2e/node_modules")
	}
	return node
}

// The quarantine view in Chromium, against the binary: the token prompt,
// the list, a hostile message read as text, a release (delivered) and a
// delete (logged, never delivered).
func TestQuarantinePage(t *testing.T) {
	node := needChromium(t)
	hop := startNextHop(t, 0)
	g, base := quarantineGW(t, hop.addr)
	g.start()
	rel := sendHeld(t, g, "qpagerel", "X-Quarantine: Policy\r\n", 0)
	del := sendHeld(t, g, "qpagedel", "X-Quarantine: Policy\r\n", 0)
	msg := "From: a@example.org\r\nSubject: qhostile <img src=x onerror=alert(1)> \x1b[31mnow\r\nX-Token: qhostile\r\n" +
		"X-Quarantine: Policy\r\nContent-Type: text/plain\r\n\r\n<script>alert(\"body\")</script>\r\n<b>bold</b>\r\n"
	if err := sendMail(g.addr, "a@example.org", []string{"b@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`MID (\d+) Subject 'qhostile `).FindStringSubmatch(g.waitLog(`Subject 'qhostile `))
	hostile, _ := strconv.ParseUint(m[1], 10, 64)
	g.waitLog(fmt.Sprintf(`MID %d quarantined to "Policy"`, hostile))

	cmd := exec.Command(node, "../../web/e2e/quarantine.mjs", base, quarantineToken, fmt.Sprint(rel), fmt.Sprint(del), fmt.Sprint(hostile))
	out, err := cmd.CombinedOutput()
	t.Logf("node web/e2e/quarantine.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the browser checks failed (screenshots in web/e2e/out/): %v", err)
	}
	g.waitLog(fmt.Sprintf(`MID %d deleted from quarantine "Policy" \(manual\)`, del))
	wait.Until(t, "the released message delivered", func() bool { return deliveredTimes(hop, "qpagerel") == 1 })
	g.signal(syscall.SIGTERM)
	g.wait()
	if deliveredTimes(hop, "qpagedel") != 0 || deliveredTimes(hop, "qhostile") != 0 {
		t.Error("a deleted or still quarantined message was delivered")
	}
}
