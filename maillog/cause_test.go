package maillog

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// TestConnectionEndCauses renders mailgate's own line with every cause
// (golden: testdata/causes.golden, so that no word of a cause changes) and
// parses it back.
func TestConnectionEndCauses(t *testing.T) {
	causes := []event.ConnectionEnd{
		{Cause: event.CauseQuit, State: "helo", LastCommand: "QUIT"},
		{Cause: event.CausePeerClosed, State: "rcpt", LastCommand: "RCPT"},
		{Cause: event.CausePeerReset, State: "data", LastCommand: "DATA", DataBytes: 4096},
		{Cause: event.CauseIOError, State: "mail", LastCommand: "MAIL", Detail: "write timeout"},
		{Cause: event.CauseTLSFailed, State: "connect", LastCommand: "STARTTLS", Detail: "tls: first record does not look like a TLS handshake"},
		{Cause: event.CauseTimeoutUnsuccessful, State: "helo", LastCommand: "EHLO"},
		{Cause: event.CauseTimeoutTotal, State: "data", LastCommand: "DATA", DataBytes: 12},
		{Cause: event.CauseBadCommands, State: "connect", LastCommand: "FOO", Detail: "FOO"},
		{Cause: event.CausePolicy, State: "connect", Detail: "HAT REJECT SG BLOCKLIST match 127.0.0.66"},
		{Cause: event.CauseProtocol, State: "connect", Detail: "data sent before the greeting"},
		{Cause: event.CauseShutdown, State: "helo", LastCommand: "NOOP"},
		{Cause: event.CauseTimeoutIdle, State: "helo", LastCommand: "DATA"},
		{Cause: event.CauseJunkCommands, State: "helo", LastCommand: "RSET", Detail: "RSET"},
		{Cause: event.CauseErrors, State: "mail", LastCommand: "RCPT", Detail: "RCPT TO:<x@elsewhere.example>"},
		{Cause: event.CausePipelining, State: "helo", LastCommand: "EHLO", Detail: "after EHLO: MAIL FROM:<a@example.org>"},
		{Cause: event.CauseHealthCheck, State: "connect"},
	}
	var golden bytes.Buffer
	for i, ev := range causes {
		ev.ICID = uint64(i + 1)
		ev.Duration = time.Duration(i) * 1500 * time.Millisecond
		if ev.LastCommand != "" {
			ev.Commands = []event.CommandCount{{Verb: "ehlo", OK: 1, Total: 1}, {Verb: "noop", OK: i, Total: i + 1}}
		}
		line := AppendMessage(nil, ev)
		golden.Write(line)
		golden.WriteByte('\n')
		if got := ParseMessage(string(line)); !reflect.DeepEqual(got, ev) {
			t.Errorf("%q\nparsed %#v\nwant   %#v", line, got, ev)
		}
	}
	compareGolden(t, "testdata/causes.golden", golden.Bytes())
}

// A cause this version does not know (a newer mailgate's log) leaves the
// line an Unknown, which renders back byte for byte.
func TestConnectionEndUnknownCause(t *testing.T) {
	for _, line := range []string{
		"Wed Sep  6 13:13:16 2023 Info: mailgate: ICID 5 ended cause=rate-limit state=helo last=EHLO data_bytes=0 duration=1.250s ehlo=1 commands=1 detail='x'",
		"Wed Sep  6 13:13:16 2023 Info: mailgate: ICID 5 ended cause=Quit state=helo last=- data_bytes=0 duration=1.250s commands=0",
	} {
		e, err := ParseLine(line, cst)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := e.Event.(event.Unknown); !ok {
			t.Errorf("%q parsed as %#v", line, e.Event)
		}
		if got := string(AppendLine(nil, e, cst)); got != line {
			t.Errorf("%q rendered back as %q", line, got)
		}
	}
}
