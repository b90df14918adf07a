package stats

import (
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// BenchmarkEmit is the cost the counters add to the event stream, per
// line of a received message (the sessions' goroutines pay it).
func BenchmarkEmit(b *testing.B) {
	c, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var mid uint64
		for pb.Next() {
			mid++
			for _, ev := range []event.Event{event.NewICID{ICID: mid}, event.StartMID{MID: mid, ICID: mid},
				event.RcptTo{MID: mid, ICID: mid, RID: 0, To: "a@example.com"}, event.Queued{MID: mid}, event.ICIDClose{ICID: mid}} {
				c.Emit(event.Entry{Time: now, Level: event.Info, Event: ev})
			}
		}
	})
}
