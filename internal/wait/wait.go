// Package wait is the tests' one way to wait for a state that announces
// itself by no event: a condition checked at growing intervals until a
// deadline. It imports nothing of the project, so any package's tests may
// use it.
package wait

import (
	"testing"
	"time"
)

// Timeout bounds every wait. It is generous: a wait
// asserts that something happens, never how fast.
const Timeout = 20 * time.Second

// Until waits until cond holds and fails the test after
// Timeout. It checks at once, then after 1 ms, and at doubling
// intervals up to 100 ms, so that a condition that costs something (a
// process to run, a file to read) is not checked in a busy loop. It is for
// states that announce themselves by no event or line (a counter, a file,
// a listening port); where there is one, wait on it instead.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	UntilWithin(t, Timeout, what, cond)
}

// UntilWithin is Until with a bound of its own, for work that
// takes seconds even when all is well.
func UntilWithin(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: never happened: %s", bound, what)
		}
		<-time.After(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}
