package smtptest

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
)

// Lines is an event sink that keeps the ESA text of every event (the mail
// log line without its time and level), so that a test can wait for the
// line that says what it expects, with a deadline, instead of sleeping.
type Lines struct {
	mu      sync.Mutex
	all     []string
	changed chan struct{} // closed and replaced at each line: wakes every waiter
}

// linesDeadline is how long a wait lasts before the test fails: long, as a
// loaded machine is slow, and only a failing test waits it out.
const linesDeadline = 20 * time.Second

// NewLines returns an empty sink.
func NewLines() *Lines { return &Lines{changed: make(chan struct{})} }

// Emit keeps e's text.
func (l *Lines) Emit(e event.Entry) {
	s := string(maillog.AppendMessage(nil, e.Event))
	l.mu.Lock()
	l.all = append(l.all, s)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Snapshot returns the lines so far.
func (l *Lines) Snapshot() []string {
	all, _ := l.state()
	return append([]string(nil), all...)
}

// state returns the lines so far, which no later Emit changes, and the
// channel the next Emit closes.
func (l *Lines) state() ([]string, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all[:len(l.all):len(l.all)], l.changed
}

// Grep returns the lines so far that match re.
func (l *Lines) Grep(re string) []string {
	all, _ := l.state()
	return grep(regexp.MustCompile(re), all)
}

func grep(rx *regexp.Regexp, all []string) []string {
	var out []string
	for _, s := range all {
		if rx.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

// WaitN waits until n lines match re and returns the lines that do.
func (l *Lines) WaitN(t testing.TB, n int, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var got []string
	l.wait(t, fmt.Sprintf("fewer than %d lines match %q", n, re), func(all []string) bool {
		got = grep(rx, all)
		return len(got) >= n
	})
	return got
}

// WaitFor waits until a line matches re and returns it.
func (l *Lines) WaitFor(t testing.TB, re string) string {
	t.Helper()
	return l.WaitN(t, 1, re)[0]
}

// WaitLines waits until a line matches re and returns all lines so far.
func (l *Lines) WaitLines(t testing.TB, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var got []string
	l.wait(t, fmt.Sprintf("no line matches %q", re), func(all []string) bool {
		got = all
		return len(grep(rx, all)) > 0
	})
	return append([]string(nil), got...)
}

// wait calls done with the lines so far, again at each new line, until it
// returns true; at the deadline the test fails with what and the lines.
func (l *Lines) wait(t testing.TB, what string, done func(all []string) bool) {
	t.Helper()
	deadline := time.NewTimer(linesDeadline)
	defer deadline.Stop()
	for {
		all, changed := l.state()
		if done(all) {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s; lines:\n%s", what, strings.Join(all, "\n"))
		}
	}
}
