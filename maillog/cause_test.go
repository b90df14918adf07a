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
