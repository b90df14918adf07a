package workqueue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/quarantine"
	"github.com/mailgate/mailgate/queue"
)

// openQuarantines opens the harness with quarantines Policy and Virus
// wired to the work queue as the gateway wires them.
func (h *harness) openQuarantines() *quarantine.Store {
	t := h.t
	h.open()
	// The harness's queue has no quarantines: make it again with them.
	if err := h.q.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var q *Queue
	store, err := quarantine.New(quarantine.Options{Spool: h.spool, Logger: quiet, Events: h.lines,
		Quarantines: []quarantine.Spec{{Name: "Policy"}, {Name: "Virus"}},
		Resume:      func(mid uint64) { q.Resume(mid) }})
	if err != nil {
		t.Fatal(err)
	}
	q, err = New(Options{Spool: h.spool, IDs: h.ids, Policies: h.pol, Workers: 3, Stages: h.stages,
		Next: h.next, Events: h.lines, Logger: quiet, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		Quarantines: store})
	if err != nil {
		t.Fatal(err)
	}
	h.q = q
	return store
}

// TestQuarantine: the executives' policy runs spam, virus, cf1, cf2;
// spam quarantines to Policy and cf1 to Virus. The quarantines add up at
// the end of the stages (cf2 still runs, and nothing is delivered); the
// message is held across a restart; released from both it runs again the
// stages after cf1 (cf2 only), with the headers of the first pass, and is
// delivered once.
func TestQuarantine(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	verdicts := map[string]Verdict{
		"spam": {Action: Quarantine, Quarantine: "Policy", By: "content filter:spam", AddHeaders: []string{"X-Stage: spam"}},
		"cf1":  {Action: Quarantine, Quarantine: "Virus", By: "Anti-Virus", AddHeaders: []string{"X-Stage: cf1"}},
	}
	for name, v := range verdicts {
		h.stages[name] = &recStage{name: name, h: h, verdict: func(*Message) Verdict { return v }}
	}
	h.openQuarantines()
	h.q.Start()
	env := h.commit("ceo@example.com")
	h.q.Submit(env)
	mid := env.MID
	h.lines.WaitFor(t, fmt.Sprintf(`MID %d quarantined to "Virus"`, mid))
	want := []string{
		fmt.Sprintf(`MID %d matched all recipients for per-recipient policy executives in the inbound table`, mid),
		fmt.Sprintf(`MID %d quarantined to "Policy" (content filter:spam)`, mid),
		fmt.Sprintf(`MID %d quarantined to "Virus" (Anti-Virus)`, mid),
	}
	if got := h.lines.Grep(fmt.Sprintf(`MID %d\b`, mid)); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := len(h.runsOf(mid)); got != 4 {
		t.Errorf("%d stages ran, want all 4 (quarantines are applied at the end)", got)
	}
	wait.Until(t, "the quarantined message out of the work queue", func() bool { return h.q.Status().Messages == 0 })

	// Restart: held still, claimed (delivery must leave it), not rescanned.
	h.close()
	h.runs = nil
	store := h.openQuarantines()
	if !h.q.Claimed(mid) {
		t.Error("a quarantined message is not claimed after a restart: delivery would take it")
	}
	h.q.Start()
	if l, _ := store.List("Virus"); len(l) != 1 || l[0].MID != mid {
		t.Fatalf("Virus after restart: %+v", l)
	}
	if err := store.Release(mid, "Policy", quarantine.WhyManual); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.handedTo()[mid]; ok || len(h.runsOf(mid)) != 0 {
		t.Error("released from one of two quarantines, the message went on")
	}
	if err := store.Release(mid, "Virus", quarantine.WhyManual); err != nil {
		t.Fatal(err)
	}
	h.lines.WaitFor(t, fmt.Sprintf(`MID %d queued for delivery`, mid))
	if got := h.runsOf(mid); len(got) != 1 || !strings.Contains(got[0], " cf2 ") || !strings.Contains(got[0], "after 3 headers") {
		t.Errorf("rescan ran %q, want cf2 only, after the 3 headers of the first pass", got)
	}
	w, done, err := h.spool.Work(mid)
	if err != nil || !done || w.Pending() || w.Headers != "X-Stage: spam\r\nX-Stage: virus\r\nX-Stage: cf1\r\nX-Stage: cf2\r\n" {
		t.Errorf("work record %+v %v %v", w, done, err)
	}
	wait.Until(t, "handed to delivery", func() bool { return slices.Equal(h.handedTo()[mid], []string{"ceo@example.com"}) })
	if h.q.Claimed(mid) {
		t.Error("still claimed after the hand-off")
	}
}

// TestQuarantineRescanDrops: a released message whose rescan drops it is
// dropped; one released and not rescanned when the process stopped is
// rescanned at the next start; an unknown quarantine holds the message in
// the work queue.
func TestQuarantineRescan(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	h.stages["cf1"] = &recStage{name: "cf1", h: h, verdict: func(*Message) Verdict {
		return Verdict{Action: Quarantine, Quarantine: "Policy", By: "content filter:cf1"}
	}}
	h.stages["cf2"] = &recStage{name: "cf2", h: h, verdict: func(m *Message) Verdict {
		if m.Env.Rcpts[0].Addr == "ceo@example.com" {
			return Verdict{Action: Drop, By: "content filter 'cf2' in the inbound table"}
		}
		return Verdict{}
	}}
	h.openQuarantines()
	h.q.Start()
	// cf2 drops what cf1 quarantined: the drop is final, no quarantine.
	dropped := h.commit("ceo@example.com")
	h.q.Submit(dropped)
	h.lines.WaitFor(t, fmt.Sprintf(`Message finished MID %d done`, dropped.MID))
	if got := h.lines.Grep(fmt.Sprintf(`MID %d quarantined`, dropped.MID)); len(got) != 0 {
		t.Errorf("a dropped message was quarantined: %q", got)
	}

	// Released before a crash, not rescanned: the record says Released.
	held := h.commit("cfo@example.com")
	h.q.Submit(held)
	h.lines.WaitFor(t, fmt.Sprintf(`MID %d quarantined to "Policy"`, held.MID))
	h.close()
	h.runs = nil
	sp, err := queue.Open(h.dir+"/spool", queue.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	w, _, _ := sp.Work(held.MID)
	w.Held[0].Out, w.Released = queue.Released, true
	if err := sp.SetWork(context.Background(), held.MID, w); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	store := h.openQuarantines()
	if l, _ := store.List(""); len(l) != 0 {
		t.Errorf("a released message is listed: %+v", l)
	}
	h.q.Start()
	h.lines.WaitFor(t, fmt.Sprintf(`MID %d queued for delivery`, held.MID))
	if got := h.runsOf(held.MID); len(got) != 1 || !strings.Contains(got[0], " cf2 ") || !strings.Contains(got[0], "after 2 headers") {
		t.Errorf("rescan ran %q, want cf2 after the headers of spam and virus", got)
	}

	// A quarantine the gateway does not have: held in the work queue.
	h.stages["cf1"] = &recStage{name: "cf1", h: h, verdict: func(*Message) Verdict {
		return Verdict{Action: Quarantine, Quarantine: "Nope", By: "content filter:cf1"}
	}}
	odd := h.commit("cfo@example.com")
	h.q.Submit(odd)
	wait.Until(t, "the message with an unknown quarantine retried", func() bool { return len(h.runsOf(odd.MID)) >= 2 })
	if _, ok := h.handedTo()[odd.MID]; ok {
		t.Error("a message quarantined to an unknown quarantine was delivered")
	}
}
