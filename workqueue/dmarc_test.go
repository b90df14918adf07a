package workqueue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/quarantine"
	"github.com/mailgate/mailgate/queue"
)

// commitAuth stores a message with the listener's results, as inbound
// does, and returns its envelope.
func (h *harness) commitAuth(auth []byte, rcpts ...string) *queue.Envelope {
	h.t.Helper()
	mid, err := h.ids.Next(queue.MID)
	if err != nil {
		h.t.Fatal(err)
	}
	env := &queue.Envelope{MID: mid, ICID: 1, Listener: "in", ClientIP: "127.0.0.1", From: "a@sender.net", Received: time.Now(), Auth: auth}
	for i, r := range rcpts {
		env.Rcpts = append(env.Rcpts, queue.Recipient{RID: i, Addr: r})
	}
	if err := h.spool.Commit(context.Background(), env, []byte(testMessage)); err != nil {
		h.t.Fatal(err)
	}
	return env
}

// dmarcFail is the results of a message that failed DMARC, which the
// listener's policy quarantined to q ("" for none).
func dmarcFail(q string) []byte {
	return (&mailauth.Results{DMARC: &mailauth.DMARC{Result: "fail", Domain: "sender.net", Policy: "quarantine",
		Applied: "quarantine", Quarantine: q}}).Marshal()
}

// TestDMARCQuarantine: a message the listener quarantined for DMARC is
// held in that quarantine at the end of its policy's stages, with the
// reason DMARC, even when its policy has no stage; held across a restart;
// released, it runs every stage of its policy again (the rescan) and is
// delivered once, not quarantined again. A failure the listener did not
// quarantine goes straight through; a later stage's drop wins.
func TestDMARCQuarantine(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	h.stages["cf2"] = &recStage{name: "cf2", h: h, verdict: func(m *Message) Verdict {
		if m.Env.Rcpts[0].Addr == "cfo@example.com" {
			return Verdict{Action: Drop, By: "content filter 'cf2' in the inbound table"}
		}
		return Verdict{AddHeaders: []string{"X-Stage: cf2"}}
	}}
	h.openQuarantines()
	h.q.Start()

	// No stages in its policy: not handed straight through.
	bare := h.commitAuth(dmarcFail("Policy"), "x@plain.example.com")
	h.q.Submit(bare)
	// Every stage of its policy runs; the quarantine comes after them.
	exec := h.commitAuth(dmarcFail("Virus"), "ceo@example.com")
	h.q.Submit(exec)
	for _, w := range []struct {
		mid  uint64
		want []string
	}{
		{bare.MID, []string{fmt.Sprintf(`MID %d matched all recipients for per-recipient policy plain in the inbound table`, bare.MID),
			fmt.Sprintf(`MID %d quarantined to "Policy" (DMARC)`, bare.MID)}},
		{exec.MID, []string{fmt.Sprintf(`MID %d matched all recipients for per-recipient policy executives in the inbound table`, exec.MID),
			fmt.Sprintf(`MID %d quarantined to "Virus" (DMARC)`, exec.MID)}},
	} {
		h.lines.WaitFor(t, fmt.Sprintf(`MID %d quarantined to `, w.mid))
		if got := h.lines.Grep(fmt.Sprintf(`MID %d\b`, w.mid)); !slices.Equal(got, w.want) {
			t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(w.want, "\n"))
		}
	}
	if got := len(h.runsOf(exec.MID)); got != 4 {
		t.Errorf("%d stages ran before the quarantine, want 4", got)
	}

	// A failure its listener did not quarantine: handed over within
	// Submit, as any message of a policy without stages.
	free := h.commitAuth(dmarcFail(""), "y@plain.example.com")
	h.q.Submit(free)
	if got := h.handedTo()[free.MID]; !slices.Equal(got, []string{"y@plain.example.com"}) {
		t.Errorf("a DMARC failure not quarantined: handed %q", got)
	}
	// A drop by a stage wins over the quarantine.
	dropped := h.commitAuth(dmarcFail("Policy"), "cfo@example.com")
	h.q.Submit(dropped)
	h.lines.WaitFor(t, fmt.Sprintf(`Message finished MID %d done`, dropped.MID))
	if got := h.lines.Grep(fmt.Sprintf(`MID %d quarantined`, dropped.MID)); len(got) != 0 {
		t.Errorf("a dropped message was quarantined: %q", got)
	}
	wait.Until(t, "the quarantined messages out of the work queue", func() bool { return h.q.Status().Messages == 0 })
	for _, mid := range []uint64{bare.MID, exec.MID} {
		if _, ok := h.handedTo()[mid]; ok {
			t.Errorf("MID %d, quarantined, was handed to delivery", mid)
		}
	}

	// Restart: still held.
	h.close()
	h.runs = nil
	h.handed = map[uint64][]string{} // free, handed through without a record, is handed again
	store := h.openQuarantines()
	h.q.Start()
	if l, _ := store.List(""); len(l) != 2 || l[0].MID != bare.MID || l[1].MID != exec.MID || l[0].In[0].Reason != "DMARC" {
		t.Fatalf("held after the restart: %+v", l)
	}
	for _, mid := range []uint64{bare.MID, exec.MID} {
		if err := store.Release(mid, "", quarantine.WhyManual); err != nil {
			t.Fatal(err)
		}
		h.lines.WaitFor(t, fmt.Sprintf(`MID %d queued for delivery`, mid))
	}
	if got := h.runsOf(exec.MID); len(got) != 4 || !strings.Contains(got[0], " spam ") || !strings.Contains(got[0], "after 0 headers") {
		t.Errorf("the rescan ran %q, want the 4 stages from the first, with no header of the first pass", got)
	}
	w, done, err := h.spool.Work(exec.MID)
	if err != nil || !done || w.Pending() || w.Headers != "X-Stage: spam\r\nX-Stage: virus\r\nX-Stage: cf1\r\nX-Stage: cf2\r\n" {
		t.Errorf("work record %+v %v %v", w, done, err)
	}
	w, done, err = h.spool.Work(bare.MID)
	if err != nil || !done || w.Pending() {
		t.Errorf("work record of the message without stages %+v %v %v: still pending", w, done, err)
	}
	for _, mid := range []uint64{bare.MID, exec.MID} {
		wait.Until(t, "handed to delivery", func() bool { _, ok := h.handedTo()[mid]; return ok })
		if got := h.lines.Grep(fmt.Sprintf(`MID %d quarantined`, mid)); len(got) != 1 {
			t.Errorf("MID %d quarantined again after its release: %q", mid, got)
		}
	}
}

// TestDMARCQuarantineUnreadable: results that name a quarantine but cannot
// be read, or a quarantine the gateway does not have, hold the message in
// the work queue (retried) rather than deliver it.
func TestDMARCQuarantineUnreadable(t *testing.T) {
	h := newHarness(t, "")
	h.openQuarantines()
	h.q.Start()
	broken := append([]byte{1}, `{"dmarc":{"quarantine":"Policy"`...)
	bad := h.commitAuth(broken, "x@plain.example.com")
	h.q.Submit(bad)
	odd := h.commitAuth(dmarcFail("Nope"), "y@plain.example.com")
	h.q.Submit(odd)
	wait.Until(t, "both waiting to be retried", func() bool { return h.q.Status().Retrying == 2 })
	for _, mid := range []uint64{bad.MID, odd.MID} {
		if _, ok := h.handedTo()[mid]; ok {
			t.Errorf("MID %d was delivered", mid)
		}
	}
}
