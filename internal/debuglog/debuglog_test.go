package debuglog

import (
	"reflect"
	"sync"
	"testing"

	"github.com/mailgate/mailgate/event"
)

// sink keeps the debug lines it is given.
type sink struct {
	mu  sync.Mutex
	got []event.InjectionDebug
}

func (s *sink) Emit(e event.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, e.Event.(event.InjectionDebug))
}

// TestTranscript: a subscription records the sessions it matches, as many
// as it was given, with their IDs; two subscriptions matching one session
// both record it, and each counts it.
func TestTranscript(t *testing.T) {
	var a, b sink
	isA := func(k string) bool { return k == "a.example" }
	logs := []*Log[string]{
		New(isA, 2, &a),
		New(func(string) bool { return true }, 1, &b),
	}
	for _, tt := range []struct {
		key      string
		id       uint64
		recorded bool
	}{
		{"other.example", 1, true}, // b's only session
		{"other.example", 2, false},
		{"a.example", 3, true},
		{"a.example", 4, true},
		{"a.example", 5, false}, // a's two are spent
	} {
		hook := Transcript(logs, tt.key, tt.id)
		if (hook != nil) != tt.recorded {
			t.Fatalf("session %d (%s): recorded %v, want %v", tt.id, tt.key, hook != nil, tt.recorded)
		}
		if hook != nil {
			hook(false, []byte("EHLO client"))
			hook(true, []byte("250 ok"))
		}
	}
	want := func(ids ...uint64) []event.InjectionDebug {
		var out []event.InjectionDebug
		for _, id := range ids {
			out = append(out, event.InjectionDebug{ICID: id, Sent: false, Data: "EHLO client"},
				event.InjectionDebug{ICID: id, Sent: true, Data: "250 ok"})
		}
		return out
	}
	if !reflect.DeepEqual(a.got, want(3, 4)) {
		t.Errorf("a recorded %+v", a.got)
	}
	if !reflect.DeepEqual(b.got, want(1)) {
		t.Errorf("b recorded %+v", b.got)
	}
}

// TestSessionsRace: sessions that start at once take no more than the
// subscription's number between them.
func TestSessionsRace(t *testing.T) {
	var s sink
	logs := []*Log[int]{New(func(int) bool { return true }, 10, &s)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if Transcript(logs, i, uint64(i)) != nil {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if n != 10 {
		t.Errorf("%d sessions recorded, want 10", n)
	}
}
