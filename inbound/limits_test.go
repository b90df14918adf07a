package inbound_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/maillog"
)

// withKeys adds keys to the listener of baseConfig.
func withKeys(keys string) string {
	return strings.Replace(baseConfig, "    timeouts: {unsuccessful: %s, total: %s}\n",
		"    timeouts: {unsuccessful: %s, total: %s}\n"+keys, 1)
}

// One message, then silence: the idle timeout ends the connection, long
// before 80% of the total limit; an open transaction is aborted.
func TestIdleAfterMessage(t *testing.T) {
	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprintf("open=%v", open), func(t *testing.T) {
			h := start(t, opts{yaml: strings.Replace(baseConfig, "total: %s}", "total: %s, idle: 1s}", 1)})
			c := h.dial("")
			c.Expect("220")
			c.Cmd("EHLO client.example.com", "250")
			c.Cmd("MAIL FROM:<a@example.org>", "250")
			c.Cmd("RCPT TO:<b@example.com>", "250")
			c.Cmd("DATA", "354")
			c.Send("Subject: one\r\n\r\nx\r\n.\r\n")
			c.Expect("250")
			want := []string{"MID N queued for delivery", "ICID N close"}
			last := "DATA"
			if open {
				c.Cmd("MAIL FROM:<a@example.org>", "250")
				c.Cmd("RCPT TO:<b@example.com>", "250")
				want = []string{"MID N ICID N RID 0 To: <b@example.com>", "Message aborted MID N Receiving aborted", "Message finished MID N aborted", "ICID N close"}
				last = "RCPT"
			}
			c.Expect("421 4.4.2 Timed out waiting for a command, disconnecting.")
			all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
			got := esaLines(all)
			eq(t, got[len(got)-len(want):], want)
			if own := ownLine(t, all); !strings.Contains(own, "cause=timeout-idle") || !strings.Contains(own, " last="+last+" ") {
				t.Errorf("own line %q", own)
			}
		})
	}
}

// The flood of issue 13: MAIL/RSET in a loop from 2 connections. The junk
// limit (default 100: two per cycle) ends each after a bounded number of
// MIDs, and a small mail log still holds the genuine message sent before.
func TestMailRsetFlood(t *testing.T) {
	const cycles = 1000 // per connection; each costs a MID without the limit
	// The default limits (junk 100, soft and hard error 10 and 20), with a
	// shorter tarpit so that the test is quick.
	h := start(t, opts{mailLog: &maillog.Options{MaxSize: 16 << 10, MaxFiles: 2},
		yaml: strings.Replace(baseConfig, "    timeouts:", "    error_delay: 20ms\n    timeouts:", 1)})
	c := h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.com", "250")
	c.Cmd("MAIL FROM:<genuine@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send("Subject: genuine\r\n\r\nx\r\n.\r\n")
	mid := regexp.MustCompile(`Message (\d+) accepted`).FindStringSubmatch(c.Expect("250"))[1]
	c.Cmd("QUIT", "221")

	var wg sync.WaitGroup
	ended := make([]string, 2)
	for i := range ended {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ended[i] = flood(h.addr, cycles)
		}()
	}
	wg.Wait()
	for i, last := range ended {
		if !strings.HasPrefix(last, "421 4.7.0 Exceeded junk SMTP command limit") {
			t.Errorf("flood %d: last reply %q", i, last)
		}
	}
	h.lines.WaitN(t, 3, `^mailgate: ICID \d+ ended`)
	// Each connection: 51 MIDs within the junk limit, then junk counts as
	// errors (two a cycle) up to the hard limit of 20, tarpitted from the
	// 10th: 10 more.
	if n := len(h.lines.Grep(`^Start MID`)) - 1; n > 2*(100/2+1+20/2) {
		t.Errorf("the floods got %d MIDs", n)
	}
	if err := h.log.Flush(); err != nil {
		t.Fatal(err)
	}
	files, err := maillog.RolledFiles(filepath.Join(h.cfg.DataDir, "mail_logs.current"))
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, f := range append(files, filepath.Join(h.cfg.DataDir, "mail_logs.current")) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(b)
	}
	if !strings.Contains(text.String(), "MID "+mid+" queued for delivery") {
		t.Errorf("the genuine message MID %s is gone from the mail log (%d rolled files)", mid, len(files))
	}
}

// flood sends EHLO, then MAIL/RSET cycles pipelined, and reads replies
// until the connection ends; it returns the last reply line.
func flood(addr string, cycles int) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n') // the greeting
	fmt.Fprintf(c, "EHLO flood.example\r\n")
	for l, _ := r.ReadString('\n'); strings.HasPrefix(l, "250-"); l, _ = r.ReadString('\n') {
	}
	go func() {
		// Writes fail once the gateway has closed: the flood is over.
		for i := 0; i < cycles; i += 50 {
			if _, err := c.Write([]byte(strings.Repeat("MAIL FROM:<x@flood.example>\r\nRSET\r\n", 50))); err != nil {
				return
			}
		}
	}()
	last := ""
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return last
		}
		last = strings.TrimRight(l, "\r\n")
	}
}

// Recipients the RAT refuses are errors: past the soft limit each reply
// waits (the tarpit, while other clients are served at once), at the hard
// limit (the default 20) the connection ends.
func TestErrorLimitRATRefusals(t *testing.T) {
	const delay = time.Second
	h := start(t, opts{yaml: withKeys(fmt.Sprintf("    soft_error_limit: 18\n    error_delay: %v\n", delay))})
	c := h.dial("127.0.0.2")
	c.Expect("220")
	c.Cmd("EHLO mx1.partner.test", "250")
	c.Cmd("MAIL FROM:<a@partner.test>", "250")
	for i := range 18 {
		c.Cmd(fmt.Sprintf("RCPT TO:<u%d@elsewhere.org>", i), "550 5.1.0 Address rejected.")
	}
	// The 19th waits; another client meanwhile is not held up.
	start := time.Now()
	c.Send("RCPT TO:<u18@elsewhere.org>\r\n")
	other := h.dial("")
	other.Expect("220")
	other.Cmd("EHLO client.example.com", "250")
	other.Cmd("QUIT", "221")
	if d := time.Since(start); d >= delay {
		t.Errorf("another client waited %v for the tarpit", d)
	}
	c.Expect("550")
	if d := time.Since(start); d < delay {
		t.Errorf("19th error answered after %v, want the tarpit's %v", d, delay)
	}
	c.Cmd("RCPT TO:<u19@elsewhere.org>", "550")
	c.Expect("421 4.7.0 Exceeded SMTP error limit, disconnecting.")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended cause=errors`)
	if n := len(h.lines.Grep(`Rejected by RAT`)); n != 20 {
		t.Errorf("%d refusals logged", n)
	}
	got := esaLines(all)
	eq(t, got[len(got)-3:], []string{"Message aborted MID N Receiving aborted", "Message finished MID N aborted", "ICID N close"})
	if own := h.lines.Grep(`cause=errors`)[0]; !strings.Contains(own, "state=mail last=RCPT") || !strings.Contains(own, "detail='RCPT TO:<u19@elsewhere.org>'") {
		t.Errorf("own line %q", own)
	}
}

// Pipelining a client may not do: the whole transaction after HELO in one
// write, or the message before the 354. Nothing reaches the spool.
func TestPipeliningRefused(t *testing.T) {
	h := start(t, opts{})
	c := h.dial("")
	c.Expect("220")
	c.Send("HELO client.example.com\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	c.Expect("554 #5.5.0 SMTP synchronization error: commands sent before the reply to HELO")
	all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
	eq(t, esaLines(all)[2:], []string{"ICID N close"})
	if own := ownLine(t, all); !strings.Contains(own, "cause=pipelining state=connect last=HELO") || !strings.Contains(own, "detail='commands sent before the reply to HELO: MAIL FROM:<a@example.org>'") {
		t.Errorf("own line %q", own)
	}

	c = h.dial("")
	c.Expect("220")
	c.Cmd("EHLO client.example.com", "250")
	c.Send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Expect("554 5.5.0 SMTP synchronization error: message sent before the 354 reply")
	all = h.lines.WaitN(t, 2, `^mailgate: ICID \d+ ended`)
	if !strings.Contains(all[1], "cause=pipelining state=rcpt last=DATA") {
		t.Errorf("own line %q", all[1])
	}
	got := esaLines(h.lines.Snapshot())
	eq(t, got[len(got)-3:], []string{"Message aborted MID N Receiving aborted", "Message finished MID N aborted", "ICID N close"})
	if n := len(h.spool.Messages()); n != 0 {
		t.Errorf("spool holds %d messages", n)
	}
}
