package tracking

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Take waits for room rather than drop (a syslog sender over TCP is
// slowed), until its context ends; the next take makes room. Emit, at the
// same point, drops and counts.
func TestFeedTakeWaitsForRoom(t *testing.T) {
	f := NewFeed(FeedOptions{Host: "gw1", Buffer: 4})
	e := event.Entry{Time: time.Now(), Level: event.Info, Event: event.NewICID{ICID: 1}}
	ctx := context.Background()
	for range 4 {
		if err := f.Take(ctx, "esa1", e); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := f.Take(short, "esa1", e); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Take into a full buffer: %v, want it to wait until its context ends", err)
	}
	f.Emit(e)
	if f.Dropped() != 1 {
		t.Fatalf("Emit into a full buffer: %d dropped, want 1", f.Dropped())
	}
	done := make(chan error, 1)
	go func() { done <- f.Take(ctx, "esa1", e) }()
	select {
	case err := <-done:
		t.Fatalf("Take returned (%v) before the buffer was taken", err)
	case <-time.After(50 * time.Millisecond):
	}
	if got := f.take(); len(got) != 4 {
		t.Fatalf("take: %d entries, want 4", len(got))
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Take still waits after the buffer was taken")
	}
	if got := f.take(); len(got) != 1 || got[0].host != "esa1" {
		t.Fatalf("after the wait: %+v, want the one entry Take put", got)
	}
}
