package tracking_test

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
)

// TestBacklogHeap reports the heap a Tracker holds after a backlog: 20,000
// messages received and queued, none delivered, over 60 s of log time,
// flushed each second of it as the live feed does. A note, not a check
// (the heap's size depends on the runtime): TRACKING_HEAP=1 runs it.
func TestBacklogHeap(t *testing.T) {
	if os.Getenv("TRACKING_HEAP") == "" {
		t.Skip("TRACKING_HEAP=1 runs it")
	}
	const n = 20000
	ctx := context.Background()
	s := openTemp(t)
	tr := tracking.NewTracker(s, tracking.Options{})
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	sec := -1
	for i := range n {
		at := t0.Add(time.Duration(i) * 60 * time.Second / n)
		if s := int(at.Sub(t0) / time.Second); s != sec {
			if err := tr.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			sec = s
		}
		// A relayed message's entries up to "queued for delivery" and
		// the connection's end: its delivery is suspended.
		for _, e := range relayed(nil, uint64(i+1), at) {
			if _, ok := e.Event.(event.DeliveryStart); ok {
				break
			}
			if err := tr.Add(ctx, "gw1", e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	msgs, conns := tracking.InMemory(tr)
	t.Logf("%d messages queued over 60 s: %d messages and %d connections in memory, heap in use %.1f MB",
		n, msgs, conns, float64(ms.HeapInuse)/(1<<20))
	runtime.KeepAlive(tr)
}
