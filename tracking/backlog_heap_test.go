package tracking_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
)

// TestBacklogHeap: a backlog does not stay in memory. 20,000 messages
// received and queued, none delivered, over 60 s of log time, flushed each
// second of it as the live feed does: the Tracker holds about the last
// IdleAfter of them. The heap it then holds is logged, not checked (its
// size is the runtime's): 49.5 MB when every record stayed, 11.4 MB with
// the default IdleAfter.
func TestBacklogHeap(t *testing.T) {
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
	// The last IdleAfter of log time, and a round of it more: a record is
	// let go at the end of the first round that finds it idle.
	if most := n * int(tracking.DefaultIdleAfter+2*time.Second) / int(60*time.Second); msgs > most {
		t.Errorf("%d messages in memory after the backlog, want at most %d", msgs, most)
	}
	t.Logf("%d messages queued over 60 s: %d messages and %d connections in memory, heap in use %.1f MB",
		n, msgs, conns, float64(ms.HeapInuse)/(1<<20))
	runtime.KeepAlive(tr)
}
