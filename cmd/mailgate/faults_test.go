package main

import (
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

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
	"github.com/mailgate/mailgate/tracking/explain/explaintest"
)

// faultGW has two listeners: InboundMail (a 2s unsuccessful-connection
// timeout; 127.0.0.1 relays, other clients go through a RAT that takes
// example.net only) and SlowLane (a 2s total time limit).
func faultGW(t *testing.T) (g *gw, slow, web string) {
	t.Helper()
	g = newGW(t, "5s")
	slow, web = freePort(t), freePort(t)
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
        - {name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}
    rat:
      - {domain: example.net, action: accept}
  - name: SlowLane
    interface: Slow
    address: %s
    timeouts: {unsuccessful: 60s, total: 2s}
delivery: {suspended: true}
http: {address: "%s", token: sesame}
`, g.dir, g.addr, slow, web)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g, slow, web
}

// open is a session from 127.0.0.1 (or from) up to an accepted RCPT, with
// the sender name@client.test.
func open(t *testing.T, addr, from, name string) *smtptest.Conn {
	t.Helper()
	c := smtptest.Dial(t, addr, from)
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Cmd("MAIL FROM:<"+name+"@client.test>", "250")
	c.Cmd("RCPT TO:<bob@example.net>", "250")
	return c
}

// TestFaultMatrix drives every way a reception can end, over real TCP
// against the running binary, and checks what track --json and explain
// say of each, and that every explanation quotes only lines of its record.
func TestFaultMatrix(t *testing.T) {
	swaks := need(t, "swaks")
	g, slow, web := faultGW(t)
	g.start()
	_, port, _ := net.SplitHostPort(g.addr)
	ends := 0 // sessions ended so far, by the count of mailgate's ended lines
	waitEnds := func(n int) {
		t.Helper()
		ends += n
		g.waitLog(fmt.Sprintf(`(?s)(ended cause=.*){%d}`, ends))
	}

	c := open(t, g.addr, "", "quit")
	c.Cmd("QUIT", "221")
	c = open(t, g.addr, "", "rset")
	c.Cmd("RSET", "250")
	c.Cmd("QUIT", "221")
	c = open(t, g.addr, "", "ehlo")
	c.Cmd("EHLO again.client.test", "250")
	c.Cmd("QUIT", "221")
	c = open(t, g.addr, "", "fin")
	c.Cmd("DATA", "354")
	c.Send("Subject: half\r\n\r\nhalf a message\r\n")
	c.C.(*net.TCPConn).CloseWrite() // the bytes before it arrive first
	c = open(t, g.addr, "", "rst")
	c.Cmd("DATA", "354")
	c.Send("Subject: cut\r\n\r\ncut short\r\n")
	c.C.(*net.TCPConn).SetLinger(0) // the state is DATA whatever the reset discards
	c.C.Close()
	c = open(t, g.addr, "", "bad")
	for range 4 {
		c.Cmd("FOO", "500")
	}
	c.Cmd("FOO", "421")
	waitEnds(6)
	open(t, g.addr, "", "timeout")
	open(t, slow, "", "timelimit")
	waitEnds(2)
	// swaks --to bob: 501 5.1.3 for the only recipient.
	host, _, _ := net.SplitHostPort(g.addr)
	out, _ := exec.Command(swaks, "--to", "bob", "--from", "tobob@client.test", "--server", host, "--port", port).CombinedOutput()
	if !strings.Contains(string(out), "501 5.1.3 Bad recipient address syntax") {
		t.Errorf("swaks --to bob:\n%s", out)
	}
	// From another loopback address the RAT decides: elsewhere is refused.
	c = smtptest.Dial(t, g.addr, "127.0.0.2")
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Cmd("MAIL FROM:<rat@client.test>", "250")
	c.Cmd("RCPT TO:<x@elsewhere.example>", "550")
	c.Cmd("QUIT", "221")
	waitEnds(2)
	// Shutdown with a message open.
	c = open(t, g.addr, "", "shutdown")
	g.signal(syscall.SIGTERM)
	c.Expect("421 4.3.2")
	if err := g.wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, g.stderr)
	}
	// The store gets every line, whatever the feed wrote before the stop:
	// an import of the log adds what it lacks and changes nothing else.
	mg(t, "import", "--config", g.config, "--host", "mx.test", filepath.Join(g.dir, "logs/mail_logs/mail_logs.current"))
	g.start()

	for _, w := range []struct {
		name   string
		status tracking.Status
		abort  tracking.Abort
		state  string
		want   []string
		not    []string
	}{
		{"quit", tracking.Aborted, tracking.AbortSenderQuit, "rcpt", []string{"the client sent QUIT", "The gateway did not refuse anything."}, nil},
		{"rset", tracking.Aborted, tracking.AbortSenderReset, "rcpt", []string{"Aborted by the sender during the RCPT stage: the client threw the open message away with RSET"}, []string{"sent QUIT", "HELO stage"}},
		{"ehlo", tracking.Aborted, tracking.AbortSenderReset, "rcpt", []string{"RSET or a new HELO/EHLO"}, []string{"sent QUIT"}},
		{"fin", tracking.Aborted, tracking.AbortPeerClosed, "data", []string{"closed the connection (TCP FIN)", "and port " + port + ")", "cause=peer-closed"}, []string{"port 25)"}},
		{"rst", tracking.Aborted, tracking.AbortPeerReset, "data", []string{"reset (TCP RST)", "and port " + port + ")", "cause=peer-reset"}, []string{"port 25)"}},
		{"bad", tracking.Aborted, tracking.AbortBadCommands, "rcpt", []string{"more bad commands than the listener allows", "Unknown command: FOO"}, []string{"timeout"}},
		{"timeout", tracking.Aborted, tracking.AbortTimeout, "rcpt", []string{"unsuccessful-connection timeout", "no messages injected within timeout period"}, nil},
		{"timelimit", tracking.Aborted, tracking.AbortTimeLimit, "rcpt", []string{"total connection time limit", "exceeded allowable connection time"}, []string{"unsuccessful"}},
		{"tobob", tracking.Rejected, "", "mail", []string{"refused every recipient", "Invalid recipient address: Bad recipient address syntax: 'RCPT TO:<bob>'"}, []string{"Aborted", "did not refuse anything"}},
		{"rat", tracking.Rejected, "", "mail", []string{"refused every recipient", "To: <x@elsewhere.example> Rejected by RAT", "Recipient Access Table"}, []string{"Receiving Failed"}},
		{"shutdown", tracking.Aborted, tracking.AbortShutdown, "rcpt", []string{"the gateway was stopping"}, []string{"timeout"}},
	} {
		ms := trackJSON(t, g, "--sender", w.name+"@client.test")
		if len(ms) != 1 {
			t.Errorf("%s: %d messages", w.name, len(ms))
			continue
		}
		m := ms[0]
		if m.Status != w.status || m.Abort != w.abort || m.AbortState != w.state {
			t.Errorf("%s: MID %d is %s (%s) in %q, want %s (%s) in %q", w.name, m.MID, m.Status, m.Abort, m.AbortState, w.status, w.abort, w.state)
		}
		text := mg(t, "explain", "--config", g.config, fmt.Sprint(m.MID))
		if testing.Verbose() {
			t.Logf("%s:\n%s", w.name, text)
		}
		for _, s := range w.want {
			if !strings.Contains(text, s) {
				t.Errorf("%s: explain lacks %q:\n%s", w.name, s, text)
			}
		}
		for _, s := range w.not {
			if strings.Contains(text, s) {
				t.Errorf("%s: explain says %q:\n%s", w.name, s, text)
			}
		}
		// The API's explanation is the CLI's, and quotes only lines of the
		// timeline beside it.
		var d struct {
			Timeline    []explain.Entry
			Explanation explain.Explanation
		}
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/messages/mx.test/%d", web, m.MID), nil)
		req.Header.Set("Authorization", "Bearer sesame")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&d)
		res.Body.Close()
		if err != nil || !strings.Contains(text, d.Explanation.Summary) {
			t.Errorf("%s: API %v: summary %q not explain's", w.name, err, d.Explanation.Summary)
		}
		explaintest.Check(t, w.name, d.Explanation, d.Timeline)
	}
	// The null reverse-path is a value: nothing here was sent from <>.
	if ms := trackJSON(t, g, "--sender", "<>"); len(ms) != 0 {
		t.Errorf("track --sender '<>' found %d messages, none of them a bounce", len(ms))
	}
	if out, errOut, code := mailgate(t, "findevent", "--config", g.config, "-f", "<>"); code != 1 || !strings.Contains(out+errOut, "No matching message IDs") {
		t.Errorf("findevent -f '<>' (exit %d) found messages, none of them a bounce:\n%s%s", code, out, errOut)
	}
}
