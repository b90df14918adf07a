package outbound_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp"
)

// tempFail makes a hop answer 451 to every RCPT while *down is true.
func tempFail(h *hop, down *atomic.Bool) *hop {
	h.rcpt = func(string) smtp.Reply {
		if down.Load() {
			return smtp.Reply{Code: 451, Enhanced: "4.3.0", Text: "Try again later"}
		}
		return smtp.Reply{}
	}
	return h
}

// attempts counts the Delivery start lines of a MID.
func attempts(g *gateway, mid uint64) int {
	return len(g.lines.Grep(fmt.Sprintf(`^Delivery start DCID \d+ MID %d `, mid)))
}

// TestDeliverNow: recipients deferred for an hour go at once when the
// administrator asks, for one destination or for all; a message waiting in
// the spool and a job of a message in memory alike.
func TestDeliverNow(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	var dDown, eDown atomic.Bool
	dDown.Store(true)
	eDown.Store(true)
	tempFail(newHop(t), &dDown).serve(lns[0])
	tempFail(newHop(t), &eDown).serve(lns[1])
	slow := newHop(t)
	slow.delay = 1500 * time.Millisecond
	slow.serve(lns[2])
	zone := append(append(mxZone("d.test", "127.0.0.2"), mxZone("e.test", "127.0.0.3")...), mxZone("slow.test", "127.0.0.4")...)
	g := newGateway(t, setup{zone: zone, yaml: deliveryYAML(port, "  bounce: {initial_retry: 1h}\n")})

	a := g.message("alice@gw.test", "bob@d.test")   // sleeps in the spool after its 451
	b := g.message("alice@gw.test", "carol@e.test") // likewise, for another destination
	g.lines.WaitN(t, 2, `pending till`)
	// c stays in memory: its slow.test job is in flight while its d.test
	// job waits for its retry.
	c := g.message("alice@gw.test", "dave@d.test", "erin@slow.test")
	g.lines.WaitFor(t, fmt.Sprintf(`^MID %d to RID \[0\] pending till`, c))
	// The line is logged before the manager takes the job back as
	// deferred, which is what DeliverNow makes ready.
	wait.Until(t, fmt.Sprintf("MID %d's d.test recipient is pending", c), func() bool {
		q, err := g.m.Message(c)
		if err != nil {
			t.Fatal(err)
		}
		return q.Recipients[0].Status == "pending"
	})

	dDown.Store(false)
	ready, woken, err := g.m.DeliverNow("D.test")
	if err != nil {
		t.Fatal(err)
	}
	if ready != 1 || woken != 2 {
		t.Errorf("DeliverNow: %d ready, %d woken; want 1 job of MID %d ready and MIDs %d, %d woken", ready, woken, c, a, b)
	}
	g.finished(a)
	g.lines.WaitFor(t, fmt.Sprintf(`^Message done DCID \d+ MID %d to RID \[0\]$`, c))
	// Both woken messages taken in: b's e.test job has been put back on
	// its timer, or made ready. From then on, a job made ready shows as
	// ready, in flight (a connection) or tried.
	wait.Until(t, "the woken messages taken in", func() bool {
		st := g.m.Status()
		return st.Waiting == 0 && st.Loading == 0
	})
	for _, d := range g.m.Status().Destinations {
		// A connection it has cached since its 451 is no attempt.
		if d.Name == "e.test" && (d.Ready != 0 || d.Connections != d.Cached) {
			t.Errorf("e.test after a deliver-now for d.test: %+v", d)
		}
	}
	if n := attempts(g, b); n != 1 {
		t.Errorf("MID %d (e.test) was tried %d times after a deliver-now for d.test, want 1", b, n)
	}
	q, err := g.m.Message(b)
	if err != nil {
		t.Fatal(err)
	}
	if r := q.Recipients[0]; r.Status != "pending" || r.Attempts != 1 || time.Until(r.Next) < 50*time.Minute {
		t.Errorf("MID %d after a deliver-now for another domain: %+v", b, r)
	}

	eDown.Store(false)
	if _, _, err := g.m.DeliverNow(""); err != nil {
		t.Fatal(err)
	}
	g.finished(b)
	g.finished(c)
}

// TestBounceAndDelete: the administrator bounces one deferred message (a
// DSN goes to its sender) and deletes another (nothing goes anywhere); a
// message in flight is refused until its attempt ends.
func TestBounceAndDelete(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	var down atomic.Bool
	down.Store(true)
	tempFail(newHop(t), &down).serve(lns[0])
	senders := newHop(t).serve(lns[1])
	slow := newHop(t)
	slow.delay = 1500 * time.Millisecond
	slow.serve(lns[2])
	zone := append(append(mxZone("d.test", "127.0.0.2"), mxZone("s.test", "127.0.0.3")...), mxZone("slow.test", "127.0.0.4")...)
	g := newGateway(t, setup{zone: zone, yaml: deliveryYAML(port, "  bounce: {initial_retry: 1h}\n")})

	a := g.message("alice@s.test", "bob@d.test", "carol@d.test")
	b := g.message("alice@s.test", "dave@d.test")
	g.lines.WaitN(t, 2, `pending till`)

	list, total, err := g.m.Messages("d.test", 0)
	if err != nil || total != 2 || len(list) != 2 || list[0].MID != a || list[1].MID != b {
		t.Fatalf("Messages(d.test) = %+v, %d, %v; want MIDs %d and %d", list, total, err, a, b)
	}
	if q := list[0]; q.Subject != fmt.Sprintf("test %d", a) || q.MessageID != fmt.Sprintf("<%d@gw.test>", a) ||
		len(q.Recipients) != 2 || q.Recipients[1].Reason != "451 4.3.0 Try again later" || q.Recipients[0].Destination != "d.test" {
		t.Errorf("Messages: %+v", q)
	}
	if _, body, err := g.spool.Read(a); err != nil || list[0].Size != len(body) {
		t.Errorf("Messages: MID %d of %d bytes, the spool holds %d (%v)", a, list[0].Size, len(body), err)
	}
	if _, total, _ := g.m.Messages("e.test", 0); total != 0 {
		t.Errorf("Messages(e.test) found %d", total)
	}

	n, err := g.m.Bounce(a)
	if err != nil || n != 2 {
		t.Fatalf("Bounce(%d) = %d, %v; want 2", a, n, err)
	}
	g.finished(a)
	want := fmt.Sprintf("Bounced: DCID 0 MID %d From: <alice@s.test> To: <bob@d.test> RID 0 - 5.0.0 - Other undefined Status ('000', ['Bounced by the administrator'])", a)
	if got := g.lines.Grep(fmt.Sprintf(`^Bounced: .* MID %d `, a)); len(got) != 2 || got[0] != want {
		t.Errorf("Bounced lines %q, want two, the first %q", got, want)
	}
	g.lines.WaitFor(t, fmt.Sprintf(`generated for bounce of MID %d$`, a))
	wait.Until(t, "the sender gets the DSN", func() bool { return len(senders.messages()) > 0 })
	dsns := senders.messages()
	if len(dsns) != 1 {
		t.Fatalf("the sender got %d DSNs, want 1", len(dsns))
	}
	checkDSN(t, dsns[0].data, map[string]string{"bob@d.test": "5.0.0", "carol@d.test": "5.0.0"})

	if n, err := g.m.Delete(b); err != nil || n != 1 {
		t.Fatalf("Delete(%d) = %d, %v", b, n, err)
	}
	g.finished(b)
	if got := g.lines.Grep(fmt.Sprintf(`^Deleted: MID %d to \[0\]$`, b)); len(got) != 1 {
		t.Errorf("no Deleted line for MID %d", b)
	}
	if _, err := g.m.Delete(b); !errors.Is(err, outbound.ErrNoMessage) {
		t.Errorf("second Delete: %v, want ErrNoMessage", err)
	}
	if _, err := g.m.Message(b); !errors.Is(err, outbound.ErrNoMessage) {
		t.Errorf("Message after Delete: %v, want ErrNoMessage", err)
	}

	c := g.message("alice@s.test", "erin@slow.test")
	g.lines.WaitFor(t, fmt.Sprintf(`^Delivery start DCID \d+ MID %d `, c))
	q, err := g.m.Message(c)
	if err != nil || q.Recipients[0].Status != "delivering" {
		t.Errorf("Message(%d) during its delivery: %+v, %v", c, q, err)
	}
	if _, err := g.m.Bounce(c); !errors.Is(err, outbound.ErrBusy) {
		t.Errorf("Bounce during delivery: %v, want ErrBusy", err)
	}
	g.finished(c)

	w := g.m.WorkQueue()
	if w.Messages != 0 || w.Recipients != 0 || !w.Oldest.IsZero() {
		t.Errorf("WorkQueue after all: %+v", w)
	}
	if strings.Count(strings.Join(g.lines.Snapshot(), "\n"), "Message finished") != 4 {
		t.Errorf("want 4 Message finished lines (a, its DSN, b, c):\n%s", strings.Join(g.lines.Snapshot(), "\n"))
	}
}

// TestMessageSummary lists queued messages whose header ends early, late
// (past the first read, even when that read ends inside a field's name)
// and never, one with no header at all, and headers net/mail refused: the
// Subject and Message-ID are found wherever the header ends, read as the
// mail log reads them (rfc822), and the size is the whole body's.
func TestMessageSummary(t *testing.T) {
	// The messages go to the spool only: the manager is not told of them.
	g := newGateway(t, setup{})
	long := strings.Repeat("X-Filler: "+strings.Repeat("z", 90)+"\r\n", 200) // 20 KB
	tests := []struct {
		body, subject, id string
	}{
		{"Subject: short\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n", "short", "<1@x>"},
		{long + "Subject: after 20 KB\r\nMessage-ID: <2@x>\r\n\r\n" + strings.Repeat("b", 100<<10), "after 20 KB", "<2@x>"},
		{"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n" + long, "Grüße", ""}, // never ends: the body is all header
		{"\r\nno header\r\n", "", ""},
		// The first read ends 3 bytes into a field's name.
		{"X-Pad: " + strings.Repeat("p", 80) + "\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("z", 88)+"\r\n", 82) +
			"Subject: after the cut\r\nMessage-ID: <3@x>\r\n\r\n" + strings.Repeat("b", 10<<10), "after the cut", "<3@x>"},
		// What net/mail refused whole: a continuation before the first
		// field, WSP before a colon; and what it collapsed: the whitespace
		// of a folded Subject, which the mail log keeps.
		{" junk\r\nSubject :\ta\r\n\t b\r\nMessage-ID: <4@x>\r\n\r\n", "a\t b", "<4@x>"},
		// A line that is not a field ends the header: what follows is body.
		{"Subject: s\r\nnot a field\r\nMessage-ID: <5@x>\r\n", "s", ""},
	}
	for i, tt := range tests {
		mid := uint64(100 + i)
		env := &queue.Envelope{MID: mid, ICID: 1, From: "a@s.test", Received: time.Now(), Rcpts: []queue.Recipient{{RID: 0, Addr: "b@d.test"}}}
		if err := g.spool.Commit(context.Background(), env, []byte(tt.body)); err != nil {
			t.Fatal(err)
		}
		q, err := g.m.Message(mid)
		if err != nil {
			t.Fatal(err)
		}
		if q.Subject != tt.subject || q.MessageID != tt.id || q.Size != len(tt.body) {
			t.Errorf("message %d: Subject %q, Message-ID %q, %d bytes; want %q, %q, %d", i, q.Subject, q.MessageID, q.Size, tt.subject, tt.id, len(tt.body))
		}
	}
}

// TestRottenBody: a queued message whose body was damaged on disk after it
// was committed. The queue manager takes it in on its envelope, which is
// intact; the damage shows when the message is read to be sent, and the
// recipient is deferred with the reason rather than sent wrong mail.
func TestRottenBody(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t).serve(lns...)
	g := newGateway(t, setup{zone: []string{"d.test. 60 IN A 127.0.0.2"}, yaml: deliveryYAML(port, "  bounce: {initial_retry: 1h}\n"), defer_: true})
	mid := g.message("alice@gw.test", "bob@d.test")
	damaged := false
	filepath.WalkDir(filepath.Join(g.dir, "spool"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if i := bytes.Index(b, []byte("A line with a leading dot.")); err == nil && i >= 0 {
			b[i] ^= 0x20
			damaged = os.WriteFile(path, b, 0o600) == nil
		}
		return nil
	})
	if !damaged {
		t.Fatal("the message's body was not found in the spool's files")
	}
	g.start()
	g.lines.WaitFor(t, fmt.Sprintf(`^Delayed: DCID \d+ MID %d .*spool read error`, mid))
	g.lines.WaitFor(t, fmt.Sprintf(`^MID %d to RID \[0\] pending till `, mid))
	if got := h.messages(); len(got) != 0 {
		t.Errorf("the next hop got %d messages", len(got))
	}
}
