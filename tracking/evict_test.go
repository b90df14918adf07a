package tracking_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
)

// TestEvictIdle: a record that gets no line for longer than IdleAfter, in
// the log's time, while other traffic flows is let go of, and its next
// line loads it again; what is stored in the end is what a Tracker that
// keeps every record in memory stores.
func TestEvictIdle(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	in := func(id uint64) tracking.ConnKey {
		return tracking.ConnKey{Host: "gw1", Kind: event.InboundConn, ID: id}
	}
	out := func(id uint64) tracking.ConnKey {
		return tracking.ConnKey{Host: "gw1", Kind: event.OutboundConn, ID: id}
	}
	rids := []int{0}
	for _, tc := range []struct {
		name        string
		first, last []event.Event // at t0, and after 40 s of other traffic
		keys        tracking.Keys // the records to compare, besides the traffic's
		quiet       any           // the silent record's key
		lines       int           // its lines
		evicted     int           // records let go of
	}{{
		// Received and queued; delivered 41 s later.
		name: "queued message",
		first: []event.Event{
			event.NewICID{ICID: 1, Interface: "Incoming", InterfaceIP: "10.0.0.1", RemoteIP: "192.0.2.7", ReverseHost: "mx.example.org", Verified: true},
			event.HATMatch{ICID: 1, Action: event.ActionAccept, Group: "UNKNOWNLIST", Rule: "ALL", SBRS: event.SBRSNotEnabled},
			event.StartMID{MID: 1, ICID: 1},
			event.MailFrom{MID: 1, ICID: 1, From: "a@example.org"},
			event.RcptTo{MID: 1, ICID: 1, RID: 0, To: "b@example.com"},
			event.Subject{MID: 1, Subject: "'waiting'"},
			event.Ready{MID: 1, Bytes: 2048, From: "a@example.org"},
			event.Queued{MID: 1},
			event.ICIDClose{ICID: 1},
		},
		last: []event.Event{
			event.NewDCID{DCID: 9999, InterfaceIP: "10.0.0.1", RemoteIP: "198.51.100.25", Port: 25},
			event.DeliveryStart{DCID: 9999, MID: 1, RIDs: rids},
			event.MessageDone{DCID: 9999, MID: 1, RIDs: rids},
			event.Response{MID: 1, RIDs: rids, Text: "2.0.0 Ok", Quote: '\''},
			event.MessageFinished{MID: 1, Status: event.FinishedDone},
			event.DCIDClose{DCID: 9999},
		},
		keys:    tracking.Keys{Messages: []tracking.MessageKey{{Host: "gw1", MID: 1}}, Conns: []tracking.ConnKey{in(1), out(9999)}},
		quiet:   tracking.MessageKey{Host: "gw1", MID: 1},
		lines:   10,
		evicted: 1,
	}, {
		// Opened and silent; 41 s later it sends a message and quits.
		name: "idle connection",
		first: []event.Event{
			event.NewICID{ICID: 5000, Interface: "Incoming", InterfaceIP: "10.0.0.1", RemoteIP: "192.0.2.8", ReverseHost: "unknown"},
			event.HATMatch{ICID: 5000, Action: event.ActionAccept, Group: "UNKNOWNLIST", Rule: "ALL", SBRS: event.SBRSNotEnabled},
		},
		last: []event.Event{
			event.StartMID{MID: 5001, ICID: 5000},
			event.MailFrom{MID: 5001, ICID: 5000, From: "c@example.org"},
			event.RcptTo{MID: 5001, ICID: 5000, RID: 0, To: "d@example.com"},
			event.Ready{MID: 5001, Bytes: 512, From: "c@example.org"},
			event.Queued{MID: 5001},
			event.ICIDClose{ICID: 5000},
			event.ConnectionEnd{ICID: 5000, Cause: event.CauseQuit, State: "helo", LastCommand: "QUIT", Duration: 41 * time.Second},
		},
		keys:    tracking.Keys{Messages: []tracking.MessageKey{{Host: "gw1", MID: 5001}}, Conns: []tracking.ConnKey{in(5000)}},
		quiet:   in(5000),
		lines:   4,
		evicted: 1,
	}, {
		// Refused at the end of DATA; the message's end is logged 41 s
		// later. The connection, let go of meanwhile, still tells why.
		name: "refused message",
		first: []event.Event{
			event.NewICID{ICID: 6000, Interface: "Incoming", InterfaceIP: "10.0.0.1", RemoteIP: "192.0.2.9", ReverseHost: "unknown"},
			event.HATMatch{ICID: 6000, Action: event.ActionAccept, Group: "UNKNOWNLIST", Rule: "ALL", SBRS: event.SBRSNotEnabled},
			event.StartMID{MID: 6001, ICID: 6000},
			event.MailFrom{MID: 6001, ICID: 6000, From: "e@example.org"},
			event.RcptTo{MID: 6001, ICID: 6000, RID: 0, To: "f@example.com"},
			event.ReceivingFailed{ICID: 6000, Reason: event.FailedSizeLimit},
		},
		last: []event.Event{
			event.MessageFinished{MID: 6001, Status: event.FinishedAborted},
			event.ICIDClose{ICID: 6000},
		},
		keys:    tracking.Keys{Messages: []tracking.MessageKey{{Host: "gw1", MID: 6001}}, Conns: []tracking.ConnKey{in(6000)}},
		quiet:   in(6000),
		lines:   4,
		evicted: 2,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			at := func(evs []event.Event, start time.Time) []event.Entry {
				var es []event.Entry
				for i, ev := range evs {
					es = append(es, event.Entry{Time: start.Add(time.Duration(i) * time.Microsecond), Level: event.Info, Event: ev})
				}
				return es
			}
			first := at(tc.first, t0)
			last := at(tc.last, t0.Add(41*time.Second))
			// The traffic: a relayed message a second, each on its own
			// connections (relayed closes DCID n/25 with MID n), all
			// finished: none is idle.
			var traffic []event.Entry
			keys := tc.keys
			for i := 1; i <= 40; i++ {
				mid := uint64(25 * i)
				traffic = relayed(traffic, mid, t0.Add(time.Duration(i)*time.Second))
				keys.Messages = append(keys.Messages, tracking.MessageKey{Host: "gw1", MID: mid})
				keys.Conns = append(keys.Conns, in(mid), out(uint64(i)))
			}

			run := func(idle time.Duration) (s tracking.Store, between, end tracking.Stats) {
				ctx := context.Background()
				s = openTemp(t)
				tr := tracking.NewTracker(s, tracking.Options{ChunkSize: 8, IdleAfter: idle})
				add := func(es []event.Entry) {
					for _, e := range es {
						if err := tr.Add(ctx, "gw1", e); err != nil {
							t.Fatal(err)
						}
					}
				}
				add(first)
				add(traffic)
				between = tr.Stats()
				add(last)
				if err := tr.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				return s, between, tr.Stats()
			}
			s, between, end := run(0) // the default, 10 s
			if between.Evicted != int64(tc.evicted) || end.Evicted != int64(tc.evicted) {
				t.Errorf("evicted %d records before the last lines and %d in all, want %d and %d",
					between.Evicted, end.Evicted, tc.evicted, tc.evicted)
			}
			ref, _, refEnd := run(1000 * time.Hour)
			if refEnd.Evicted != 0 {
				t.Errorf("IdleAfter 1000h: evicted %d records", refEnd.Evicted)
			}

			got, want := loadAll(t, s, keys), loadAll(t, ref, keys)
			if len(got.Messages) != len(keys.Messages) || len(got.Conns) != len(keys.Conns) {
				t.Fatalf("stored %d messages and %d connections, want %d and %d",
					len(got.Messages), len(got.Conns), len(keys.Messages), len(keys.Conns))
			}
			for i, m := range got.Messages {
				if !reflect.DeepEqual(m, want.Messages[i]) {
					t.Errorf("MID %d:\n got %+v\nwant %+v", m.MID, m, want.Messages[i])
				}
			}
			for i, c := range got.Conns {
				if !reflect.DeepEqual(c, want.Conns[i]) {
					t.Errorf("%v %d:\n got %+v\nwant %+v", c.Kind, c.ID, c, want.Conns[i])
				}
			}
			// The silent record holds its lines of before and after.
			n := -1
			for _, m := range got.Messages {
				if (tracking.MessageKey{Host: m.Host, MID: m.MID}) == tc.quiet {
					n = len(m.Lines)
				}
			}
			for _, c := range got.Conns {
				if (tracking.ConnKey{Host: c.Host, Kind: c.Kind, ID: c.ID}) == tc.quiet {
					n = len(c.Lines)
				}
			}
			if n != tc.lines {
				t.Errorf("%+v: %d lines stored, want %d", tc.quiet, n, tc.lines)
			}
		})
	}
}

// loadAll loads the records of keys, in a fixed order.
func loadAll(t *testing.T, s tracking.Store, keys tracking.Keys) *tracking.Batch {
	t.Helper()
	b, err := s.Load(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(b.Messages, func(x, y *tracking.Message) int { return int(x.MID) - int(y.MID) })
	slices.SortFunc(b.Conns, func(x, y *tracking.Conn) int {
		if x.Kind != y.Kind {
			return int(x.Kind) - int(y.Kind)
		}
		return int(x.ID) - int(y.ID)
	})
	return b
}

// TestEvictForgetsHosts: the newest entry time of a host whose records
// are all let go is forgotten; a syslog sender naming a new host in each
// line must not grow the Tracker's memory.
func TestEvictForgetsHosts(t *testing.T) {
	ctx := context.Background()
	tr := tracking.NewTracker(openTemp(t), tracking.Options{})
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range 50 {
		for _, e := range relayed(nil, 25, t0) {
			if err := tr.Add(ctx, fmt.Sprintf("esa%d", i), e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Each of their messages and connections is finished: let go of at
	// the end of the next round that writes, here one of another host.
	for _, e := range relayed(nil, 50, t0.Add(time.Second)) {
		if err := tr.Add(ctx, "gw1", e); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := tracking.Hosts(tr); n != 1 {
		t.Errorf("the newest times of %d hosts kept, want 1 (gw1's, whose records linger a round)", n)
	}
}
