package tracking_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
)

// relayed appends the entries the gateway emits for a message it relays
// (bench/relay.sh's: one message a connection, one recipient, delivered
// over a connection that carries 25), as the feed takes them: events,
// not parsed text.
func relayed(dst []event.Entry, mid uint64, at time.Time) []event.Entry {
	dcid := 1 + (mid-1)/25
	rids := []int{0}
	evs := make([]event.Event, 0, 18)
	if (mid-1)%25 == 0 {
		evs = append(evs, event.NewDCID{DCID: dcid, InterfaceIP: "127.0.0.1", RemoteIP: "127.0.0.1", Port: 2526})
	}
	evs = append(evs,
		event.NewICID{ICID: mid, Interface: "Relay", InterfaceIP: "127.0.0.1", RemoteIP: "127.0.0.1", ReverseHost: "localhost", Verified: true},
		event.HATMatch{ICID: mid, Action: event.ActionRelay, Group: "RELAY_SG", Rule: "127.0.0.0/8", SBRS: event.SBRSNotEnabled},
		event.StartMID{MID: mid, ICID: mid},
		event.MailFrom{MID: mid, ICID: mid, From: "sender@example.com"},
		event.RcptTo{MID: mid, ICID: mid, RID: 0, To: "rcpt@example.net"},
		event.MessageIDHeader{MID: mid, MessageID: fmt.Sprintf("<590f.%04x.fffffff0@vm>", mid)},
		event.Ready{MID: mid, Bytes: 1162, From: "sender@example.com"},
		event.PolicyMatch{MID: mid, Policy: "DEFAULT", Table: "outbound"},
		event.Queued{MID: mid},
		event.ICIDClose{ICID: mid},
		event.ConnectionEnd{ICID: mid, Cause: event.CauseQuit, State: "helo", LastCommand: "QUIT", Duration: 4 * time.Millisecond,
			Commands: []event.CommandCount{{Verb: "helo", OK: 1, Total: 1}, {Verb: "mail", OK: 1, Total: 1},
				{Verb: "rcpt", OK: 1, Total: 1}, {Verb: "data", OK: 1, Total: 1}, {Verb: "quit", OK: 1, Total: 1}}},
		event.DeliveryStart{DCID: dcid, MID: mid, RIDs: rids},
		event.MessageDone{DCID: dcid, MID: mid, RIDs: rids},
		event.Response{MID: mid, RIDs: rids, Text: "2.0.0 Ok", Quote: '\''},
		event.MessageFinished{MID: mid, Status: event.FinishedDone},
	)
	if mid%25 == 0 {
		evs = append(evs, event.DCIDClose{DCID: dcid})
	}
	for i, ev := range evs {
		dst = append(dst, event.Entry{Time: at.Add(time.Duration(i) * time.Microsecond), Level: event.Info, Event: ev})
	}
	return dst
}

// BenchmarkTrackRelay is tracking's part of a relayed message's CPU: its
// entries folded by a Tracker into the SQLite store, in chunks of 32,768
// entries (where the feed wakes its writer before the second is up). An
// op is one message; cpu-us/msg counts the store's writing goroutine too.
// The entries are made before the timer starts.
func BenchmarkTrackRelay(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	tr := tracking.NewTracker(s, tracking.Options{ChunkSize: 32768})
	start := time.Now()
	var entries []event.Entry
	feed := func(first uint64, n int) {
		entries = entries[:0]
		for i := range n {
			mid := first + uint64(i)
			entries = relayed(entries, mid, start.Add(time.Duration(mid)*time.Millisecond))
		}
		for _, e := range entries {
			if err := tr.Add(ctx, "relay.localdomain", e); err != nil {
				b.Fatal(err)
			}
		}
		if err := tr.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	feed(1, 2000) // the store's first pages
	b.StopTimer()
	b.ReportAllocs()
	entries = entries[:0]
	for i := range b.N {
		mid := uint64(2001 + i)
		entries = relayed(entries, mid, start.Add(time.Duration(mid)*time.Millisecond))
	}
	cpu0 := cpuTime(b)
	b.StartTimer()
	for _, e := range entries {
		if err := tr.Add(ctx, "relay.localdomain", e); err != nil {
			b.Fatal(err)
		}
	}
	if err := tr.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
