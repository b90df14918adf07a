package statuslog

import (
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/maillog"
)

// The events of a small traffic mix, in the order the gateway emits them:
// two connections, a message to three recipients (one refused first), an
// aborted one, deliveries, a hard bounce with its generated bounce, a soft
// bounce, a deletion, a drop.
var traffic = []event.Event{
	event.NewICID{ICID: 1, RemoteIP: "127.0.0.1"},
	event.NewICID{ICID: 2, RemoteIP: "127.0.0.1"},
	event.StartMID{MID: 1, ICID: 1},
	event.RcptTo{MID: 1, ICID: 1, RID: 0, To: "a@example.com"},
	event.RcptRejected{MID: 1, ICID: 1, To: "x@example.com", By: "RAT"},
	event.RcptTo{MID: 1, ICID: 1, RID: 1, To: "b@example.com"},
	event.RcptTo{MID: 1, ICID: 1, RID: 2, To: "d@example.com"},
	event.Queued{MID: 1},
	event.StartMID{MID: 2, ICID: 2},
	event.RcptTo{MID: 2, ICID: 2, RID: 0, To: "c@example.com"},
	event.MessageAborted{MID: 2, Reason: event.AbortReceivingBySender},
	event.MessageFinished{MID: 2, Status: event.FinishedAborted},
	event.ICIDClose{ICID: 2},
	event.NewDCID{DCID: 1},
	event.DeliveryStart{DCID: 1, MID: 1, RIDs: []int{0, 1, 2}},
	event.MessageDone{DCID: 1, MID: 1, RIDs: []int{0, 2}},
	event.Outcome{Hard: true, DCID: 1, MID: 1, RID: 1, Status: "5.1.1", Code: "550"},
	event.StartMID{MID: 3, ICID: 0},
	event.BounceGenerated{MID: 3, OrigMID: 1},
	event.Queued{MID: 3},
	event.NewDCID{DCID: 2},
	event.Outcome{DCID: 2, MID: 3, RID: 0, Status: "4.4.1", Code: "000"},
	event.DCIDClose{DCID: 2},
	event.Deleted{MID: 3, RIDs: []int{0}},
	event.MessageAborted{MID: 4, Reason: "Dropped by CASE"},
}

func TestCounterAndLine(t *testing.T) {
	c := NewCounter()
	for _, ev := range traffic {
		c.Emit(event.Entry{Level: event.Info, Event: ev})
	}
	got := string(maillog.AppendMessage(nil, Line(c.Counts(), Gauges{QKUsd: 12, QKFre: 8388608, ActvRcp: 3, RAMUsd: 125195690})))
	want := "Status: QKUsd 12 QKFre 8388608 CrtMID 3 CrtICID 2 CrtDCID 2 InjMsg 1 InjRcp 3 GenBncRcp 1 RejRcp 1 DrpMsg 1 " +
		"SftBncEvnt 1 CmpRcp 4 HrdBncRcp 1 DlvRcp 2 DelRcp 1 ActvRcp 3 CrtCncIn 1 CrtCncOut 1 RAMUsd 125195690"
	if got != want {
		t.Errorf("status line\n got %q\nwant %q", got, want)
	}
	if len(c.rcpts) != 0 {
		t.Errorf("the counter still holds %d messages being received", len(c.rcpts))
	}
	// Free space unknown: the field is left out, not written as 0.
	if got := string(maillog.AppendMessage(nil, Line(Counts{}, Gauges{QKFre: -1}))); got != "Status: QKUsd 0 CrtMID 0 CrtICID 0 CrtDCID 0 InjMsg 0 InjRcp 0 GenBncRcp 0 RejRcp 0 DrpMsg 0 SftBncEvnt 0 CmpRcp 0 HrdBncRcp 0 DlvRcp 0 DelRcp 0 ActvRcp 0 CrtCncIn 0 CrtCncOut 0 RAMUsd 0" {
		t.Errorf("without QKFre: %q", got)
	}
}

// The Logger writes a line every interval, with the gauges of the moment.
func TestLoggerInterval(t *testing.T) {
	lines := smtptest.NewLines()
	c := NewCounter()
	n := 0
	l := Start(20*time.Millisecond, func() event.Status {
		n++
		return Line(c.Counts(), Gauges{QKUsd: int64(n), QKFre: -1, RAMUsd: RAMUsed()})
	}, lines)
	lines.WaitN(t, 3, `^Status: QKUsd \d+ CrtMID 0 .* RAMUsd [1-9]\d*$`)
	l.Stop()
	got := lines.Grep("Status:")
	for i, s := range got[:3] {
		if want := "Status: QKUsd " + string(rune('1'+i)) + " "; !strings.Contains(s, want) {
			t.Errorf("line %d %q, want the gauges measured for it (%q)", i, s, want)
		}
	}
	if FreeKB(t.TempDir()) <= 0 {
		t.Error("FreeKB of a temporary directory is not positive")
	}
}
