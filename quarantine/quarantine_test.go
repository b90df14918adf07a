package quarantine

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
	"unicode"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/queue"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is a real spool with quarantines over it, a clock the test
// moves, and the lines.
type fixture struct {
	t       *testing.T
	dir     string
	spool   *queue.Spool
	s       *Store
	lines   *smtptest.Lines
	specs   []Spec
	mu      sync.Mutex
	now     time.Time
	resumed []uint64
	nextMID uint64
}

func newFixture(t *testing.T, specs []Spec) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), specs: specs, now: time.Unix(1_800_000_000, 0), nextMID: 1}
	f.open()
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fixture) open() {
	var err error
	if f.spool, err = queue.Open(filepath.Join(f.dir, "spool"), queue.Options{Logger: quiet}); err != nil {
		f.t.Fatal(err)
	}
	f.lines = smtptest.NewLines()
	f.s, err = New(Options{Spool: f.spool, Quarantines: f.specs, Events: f.lines, Logger: quiet, Now: f.clock,
		Resume: func(mid uint64) {
			f.mu.Lock()
			f.resumed = append(f.resumed, mid)
			f.mu.Unlock()
		}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(f.close)
}

func (f *fixture) close() {
	if f.spool != nil {
		f.spool.Close()
		f.spool = nil
	}
}

func (f *fixture) reopen() {
	f.close()
	f.open()
}

func (f *fixture) resumedMIDs() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.resumed)
}

// hold commits a message of size bytes and quarantines it in qs.
func (f *fixture) hold(size int, subject string, qs ...string) uint64 {
	f.t.Helper()
	mid := f.nextMID
	f.nextMID++
	env := &queue.Envelope{MID: mid, ICID: 1, From: "a@sender.example", Received: f.clock(),
		Rcpts: []queue.Recipient{{RID: 0, Addr: "b@rcpt.example"}}}
	body := "Subject: " + subject + "\r\n\r\n"
	body += strings.Repeat("x", max(0, size-len(body)))
	if err := f.spool.Commit(context.Background(), env, []byte(body)); err != nil {
		f.t.Fatal(err)
	}
	w := queue.Work{Headers: "X-A: 1\r\n", Stage: 2}
	for _, q := range qs {
		w.Held = append(w.Held, queue.Held{Quarantine: q, Reason: "content filter:f", Since: f.clock()})
	}
	if err := f.s.Hold(context.Background(), mid, w); err != nil {
		f.t.Fatal(err)
	}
	return mid
}

func (f *fixture) linesOf(mid uint64) []string {
	return f.lines.Grep(fmt.Sprintf(`MID %d\b`, mid))
}

func (f *fixture) live(mid uint64) bool {
	_, err := f.spool.RecipientStates(mid)
	return err == nil
}

var testSpecs = []Spec{
	{Name: "Policy", Retention: time.Hour, OnExpiry: ExpireDelete},
	{Name: "Virus", Retention: 2 * time.Hour, OnExpiry: ExpireRelease},
}

// TestReleaseAndDelete: the ESA's rules for one and for several
// quarantines, with the ESA's lines; what a release leaves in the spool
// for the work queue; a deleted message is gone.
func TestReleaseAndDelete(t *testing.T) {
	type step struct {
		op, q string // "release" or "delete"; q "" for all
	}
	for _, c := range []struct {
		name    string
		in      []string
		steps   []step
		lines   []string // %d is the MID
		resumed bool
	}{
		{"release one", []string{"Policy"}, []step{{"release", "Policy"}},
			[]string{`MID %d quarantined to "Policy" (content filter:f)`, `MID %d released from quarantine "Policy" (manual)`}, true},
		{"delete one", []string{"Policy"}, []step{{"delete", ""}},
			[]string{`MID %d quarantined to "Policy" (content filter:f)`, `MID %d deleted from quarantine "Policy" (manual)`, `Message finished MID %d done`}, false},
		{"release both", []string{"Policy", "Virus"}, []step{{"release", "Virus"}, {"release", "Policy"}},
			[]string{`MID %d quarantined to "Policy" (content filter:f)`, `MID %d quarantined to "Virus" (content filter:f)`,
				`MID %d released from quarantine "Virus" (manual)`, `MID %d released from quarantine "Policy" (manual)`, `MID %d released from all quarantines`}, true},
		// Deleted from one, released from the other: never delivered.
		{"delete then release", []string{"Policy", "Virus"}, []step{{"delete", "Policy"}, {"release", "Virus"}},
			[]string{`MID %d quarantined to "Policy" (content filter:f)`, `MID %d quarantined to "Virus" (content filter:f)`,
				`MID %d deleted from quarantine "Policy" (manual)`, `MID %d released from quarantine "Virus" (manual)`,
				`MID %d deleted from all quarantines`, `Message finished MID %d done`}, false},
		{"release all at once", []string{"Policy", "Virus"}, []step{{"release", ""}},
			[]string{`MID %d quarantined to "Policy" (content filter:f)`, `MID %d quarantined to "Virus" (content filter:f)`,
				`MID %d released from quarantine "Policy" (manual)`, `MID %d released from quarantine "Virus" (manual)`, `MID %d released from all quarantines`}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, testSpecs)
			mid := f.hold(100, "hello", c.in...)
			for i, st := range c.steps {
				if i == len(c.steps)-1 {
					// Before the last step the message is still held,
					// after a restart too.
					f.reopen()
					if l, _ := f.s.List(""); len(l) != 1 || l[0].MID != mid {
						t.Fatalf("after reopen, List = %+v", l)
					}
				}
				var err error
				if st.op == "release" {
					err = f.s.Release(mid, st.q, WhyManual)
				} else {
					err = f.s.Delete(mid, st.q, WhyManual)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var want []string
			for _, l := range c.lines {
				want = append(want, fmt.Sprintf(l, mid))
			}
			// The lines before the reopen went to the first sink.
			got := f.linesOf(mid)
			if !slices.Equal(got, want[len(want)-len(got):]) {
				t.Errorf("lines (after the reopen):\n%s\nwant the end of:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if l, _ := f.s.List(""); len(l) != 0 {
				t.Errorf("still listed: %+v", l)
			}
			if got := slices.Contains(f.resumedMIDs(), mid); got != c.resumed {
				t.Errorf("resumed = %v, want %v", got, c.resumed)
			}
			if c.resumed {
				w, ok, err := f.spool.Work(mid)
				if err != nil || !ok || !w.Released || w.Stage != 2 || w.Quarantined() || w.Headers != "X-A: 1\r\n" {
					t.Errorf("work record after release: %+v %v %v", w, ok, err)
				}
			} else if f.live(mid) {
				t.Error("a deleted message is still in the spool")
			}
			if err := f.s.Release(mid, "", WhyManual); !errors.Is(err, ErrNotFound) {
				t.Errorf("second release: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestErrors: unknown quarantines and messages.
func TestErrors(t *testing.T) {
	f := newFixture(t, testSpecs)
	mid := f.hold(100, "x", "Policy")
	if err := f.s.Release(mid, "Virus", WhyManual); !errors.Is(err, ErrNotFound) {
		t.Errorf("release from a quarantine it is not in: %v", err)
	}
	if err := f.s.Delete(mid, "Nope", WhyManual); !errors.Is(err, ErrNoQuarantine) {
		t.Errorf("delete from an unknown quarantine: %v", err)
	}
	if err := f.s.Release(99, "", WhyManual); !errors.Is(err, ErrNotFound) {
		t.Errorf("release of an unknown MID: %v", err)
	}
	if _, err := f.s.List("Nope"); !errors.Is(err, ErrNoQuarantine) {
		t.Errorf("list of an unknown quarantine: %v", err)
	}
	err := f.s.Hold(context.Background(), mid, queue.Work{Held: []queue.Held{{Quarantine: "Nope"}}})
	if !errors.Is(err, ErrNoQuarantine) {
		t.Errorf("hold in an unknown quarantine: %v", err)
	}
}

// TestExpiry: each quarantine's action when its retention runs out, the
// oldest first; a message in two quarantines leaves when the second
// expires; a restart keeps the times.
func TestExpiry(t *testing.T) {
	f := newFixture(t, testSpecs)
	a := f.hold(100, "a", "Policy")          // deleted after 1h
	f.advance(time.Minute)                   //
	b := f.hold(100, "b", "Virus")           // released after 2h
	c := f.hold(100, "c", "Policy", "Virus") // deleted from Policy at 1h, released from Virus at 2h: deleted
	f.reopen()
	if next := f.s.expire(); next != maxSleep {
		t.Errorf("nothing due: next wake in %v, want %v", next, maxSleep)
	}
	f.advance(58 * time.Minute)
	if next := f.s.expire(); next != time.Minute {
		t.Errorf("after 59 min: next wake in %v, want 1m (a)", next)
	}
	if f.live(a) != true || len(f.lines.Snapshot()) != 0 {
		t.Fatalf("expired early: %q", f.lines.Snapshot())
	}
	f.advance(time.Minute)
	f.s.expire()
	if f.live(a) {
		t.Error("a is in the spool after its expiry (delete)")
	}
	f.advance(time.Hour + time.Minute)
	f.s.expire()
	want := []string{
		fmt.Sprintf(`MID %d deleted from quarantine "Policy" (expired)`, a),
		`Message finished MID 1 done`,
		fmt.Sprintf(`MID %d deleted from quarantine "Policy" (expired)`, c),
		fmt.Sprintf(`MID %d released from quarantine "Virus" (expired)`, b),
		fmt.Sprintf(`MID %d released from quarantine "Virus" (expired)`, c),
		fmt.Sprintf(`MID %d deleted from all quarantines`, c),
		fmt.Sprintf(`Message finished MID %d done`, c),
	}
	if got := f.lines.Snapshot(); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := f.resumedMIDs(); !slices.Equal(got, []uint64{b}) {
		t.Errorf("resumed %v, want [%d]", got, b)
	}
	if f.live(c) {
		t.Error("c, deleted from one of its quarantines, is still in the spool")
	}
}

// TestExpiryRuns: the expiry goroutine wakes by itself at the next expiry
// (real time, a short retention) and stops.
func TestExpiryRuns(t *testing.T) {
	f := newFixture(t, []Spec{{Name: "Policy", Retention: 50 * time.Millisecond, OnExpiry: ExpireRelease}})
	f.s.o.Now = time.Now
	f.now = time.Now()
	f.s.Start()
	defer f.s.Stop()
	mid := f.hold(10, "x", "Policy")
	f.lines.WaitFor(t, fmt.Sprintf(`MID %d released from quarantine "Policy" \(expired\)`, mid))
}

// TestSizeLimit: a quarantine over its size releases its oldest messages
// ("queue full"), not the one coming in, and counts what it holds.
func TestSizeLimit(t *testing.T) {
	f := newFixture(t, []Spec{{Name: "Policy", Retention: time.Hour, OnExpiry: ExpireDelete, MaxSize: 1000}, {Name: "Virus"}})
	a := f.hold(400, "a", "Policy")
	f.advance(time.Second)
	b := f.hold(400, "b", "Policy", "Virus")
	f.advance(time.Second)
	c := f.hold(400, "c", "Policy") // 1200 > 1000: a goes
	want := []string{fmt.Sprintf(`MID %d released from quarantine "Policy" (queue full)`, a)}
	if got := f.lines.Grep("released"); !slices.Equal(got, want) {
		t.Errorf("released lines %q, want %q", got, want)
	}
	f.advance(time.Second)
	d := f.hold(900, "d", "Policy") // b and c go; b stays in Virus
	if got := f.lines.Grep("released"); len(got) != 3 ||
		got[1] != fmt.Sprintf(`MID %d released from quarantine "Policy" (queue full)`, b) ||
		got[2] != fmt.Sprintf(`MID %d released from quarantine "Policy" (queue full)`, c) {
		t.Errorf("released lines %q", got)
	}
	in := f.s.Quarantines()
	if in[0].Messages != 1 || in[0].Bytes != 900 || in[1].Messages != 1 || in[1].Bytes != 400 {
		t.Errorf("Quarantines = %+v", in)
	}
	if l, _ := f.s.List("Policy"); len(l) != 1 || l[0].MID != d {
		t.Errorf("Policy holds %+v, want MID %d only", l, d)
	}
	if got := f.resumedMIDs(); !slices.Equal(got, []uint64{a, c}) {
		t.Errorf("resumed %v, want [%d %d] (b is still in Virus)", got, a, c)
	}
	// A message over the limit by itself pushes the others out and stays.
	f.advance(time.Second)
	e := f.hold(1500, "e", "Policy")
	if l, _ := f.s.List("Policy"); len(l) != 1 || l[0].MID != e {
		t.Errorf("Policy holds %+v, want MID %d only", l, e)
	}
	if got := f.resumedMIDs(); !slices.Equal(got, []uint64{a, c, d}) {
		t.Errorf("resumed %v, want [%d %d %d]", got, a, c, d)
	}
}

// TestShow: the header and text of a message, escaped: no terminal
// control, no bidi override, no markup rendered (the text is returned as
// text, and the HTML part only when there is no plain one).
func TestShow(t *testing.T) {
	f := newFixture(t, testSpecs)
	mid := f.nextMID
	f.nextMID++
	msg := "From: =?utf-8?q?Ev=C3=A9?= <e@x.example>\r\nSubject: pay \x1b[31mnow\u202e\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nline one\r\nline\x07two\r\n--b--\r\n"
	env := &queue.Envelope{MID: mid, From: "e@x.example", Received: f.clock(), Rcpts: []queue.Recipient{{Addr: "b@rcpt.example"}}}
	if err := f.spool.Commit(context.Background(), env, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Hold(context.Background(), mid, queue.Work{Held: []queue.Held{{Quarantine: "Policy", Reason: "r", Since: f.clock()}}}); err != nil {
		t.Fatal(err)
	}
	d, err := f.s.Show(mid)
	if err != nil {
		t.Fatal(err)
	}
	if d.Subject != `pay \x1b[31mnow\u202e` {
		t.Errorf("Subject %q", d.Subject)
	}
	if d.Header[0].Value != "Evé <e@x.example>" {
		t.Errorf("From %q", d.Header[0].Value)
	}
	if d.TextType != "text/plain" || d.Text != "line one\nline\\x07two" {
		t.Errorf("text %s %q", d.TextType, d.Text)
	}
	if d.In[0].Expires != f.clock().Add(time.Hour) || d.In[0].OnExpiry != ExpireDelete {
		t.Errorf("holding %+v", d.In[0])
	}
	if _, err := f.s.Show(99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Show(99): %v", err)
	}
}

// FuzzEscape: whatever the input, the output has no control character but
// the line ends and tabs the body keeps, no bidi control, no line
// separator, and is valid UTF-8; the body keeps every line end and tab.
func FuzzEscape(f *testing.F) {
	f.Add("plain")
	f.Add("a\x1b[2Jb\u202e\xff\r\n\t")
	f.Add("\u061c\ufeff\r\rx\n\n\u0085")
	f.Fuzz(func(t *testing.T, s string) {
		for _, lines := range []bool{false, true} {
			out := maillog.Escape(s)
			if lines {
				out = EscapeText(s)
				if n := strings.Count(strings.ReplaceAll(s, "\r\n", "\n"), "\n") + strings.Count(s, "\t"); strings.Count(out, "\n")+strings.Count(out, "\t") != n {
					t.Fatalf("%q escapes to %q: lines or tabs lost", s, out)
				}
			}
			if !isValid(out) {
				t.Fatalf("invalid UTF-8 from %q: %q", s, out)
			}
			for _, r := range out {
				if unsafeRune(r, lines) {
					t.Fatalf("%q escapes to %q, with %U", s, out, r)
				}
			}
		}
	})
}

// unsafeRune reports whether r must not reach a terminal or a page as it
// is: a control character (but LF and TAB in a body), a bidi control, a
// line or paragraph separator, the BOM.
func unsafeRune(r rune, lines bool) bool {
	if lines && (r == '\n' || r == '\t') {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' || r == '\ufeff'
}

func isValid(s string) bool { return strings.ToValidUTF8(s, "") == s }

// BenchmarkScan: what the quarantines' walks over what they hold cost
// with 10,000 messages in them: the expiry's (at each wake, and after each
// message comes in), a listing, and a search for the oldest when full.
func BenchmarkScan(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	s := &Store{o: Options{Now: func() time.Time { return now }, Events: smtptest.NewLines(), Logger: quiet}, specs: map[string]Spec{},
		msgs: map[uint64]*entry{}, used: map[string]int64{}, held: map[string]int{}}
	for _, sp := range []Spec{{Name: "Policy", Retention: time.Hour, MaxSize: 1 << 40}} {
		s.specs[sp.Name] = sp
		s.order = append(s.order, sp.Name)
	}
	for mid := uint64(1); mid <= 10000; mid++ {
		s.add(&entry{mid: mid, size: 5000, info: Summary{MID: mid}, work: queue.Work{Held: []queue.Held{
			{Quarantine: "Policy", Since: now.Add(time.Duration(mid) * time.Millisecond)}}}})
	}
	b.Run("expire", func(b *testing.B) {
		for b.Loop() {
			s.expire()
		}
	})
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			s.List("Policy")
		}
	})
	b.Run("oldest", func(b *testing.B) {
		for b.Loop() {
			s.makeRoom("Policy", 0) // under the limit: the check only
		}
	})
}
