package outbound_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp"
)

// TestStartFinishesFinalMessages: a crash between the last recipient's
// state and the finish record leaves a message whose recipients are all
// final. Start finishes it ("Message finished"), without delivering it
// again, and the spool lets it go; the pending message beside it is
// delivered.
func TestStartFinishesFinalMessages(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t).serve(lns...)
	g := newGateway(t, setup{defer_: true, zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "")})
	final := g.message("alice@gw.test", "bob@d.test", "carol@d.test")
	pending := g.message("alice@gw.test", "dave@d.test")
	ctx := context.Background()
	now := time.Now()
	if err := g.spool.SetRecipientState(ctx, final, []int{0}, queue.RecipientState{Status: queue.Delivered, Attempts: 1, Last: now}); err != nil {
		t.Fatal(err)
	}
	if err := g.spool.SetRecipientState(ctx, final, []int{1}, queue.RecipientState{Status: queue.Bounced, Attempts: 1, Last: now}); err != nil {
		t.Fatal(err)
	}
	g.start()
	g.finished(final)
	g.finished(pending)
	if slices.Contains(g.spool.Messages(), final) {
		t.Errorf("MID %d is still in the spool", final)
	}
	// Only the pending message was sent.
	got := h.messages()
	if len(got) != 1 || !slices.Equal(got[0].to, []string{"dave@d.test"}) {
		t.Errorf("the next hop got %+v, want only MID %d's message", got, pending)
	}
	if l := g.lines.Grep(fmt.Sprintf(`\bMID %d\b`, final)); len(l) != 1 {
		t.Errorf("lines of MID %d: %q, want only its finish", final, l)
	}
}

// TestStartKeepsCommitOrder: the messages a start finds in the spool go
// out oldest first, as they were committed.
func TestStartKeepsCommitOrder(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t).serve(lns...)
	g := newGateway(t, setup{defer_: true, zone: mxZone("d.test", "127.0.0.2"),
		yaml: deliveryYAML(port, "  destinations: [{domain: default, max_connections: 1}]\n")})
	var mids []uint64
	var want []string
	for i := range 8 {
		to := fmt.Sprintf("r%d@d.test", i)
		mids = append(mids, g.message("alice@gw.test", to))
		want = append(want, to)
	}
	g.start()
	for _, mid := range mids {
		g.finished(mid)
	}
	var got []string
	for _, m := range h.messages() {
		got = append(got, strings.Join(m.to, ","))
	}
	if !slices.Equal(got, want) {
		t.Errorf("the next hop got recipients in the order %v, want %v", got, want)
	}
}

// TestSpoolWriteFailure: when the outcome of an attempt cannot be
// recorded in the spool (here closed under the Manager's feet), the
// Manager logs the error, logs no outcome and forgets the message, which
// stays in the spool as it was: the next start delivers it again. The
// outcome is recorded by a finish record (delivered), or first by a DSN
// (refused).
func TestSpoolWriteFailure(t *testing.T) {
	cases := []struct {
		name  string
		reply smtp.Reply // to the message
		log   string     // the Manager's error
	}{
		{"delivered", smtp.Reply{}, `recipient states not recorded; the message is retried after a restart`},
		{"refused", smtp.Reply{Code: 554, Enhanced: "5.6.0", Text: "content refused"}, `no DSN; the message stays in the spool as it was`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
			h := newHop(t)
			g := newGateway(t, setup{defer_: true, zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "")})
			var mu sync.Mutex
			tries := 0
			h.data = func([]byte) smtp.Reply {
				mu.Lock()
				defer mu.Unlock()
				if tries++; tries == 1 {
					g.spool.Close() // before the reply: its outcome cannot be written
				}
				return tc.reply
			}
			h.serve(lns...)
			mid := g.message("alice@gw.test", "bob@d.test")
			g.start()
			g.log.Wait(t, tc.log)
			// Forgotten: nothing of it left in memory, which is the moment
			// after which an outcome line would have been logged.
			wait.Until(t, "the Manager forgets the message", func() bool { return g.m.Status().Active == 0 })
			if l := g.lines.Grep(fmt.Sprintf(`^(Message done|Bounced:|Delayed:|Message finished) .*MID %d\b`, mid)); len(l) != 0 {
				t.Errorf("outcome logged though not recorded: %q", l)
			}

			g.stop()
			g.openSpool()
			g.start()
			g.finished(mid)
			mu.Lock()
			defer mu.Unlock()
			if tries != 2 {
				t.Errorf("the next hop was sent the message %d times, want 2 (once after the restart)", tries)
			}
		})
	}
}

// TestCrashAfterDSN: a crash between a DSN's commit and its message's
// record of the recipients it reports (injected: the spool is closed
// there, so nothing after reaches the disk). After the restart the DSN's
// lines are logged and it is sent, once; the bounced recipient is not
// tried again (which would bounce it again: a second DSN), and its state
// is recorded, so that a later restart, the DSN gone, still knows it.
func TestCrashAfterDSN(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t)
	var mu sync.Mutex
	tried := map[string]int{}
	h.rcpt = func(to string) smtp.Reply {
		mu.Lock()
		defer mu.Unlock()
		tried[to]++
		switch to {
		case "bob@d.test":
			return smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
		case "carol@d.test": // deferred, and not due again within the test
			return smtp.Reply{Code: 451, Enhanced: "4.2.0", Text: "try later"}
		}
		return smtp.Reply{}
	}
	h.serve(lns...)
	g := newGateway(t, setup{defer_: true, zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "")})
	crashed := make(chan struct{})
	g.crashPoint = func(point string) {
		if point == "dsn" {
			g.spool.Close()
			close(crashed)
		}
	}
	g.start()
	mid := g.message("alice@d.test", "bob@d.test", "carol@d.test")
	<-crashed
	// The dying process's last lines are not the test's: a real crash
	// would not have written them.
	wait.Until(t, "the Manager forgets the message", func() bool { return g.m.Status().Active == 0 })
	g.stop()

	g.lines = smtptest.NewLines()
	g.events = g.lines
	g.crashPoint = nil
	g.openSpool()
	dsns := g.spool.Recovery().Bounces
	if len(dsns) != 1 {
		t.Fatalf("Recovery.Bounces = %v, want the DSN", dsns)
	}
	dsn := dsns[0]
	g.start()
	g.finished(dsn)
	if got, want := g.lines.Grep(fmt.Sprintf(`^Start MID %d |^MID %d (generated|ICID|ready|queued)`, dsn, dsn)), []string{
		fmt.Sprintf("Start MID %d ICID 0", dsn),
		fmt.Sprintf("MID %d generated for bounce of MID %d", dsn, mid),
		fmt.Sprintf("MID %d ICID 0 From: <>", dsn),
		fmt.Sprintf("MID %d ICID 0 RID 0 To: <alice@d.test>", dsn),
	}; len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("the DSN's lines after the restart:\n%s\nwant first:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if l := g.lines.Grep(fmt.Sprintf(`generated for bounce of MID %d$`, mid)); len(l) != 1 {
		t.Errorf("bounce lines of MID %d: %q, want one", mid, l)
	}
	var bounces []received
	for _, m := range h.messages() {
		if m.from == "" {
			bounces = append(bounces, m)
		}
	}
	if len(bounces) != 1 || !slices.Equal(bounces[0].to, []string{"alice@d.test"}) ||
		!strings.Contains(string(bounces[0].data), "Final-Recipient: rfc822; bob@d.test") {
		t.Errorf("DSNs sent: %+v, want one to alice@d.test for bob@d.test", bounces)
	}
	mu.Lock()
	if tried["bob@d.test"] != 1 {
		t.Errorf("bob@d.test was tried %d times, want once (before the crash)", tried["bob@d.test"])
	}
	mu.Unlock()

	// The DSN has gone; carol@d.test waits. What recovery inferred is
	// recorded: a later start leaves bob@d.test bounced.
	g.stop()
	g.spool.Close()
	g.openSpool()
	states, err := g.spool.RecipientStates(mid)
	if err != nil {
		t.Fatal(err)
	}
	if states[0].Status != queue.Bounced || states[1].Status != queue.Pending {
		t.Errorf("states after the DSN went: %+v, want bob bounced, carol pending", states)
	}
	if b := g.spool.Recovery().Bounces; len(b) != 0 {
		t.Errorf("Recovery.Bounces = %v with the DSN gone", b)
	}
}
