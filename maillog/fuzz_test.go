package maillog

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailgate/mailgate/event"
)

// fuzzNow is the clock of the fuzz targets, so that syslog years are stable.
var fuzzNow = time.Date(2026, 7, 25, 12, 0, 0, 0, time.UTC)

func sameEntry(a, b event.Entry) bool {
	return a.Time.Equal(b.Time) && a.Level == b.Level && reflect.DeepEqual(a.Event, b.Event)
}

// checkLine fails when out could break or forge a line.
func checkLine(t *testing.T, out []byte) {
	t.Helper()
	if bytes.ContainsAny(out, "\r\n") || bytes.Contains(out, []byte("\u0085")) ||
		bytes.Contains(out, []byte("\u2028")) || bytes.Contains(out, []byte("\u2029")) {
		t.Fatalf("rendered line holds a line break: %q", out)
	}
	if !utf8.Valid(out) {
		t.Fatalf("rendered line is not UTF-8: %q", out)
	}
}

// FuzzParseLine: ParseLine never panics, what it returns renders as one
// clean line, and parsing that line again gives the same entry (a fixed
// point), which renders the same again.
func FuzzParseLine(f *testing.F) {
	for _, l := range readSamples(f) {
		f.Add(l.text)
	}
	for _, c := range eventCases {
		f.Add(string(AppendLine(nil, event.Entry{Time: when, Level: event.Info, Event: c.ev}, cst)))
	}
	f.Add("<166>Mar 17 18:24:37 mail_logs: Info: MID 6 ready 100 bytes from <example.com>")
	f.Add("Info: MID 6 Subject 'a\r\nb'")
	f.Add(`Info: Bounced: 45346670:0 From:<a@x> To:<b@y> Reason: "5.1.0 - x" Response: "('550', ['a" Response: "(b'])"`)
	f.Add(`Info: MID 7 released (a) from quarantine "Q" (b) (c)`)
	f.Add("Jun 26 10:42:23 esa1.example.edu mail_logs: Info: MID 5 quarantined to \"Policy\" (DLP violation)")
	f.Fuzz(func(t *testing.T, line string) {
		e1, err := parseLine(line, cst, &years{now: fuzzNow})
		if err != nil {
			return
		}
		out1 := AppendLine(nil, e1, cst)
		checkLine(t, out1)
		e2, err := parseLine(string(out1), cst, &years{now: fuzzNow})
		if err != nil {
			t.Fatalf("line %q rendered as %q, which does not parse: %v", line, out1, err)
		}
		if !sameEntry(e1, e2) {
			t.Fatalf("not a fixed point:\nline    %q\nparsed  %#v\nrender  %q\nparsed  %#v", line, e1, out1, e2)
		}
		if out2 := AppendLine(nil, e2, cst); !bytes.Equal(out1, out2) {
			t.Fatalf("rendering changed: %q then %q", out1, out2)
		}
	})
}

// FuzzAppendMessage fills every text field of every event type with fuzzed
// text: the result must be one clean line, and parsing and rendering it
// again must give the same text (rendering is canonical).
func FuzzAppendMessage(f *testing.F) {
	f.Add(uint8(0), "a@b\r\nInfo: x", "x>y", uint64(1))
	f.Add(uint8(17), "it's", `"q"`, uint64(0))
	f.Add(uint8(30), "\xff\u2028", "\\", uint64(7))
	f.Add(uint8(41), "Q\" (x) y", "a) b", uint64(7))
	f.Add(uint8(24), "a\" Response: \"(", "'\"", uint64(11))
	f.Add(uint8(59), "Anti-Virus", "Critical", uint64(0))
	f.Add(uint8(59), "a/b alert was sent to x", "c/d", uint64(0))
	f.Fuzz(func(t *testing.T, kind uint8, a, b string, n uint64) {
		ev := fuzzEvent(kind, a, b, n)
		out := AppendMessage(nil, ev)
		checkLine(t, out)
		text := trimEnd(string(out))
		again := AppendMessage(nil, ParseMessage(text))
		if string(again) != text {
			t.Fatalf("%#v\nrendered %q\nparsed and rendered %q (%#v)", ev, text, again, ParseMessage(text))
		}
	})
}

func fuzzEvent(kind uint8, a, b string, n uint64) event.Event {
	i := int(n % 1000)
	rids := []int{i, i + 1}
	switch kind % 61 {
	case 0:
		return event.NewICID{ICID: n, Interface: a, InterfaceIP: b, RemoteIP: a, ReverseHost: b, Verified: n%2 == 0}
	case 1:
		return event.HATMatch{ICID: n, Action: a, Group: b, Rule: a, SBRS: b, Country: a}
	case 2:
		return event.TLS{Conn: event.ConnRef{Kind: event.ConnKind(n % 3), ID: n}, Success: n%2 == 0, Protocol: a, Cipher: b, Reason: a}
	case 3:
		return event.StartMID{MID: n, ICID: n / 2}
	case 4:
		return event.MailFrom{MID: n, ICID: n, From: a}
	case 5:
		return event.RcptTo{MID: n, ICID: n, RID: i, To: a}
	case 6:
		return event.RcptRejected{MID: n, ICID: n, To: a, By: b}
	case 7:
		return event.InvalidAddress{ICID: n, MID: n / 3, Recipient: n%2 == 0, Detail: a}
	case 8:
		return event.ReceivingFailed{ICID: n, Reason: a}
	case 9:
		return event.UnknownCommand{ICID: n, Command: a}
	case 10:
		return event.MessageIDHeader{MID: n, MessageID: a}
	case 11:
		return event.Subject{MID: n, Subject: a, Quote: quoteOf(b)}
	case 12:
		return event.Ready{MID: n, Bytes: int64(n), From: a}
	case 13:
		return event.PolicyMatch{MID: n, Policy: a, Table: b}
	case 14:
		return event.Queued{MID: n}
	case 15:
		return event.ICIDLost{ICID: n}
	case 16:
		return event.MessageAborted{MID: n, Reason: a}
	case 17:
		return event.MessageFinished{MID: n, Status: a}
	case 18:
		return event.ICIDClose{ICID: n}
	case 19:
		return event.ICIDDisconnected{ICID: n, Address: a, Reason: b}
	case 20:
		return event.NewDCID{DCID: n, InterfaceIP: a, RemoteIP: b, Port: i}
	case 21:
		return event.DeliveryStart{DCID: n, MID: n, RIDs: rids, Form: uint8(n % 4)}
	case 22:
		return event.MessageDone{DCID: n, MID: n, RIDs: rids, Extra: a}
	case 23:
		return event.Response{MID: n, RIDs: rids, Text: a, Quote: quoteOf(b)}
	case 24:
		return event.Outcome{Hard: n%2 == 0, DCID: n, MID: n, From: a, To: b, RID: i, Status: a, Reason: b, Code: a, Response: []string{a, b}, Form: uint8(n % 6)}
	case 25:
		return event.ConnectionError{DCID: n, Domain: a, IP: b, Port: i, Details: a, InterfaceIP: b, Reason: a, Form: uint8(n % 4)}
	case 26:
		return event.DCIDClose{DCID: n}
	case 27:
		return event.BounceGenerated{MID: n, OrigMID: n / 2}
	case 28:
		return event.DoubleBounce{MID: n, RID: i, Status: a, Reason: b}
	case 29:
		return event.Pending{MID: n, RIDs: rids, Until: time.Unix(int64(n%(1<<34)), 0).UTC(), Profile: a, Form: uint8(n % 5)}
	case 30:
		return event.BeginLogfile{}
	case 31:
		return event.LogfileVersion{Version: a, Serial: b}
	case 32:
		return event.TimeOffset{Seconds: int(int32(n))}
	case 33:
		return event.InjectionDebug{ICID: n, Sent: n%2 == 0, Data: a}
	case 34:
		return event.ConnectionEnd{ICID: n, Cause: event.Cause(n % 16), State: b, LastCommand: a, DataBytes: int64(n), Duration: time.Duration(n),
			Commands: []event.CommandCount{{Verb: a, OK: i, Total: i + int(n%2)}, {Verb: b, OK: 1, Total: 2}}, Detail: b}
	case 35:
		return event.Unknown{Text: a + b}
	case 36:
		return event.SpamQuarantineTag{MID: n, Prefix: a}
	case 37:
		return event.SpamQuarantined{MID: n}
	case 38:
		return event.SpamReinjected{MID: n, NewMID: n / 2}
	case 39:
		return event.Quarantined{MID: n, Quarantine: a, Reason: b}
	case 40:
		return event.QuarantineReason{MID: n, Quarantine: a, Reason: b}
	case 41:
		return event.QuarantineReleased{MID: n, Quarantine: a, Reason: b, Note: b, Extra: a}
	case 42:
		return event.QuarantineDeleted{MID: n, Quarantine: a, Reason: b}
	case 43:
		return event.Rewritten{MID: n, NewMID: n + 1, By: a, Form: uint8(n % 3)}
	case 44:
		return event.Split{MID: n, NewMID: n + 1, Reason: a}
	case 45:
		return event.Generated{MID: n, OrigMID: n / 2, By: a, Form: uint8(n % 3)}
	case 46:
		return event.PolicyDisposal{MID: n, Bounced: n%2 == 0, By: a, Table: b}
	case 47:
		return event.EngineVerdict{MID: n, Interim: n%2 == 0, Engine: a, Verdict: b}
	case 48:
		return event.AVVerdict{MID: n, Interim: n%2 == 0, Engine: a, Verdict: b, Detail: a}
	case 49:
		return event.OutbreakVerdict{MID: n, Verdict: a}
	case 50:
		return event.AMPVerdict{MID: n, Verdict: a}
	case 51:
		return event.TooBig{MID: n, Size: int64(i), Limit: int64(n % (1 << 62)), Engine: a}
	case 52:
		return event.SPFVerdict{MID: n, Identity: a, Address: b, Result: a, Detail: b}
	case 53:
		return event.DKIMVerdict{MID: n, Result: a, Detail: b}
	case 54:
		return event.Signing{MID: n, Method: a, Text: b}
	case 55:
		return event.Attachment{MID: n, Name: a}
	case 56:
		return event.CustomLog{MID: n, Text: a}
	case 58:
		return event.DMARCVerdict{MID: n, Text: a}
	case 59:
		return event.AlertSent{Class: a, Severity: b, To: b + a, Subject: a + `".` + b}
	case 60:
		return event.ScanSummary{MID: n, Policy: a, Table: b, Verdicts: []event.ScanResult{{Kind: a, Engine: b, Verdict: a, Detail: b}}, Action: a}
	}
	return event.Unknown{Text: strings.Repeat(a, 2)}
}

// quoteOf picks a Quote from fuzzed text: its first byte, often ' or ".
func quoteOf(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}
