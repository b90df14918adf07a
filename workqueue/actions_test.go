package workqueue

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
)

// TestVerdictActions: bounce (a DSN to the sender, none to the null
// sender), notify, log entries, and the rewrites recorded for delivery:
// added and stripped fields (a field an earlier stage added goes too),
// subject tags that add up, the alternate recipient and host.
func TestVerdictActions(t *testing.T) {
	h := newHarness(t, "")
	by := "content filter 'f' in the inbound table"
	h.stages["virus"] = &recStage{name: "virus", h: h, verdict: func(m *Message) Verdict {
		switch strings.Split(m.Env.Rcpts[0].Addr, "@")[0] {
		case "bounce":
			return Verdict{Action: Bounce, By: by, Log: []string{"bouncing"}}
		case "notify":
			return Verdict{Log: []string{"Suspicious text found"}, Notify: []Notify{{To: "admin@example.org", By: "notify filter 'f'"}}}
		case "rewrite":
			return Verdict{AddHeaders: []string{"X-Keep: 1", "X-Remove: 1"}, TagSubject: "[A]", Reroute: "10.0.0.9:2525", AltRcpt: "first@example.org"}
		}
		return Verdict{}
	}}
	h.stages["cf1"] = &recStage{name: "cf1", h: h, verdict: func(m *Message) Verdict {
		if strings.HasPrefix(m.Env.Rcpts[0].Addr, "rewrite") {
			return Verdict{StripHeaders: []string{"x-REMOVE", "Received"}, TagSubject: "[B] ", AltRcpt: "review@example.org"}
		}
		return Verdict{}
	}}
	h.pol.Incoming[2].ContentFilters = []string{"cf1"}
	h.open()
	h.q.Start()

	// Bounce.
	b := h.commit("bounce@other.org", "b2@other.org")
	h.q.Submit(b)
	h.lines.WaitFor(t, fmt.Sprintf("Message finished MID %d done", b.MID))
	dsnLine := h.lines.WaitFor(t, fmt.Sprintf(`MID \d+ generated for bounce of MID %d`, b.MID))
	var dsnMID uint64
	fmt.Sscanf(dsnLine, "MID %d", &dsnMID)
	// The DSN's lines after the first come as it is committed and queued.
	h.lines.WaitFor(t, fmt.Sprintf("MID %d queued for delivery", dsnMID))
	got := h.lines.Grep(fmt.Sprintf(`MID (%d|%d)\b`, b.MID, dsnMID))
	want := []string{
		fmt.Sprintf("MID %d matched all recipients for per-recipient policy DEFAULT in the inbound table", b.MID),
		fmt.Sprintf("MID %d Custom Log Entry: bouncing", b.MID),
		fmt.Sprintf("Message aborted MID %d Bounced by content filter 'f' in the inbound table", b.MID),
		fmt.Sprintf("Message finished MID %d done", b.MID),
		fmt.Sprintf("Start MID %d ICID 0", dsnMID),
		fmt.Sprintf("MID %d generated for bounce of MID %d", dsnMID, b.MID),
		fmt.Sprintf("MID %d ICID 0 From: <>", dsnMID),
		fmt.Sprintf("MID %d ICID 0 RID 0 To: <a@sender.net>", dsnMID),
		fmt.Sprintf("MID %d ready %d bytes from <>", dsnMID, len(mustRead(t, h, dsnMID))),
		fmt.Sprintf("MID %d queued for delivery", dsnMID),
	}
	if !slices.Equal(got, want) {
		t.Errorf("bounce lines:\n%s\nwant first:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := h.spool.RecipientStates(b.MID); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a bounced message is still in the spool: %v", err)
	}
	if _, ok := h.handedTo()[b.MID]; ok {
		t.Error("a bounced message was handed to delivery")
	}
	env, body, err := h.spool.Read(dsnMID)
	if err != nil || env.From != "" || len(env.Rcpts) != 1 || env.Rcpts[0].Addr != "a@sender.net" {
		t.Fatalf("DSN envelope %+v, %v", env, err)
	}
	for _, s := range []string{"report-type=delivery-status", "Final-Recipient: rfc822; bounce@other.org",
		"Final-Recipient: rfc822; b2@other.org", "Status: 5.7.1", "Diagnostic-Code: smtp; 550 5.7.1 Delivery not authorized, message refused by\r\n content filter 'f' in the inbound table",
		fmt.Sprintf("X-Mailgate-Original-MID: %d", b.MID), "Subject: quarterly"} {
		if !strings.Contains(string(body), s) {
			t.Errorf("the DSN lacks %q:\n%s", s, body)
		}
	}
	if rc := h.handedTo()[dsnMID]; !slices.Equal(rc, []string{"a@sender.net"}) {
		t.Errorf("DSN handed to delivery for %v", rc)
	}
	if _, done, _ := h.spool.Work(dsnMID); !done {
		t.Error("the DSN has no work outcome: a restart would run the policies on it")
	}

	// The null sender gets no DSN.
	nb := h.commitFrom("", "bounce@other.org")
	h.q.Submit(nb)
	h.lines.WaitFor(t, fmt.Sprintf("Message finished MID %d done", nb.MID))
	if got := h.lines.Grep(fmt.Sprintf(`generated for bounce of MID %d$`, nb.MID)); len(got) != 0 {
		t.Errorf("a DSN to the null sender: %q", got)
	}

	// Notify and log entry; the message goes on.
	n := h.commit("notify@other.org")
	h.q.Submit(n)
	h.lines.WaitFor(t, fmt.Sprintf("MID %d queued for delivery", n.MID))
	gen := h.lines.WaitFor(t, fmt.Sprintf(`MID \d+ was generated based on MID %d by notify filter 'f'`, n.MID))
	var nMID uint64
	fmt.Sscanf(gen, "MID %d", &nMID)
	if got := h.lines.Grep(fmt.Sprintf(`^MID %d Custom`, n.MID)); !slices.Equal(got, []string{fmt.Sprintf("MID %d Custom Log Entry: Suspicious text found", n.MID)}) {
		t.Errorf("log entry lines %q", got)
	}
	env, body, err = h.spool.Read(nMID)
	if err != nil || env.From != "" || env.Rcpts[0].Addr != "admin@example.org" {
		t.Fatalf("notification envelope %+v, %v", env, err)
	}
	for _, s := range []string{"To: <admin@example.org>", fmt.Sprintf("Subject: Notification: MID %d matched notify filter 'f'", n.MID),
		"From:     <a@sender.net>", "To:       <notify@other.org>", "Subject:  quarterly", "Auto-Submitted: auto-generated"} {
		if !strings.Contains(string(body), s) {
			t.Errorf("the notification lacks %q:\n%s", s, body)
		}
	}
	if rc := h.handedTo(); !slices.Equal(rc[nMID], []string{"admin@example.org"}) || !slices.Equal(rc[n.MID], []string{"notify@other.org"}) {
		t.Errorf("handed to delivery: %v", rc)
	}

	// Rewrites, recorded once for delivery.
	r := h.commit("rewrite@other.org")
	h.q.Submit(r)
	h.lines.WaitFor(t, fmt.Sprintf("MID %d queued for delivery", r.MID))
	w, done, err := h.spool.Work(r.MID)
	wantW := queue.Work{Headers: "X-Keep: 1\r\n", Strip: []string{"x-remove", "received"}, TagSubject: "[B] [A] ",
		Route: "10.0.0.9:2525", Rcpt: "review@example.org"}
	if err != nil || !done || !reflect.DeepEqual(w, wantW) {
		t.Errorf("Work = %+v, %v, %v\nwant %+v", w, done, err, wantW)
	}
}

// TestVerdictActionsAfterRestart: a DSN committed by a bounce is
// delivery's after a restart, not the work queue's.
func TestVerdictActionsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	h.stages["virus"] = &recStage{name: "virus", h: h, verdict: func(m *Message) Verdict { return Verdict{Action: Bounce, By: "antivirus"} }}
	h.open()
	h.q.Start()
	b := h.commit("x@other.org")
	h.q.Submit(b)
	line := h.lines.WaitFor(t, fmt.Sprintf(`MID \d+ generated for bounce of MID %d`, b.MID))
	var dsnMID uint64
	fmt.Sscanf(line, "MID %d", &dsnMID)
	h.close()
	h2 := newHarness(t, dir)
	h2.open()
	if h2.q.Claimed(dsnMID) {
		t.Error("the DSN is claimed by the work queue after a restart")
	}
	if _, err := h2.spool.RecipientStates(dsnMID); err != nil {
		t.Errorf("the DSN is not in the spool: %v", err)
	}
}

// TestCrashAfterDSN: a crash between a bounce's DSN commit and the finish
// of its message (injected: the spool is closed there, so nothing after
// reaches the disk). After the restart the message is not the work
// queue's (its recipients are bounced: the DSN says so), so it is not
// scanned and bounced again; the spool holds one DSN for it, delivery's.
func TestCrashAfterDSN(t *testing.T) {
	dir := t.TempDir()
	bounce := func(h *harness) {
		h.stages["virus"] = &recStage{name: "virus", h: h, verdict: func(*Message) Verdict { return Verdict{Action: Bounce, By: "antivirus"} }}
	}
	h := newHarness(t, dir)
	bounce(h)
	crashed := make(chan struct{})
	h.crash = func(point string) {
		if point == "dsn" {
			h.spool.Close()
			close(crashed)
		}
	}
	h.open()
	h.q.Start()
	b := h.commit("x@other.org", "y@other.org")
	h.q.Submit(b)
	<-crashed
	h.close()

	h2 := newHarness(t, dir)
	bounce(h2)
	h2.open()
	if h2.q.Claimed(b.MID) {
		t.Error("the bounced message is the work queue's again")
	}
	h2.q.Start()
	wait.Until(t, "the work queue empty", func() bool { return h2.q.Status().Messages == 0 })
	var dsns []uint64
	for _, mid := range h2.spool.Messages() {
		env, _, _, err := h2.spool.Head(mid, 0)
		if err == nil && env.BounceOf == b.MID {
			dsns = append(dsns, mid)
			if !slices.Equal(env.BounceRIDs, []int{0, 1}) {
				t.Errorf("the DSN reports RIDs %v, want [0 1]", env.BounceRIDs)
			}
			if _, done, _ := h2.spool.Work(mid); !done || h2.q.Claimed(mid) {
				t.Error("the DSN is not delivery's")
			}
		}
	}
	if len(dsns) != 1 {
		t.Errorf("DSNs of MID %d in the spool: %v, want one", b.MID, dsns)
	}
	if got := h2.lines.Grep("generated for bounce"); len(got) != 0 {
		t.Errorf("a bounce after the restart: %q", got)
	}
	// Delivery's to finish: no recipient left to try.
	states, err := h2.spool.RecipientStates(b.MID)
	if err != nil || states[0].Status != queue.Bounced || states[1].Status != queue.Bounced {
		t.Errorf("states of the bounced message: %+v, %v", states, err)
	}
}

// commitFrom stores a message from a sender.
func (h *harness) commitFrom(from string, rcpts ...string) *queue.Envelope {
	h.t.Helper()
	mid, err := h.ids.Next(queue.MID)
	if err != nil {
		h.t.Fatal(err)
	}
	env := &queue.Envelope{MID: mid, ICID: 1, Listener: "in", ClientIP: "127.0.0.1", From: from, Received: time.Now()}
	for i, r := range rcpts {
		env.Rcpts = append(env.Rcpts, queue.Recipient{RID: i, Addr: r})
	}
	if err := h.spool.Commit(context.Background(), env, []byte(testMessage)); err != nil {
		h.t.Fatal(err)
	}
	return env
}

func mustRead(t *testing.T, h *harness, mid uint64) []byte {
	t.Helper()
	_, body, err := h.spool.Read(mid)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
