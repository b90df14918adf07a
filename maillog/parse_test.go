package maillog

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

func TestParseLineLayouts(t *testing.T) {
	// now is after every time below, so syslog lines fall in its year.
	now := time.Date(2026, 7, 25, 12, 0, 0, 0, time.UTC)
	q := event.Queued{MID: 6}
	tests := []struct {
		name  string
		line  string
		time  time.Time
		level event.Level
		ev    event.Event
	}{
		{"local file", "Wed Sep  6 13:13:16 2023 Info: MID 6 queued for delivery",
			time.Date(2023, 9, 6, 13, 13, 16, 0, cst), event.Info, q},
		{"collapsed day", "Mon Mar 5 14:21:04 2018 Info: MID 6 queued for delivery",
			time.Date(2018, 3, 5, 14, 21, 4, 0, cst), event.Info, q},
		{"two-digit day", "Wed Nov 19 09:16:38 2014 Warning: MID 6 queued for delivery",
			time.Date(2014, 11, 19, 9, 16, 38, 0, cst), event.Warning, q},
		{"trailing space and CRLF", "Wed Nov 19 09:16:38 2014 Info: MID 6 queued for delivery \r\n",
			time.Date(2014, 11, 19, 9, 16, 38, 0, cst), event.Info, q},
		{"wrong day name", "Sat Dec 21 02:37:22 2003 Info: MID 6 queued for delivery",
			time.Date(2003, 12, 21, 2, 37, 22, 0, cst), event.Info, q},
		{"syslog", "<166>Mar 17 18:24:37 mail_logs: Info: MID 6 queued for delivery",
			time.Date(2026, 3, 17, 18, 24, 37, 0, cst), event.Info, q},
		{"syslog with host", "<94>Nov 24 14:22:57 REDACTED.africa.example.net mail_logs: Critical: MID 6 queued for delivery",
			time.Date(2025, 11, 24, 14, 22, 57, 0, cst), event.Critical, q},
		{"syslog padded day, no PRI", "Feb  1 08:32:59 c60 smail: Info: MID 6 queued for delivery",
			time.Date(2026, 2, 1, 8, 32, 59, 0, cst), event.Info, q},
		{"RFC 5424", "<166>1 2023-09-08T05:21:31.003Z esa1 mail_logs - - - Info: MID 6 queued for delivery",
			time.Date(2023, 9, 8, 5, 21, 31, 3e6, time.UTC), event.Info, q},
		{"collector", "2019 Sep 28 16:13:51 ironport_server mail [info] splunk_maillogs:nopid Info: MID 6 queued for delivery",
			time.Date(2019, 9, 28, 16, 13, 51, 0, cst), event.Info, q},
		{"no timestamp", "Info: MID 6 queued for delivery", time.Time{}, event.Info, q},
		{"no timestamp, empty message", "Info:", time.Time{}, event.Info, event.Unknown{Text: ""}},
		{"debug", "Wed Sep  6 13:13:16 2023 Debug: MID 14 ICID 14 TLS read 126 bytes (0.0 seconds)",
			time.Date(2023, 9, 6, 13, 13, 16, 0, cst), event.Debug, event.Unknown{Text: "MID 14 ICID 14 TLS read 126 bytes (0.0 seconds)"}},
		{"no level", "DCID 80167 TLS failed: STARTTLS unexpected response", time.Time{}, 0,
			event.Unknown{Text: "DCID 80167 TLS failed: STARTTLS unexpected response"}},
		{"timestamp, no level", "Wed Sep  6 13:13:16 2023 something else",
			time.Date(2023, 9, 6, 13, 13, 16, 0, cst), 0, event.Unknown{Text: "something else"}},
		{"syslog, no level", "<13>Mar 17 18:24:37 host kernel: eth0 up",
			time.Date(2026, 3, 17, 18, 24, 37, 0, cst), 0, event.Unknown{Text: "host kernel: eth0 up"}},
		{"lower-case level is not one", "Wed Sep  6 13:13:16 2023 info: MID 6 queued for delivery",
			time.Date(2023, 9, 6, 13, 13, 16, 0, cst), 0, event.Unknown{Text: "info: MID 6 queued for delivery"}},
		{"impossible date", "Fri Feb 30 10:00:00 2024 Info: MID 6 queued for delivery", time.Time{}, 0,
			event.Unknown{Text: "Fri Feb 30 10:00:00 2024 Info: MID 6 queued for delivery"}},
		{"raw control characters are escaped", "Info: MID 6 Subject 'a\x1b[2Jb\x00'", time.Time{}, event.Info,
			event.Subject{MID: 6, Subject: `a\x1b[2Jb\x00`, Quote: '\''}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseLine(tt.line, cst, &years{now: now})
			if err != nil {
				t.Fatalf("parseLine(%q): %v", tt.line, err)
			}
			if !e.Time.Equal(tt.time) || e.Level != tt.level || !reflect.DeepEqual(e.Event, tt.ev) {
				t.Errorf("parseLine(%q)\n= %v %v %#v\nwant %v %v %#v", tt.line, e.Time, e.Level, e.Event, tt.time, tt.level, tt.ev)
			}
			// The message as the line held it, escaped: here, as it renders.
			if want := string(AppendMessage(nil, tt.ev)); tt.level != 0 && e.Text != want {
				t.Errorf("parseLine(%q).Text = %q, want %q", tt.line, e.Text, want)
			}
		})
	}
}

func TestParseLineEmpty(t *testing.T) {
	for _, line := range []string{"", "   ", "\r\n"} {
		e, err := ParseLine(line, time.UTC)
		if !errors.Is(err, ErrNotLogLine) {
			t.Errorf("ParseLine(%q) error = %v, want ErrNotLogLine", line, err)
		}
		if _, ok := e.Event.(event.Unknown); !ok {
			t.Errorf("ParseLine(%q) event = %#v, want an Unknown", line, e.Event)
		}
	}
}

// TestSyslogYear checks the year assumed for BSD syslog timestamps.
func TestSyslogYear(t *testing.T) {
	tests := []struct {
		now  time.Time
		line string
		want time.Time
	}{
		// Read in the same year.
		{time.Date(2026, 3, 18, 0, 0, 0, 0, time.UTC), "<166>Mar 17 18:24:37 mail_logs: Info: x", time.Date(2026, 3, 17, 18, 24, 37, 0, time.UTC)},
		// A December line read in January belongs to the year before.
		{time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), "<166>Dec 31 23:59:59 mail_logs: Info: x", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)},
		// A little clock skew (within a day) keeps the current year.
		{time.Date(2026, 3, 17, 12, 0, 0, 0, time.UTC), "<166>Mar 17 18:24:37 mail_logs: Info: x", time.Date(2026, 3, 17, 18, 24, 37, 0, time.UTC)},
		// Feb 29 goes back to the last leap year.
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "<166>Feb 29 10:00:00 mail_logs: Info: x", time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		e, err := parseLine(tt.line, time.UTC, &years{now: tt.now})
		if err != nil || !e.Time.Equal(tt.want) {
			t.Errorf("parseLine(%q) at %v = %v, %v; want %v", tt.line, tt.now, e.Time, err, tt.want)
		}
	}
}

// TestParseMessageVariants covers the historical forms that are not in
// the sample files, and near misses that must stay Unknown.
func TestParseMessageVariants(t *testing.T) {
	tests := []struct {
		msg string
		ev  event.Event // nil: Unknown holding msg
	}{
		{"MID 204841507 Subject Re: [example: #129226] FW: example\\r\\n (PTY) LTD | Autoprice and STP",
			event.Subject{MID: 204841507, Subject: `Re: [example: #129226] FW: example\r\n (PTY) LTD | Autoprice and STP`}},
		{"MID 5 Subject ''", event.Subject{MID: 5, Quote: '\''}},
		{"MID 5 Subject", event.Subject{MID: 5}},
		{"MID 5 Subject '", event.Subject{MID: 5, Subject: "'"}},
		{"MID 24611516 Message-ID \"<abc@example.com>\"", event.MessageIDHeader{MID: 24611516, MessageID: "<abc@example.com>"}},
		{"MID 9 RID [0, 1] Response \"it's ok\"", event.Response{MID: 9, RIDs: []int{0, 1}, Text: "it's ok", Quote: '"'}},
		{"MID 9 RID [] Response", event.Response{MID: 9, RIDs: []int{}}},
		{"ICID 21591 ACCEPT SG None match  SBRS unable to retrieve",
			event.HATMatch{ICID: 21591, Action: "ACCEPT", Group: "None", SBRS: "unable to retrieve"}},
		{"ICID 0 TCPREFUSE SG RBLBlacklist match dnslist[sbl-xbl.spamhaus.org] SBRS None",
			event.HATMatch{ICID: 0, Action: "TCPREFUSE", Group: "RBLBlacklist", Rule: "dnslist[sbl-xbl.spamhaus.org]", SBRS: "None"}},
		{"New SMTP ICID 27389415 interface Marsh (205.156.189.20) address 205.234.144.192 reverse dns host  server.masterplace.com.br verified no",
			event.NewICID{ICID: 27389415, Interface: "Marsh", InterfaceIP: "205.156.189.20", RemoteIP: "205.234.144.192", ReverseHost: " server.masterplace.com.br"}},
		{"ICID 493771866 MID 340448731 Invalid recipient address:  'RCPT TO:<>'",
			event.InvalidAddress{ICID: 493771866, MID: 340448731, Recipient: true, Detail: " 'RCPT TO:<>'"}},
		{"Delayed: DCID: 4370 Message 10800 to 0 - 4.4.0 - Other network problem ('000', ['[Errno 54] Connection reset by peer']) []",
			event.Outcome{DCID: 4370, MID: 10800, Status: "4.4.0", Reason: "Other network problem", Code: "000", Response: []string{"[Errno 54] Connection reset by peer"}, Form: OutcomeMessageHeaders}},
		{`Bounced: DCID 5 MID 6 From: <a@b> To: <c@d> RID 0 - 5.0.0 - Why (not) ('550', ["it's", 'tab\there', '\xe9t\u00e9', 'x\qy'])`,
			event.Outcome{Hard: true, DCID: 5, MID: 6, From: "a@b", To: "c@d", Status: "5.0.0", Reason: "Why (not)", Code: "550",
				Response: []string{"it's", "tab\there", "\xe9t\u00e9", `x\qy`}}},
		{"Bounced: DCID 5 MID 6 From: <a@b> To: <c@d> RID 0 - 5.0.0 - x ('550', []) []", nil}, // headers only in old forms
		{"Bounced: DCID 5 MID 6 From: <a<b> To: <c@d> RID 0 - 5.0.0 - x ('550', [])", nil},
		{"Bounced: 45346670:0 From:<campaign1@yourdomain.com> To:<user2@sampledomain.com> Reason: \"5.1.0 - Unknown address error\"", nil},
		{"Start MID 9 ICID 0 (ISQ Notification)", nil},
		{"MID 07 queued for delivery", nil}, // would not render back
		{"MID 18446744073709551616 queued for delivery", nil},
		{"MID 1 ICID 2 From: <a> b>", nil},
		{"New SMTP DCID 1 interface 1.2.3.4 address 5.6.7.8 port 0", event.NewDCID{DCID: 1, InterfaceIP: "1.2.3.4", RemoteIP: "5.6.7.8 port 0"}},
		{"Delivery start DCID 1 MID 2 to [0] to offbox IronPort Spam Quarantine", nil},
		{"Message done DCID 1 MID 2 to RID [0, 1]", event.MessageDone{DCID: 1, MID: 2, RIDs: []int{0, 1}}},
		{"Message done DCID 1 MID 2 to RID [0,1]", nil},
		{"102503993 Sent: 'it's'", event.InjectionDebug{ICID: 102503993, Sent: true, Data: "it's"}},
		{"102503993 Said: 'x'", nil},
		{"Time offset from UTC: 3600 seconds", event.TimeOffset{Seconds: 3600}},
		{"Time offset from UTC: +3600 seconds", nil},
		{"mailgate: ICID 1 ended cause=quit state=quit last=QUIT data_bytes=10 duration=1.000s helo=1 quit=1 commands=1", nil}, // sum wrong
		{"mailgate: ICID 1 ended cause=quit state=quit last=QUIT data_bytes=10 duration=1.000s helo=1 quit=1 commands=2",
			event.ConnectionEnd{ICID: 1, Cause: event.CauseQuit, State: "quit", LastCommand: "QUIT", DataBytes: 10, Duration: time.Second,
				Commands: []event.CommandCount{{Verb: "helo", OK: 1, Total: 1}, {Verb: "quit", OK: 1, Total: 1}}}},
		{"mailgate: ICID 1 ended cause=quit state=quit last=- data_bytes=0 duration=1.000s x=0 commands=0", nil}, // total 0 is never written
		{"mailgate: ICID 1 ended cause=quit state=quit last=- data_bytes=0 duration=1s commands=0", nil},
		{"mailgate: ICID 1 ended cause=rate-limit state=helo last=- data_bytes=0 duration=1.000s commands=0", nil}, // a newer mailgate's cause
		{"mailgate: ICID 1 ended cause= state=helo last=- data_bytes=0 duration=1.000s commands=0", nil},
		{"mailgate: ICID 1 ended cause=Cause(0) state=helo last=- data_bytes=0 duration=1.000s commands=0", nil},
	}
	for _, tt := range tests {
		want := tt.ev
		if want == nil {
			want = event.Unknown{Text: tt.msg}
		}
		got := ParseMessage(tt.msg)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseMessage(%q)\n= %#v\nwant %#v", tt.msg, got, want)
		}
	}
}

// TestRenderEscapes checks that text from the network cannot break a line.
func TestRenderEscapes(t *testing.T) {
	nasty := "a\r\nWed Sep  6 13:13:16 2023 Info: MID 1 queued for delivery\x00\t\x7f\xff\u0085\u2028\u2029\u202e\ufeffé"
	want := `a\r\nWed Sep  6 13:13:16 2023 Info: MID 1 queued for delivery\x00\t\x7f\xff\u0085\u2028\u2029\u202e\ufeffé`
	tests := []struct {
		ev   event.Event
		want string
	}{
		{event.Subject{MID: 1, Subject: nasty, Quote: '\''}, "MID 1 Subject '" + want + "'"},
		{event.MailFrom{MID: 1, ICID: 2, From: "x>\n<y"}, `MID 1 ICID 2 From: <x\x3e\n\x3cy>`},
		{event.UnknownCommand{ICID: 1, Command: nasty}, "ICID 1 Unknown command: " + want},
		{event.InjectionDebug{ICID: 1, Data: "RCPT TO:<a>\r\n"}, `1 Rcvd: 'RCPT TO:<a>\r\n'`},
		{event.Unknown{Text: "x\ny"}, `x\ny`},
		{event.ConnectionEnd{ICID: 1, Cause: event.CauseQuit, State: "a b=c", LastCommand: "-", Commands: []event.CommandCount{{Verb: "x=1 y", OK: 1, Total: 1}}},
			`mailgate: ICID 1 ended cause=quit state=a\x20b\x3dc last=\x2d data_bytes=0 duration=0.000s x\x3d1\x20y=1 commands=1`},
		{event.Outcome{Hard: true, MID: 1, Code: "5'5", Response: []string{"a\nb", `c\d`, "e\u2028"}},
			`Bounced: DCID 0 MID 1 From: <> To: <> RID 0 -  -  ("5'5", ['a\nb', 'c\\d', 'e\u2028'])`},
	}
	for _, tt := range tests {
		got := string(AppendMessage(nil, tt.ev))
		if got != tt.want {
			t.Errorf("AppendMessage(%#v)\n= %q\nwant %q", tt.ev, got, tt.want)
		}
		if strings.ContainsAny(got, "\r\n\u0085\u2028\u2029") {
			t.Errorf("AppendMessage(%#v) = %q holds a line break", tt.ev, got)
		}
	}
}

func TestPyStr(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `say "hi"`, `both ' and "`, `back\slash`, "tab\tnl\ncr\r", "\x00\x7f\xff", "é\u0085\u2028", `\x41`} {
		lit := string(appendPyStr(nil, s))
		got, rest, ok := cutPyStr(lit + " tail")
		if !ok || got != s || rest != " tail" {
			t.Errorf("cutPyStr(appendPyStr(%q) = %q) = %q, %q, %v", s, lit, got, rest, ok)
		}
	}
	// Python's own choices of quote.
	for s, want := range map[string]string{"it's": `"it's"`, `say "hi"`: `'say "hi"'`, `both ' and "`: `'both \' and "'`} {
		if got := string(appendPyStr(nil, s)); got != want {
			t.Errorf("appendPyStr(%q) = %s, want %s", s, got, want)
		}
	}
}
