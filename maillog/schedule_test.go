package maillog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/wait"
)

// Rollover by time: a file with lines rolls over once it is RollEvery old,
// every line in the rolled file or the new one; a file with only its
// header does not, however long it waits.
func TestWriterRolloverByTime(t *testing.T) {
	w, path := openTest(t, Options{RollEvery: 300 * time.Millisecond, FlushInterval: 10 * time.Millisecond})
	defer closeTest(t, w)
	rolled := func() []string {
		rs, err := RolledFiles(path)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	for round := 1; round <= 2; round++ {
		w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: uint64(round)}})
		wait.Until(t, fmt.Sprintf("rollover %d by time", round), func() bool { return len(rolled()) == round })
		rs := rolled()
		if got := mids(t, rs[round-1]); len(got) != 1 || got[0] != uint64(round) {
			t.Errorf("rolled file %d holds MIDs %v, want [%d]", round, got, round)
		}
		if b := body(t, path); len(b) != 0 {
			t.Errorf("the new file holds %q beyond its header", b)
		}
	}
	// A file with only its header is not rolled over when due.
	w.fmu.Lock()
	due := w.rollDue()
	w.fmu.Unlock()
	if err := w.rollIfDue(due.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if rs := rolled(); len(rs) != 2 {
		t.Fatalf("a header-only file was rolled over: %q", rs)
	}
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 3}})
	wait.Until(t, "rollover 3", func() bool { return len(rolled()) == 3 })
	for _, f := range rolled() {
		if len(body(t, f)) != 1 {
			t.Errorf("%s: a rolled file without exactly one line: %q", f, body(t, f))
		}
	}
}

// The daily schedule rolls at the first RollAt after the file was begun;
// RollEvery, when sooner, wins.
func TestWriterRollDue(t *testing.T) {
	loc := cst
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		begun  string
		every  time.Duration
		daily  bool
		rollAt time.Duration
		want   string
	}{
		{"2026-03-07 09:00:00", 0, true, 0, "2026-03-08 00:00:00"},
		{"2026-03-07 02:59:59", 0, true, 3 * time.Hour, "2026-03-07 03:00:00"},
		{"2026-03-07 03:00:00", 0, true, 3 * time.Hour, "2026-03-08 03:00:00"},
		{"2026-03-07 23:30:00", 0, true, 23*time.Hour + 45*time.Minute, "2026-03-07 23:45:00"},
		{"2026-03-07 09:00:00", time.Hour, false, 0, "2026-03-07 10:00:00"},
		{"2026-03-07 23:30:00", time.Hour, true, 0, "2026-03-08 00:00:00"},
		{"2026-03-07 09:00:00", time.Hour, true, 0, "2026-03-07 10:00:00"},
	} {
		w := &Writer{loc: loc, rollEvery: c.every, rollDaily: c.daily, rollAt: c.rollAt, begun: at(c.begun)}
		if got := w.rollDue(); !got.Equal(at(c.want)) {
			t.Errorf("begun %s every %v daily %v at %v: due %s, want %s", c.begun, c.every, c.daily, c.rollAt, got.In(loc), c.want)
		}
	}
}

// A file Open appends to is as old as its first line: a gateway restarted
// more often than RollEvery still rolls its file over.
func TestWriterRolloverAgeOfExisting(t *testing.T) {
	w, path := openTest(t, Options{})
	w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 1}})
	closeTest(t, w)
	// Its header lines are dated now; make the file begin an hour ago.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := AppendLine(nil, event.Entry{Time: time.Now().Add(-time.Hour), Level: event.Info, Event: event.BeginLogfile{}}, cst)
	if err := os.WriteFile(path, append(append(old, '\n'), b...), 0o640); err != nil {
		t.Fatal(err)
	}
	w, err = Open(path, Options{Location: cst, RollEvery: 30 * time.Minute, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeTest(t, w)
	wait.Until(t, "the hour-old file rolled over", func() bool {
		rs, _ := RolledFiles(path)
		return len(rs) == 1
	})
}

// Retention by age: rolled files last written before MaxAge are deleted
// at Open, the younger ones kept, whatever MaxFiles allows.
func TestWriterMaxAge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail_logs")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "mail.current")
	now := time.Now()
	files := []struct {
		name string
		age  time.Duration
	}{
		{"mail.@20260101T000000.s", 10 * 24 * time.Hour},
		{"mail.@20260102T000000.s", 8 * 24 * time.Hour},
		{"mail.@20260103T000000.s", 6 * 24 * time.Hour},
		{"mail.@20260104T000000.s", 24 * time.Hour},
		{"other.@20260101T000000.s", 30 * 24 * time.Hour}, // another log's: never touched
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte("x\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-f.age), now.Add(-f.age)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Open(path, Options{Location: cst, MaxAge: 7 * 24 * time.Hour, MaxFiles: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer closeTest(t, w)
	left := func() []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	want := fmt.Sprint([]string{"mail.@20260103T000000.s", "mail.@20260104T000000.s", "mail.current", "other.@20260101T000000.s"})
	if got := fmt.Sprint(left()); got != want {
		t.Errorf("after Open: %s, want %s", got, want)
	}
	if w.Removed().IsZero() || now.Sub(w.Removed()) < 8*24*time.Hour-time.Minute {
		t.Errorf("Removed() = %v, want the newest deleted file's time, 8 days ago", w.Removed())
	}
}
