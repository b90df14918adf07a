package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/tmpfs"
)

// diskConfig is the gateway of TestDiskFull: its data_dir on a small file
// system, relaying everything to a next hop that counts what it gets.
const diskConfig = `hostname: mx.test
data_dir: %s
shutdown_timeout: 5s
min_free_space: %s
listeners:
  - name: InboundMail
    interface: Management
    address: %s
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
routes:
  - {domain: ALL, hosts: ["%s"]}
delivery:
  suspended: %t
  destinations:
    - {domain: default, tls: off}
  bounce: {initial_retry: 200ms, max_retry: 1s}
tracking: {enabled: false}
http: {address: ""}
`

// TestDiskFull runs the gateway with its data_dir on a 24 MiB tmpfs and
// fills it: below the free-space floor MAIL gets 452 4.3.1 (above it too,
// when its SIZE= would not fit), and the
// gateway takes mail again by itself when space returns; with no floor,
// a message that does not fit gets 452 4.3.1 at the end of DATA. After a
// SIGKILL in the full phase, every acknowledged message is delivered
// exactly once and no refused one ever.
func TestDiskFull(t *testing.T) {
	mnt := tmpfs.Mount(t, 24<<20)
	hop := startNextHop(t, 0)
	g := newGW(t, "5s")
	g.dir = filepath.Join(mnt, "data")
	configure := func(minFree string, suspended bool) {
		cfg := fmt.Sprintf(diskConfig, g.dir, minFree, g.addr, hop.addr, suspended)
		if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var acked, refused []string
	send := func(token string, size int) (reply string) {
		body := fmt.Sprintf("Subject: %s\r\nX-Token: %s\r\n\r\n%s\r\n", token, token, strings.Repeat(strings.Repeat("x", 76)+"\r\n", size/78))
		_, err := sendRawEnvelope(g.addr, "a@example.org", "b@example.net", body)
		if err == nil {
			acked = append(acked, token)
			return "250"
		}
		return err.Error()
	}
	kill := func() {
		g.signal(syscall.SIGKILL)
		g.wait()
	}

	// Below the floor: 452 at MAIL, a log line, and back by itself.
	configure("4M", true)
	g.start()
	for i := range 3 {
		if r := send(fmt.Sprintf("before-%d", i), 1000); r != "250" {
			t.Fatalf("with space: %s", r)
		}
	}
	mailReply := func(params string) string {
		c := dialSMTP(t, g.addr)
		defer c.C.Close()
		c.Cmd("EHLO client.test", "250")
		c.Send("MAIL FROM:<a@example.org>" + params + "\r\n")
		return c.Reply()
	}
	// Above the floor, but not by the SIZE= declared: refused at MAIL.
	filler := tmpfs.Fill(t, mnt, "filler", 9<<20)
	waitFor(t, "MAIL SIZE=8000000 refused", func() bool {
		return mailReply(" SIZE=8000000") == "452 4.3.1 Insufficient system storage"
	})
	if r := mailReply(" SIZE=1000"); !strings.HasPrefix(r, "250") {
		t.Errorf("MAIL SIZE=1000 above the floor: %s", r)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	filler = tmpfs.Fill(t, mnt, "filler", 3<<20)
	waitFor(t, "MAIL refused below the floor", func() bool { return mailReply("") == "452 4.3.1 Insufficient system storage" })
	g.waitLog(`ICID \d+ Receiving Failed: Queue full`)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "MAIL accepted again", func() bool { return strings.HasPrefix(mailReply(""), "250") })
	if r := send("after-floor", 1000); r != "250" {
		t.Fatalf("space back, no restart: %s", r)
	}
	for _, want := range []string{"free space below the floor", "free space above the floor again"} {
		if n := strings.Count(g.stderr.String(), want); n != 1 {
			t.Errorf("%d lines %q in the gateway's log, want 1:\n%s", n, want, g.stderr)
		}
	}
	kill()

	// No floor: a message that does not fit is refused at the end of DATA.
	configure("0", true)
	g.start()
	filler = tmpfs.Fill(t, mnt, "filler", 1<<20)
	for i := 0; len(refused) < 2 && i < 40; i++ {
		token := fmt.Sprintf("full-%d", i)
		switch r := send(token, 200_000); {
		case r == "250":
		case strings.Contains(r, `"452 4.3.1 Insufficient system storage"`):
			refused = append(refused, token)
		default:
			t.Fatalf("%s: %s", token, r)
		}
	}
	if len(refused) < 2 {
		t.Fatalf("the disk never filled: acked %v", acked)
	}
	kill() // in the full phase
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	// Delivery: everything acknowledged once, nothing refused.
	configure("auto", false)
	g.start()
	if want := fmt.Sprintf("messages=%d", len(acked)); !strings.Contains(g.stderr.String(), want) {
		t.Errorf("recovery: want %s (the acknowledged messages only) in:\n%s", want, g.stderr)
	}
	waitFor(t, "every acknowledged message delivered", func() bool {
		tokens, _ := hop.delivered()
		return len(tokens) >= len(acked)
	})
	g.waitLog(fmt.Sprintf(`(?s)(Message finished MID \d+ done.*){%d}`, len(acked)))
	tokens, _ := hop.delivered()
	for _, tok := range acked {
		if tokens[tok] != 1 {
			t.Errorf("acknowledged %s delivered %d times, want 1", tok, tokens[tok])
		}
	}
	for _, tok := range refused {
		if tokens[tok] != 0 {
			t.Errorf("refused %s delivered %d times, want never", tok, tokens[tok])
		}
	}
	if len(tokens) != len(acked) {
		t.Errorf("delivered %v, want only the acknowledged %v", tokens, acked)
	}
}

// waitFor polls cond, bounded; the gateway's free-space check is cached
// for 100 ms, so a change shows within a few polls.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("never happened: %s", what)
}
