package alert

import (
	"context"
	"errors"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/queue"
)

// rig is an Alerter over a real spool and counters; what it hands to
// delivery is kept.
type rig struct {
	a     *Alerter
	spool *queue.Spool
	lines *smtptest.Lines

	mu     sync.Mutex
	queued []*queue.Envelope
}

func newRig(t *testing.T, to []string, repeat time.Duration, checks ...Check) *rig {
	t.Helper()
	dir := t.TempDir()
	sp, err := queue.Open(filepath.Join(dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	ids, err := queue.OpenCounters(filepath.Join(dir, "counters"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ids.Close() })
	r := &rig{spool: sp, lines: smtptest.NewLines()}
	r.a = New(Options{Hostname: "mx.example.com", To: to, Version: "mailgate test", RepeatInterval: repeat,
		Checks: checks, Spool: sp, IDs: ids, Events: r.lines,
		Enqueue: func(env *queue.Envelope) { r.mu.Lock(); r.queued = append(r.queued, env); r.mu.Unlock() }})
	return r
}

// subjects are the Subject fields of the messages handed to delivery, in
// order, read back from the spool.
func (r *rig) subjects(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, env := range r.queued {
		_, body, err := r.spool.Read(env.MID)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("MID %d: %v", env.MID, err)
		}
		out = append(out, m.Header.Get("Subject"))
	}
	return out
}

// switchable is a check whose conditions the test sets.
type switchable struct {
	mu sync.Mutex
	cs []Condition
}

func (s *switchable) set(cs ...Condition) { s.mu.Lock(); s.cs = cs; s.mu.Unlock() }
func (s *switchable) check(context.Context, time.Time) []Condition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cs)
}

var (
	queueOld = Condition{Class: System, Severity: Warning, Key: "queue-age", Message: "The oldest message has waited 5h"}
	diskLow  = Condition{Class: Hardware, Severity: Warning, Key: "disk-space", Message: "Free disk space 1.0 GiB is below 2.0 GiB"}
	diskCrit = Condition{Class: Hardware, Severity: Critical, Key: "disk-space", Message: "Free disk space 10.0 MiB is below the floor"}
)

// TestSuppression runs rounds at chosen times and checks which alerts go
// out: the first at once, repeats suppressed within repeat_interval and
// sent after it, a rise in severity at once, the end as "Cleared", a
// condition that comes back within the interval suppressed.
func TestSuppression(t *testing.T) {
	const repeat = time.Hour
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	type round struct {
		at   time.Duration
		hold []Condition
		want []string // subjects sent in this round
	}
	for _, tt := range []struct {
		name       string
		rounds     []round
		suppressed uint64
	}{
		{"first, suppressed, repeated, cleared", []round{
			{0, []Condition{queueOld}, []string{"Warning-mx.example.com: (System) The oldest message has waited 5h"}},
			{time.Minute, []Condition{queueOld}, nil},
			{59 * time.Minute, []Condition{queueOld}, nil},
			{time.Hour, []Condition{queueOld}, []string{"Warning-mx.example.com: (System) The oldest message has waited 5h"}},
			{time.Hour + time.Minute, nil, []string{"Information-mx.example.com: (System) Cleared: The oldest message has waited 5h"}},
			{2 * time.Hour, nil, nil},
		}, 2},
		{"worse at once, better waits", []round{
			{0, []Condition{diskLow}, []string{"Warning-mx.example.com: (Hardware) Free disk space 1.0 GiB is below 2.0 GiB"}},
			{time.Minute, []Condition{diskCrit}, []string{"Critical-mx.example.com: (Hardware) Free disk space 10.0 MiB is below the floor"}},
			{2 * time.Minute, []Condition{diskLow}, nil},
			{3 * time.Minute, nil, []string{"Information-mx.example.com: (Hardware) Cleared: Free disk space 1.0 GiB is below 2.0 GiB"}},
		}, 1},
		{"flapping", []round{
			{0, []Condition{queueOld}, []string{"Warning-mx.example.com: (System) The oldest message has waited 5h"}},
			{time.Minute, nil, []string{"Information-mx.example.com: (System) Cleared: The oldest message has waited 5h"}},
			{2 * time.Minute, []Condition{queueOld}, nil}, // back within the interval: suppressed
			{3 * time.Minute, nil, nil}, // and its end untold: it was not sent
			{61 * time.Minute, []Condition{queueOld}, []string{"Warning-mx.example.com: (System) The oldest message has waited 5h"}},
		}, 1},
		{"two conditions, one class", []round{
			{0, []Condition{queueOld, {Class: System, Severity: Warning, Key: "queue-size", Message: "The queue holds 9 messages"}},
				[]string{"Warning-mx.example.com: (System) The oldest message has waited 5h", "Warning-mx.example.com: (System) The queue holds 9 messages"}},
			{time.Minute, []Condition{queueOld}, []string{"Information-mx.example.com: (System) Cleared: The queue holds 9 messages"}},
		}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sw := &switchable{}
			r := newRig(t, []string{"admin@example.com"}, repeat, sw.check)
			sent := 0
			for i, rd := range tt.rounds {
				sw.set(rd.hold...)
				r.a.Evaluate(t0.Add(rd.at))
				got := r.subjects(t)[sent:]
				sent += len(got)
				if !slices.Equal(got, rd.want) {
					t.Errorf("round %d (+%s): sent %q, want %q", i, rd.at, got, rd.want)
				}
			}
			if _, failed, supp := r.a.Counts(); failed != 0 || supp != tt.suppressed {
				t.Errorf("failed %d, suppressed %d; want 0, %d", failed, supp, tt.suppressed)
			}
		})
	}
}

// TestAlertMessage checks the mail and the log lines of one alert with two
// recipients: the envelope (null sender, both recipients), the header
// fields, the body's detail and next step, and the ESA's line per
// recipient beside the generated message's own lines.
func TestAlertMessage(t *testing.T) {
	c := Condition{Class: System, Severity: Critical, Key: "mail-log /var/log/mail.current",
		Message: "The mail log cannot be written: /var/log/mail.current", Detail: "3 failed writes\nThe latest error: no space left on device",
		Next: "Free space on the log's file system."}
	r := newRig(t, []string{"admin@example.com", "noc@example.net"}, time.Hour, func(context.Context, time.Time) []Condition { return []Condition{c} })
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	r.a.Evaluate(now)
	if len(r.queued) != 1 {
		t.Fatalf("%d messages queued, want 1", len(r.queued))
	}
	env, body, err := r.spool.Read(r.queued[0].MID)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "" || len(env.Rcpts) != 2 || env.Rcpts[0].Addr != "admin@example.com" || env.Rcpts[1].Addr != "noc@example.net" {
		t.Errorf("envelope %+v: want the null sender and both recipients", env)
	}
	m, err := mail.ReadMessage(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{
		"From":           "mailer-daemon@mx.example.com",
		"To":             "admin@example.com, noc@example.net",
		"Subject":        "Critical-mx.example.com: (System) The mail log cannot be written: /var/log/mail.current",
		"Auto-Submitted": "auto-generated",
		"Content-Type":   "text/plain; charset=utf-8",
	} {
		if got := m.Header.Get(field); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	text := string(body)
	for _, want := range []string{"The Critical message is:\r\n\r\nThe mail log cannot be written", "The latest error: no space left on device\r\n",
		"What to do:\r\nFree space on the log's file system.\r\n", "Repeats: at most once every 1h0m0s", "Hostname: mx.example.com\r\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	if regexp.MustCompile(`[^\r]\n`).MatchString(text) {
		t.Errorf("a bare LF in the message:\n%q", text)
	}
	mid := r.queued[0].MID
	want := []string{
		"Start MID " + itoa(mid) + " ICID 0",
		"MID " + itoa(mid) + " ICID 0 From: <>",
		"MID " + itoa(mid) + " ICID 0 RID 0 To: <admin@example.com>",
		"MID " + itoa(mid) + " ICID 0 RID 1 To: <noc@example.net>",
		"MID " + itoa(mid) + " Subject 'Critical-mx.example.com: (System) The mail log cannot be written: /var/log/mail.current'",
		"MID " + itoa(mid) + " ready " + itoa(uint64(len(body))) + " bytes from <>",
		`A System/Critical alert was sent to admin@example.com with subject "Critical-mx.example.com: (System) The mail log cannot be written: /var/log/mail.current".`,
		`A System/Critical alert was sent to noc@example.net with subject "Critical-mx.example.com: (System) The mail log cannot be written: /var/log/mail.current".`,
		"MID " + itoa(mid) + " queued for delivery",
	}
	if got := r.lines.Snapshot(); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	counts, _, _ := r.a.Counts()
	for _, k := range counts {
		want := uint64(0)
		if k.Class == System && k.Severity == Critical {
			want = 1
		}
		if k.N != want {
			t.Errorf("count %s/%s = %d, want %d", k.Class, k.Severity, k.N, want)
		}
	}
}

// TestNoRecipients: without alerts.to an alert is counted, not mailed.
func TestNoRecipients(t *testing.T) {
	r := newRig(t, nil, time.Hour, func(context.Context, time.Time) []Condition { return []Condition{queueOld} })
	r.a.Evaluate(time.Now())
	if len(r.queued) != 0 || len(r.lines.Snapshot()) != 0 {
		t.Errorf("mailed without recipients: %v %q", r.queued, r.lines.Snapshot())
	}
	counts, failed, _ := r.a.Counts()
	if !slices.Contains(counts, Count{Class: System, Severity: Warning, N: 1}) || failed != 0 {
		t.Errorf("counts %v, %d failed: want System/Warning 1, none failed (none tried)", counts, failed)
	}
}

// TestHold: a held condition is sent before Hold returns (a gateway
// about to stop on it has the alert in its spool), its end before
// Release returns; a round in between does not send it again.
func TestHold(t *testing.T) {
	r := newRig(t, []string{"admin@example.com"}, time.Hour)
	r.a.Hold(ListenerDown("InboundMail", "127.0.0.1:25", context.Canceled))
	sent := `A System/Critical alert was sent to admin@example.com with subject "Critical-mx.example.com: (System) Listener InboundMail stopped accepting connections".`
	if got := r.lines.Grep(regexp.QuoteMeta(sent)); len(got) != 1 {
		t.Fatalf("after Hold: %q, want %q", r.lines.Snapshot(), sent)
	}
	r.a.Evaluate(time.Now())
	r.a.Release(System, "listener InboundMail")
	cleared := `A System/Information alert was sent to admin@example.com with subject "Information-mx.example.com: (System) Cleared: Listener InboundMail stopped accepting connections".`
	if got := r.lines.Grep(regexp.QuoteMeta(cleared)); len(got) != 1 {
		t.Fatalf("after Release: %q, want %q", r.lines.Snapshot(), cleared)
	}
	if got := r.lines.Grep(regexp.QuoteMeta(sent)); len(got) != 1 {
		t.Errorf("sent %d times, want once", len(got))
	}
}

// TestRun: a started Alerter runs a round at once, then every Interval,
// until Stop.
func TestRun(t *testing.T) {
	sw := &switchable{}
	r := newRig(t, []string{"admin@example.com"}, time.Hour, sw.check)
	r.a.o.Interval = 10 * time.Millisecond
	sw.set(queueOld)
	r.a.Start()
	r.lines.WaitFor(t, `^A System/Warning alert was sent to admin@example.com with subject "Warning-mx.example.com: \(System\) The oldest message has waited 5h"\.$`)
	sw.set()
	r.lines.WaitFor(t, `^A System/Information alert was sent to admin@example.com with subject "Information-mx.example.com: \(System\) Cleared: The oldest message has waited 5h"\.$`)
	r.a.Stop()
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestLogCheck: the mail log's condition begins when the failures grow,
// holds through quiet rounds (no new failure, the file unchanged: nothing
// proves the log writable), and ends when the file grows with no new
// failure.
func TestLogCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mail.current")
	var f LogFailures
	check := LogCheck(path, func() LogFailures { return f })
	appendLine := func() {
		t.Helper()
		file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		file.WriteString("a line\n")
		file.Close()
	}
	for i, step := range []struct {
		do   func()
		hold bool
	}{
		{func() {}, false},
		{appendLine, false},
		{func() { f.WriteErrors++; f.LostLines += 3; f.LastError = errors.New("no space left on device") }, true},
		{func() {}, true}, // quiet: still failing as far as anyone knows
		{func() { f.Dropped++ }, true},
		{appendLine, false}, // a write went through
		{func() {}, false},
		{func() { f.WriteErrors++; appendLine() }, true}, // part of a write, then the error
	} {
		step.do()
		cs := check(context.Background(), time.Now())
		if (len(cs) == 1) != step.hold {
			t.Fatalf("step %d: conditions %+v, want held %t", i, cs, step.hold)
		}
		if step.hold && (cs[0].Severity != Critical || cs[0].Key != "mail-log "+path || !strings.Contains(cs[0].Detail, "no space left on device")) {
			t.Errorf("step %d: %+v", i, cs[0])
		}
	}
}
