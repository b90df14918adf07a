package tracking

import (
	"slices"
	"testing"

	"github.com/mailgate/mailgate/event"
)

// TestRefs: what refs finds in an event, and that it finds it without
// allocating in the gateway's own events (refs runs twice for every entry
// the feed takes).
func TestRefs(t *testing.T) {
	in := func(id uint64) []event.ConnRef { return []event.ConnRef{{Kind: event.InboundConn, ID: id}} }
	out := func(id uint64) []event.ConnRef { return []event.ConnRef{{Kind: event.OutboundConn, ID: id}} }
	for _, tt := range []struct {
		ev    event.Event
		mids  []uint64
		conns []event.ConnRef
	}{
		{event.NewICID{ICID: 7}, nil, in(7)},
		{event.StartMID{MID: 3, ICID: 7}, []uint64{3}, in(7)},
		{event.StartMID{MID: 3}, []uint64{3}, nil}, // ICID 0: the gateway itself
		{event.InvalidAddress{ICID: 7}, nil, in(7)},
		{event.Queued{MID: 3}, []uint64{3}, nil},
		{event.DeliveryStart{DCID: 9, MID: 3}, []uint64{3}, out(9)},
		{event.BounceGenerated{MID: 4, OrigMID: 3}, []uint64{4, 3}, nil},
		{event.Split{MID: 3, NewMID: 5}, []uint64{3, 5}, nil},
		{event.TLS{Conn: event.ConnRef{Kind: event.OutboundConn, ID: 9}}, nil, out(9)},
		{event.Unknown{Text: "DCID 9 something new"}, nil, out(9)},
		{event.Unknown{Text: "MID 3 SDR: something"}, []uint64{3}, nil},
		{event.Unknown{Text: "nothing known"}, nil, nil},
	} {
		a := refs(tt.ev)
		if !slices.Equal(a.mids(), tt.mids) || !slices.Equal(a.conns(), tt.conns) {
			t.Errorf("refs(%#v) = %v %v, want %v %v", tt.ev, a.mids(), a.conns(), tt.mids, tt.conns)
		}
		if _, unknown := tt.ev.(event.Unknown); unknown || raceEnabled {
			continue // a line read from a log; strconv's errors allocate
		}
		ev := tt.ev
		if n := testing.AllocsPerRun(10, func() {
			a := refs(ev)
			sink = len(a.mids()) + len(a.conns())
		}); n != 0 {
			t.Errorf("refs(%T) allocates %v times", ev, n)
		}
	}
}

var sink int
