package statuslog

import (
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/stats"
)

// status is a status commands' view with every counter and gauge distinct.
func status(free *int64) stats.Status {
	s := stats.Status{IDs: stats.CurrentIDs{MID: 612, ICID: 640, DCID: 12},
		Gauges: stats.Gauges{ConnIn: 5, ConnOut: 2, Active: 590, Unattempted: 580, Attempted: 10, WorkQueue: 3,
			Destinations: 7, KilobytesUsed: 1204, KilobytesFree: free}}
	for i, name := range []string{"inj_msgs", "inj_recips", "gen_bounce_recips", "rejected_recips", "dropped_msgs",
		"soft_bounced_evts", "completed_recips", "hard_bounced_recips", "dns_hard_bounced_recips",
		"5xx_hard_bounced_recips", "expired_hard_bounced_recips", "other_hard_bounced_recips", "delivered_recips",
		"deleted_recips", "dk_signed_msgs", "conn_in", "conn_out"} {
		// Reset and Lifetime differ from Uptime: the line takes Uptime.
		s.Counters = append(s.Counters, stats.CounterRow{Name: name, Reset: 1, Uptime: uint64(100 + i), Lifetime: 99999})
	}
	return s
}

func TestLine(t *testing.T) {
	free := int64(8388608)
	got := string(maillog.AppendMessage(nil, Line(status(&free), 125195690)))
	want := "Status: QKUsd 1204 QKFre 8388608 CrtMID 612 CrtICID 640 CrtDCID 12 InjMsg 100 InjRcp 101 GenBncRcp 102 RejRcp 103 " +
		"DrpMsg 104 SftBncEvnt 105 CmpRcp 106 HrdBncRcp 107 DnsHrdBnc 108 5XXHrdBnc 109 ExpHrdBnc 110 OtrHrdBnc 111 " +
		"DlvRcp 112 DelRcp 113 ActvRcp 590 UnatmptRcp 580 AtmptRcp 10 CrtCncIn 5 CrtCncOut 2 RAMUsd 125195690 DstInMem 7 WorkQ 3"
	if got != want {
		t.Errorf("status line\n got %q\nwant %q", got, want)
	}
	// Free space unknown: the field is left out, not written as 0.
	if got := string(maillog.AppendMessage(nil, Line(status(nil), 1))); !strings.HasPrefix(got, "Status: QKUsd 1204 CrtMID 612 ") {
		t.Errorf("without QKFre: %q", got)
	}
}

// The Logger writes a line every interval, measured for it.
func TestLoggerInterval(t *testing.T) {
	lines := smtptest.NewLines()
	n := 0
	l := Start(20*time.Millisecond, func() event.Status {
		n++
		s := status(nil)
		s.Gauges.KilobytesUsed = int64(n)
		return Line(s, RAMUsed())
	}, lines)
	lines.WaitN(t, 3, `^Status: QKUsd \d+ CrtMID 612 .* RAMUsd [1-9]\d* DstInMem 7 WorkQ 3$`)
	l.Stop()
	got := lines.Grep("Status:")
	for i, s := range got[:3] {
		if want := "Status: QKUsd " + string(rune('1'+i)) + " "; !strings.HasPrefix(s, want) {
			t.Errorf("line %d %q, want the gauges measured for it (%q)", i, s, want)
		}
	}
}
