package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/outbound"
)

// mailgate runs a CLI command of the binary and returns its output and
// exit code.
func mailgate(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// TestQueueCommands drives the queue CLI against a running gateway whose
// next hop is down: the messages wait for their retry in an hour, the
// administrator looks at them, deletes one, bounces another, and once the
// next hop is up, delivers the bounce at once.
func TestQueueCommands(t *testing.T) {
	hopAddr := freePort(t) // nothing listens there yet
	g := relayGW(t, hopAddr, "")
	cfg, _ := os.ReadFile(g.config)
	cfg = []byte(strings.Replace(string(cfg), "bounce: {initial_retry: 200ms, max_retry: 1s}", "bounce: {initial_retry: 1h}", 1))
	if err := os.WriteFile(g.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()

	a, err := sendToken(g.addr, "alice@example.org", "bob@example.net", "kept")
	if err != nil {
		t.Fatal(err)
	}
	b, err := sendToken(g.addr, "alice@example.org", "carol@example.net", "deleted")
	if err != nil {
		t.Fatal(err)
	}
	if a != 1 || b != 2 {
		t.Fatalf("MIDs %d and %d in a new data directory, want 1 and 2", a, b)
	}
	// Two deliveries run at once: either may be deferred first.
	g.waitLog(`MID 1 to RID \[0\] pending till`)
	g.waitLog(`MID 2 to RID \[0\] pending till`)

	sock := filepath.Join(g.dir, "control.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket %s: %v, %v; want mode 0600", sock, fi.Mode(), err)
	}

	out, errs, code := mailgate(t, "workqueue", "--config", g.config)
	if code != 0 {
		t.Fatalf("workqueue: exit %d: %s", code, errs)
	}
	for _, re := range []string{`Deliveries:\s+running`, `Messages in queue:\s+2\n`, `Recipients not final:\s+2\n`, `Oldest message:\s+MID 1, received`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("workqueue output lacks %s:\n%s", re, out)
		}
	}

	out, errs, code = mailgate(t, "queue", "list", "-c", g.config)
	if code != 0 {
		t.Fatalf("queue list: exit %d: %s", code, errs)
	}
	for _, re := range []string{`(?m)^1\s+\[0\]\s.*<alice@example\.org>\s+<bob@example\.net>\s+pending\s+1\s+in (59m|1h)\s+.*Connection refused`, `(?m)^2\s+\[0\]\s.*<carol@example\.net>`, `\(2 messages\)\n$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("queue list output lacks %s:\n%s", re, out)
		}
	}

	out, errs, code = mailgate(t, "queue", "show", "1", "--json", "--config", g.config)
	if code != 0 {
		t.Fatalf("queue show: exit %d: %s", code, errs)
	}
	var m outbound.QueuedMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("queue show --json: %v\n%s", err, out)
	}
	if m.MID != a || m.Subject != "kept" || len(m.Recipients) != 1 || m.Recipients[0].Attempts != 1 || m.Recipients[0].Status != "pending" || m.Recipients[0].Destination != "ALL" {
		t.Errorf("queue show: %+v", m)
	}

	if out, errs, code = mailgate(t, "queue", "delete", "-c", g.config, "2"); code != 0 || !strings.Contains(out, "MID 2: 1 recipient(s) deleted.") {
		t.Errorf("queue delete: exit %d: %s%s", code, out, errs)
	}
	g.waitLog(`Deleted: MID 2 to \[0\]\n.*Message finished MID 2 done`)
	if _, errs, code = mailgate(t, "queue", "show", "-c", g.config, "2"); code != 1 || !strings.Contains(errs, "no such message in the queue") {
		t.Errorf("queue show of a deleted message: exit %d: %s", code, errs)
	}

	if out, errs, code = mailgate(t, "queue", "bounce", "-c", g.config, "1"); code != 0 || !strings.Contains(out, "MID 1: 1 recipient(s) bounced.") {
		t.Errorf("queue bounce: exit %d: %s%s", code, out, errs)
	}
	g.waitLog(`(?s)Bounced: DCID 0 MID 1 From: <alice@example\.org> To: <bob@example\.net> RID 0 - 5\.0\.0 .*'Bounced by the administrator'.*MID 3 generated for bounce of MID 1.*Message finished MID 1 done`)
	// The DSN's first attempt meets the dead next hop too.
	g.waitLog(`MID 3 to RID \[0\] pending till`)

	hop := startNextHopAt(t, hopAddr, 0)
	if out, errs, code = mailgate(t, "queue", "deliver-now", "-c", g.config); code != 0 || !strings.Contains(out, "Delivering now (all destinations)") {
		t.Errorf("queue deliver-now: exit %d: %s%s", code, out, errs)
	}
	g.waitLog(`Message finished MID 3 done`)
	// Only the DSN, which carries the bounced message's header: neither the
	// deleted message nor the bounced one went anywhere.
	if _, msgs := hop.delivered(); len(msgs) != 1 || msgs[0].from != "" || msgs[0].to[0] != "alice@example.org" ||
		!strings.Contains(string(msgs[0].data), "X-Token: kept") {
		t.Errorf("the next hop got %d messages, want only the DSN to alice@example.org: %+v", len(msgs), msgs)
	}

	out, _, _ = mailgate(t, "workqueue", "--config", g.config, "--json")
	var w outbound.WorkQueue
	if err := json.Unmarshal([]byte(out), &w); err != nil || w.Messages != 0 || w.Delivered != 1 || w.Bounced != 1 {
		t.Errorf("workqueue --json after all: %+v, %v\n%s", w, err, out)
	}

	g.signal(15)
	g.wait()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the control socket outlives the gateway: %v", err)
	}
	_, errs, code = mailgate(t, "workqueue", "--config", g.config)
	if code != 1 || !strings.Contains(errs, "no gateway is running") {
		t.Errorf("workqueue without a gateway: exit %d: %s", code, errs)
	}
}
