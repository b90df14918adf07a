package workqueue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/queue"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recStage is a real Stage: it reads the message as a scanner would (the
// stream and the MIME tree), adds a header naming itself, and records that
// it ran. Its verdict and failures are the test's.
type recStage struct {
	name string
	h    *harness
	// verdict, if set, decides; fail, if set, makes the stage fail.
	verdict func(m *Message) Verdict
	fail    func(m *Message) error
}

func (s *recStage) Run(ctx context.Context, m *Message) (Verdict, error) {
	r, err := m.Open()
	if err != nil {
		return Verdict{}, err
	}
	body, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return Verdict{}, err
	}
	part, err := m.MIME()
	if err != nil {
		return Verdict{}, err
	}
	subject, _ := part.Header.Subject()
	s.h.ran(fmt.Sprintf("MID %d %s %s (%d bytes, %q, after %d headers)", m.Env.MID, m.Policy.Name, s.name, len(body), subject, len(m.Added)))
	if s.fail != nil {
		if err := s.fail(m); err != nil {
			return Verdict{}, err
		}
	}
	if s.verdict != nil {
		return s.verdict(m), nil
	}
	return Verdict{AddHeaders: []string{"X-Stage: " + s.name}}, nil
}

type harness struct {
	t      *testing.T
	dir    string
	spool  *queue.Spool
	ids    *queue.Counters
	lines  *smtptest.Lines
	q      *Queue
	stages map[string]Stage
	pol    *policy.MailPolicies
	// stageRan, if set before open, is Options.StageRan; crash is
	// Options.crash.
	stageRan func(StageRun)
	crash    func(point string)

	mu     sync.Mutex
	runs   []string
	handed map[uint64][]string // MID -> recipients handed to delivery
}

func (h *harness) ran(s string) {
	h.mu.Lock()
	h.runs = append(h.runs, s)
	h.mu.Unlock()
}

func (h *harness) runsOf(mid uint64) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.runs {
		if strings.HasPrefix(r, fmt.Sprintf("MID %d ", mid)) {
			out = append(out, r)
		}
	}
	return out
}

func (h *harness) next(env *queue.Envelope) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.handed[env.MID]; dup {
		h.t.Errorf("MID %d handed to delivery twice", env.MID)
	}
	var rcpts []string
	for _, r := range env.Rcpts {
		rcpts = append(rcpts, r.Addr)
	}
	h.handed[env.MID] = rcpts
}

func (h *harness) handedTo() map[uint64][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := map[uint64][]string{}
	for k, v := range h.handed {
		m[k] = v
	}
	return m
}

func pats(t *testing.T, ss ...string) []policy.AddrPattern {
	var out []policy.AddrPattern
	for _, s := range ss {
		p, err := policy.ParseAddrPattern(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// newHarness: incoming policies "executives" (ceo@ and cfo@example.com:
// anti-spam, anti-virus and two content filters) and DEFAULT (anti-virus
// only).
func newHarness(t *testing.T, dir string) *harness {
	if dir == "" {
		dir = t.TempDir()
	}
	h := &harness{t: t, dir: dir, lines: smtptest.NewLines(), handed: map[uint64][]string{}}
	h.stages = map[string]Stage{}
	for _, n := range []string{"spam", "virus", "cf1", "cf2"} {
		h.stages[n] = &recStage{name: n, h: h}
	}
	exec := &policy.MailPolicy{Name: "executives", Recipients: pats(t, "ceo@example.com", "cfo@example.com"),
		AntiSpam: "spam", AntiVirus: "virus", ContentFilters: []string{"cf1", "cf2"}, OnScanFailure: policy.ScanTempfail}
	plain := &policy.MailPolicy{Name: "plain", Recipients: pats(t, "@plain.example.com"), OnScanFailure: policy.ScanTempfail}
	def := &policy.MailPolicy{Name: policy.DefaultMailPolicy, AntiVirus: "virus", OnScanFailure: policy.ScanTempfail}
	h.pol = &policy.MailPolicies{Incoming: []*policy.MailPolicy{exec, plain, def}, Outgoing: []*policy.MailPolicy{{Name: policy.DefaultMailPolicy}}}
	return h
}

func (h *harness) open() {
	t := h.t
	var err error
	if h.spool, err = queue.Open(filepath.Join(h.dir, "spool"), queue.Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if h.ids, err = queue.OpenCounters(filepath.Join(h.dir, "counters")); err != nil {
		t.Fatal(err)
	}
	if err := h.ids.Ensure(queue.MID, h.spool.MaxMID()); err != nil {
		t.Fatal(err)
	}
	h.q, err = New(Options{Spool: h.spool, IDs: h.ids, Policies: h.pol, Workers: 3, Stages: h.stages,
		Next: h.next, Events: h.lines, Logger: quiet, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		StageRan: h.stageRan, crash: h.crash})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
}

func (h *harness) close() {
	if h.q == nil {
		return
	}
	if err := h.q.Stop(context.Background()); err != nil {
		h.t.Error(err)
	}
	h.spool.Close()
	h.ids.Close()
	h.q = nil
}

const testMessage = "From: a@sender.net\r\nSubject: quarterly\r\n\r\nnumbers\r\n"

// commit stores a message as inbound does and returns its envelope.
func (h *harness) commit(rcpts ...string) *queue.Envelope {
	h.t.Helper()
	mid, err := h.ids.Next(queue.MID)
	if err != nil {
		h.t.Fatal(err)
	}
	env := &queue.Envelope{MID: mid, ICID: 1, Listener: "in", ClientIP: "127.0.0.1", From: "a@sender.net", Received: time.Now()}
	for i, r := range rcpts {
		env.Rcpts = append(env.Rcpts, queue.Recipient{RID: i, Addr: r})
	}
	if err := h.spool.Commit(context.Background(), env, []byte(testMessage)); err != nil {
		h.t.Fatal(err)
	}
	return env
}

// TestSplitAndStages: three recipients across two policies make two
// messages, each with its policy's stages in the ESA's order, each handed
// to delivery once with its recipients, with the ESA's lines.
func TestSplitAndStages(t *testing.T) {
	h := newHarness(t, "")
	h.open()
	h.q.Start()
	env := h.commit("a@other.org", "ceo@example.com", "b@other.org", "cfo@example.com")
	h.q.Submit(env)
	h.lines.WaitN(t, 2, `queued for delivery`)
	child := env.MID + 1
	want := []string{
		fmt.Sprintf("MID %d was split creating MID %d due to a per-recipient policy executives", env.MID, child),
		fmt.Sprintf("MID %d ICID 0 From: <a@sender.net>", child),
		fmt.Sprintf("MID %d ICID 0 RID 1 To: <ceo@example.com>", child),
		fmt.Sprintf("MID %d ICID 0 RID 3 To: <cfo@example.com>", child),
		fmt.Sprintf("MID %d queued for delivery", env.MID),
		fmt.Sprintf("MID %d queued for delivery", child),
	}
	got := h.lines.Snapshot()
	// The child's envelope follows its split line, as the ESA logs it.
	if i := slices.Index(got, want[0]); i < 0 || !slices.Equal(got[i:min(i+4, len(got))], want[:4]) {
		t.Errorf("the split line is not followed by the child's From and To lines:\n%s", strings.Join(got, "\n"))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	handed := h.handedTo()
	if w := map[uint64][]string{env.MID: {"a@other.org", "b@other.org"}, child: {"ceo@example.com", "cfo@example.com"}}; fmt.Sprint(handed) != fmt.Sprint(w) {
		t.Errorf("handed to delivery %v, want %v", handed, w)
	}
	n := len(testMessage)
	if got, w := h.runsOf(env.MID), []string{
		fmt.Sprintf("MID %d DEFAULT virus (%d bytes, \"quarterly\", after 0 headers)", env.MID, n),
	}; !slices.Equal(got, w) {
		t.Errorf("stages of MID %d: %q, want %q", env.MID, got, w)
	}
	if got, w := h.runsOf(child), []string{
		fmt.Sprintf("MID %d executives spam (%d bytes, \"quarterly\", after 0 headers)", child, n),
		fmt.Sprintf("MID %d executives virus (%d bytes, \"quarterly\", after 1 headers)", child, n),
		fmt.Sprintf("MID %d executives cf1 (%d bytes, \"quarterly\", after 2 headers)", child, n),
		fmt.Sprintf("MID %d executives cf2 (%d bytes, \"quarterly\", after 3 headers)", child, n),
	}; !slices.Equal(got, w) {
		t.Errorf("stages of MID %d: %q, want %q", child, got, w)
	}
	// The outcomes are durable: the headers delivery adds, the parent's
	// moved recipients, the child's link.
	for mid, hdrs := range map[uint64]string{env.MID: "X-Stage: virus\r\n", child: "X-Stage: spam\r\nX-Stage: virus\r\nX-Stage: cf1\r\nX-Stage: cf2\r\n"} {
		w, done, err := h.spool.Work(mid)
		if err != nil || !done || w.Headers != hdrs {
			t.Errorf("Work(%d) = %q, %v, %v; want %q", mid, w.Headers, done, err, hdrs)
		}
	}
	states, _ := h.spool.RecipientStates(env.MID)
	if states[1].Status != queue.Moved || states[3].Status != queue.Moved || states[0].Status != queue.Pending || states[2].Status != queue.Pending {
		t.Errorf("parent states %+v", states)
	}
	cenv, body, err := h.spool.Read(child)
	if err != nil || cenv.Parent != env.MID || string(body) != testMessage || len(cenv.Rcpts) != 2 || cenv.Rcpts[0].RID != 1 || cenv.Rcpts[1].RID != 3 {
		t.Errorf("child %+v, %q, %v", cenv, body, err)
	}
	if st := h.q.Status(); st.Messages != 0 || st.In != 2 || st.Out != 2 {
		t.Errorf("Status = %+v, want empty, 2 in, 2 out", st)
	}
}

// TestMatchedAll: one policy for every recipient logs the ESA's line at
// the hand-off, and a policy that runs nothing hands the message straight
// through: no worker, no record, no fsync.
func TestMatchedAll(t *testing.T) {
	h := newHarness(t, "")
	h.open()
	h.q.Start()
	syncs := h.spool.Stats().Syncs
	env := h.commit("x@plain.example.com", "y@plain.example.com")
	syncs = h.spool.Stats().Syncs - syncs
	before := h.spool.Stats().Syncs
	h.q.Submit(env)
	// Handed on within Submit.
	if got := h.handedTo()[env.MID]; !slices.Equal(got, []string{"x@plain.example.com", "y@plain.example.com"}) {
		t.Fatalf("handed %v", got)
	}
	if got := h.spool.Stats().Syncs - before; got != 0 || syncs != 1 {
		t.Errorf("the pass-through cost %d fsyncs (the commit %d)", got, syncs)
	}
	if _, done, _ := h.spool.Work(env.MID); done {
		t.Error("a pass-through recorded a work outcome")
	}
	want := []string{
		fmt.Sprintf("MID %d matched all recipients for per-recipient policy plain in the inbound table", env.MID),
		fmt.Sprintf("MID %d queued for delivery", env.MID),
	}
	if got := h.lines.Snapshot(); !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
	// DEFAULT, which runs anti-virus: the line at once, the stage after.
	env = h.commit("z@other.org")
	h.q.Submit(env)
	h.lines.WaitFor(t, fmt.Sprintf("MID %d queued for delivery", env.MID))
	if got := h.lines.Grep(fmt.Sprintf("MID %d matched all", env.MID)); len(got) != 1 || !strings.HasSuffix(got[0], "policy DEFAULT in the inbound table") {
		t.Errorf("lines %q", got)
	}
	// Outgoing mail takes the outgoing table.
	env = h.commit("ceo@example.com")
	env.Outgoing = true
	h.q.Submit(env)
	h.lines.WaitFor(t, fmt.Sprintf("MID %d matched all recipients for per-recipient policy DEFAULT in the outbound table", env.MID))
}

// TestVerdicts: a drop ends the message with the ESA's lines and no
// delivery; a failing stage under tempfail holds the message and runs it
// again; under deliver it goes on; an action the queue cannot carry out
// holds it.
func TestVerdicts(t *testing.T) {
	h := newHarness(t, "")
	var mu sync.Mutex
	failures := 2
	h.stages["virus"] = &recStage{name: "virus", h: h, verdict: func(m *Message) Verdict {
		if strings.HasPrefix(m.Env.Rcpts[0].Addr, "drop") {
			return Verdict{Action: Drop, By: "antivirus"}
		}
		return Verdict{}
	}, fail: func(m *Message) error {
		if !strings.HasPrefix(m.Env.Rcpts[0].Addr, "flaky") {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return errors.New("engine down")
		}
		return nil
	}}
	h.stages["spam"] = &recStage{name: "spam", h: h, verdict: func(m *Message) Verdict { return Verdict{Action: Quarantine, Quarantine: "Spam"} }}
	h.open()
	h.q.Start()

	drop := h.commit("drop@other.org")
	h.q.Submit(drop)
	h.lines.WaitFor(t, fmt.Sprintf("Message finished MID %d done", drop.MID))
	if got := h.lines.Grep(fmt.Sprintf("MID %d ", drop.MID)); !slices.Contains(got, fmt.Sprintf("Message aborted MID %d Dropped by antivirus", drop.MID)) {
		t.Errorf("lines %q", got)
	}
	if _, err := h.spool.RecipientStates(drop.MID); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a dropped message is still in the spool: %v", err)
	}

	flaky := h.commit("flaky@other.org")
	h.q.Submit(flaky)
	h.lines.WaitFor(t, fmt.Sprintf("MID %d queued for delivery", flaky.MID))
	if got := len(h.runsOf(flaky.MID)); got != 3 {
		t.Errorf("the flaky stage ran %d times, want 3 (two failures, then the verdict)", got)
	}

	// scan_failure: deliver lets it go on unscanned by the failed stage.
	h.pol.Incoming[2].OnScanFailure = policy.ScanDeliver
	mu.Lock()
	failures = 1
	mu.Unlock()
	flaky = h.commit("flaky@other.org")
	h.q.Submit(flaky)
	h.lines.WaitFor(t, fmt.Sprintf("MID %d queued for delivery", flaky.MID))
	if got := len(h.runsOf(flaky.MID)); got != 1 {
		t.Errorf("stage ran %d times, want 1", got)
	}
	h.pol.Incoming[2].OnScanFailure = policy.ScanTempfail

	// A work queue without quarantines (Options.Quarantines nil) cannot
	// carry out a quarantine verdict: held, never delivered.
	held := h.commit("ceo@example.com")
	h.q.Submit(held)
	wait.Until(t, "the quarantined message retried", func() bool {
		n := 0
		for _, r := range h.runsOf(held.MID) {
			if strings.Contains(r, " spam ") {
				n++
			}
		}
		return n >= 2
	})
	if _, ok := h.handedTo()[held.MID]; ok {
		t.Error("a message with a verdict the queue cannot apply was delivered")
	}
	if st := h.q.Status(); st.Messages != 1 || st.Oldest.IsZero() {
		t.Errorf("Status = %+v, want the held message", st)
	}
}

// TestRecovery: a split child committed without its parent's Moved state
// (a crash between the two writes), and a message whose stages never
// finished: after reopening, the work queue claims both (delivery must
// leave them), works on them, and each recipient is handed on once.
func TestRecovery(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir)
	h.open()
	parent := h.commit("a@other.org", "ceo@example.com")
	child := *parent
	child.MID, child.Parent = parent.MID+1, parent.MID
	child.Rcpts = parent.Rcpts[1:]
	if err := h.ids.Ensure(queue.MID, child.MID); err != nil {
		t.Fatal(err)
	}
	if err := h.spool.Commit(context.Background(), &child, []byte(testMessage)); err != nil {
		t.Fatal(err)
	}
	done := h.commit("b@other.org")
	if err := h.spool.SetWork(context.Background(), done.MID, queue.Work{}); err != nil {
		t.Fatal(err)
	}
	h.close() // never started: as if killed

	h = newHarness(t, dir)
	h.open()
	for mid, want := range map[uint64]bool{parent.MID: true, child.MID: true, done.MID: false} {
		if got := h.q.Claimed(mid); got != want {
			t.Errorf("Claimed(%d) = %v, want %v", mid, got, want)
		}
	}
	h.q.Start()
	h.lines.WaitN(t, 2, "queued for delivery")
	wait.Until(t, "both handed on", func() bool { return len(h.handedTo()) == 2 })
	if got, w := h.handedTo(), map[uint64][]string{parent.MID: {"a@other.org"}, child.MID: {"ceo@example.com"}}; fmt.Sprint(got) != fmt.Sprint(w) {
		t.Errorf("handed %v, want %v", got, w)
	}
	if h.q.Claimed(parent.MID) || h.q.Claimed(child.MID) {
		t.Error("still claimed after the hand-off")
	}
	// The parent's Moved state is durable now: with the child finished,
	// a reopened spool still says so.
	if err := h.spool.Finish(context.Background(), child.MID); err != nil {
		t.Fatal(err)
	}
	h.close()
	s, err := queue.Open(filepath.Join(dir, "spool"), queue.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if states, _ := s.RecipientStates(parent.MID); states[1].Status != queue.Moved {
		t.Errorf("parent states after the child finished: %+v", states)
	}
	if _, ok, _ := s.Work(parent.MID); !ok {
		t.Error("the recovered parent has no work outcome")
	}
}

// TestCrashInSplit: a crash after a split's children are committed and
// before anything else of the split (injected: the spool is closed
// there, so nothing after reaches the disk, and the dying process's
// lines are not the test's). After the restart the split line, with the
// child's envelope, is logged (tracking links the child to its parent
// by it), once, and each part is handed on once. A split the parent did
// record is not logged again when its child, still in the work queue,
// is taken up after a restart.
func TestCrashInSplit(t *testing.T) {
	for _, crashAtSplit := range []bool{true, false} {
		t.Run(fmt.Sprintf("crash at the split %v", crashAtSplit), func(t *testing.T) {
			dir := t.TempDir()
			h := newHarness(t, dir)
			crashed := make(chan struct{})
			if crashAtSplit {
				h.crash = func(point string) {
					if point == "split" {
						h.spool.Close()
						close(crashed)
					}
				}
			} else {
				// The child's anti-spam is down: it waits in the work
				// queue, its split recorded, when the process stops.
				h.stages["spam"] = &recStage{name: "spam", h: h, fail: func(*Message) error { return errors.New("engine down") }}
			}
			h.open()
			h.q.Start()
			env := h.commit("a@other.org", "ceo@example.com")
			child := env.MID + 1
			h.q.Submit(env)
			if crashAtSplit {
				<-crashed
			} else {
				wait.Until(t, "the child's anti-spam ran", func() bool { return len(h.runsOf(child)) > 0 })
				wait.Until(t, "the parent handed on", func() bool { _, ok := h.handedTo()[env.MID]; return ok })
			}
			h.close()

			h2 := newHarness(t, dir)
			if !crashAtSplit {
				h2.stages["spam"] = &recStage{name: "spam", h: h2, fail: func(*Message) error { return errors.New("engine down") }}
			}
			h2.open()
			if got, want := h2.spool.Recovery().Splits, map[bool][]uint64{true: {child}}[crashAtSplit]; !slices.Equal(got, want) {
				t.Errorf("Recovery.Splits = %v, want %v", got, want)
			}
			if !h2.q.Claimed(child) || h2.q.Claimed(env.MID) != crashAtSplit {
				t.Errorf("claimed: child %v, parent %v", h2.q.Claimed(child), h2.q.Claimed(env.MID))
			}
			h2.q.Start()
			split := fmt.Sprintf("MID %d was split creating MID %d due to a per-recipient policy executives", env.MID, child)
			if !crashAtSplit {
				// Start logs a recovered split before it returns.
				wait.Until(t, "the child's anti-spam ran again", func() bool { return len(h2.runsOf(child)) > 0 })
				if got := h2.lines.Grep("was split"); len(got) != 0 {
					t.Errorf("a recorded split logged again: %q", got)
				}
				return
			}
			h2.lines.WaitN(t, 2, "queued for delivery")
			got := h2.lines.Snapshot()
			i := slices.Index(got, split)
			if want := []string{split,
				fmt.Sprintf("MID %d ICID 0 From: <a@sender.net>", child),
				fmt.Sprintf("MID %d ICID 0 RID 1 To: <ceo@example.com>", child),
			}; i < 0 || !slices.Equal(got[i:min(i+3, len(got))], want) {
				t.Errorf("lines after the restart:\n%s\nwant, in a row:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if n := len(h2.lines.Grep("was split")); n != 1 {
				t.Errorf("%d split lines, want 1", n)
			}
			if got, w := h2.handedTo(), map[uint64][]string{env.MID: {"a@other.org"}, child: {"ceo@example.com"}}; fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("handed %v, want %v", got, w)
			}
			// The move is recorded now: another restart logs nothing again.
			h2.close()
			h3 := newHarness(t, dir)
			h3.open()
			if got := h3.spool.Recovery().Splits; len(got) != 0 {
				t.Errorf("Recovery.Splits after the move was recorded: %v", got)
			}
		})
	}
}

// TestSplitLoggedBeforeRecorded: the split lines are logged before the
// parent records the move, which is what tells a restart that they need
// not be logged again: a crash right after the record finds them logged.
func TestSplitLoggedBeforeRecorded(t *testing.T) {
	h := newHarness(t, "")
	var logged []string
	recorded := make(chan struct{})
	h.crash = func(point string) {
		if point == "split recorded" {
			logged = h.lines.Grep("was split|ICID 0")
			close(recorded)
		}
	}
	h.open()
	h.q.Start()
	env := h.commit("a@other.org", "ceo@example.com")
	h.q.Submit(env)
	<-recorded
	if want := []string{
		fmt.Sprintf("MID %d was split creating MID %d due to a per-recipient policy executives", env.MID, env.MID+1),
		fmt.Sprintf("MID %d ICID 0 From: <a@sender.net>", env.MID+1),
		fmt.Sprintf("MID %d ICID 0 RID 1 To: <ceo@example.com>", env.MID+1),
	}; !slices.Equal(logged, want) {
		t.Errorf("logged when the split was recorded: %q, want %q", logged, want)
	}
}

func TestUnknownStage(t *testing.T) {
	h := newHarness(t, "")
	delete(h.stages, "cf2")
	_, err := New(Options{Spool: nil, Policies: h.pol, Stages: h.stages})
	if err == nil || !strings.Contains(err.Error(), `"cf2"`) {
		t.Errorf("New = %v, want the unknown stage named", err)
	}
}

// hangStage never answers by itself: only its context ends it.
type hangStage struct{ runs chan struct{} }

func (s hangStage) Run(ctx context.Context, m *Message) (Verdict, error) {
	s.runs <- struct{}{}
	<-ctx.Done()
	return Verdict{}, ctx.Err()
}

// TestStageTimeout: a stage that hangs is cut at StageTimeout and counts
// as failed (here scan_failure deliver: the message goes on).
func TestStageTimeout(t *testing.T) {
	h := newHarness(t, "")
	runs := make(chan struct{}, 10)
	h.stages["virus"] = hangStage{runs}
	h.pol.Incoming[2].OnScanFailure = policy.ScanDeliver
	h.open()
	h.q.o.StageTimeout = 50 * time.Millisecond
	h.q.Start()
	env := h.commit("z@other.org")
	h.q.Submit(env)
	h.lines.WaitFor(t, fmt.Sprintf("MID %d queued for delivery", env.MID))
	if len(runs) != 1 {
		t.Errorf("the stage ran %d times", len(runs))
	}
}

// authStage hands what Auth gives to the test.
type authStage struct{ got chan string }

func (s authStage) Run(ctx context.Context, m *Message) (Verdict, error) {
	r, err := m.Auth()
	switch {
	case err != nil:
		s.got <- "error " + err.Error()
	case r == nil:
		s.got <- "none"
	default:
		s.got <- r.DMARC.Result + " " + r.DMARC.Domain
	}
	return Verdict{}, nil
}

// TestAuthResults: a stage reads the listener's authentication results
// from the envelope, on a split child too; none when nothing was checked.
func TestAuthResults(t *testing.T) {
	h := newHarness(t, "")
	got := make(chan string, 10)
	h.stages["virus"] = authStage{got}
	h.open()
	h.q.Start()
	env := h.commit("z@other.org")
	h.q.Submit(env)
	if g := <-got; g != "none" {
		t.Errorf("without results: %q", g)
	}
	mid, _ := h.ids.Next(queue.MID)
	env = &queue.Envelope{MID: mid, From: "a@sender.net", Received: time.Now(),
		Rcpts: []queue.Recipient{{RID: 0, Addr: "ceo@example.com"}, {RID: 1, Addr: "y@other.org"}},
		Auth:  (&mailauth.Results{DMARC: &mailauth.DMARC{Result: "pass", Domain: "sender.net"}}).Marshal()}
	if err := h.spool.Commit(context.Background(), env, []byte(testMessage)); err != nil {
		t.Fatal(err)
	}
	h.q.Submit(env)
	for range 2 { // the executives' child and DEFAULT's parent
		if g := <-got; g != "pass sender.net" {
			t.Errorf("with results: %q", g)
		}
	}
}

// TestStageRan: the hook hears of every run of every stage, in order, with
// its verdict or its error and the time it took; a failed run and a
// verdict the queue cannot carry out are errors.
func TestStageRan(t *testing.T) {
	h := newHarness(t, "")
	var mu sync.Mutex
	var runs []StageRun
	h.stageRan = func(r StageRun) {
		mu.Lock()
		runs = append(runs, r)
		mu.Unlock()
	}
	failed := false
	h.stages["virus"] = &recStage{name: "virus", h: h, verdict: func(m *Message) Verdict {
		if strings.HasPrefix(m.Env.Rcpts[0].Addr, "drop") {
			return Verdict{Action: Drop, By: "antivirus"}
		}
		return Verdict{}
	}, fail: func(m *Message) error {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(m.Env.Rcpts[0].Addr, "flaky") && !failed {
			failed = true
			return errors.New("engine down")
		}
		return nil
	}}
	h.stages["spam"] = &recStage{name: "spam", h: h, verdict: func(m *Message) Verdict {
		if strings.HasPrefix(m.Env.Rcpts[0].Addr, "ceo") {
			return Verdict{Action: Quarantine, Quarantine: "Spam"} // no quarantines: not supported
		}
		return Verdict{}
	}}
	h.open()
	h.q.Start()
	for _, rcpt := range []string{"drop@other.org", "flaky@other.org", "ceo@example.com"} {
		env := h.commit(rcpt)
		h.q.Submit(env)
	}
	type run struct{ stage, outcome string }
	want := []run{{"virus", "drop"}, {"virus", "error"}, {"virus", "deliver"}, {"spam", "error"}}
	got := func() []run {
		mu.Lock()
		defer mu.Unlock()
		var out []run
		for _, r := range runs {
			o := r.Verdict.Action.String()
			if r.Err != nil {
				o = "error"
			}
			if r.Took <= 0 || r.Took > time.Minute {
				t.Errorf("%s took %v", r.Stage, r.Took)
			}
			out = append(out, run{r.Stage, o})
		}
		return out
	}
	wait.Until(t, "the runs heard", func() bool {
		g := got()
		for _, w := range want {
			if !slices.Contains(g, w) {
				return false
			}
		}
		return true
	})
	// Each run once, but the held message's, retried; nothing else.
	for _, r := range got() {
		if !slices.Contains(want, r) {
			t.Errorf("a run %+v not made", r)
		}
	}
}

// blockStage runs until its context ends, saying when it started.
type blockStage struct{ started chan struct{} }

func (s blockStage) Run(ctx context.Context, m *Message) (Verdict, error) {
	close(s.started)
	<-ctx.Done()
	return Verdict{}, ctx.Err()
}

// TestStageRanStop: a run that Stop cuts short is not the stage's outcome:
// the hook does not hear of it.
func TestStageRanStop(t *testing.T) {
	h := newHarness(t, "")
	var mu sync.Mutex
	var runs []StageRun
	h.stageRan = func(r StageRun) {
		mu.Lock()
		runs = append(runs, r)
		mu.Unlock()
	}
	started := make(chan struct{})
	h.stages["virus"] = blockStage{started: started}
	h.open()
	h.q.Start()
	h.q.Submit(h.commit("someone@other.org"))
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the stage did not start")
	}
	h.close()
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 0 {
		t.Errorf("runs heard after Stop: %+v", runs)
	}
}
