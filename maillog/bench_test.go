package maillog

import (
	"reflect"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// receiving are the lines written for every received message (with the
// connection lines around it): the ones that must not allocate.
func receiving() []event.Event {
	return []event.Event{
		event.NewICID{ICID: 60140292, Interface: "Data 1", InterfaceIP: "68.232.141.109", RemoteIP: "216.16.222.69", ReverseHost: "mx.example.net", Verified: true},
		event.HATMatch{ICID: 60140292, Action: event.ActionAccept, Group: "UNKNOWNLIST", Rule: "ALL", SBRS: event.SBRSNotEnabled},
		event.TLS{Conn: event.ConnRef{Kind: event.InboundConn, ID: 60140292}, Success: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256"},
		event.StartMID{MID: 24611495, ICID: 60140292},
		event.MailFrom{MID: 24611495, ICID: 60140292, From: "noreply@example.com"},
		event.RcptTo{MID: 24611495, ICID: 60140292, RID: 0, To: "user1@mycompany.com"},
		event.MessageIDHeader{MID: 24611495, MessageID: "<414492339.555733244.1416410048201.JavaMail.root@abmas02.marketo.org>"},
		event.Subject{MID: 24611495, Subject: "Webinar: Working Together 101: Preventing Departmental Silos", Quote: '\''},
		event.Ready{MID: 24611495, Bytes: 2069, From: "noreply@example.com"},
		event.PolicyMatch{MID: 24611495, Policy: "DEFAULT", Table: "inbound"},
		event.Queued{MID: 24611495},
		event.ICIDClose{ICID: 60140292},
		event.ConnectionEnd{ICID: 60140292, Cause: event.CauseQuit, State: "quit", LastCommand: "QUIT", DataBytes: 0, Duration: 1234 * time.Millisecond,
			Commands: []event.CommandCount{{Verb: "ehlo", OK: 1, Total: 1}, {Verb: "mail", OK: 1, Total: 1}, {Verb: "rcpt", OK: 1, Total: 1}, {Verb: "data", OK: 1, Total: 1}, {Verb: "quit", OK: 1, Total: 1}}},
		event.MessageFinished{MID: 24611495, Status: event.FinishedDone},
	}
}

// TestAppendLineAllocs: rendering the receiving lines into a buffer with
// room does not allocate (the timestamp comes from the per-second cache).
func TestAppendLineAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	buf := make([]byte, 0, 4096)
	for _, ev := range receiving() {
		e := event.Entry{Time: when, Level: event.Info, Event: ev}
		AppendLine(buf[:0], e, cst) // fill the cache
		if n := testing.AllocsPerRun(100, func() { AppendLine(buf[:0], e, cst) }); n != 0 {
			t.Errorf("AppendLine(%T) allocates %v times", ev, n)
		}
	}
}

func BenchmarkAppendLine(b *testing.B) {
	buf := make([]byte, 0, 4096)
	for _, ev := range receiving() {
		e := event.Entry{Time: when, Level: event.Info, Event: ev}
		b.Run(reflect.TypeOf(ev).Name(), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = AppendLine(buf[:0], e, cst)
			}
		})
	}
	// A new second on every line: the cache never hits.
	b.Run("Queued/new-second", func(b *testing.B) {
		b.ReportAllocs()
		e := event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: 24611495}}
		for i := 0; i < b.N; i++ {
			e.Time = e.Time.Add(time.Second)
			buf = AppendLine(buf[:0], e, cst)
		}
	})
}

func BenchmarkParseLine(b *testing.B) {
	var lines []string
	for _, l := range readSamples(b) {
		if l.file == "cribl-cisco-esa-mailtext.log" {
			lines = append(lines, l.text)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ParseLine(lines[i%len(lines)], cst); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkAppendLineNewGoroutine renders the receiving lines as a new
// session does: on a goroutine of its own, whose stack starts small and
// grows (a copy of it) when a frame does not fit. An op is one goroutine.
func BenchmarkAppendLineNewGoroutine(b *testing.B) {
	var entries []event.Entry
	for _, ev := range receiving() {
		entries = append(entries, event.Entry{Time: when, Level: event.Info, Event: ev})
	}
	done := make(chan []byte)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		go func(buf []byte) {
			for _, e := range entries {
				buf = AppendLine(buf[:0], e, cst)
			}
			done <- buf
		}(buf)
		buf = <-done
	}
}
