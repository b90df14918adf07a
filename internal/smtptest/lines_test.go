package smtptest

import (
	"reflect"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// TestLines: a waiter wakes at the lines it waits for, which come from
// another goroutine, and sees them in order.
func TestLines(t *testing.T) {
	l := NewLines()
	go func() {
		for i := uint64(1); i <= 3; i++ {
			l.Emit(event.Entry{Time: time.Now(), Level: event.Info, Event: event.InjectionDebug{ICID: i, Data: "x"}})
		}
	}()
	two := l.WaitN(t, 2, `^[13] `)
	all := l.WaitLines(t, `^3 `)
	if want := []string{"1 Rcvd: 'x'", "3 Rcvd: 'x'"}; !reflect.DeepEqual(two, want) {
		t.Errorf("WaitN = %q, want %q", two, want)
	}
	if want := []string{"1 Rcvd: 'x'", "2 Rcvd: 'x'", "3 Rcvd: 'x'"}; !reflect.DeepEqual(all, want) || !reflect.DeepEqual(l.Snapshot(), want) {
		t.Errorf("WaitLines = %q, Snapshot = %q, want %q", all, l.Snapshot(), want)
	}
	if got := l.WaitFor(t, `^2 `); got != "2 Rcvd: 'x'" {
		t.Errorf("WaitFor = %q", got)
	}
	if got := l.Grep(`^[12] `); len(got) != 2 {
		t.Errorf("Grep = %q", got)
	}
}
