package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

func TestLogSubscriptions(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	// Any certificate will do for the CA check: this is Go's test root.
	if err := os.WriteFile(ca, []byte(testCAPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	c := parseString(t, `hostname: mx.example.com
data_dir: `+dir+`
logs:
  mail: {rollover: "03:00", max_age: 720h}
  status_interval: 30s
  subscriptions:
    - {log: mail_logs, syslog: {address: 192.0.2.10}}
    - log: mail_logs
      level: warning
      syslog: {address: "logs.example.com:6514", transport: tls, format: rfc5424, facility: mail, tag: esa_mail, hostname: "-",
               ca: `+ca+`, server_name: logs.example.com, queue_lines: 500, queue_bytes: 1MB, max_message: 4096}
    - {log: status, file: {rollover: 24h, max_files: 30}}
    - {log: gateway, level: debug, file: {path: logs/gw/gateway.current, max_age: 168h}}
    - {log: injection_debug, syslog: {address: "[::1]", transport: tcp, framing: newline}}
http: {address: ""}
`)
	l := c.Logs
	if l.Mail.Schedule != (LogSchedule{RollDaily: true, RollAt: 3 * time.Hour, MaxAge: 720 * time.Hour}) || l.StatusInterval != 30*time.Second {
		t.Errorf("mail log schedule %+v, status interval %v", l.Mail.Schedule, l.StatusInterval)
	}
	want := []LogSubscription{
		{Log: "mail_logs", Level: event.Info, Syslog: &SyslogPush{Address: "192.0.2.10:514", Transport: "udp", Format: "rfc3164",
			Framing: "octet_counting", Facility: "local4", Tag: "mail_logs", Hostname: "mx.example.com"}},
		{Log: "mail_logs", Level: event.Warning, Syslog: &SyslogPush{Address: "logs.example.com:6514", Transport: "tls", Format: "rfc5424",
			Framing: "octet_counting", Facility: "mail", Tag: "esa_mail", Hostname: "", MaxMessage: 4096, QueueLines: 500, QueueBytes: 1 << 20,
			CA: ca, ServerName: "logs.example.com"}},
		{Log: "status", Level: event.Info, File: &LogFile{Path: filepath.Join(dir, "logs/status-3/status.current"), MaxSize: DefaultLogMaxSize,
			MaxFiles: 30, Schedule: LogSchedule{RollEvery: 24 * time.Hour}}},
		{Log: "gateway", Level: event.Debug, File: &LogFile{Path: filepath.Join(dir, "logs/gw/gateway.current"), MaxSize: DefaultLogMaxSize,
			MaxFiles: DefaultLogMaxFiles, Schedule: LogSchedule{MaxAge: 168 * time.Hour}}},
		{Log: "injection_debug", Level: event.Info, Syslog: &SyslogPush{Address: "[::1]:514", Transport: "tcp", Format: "rfc3164",
			Framing: "newline", Facility: "local4", Tag: "injection_debug", Hostname: "mx.example.com"}},
	}
	if !reflect.DeepEqual(l.Subscriptions, want) {
		for i := range max(len(want), len(l.Subscriptions)) {
			if i >= len(want) || i >= len(l.Subscriptions) || !reflect.DeepEqual(l.Subscriptions[i], want[i]) {
				t.Errorf("subscription %d:\n got %+v %+v %+v\nwant %+v", i, l.Subscriptions[min(i, len(l.Subscriptions)-1)],
					l.Subscriptions[min(i, len(l.Subscriptions)-1)].File, l.Subscriptions[min(i, len(l.Subscriptions)-1)].Syslog, want[min(i, len(want)-1)])
			}
		}
	}
	// Without the key, nothing changes: no subscription, the ESA's minute.
	if d := parseString(t, "http: {address: \"\"}\n"); d.Logs.Subscriptions != nil || d.Logs.StatusInterval != time.Minute || d.Logs.Mail.Schedule != (LogSchedule{}) {
		t.Errorf("default logs %+v", d.Logs)
	}
}

func TestLogSubscriptionMistakes(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"no log", `[{file: {}}]`, `test.yaml:2: logs.subscriptions[0].log: required (mail_logs, injection_debug, domain_debug, status, gateway)`},
		{"unknown log", `[{log: bounces, file: {}}]`, `logs.subscriptions[0].log: unknown value "bounces"`},
		{"no output", `[{log: status}]`, `logs.subscriptions[0]: a subscription needs a file or a syslog server`},
		{"both", `[{log: status, file: {}, syslog: {address: a}}]`, `a subscription has a file or a syslog server, not both`},
		{"level", `[{log: status, level: loud, file: {}}]`, `logs.subscriptions[0].level: unknown level "loud"`},
		{"same file", `[{log: status, file: {path: logs/mail_logs/mail_logs.current}}]`, `is also written by logs.mail.path`},
		{"rollover", `[{log: status, file: {rollover: "25:00"}}]`, `logs.subscriptions[0].file.rollover: "25:00" is not a time of day`},
		{"rollover unit", `[{log: status, file: {rollover: 24}}]`, `duration 24 has no unit`},
		{"max_age", `[{log: status, file: {max_age: 1s}}]`, `below the minimum 1m0s`},
		{"no address", `[{log: status, syslog: {transport: tcp}}]`, `logs.subscriptions[0].syslog.address: required`},
		{"port", `[{log: status, syslog: {address: "h:99999"}}]`, `port "99999" is not a number from 1 to 65535`},
		{"transport", `[{log: status, syslog: {address: h, transport: relp}}]`, `unknown value "relp" (want udp, tcp, tls)`},
		{"framing on udp", `[{log: status, syslog: {address: h, framing: newline}}]`, `framing is for tcp and tls`},
		{"facility", `[{log: status, syslog: {address: h, facility: local9}}]`, `unknown value "local9"`},
		{"tag", `[{log: status, syslog: {address: h, tag: "a b"}}]`, `"a b" is not a tag`},
		{"hostname", `[{log: status, syslog: {address: h, hostname: "a b"}}]`, `"a b" is not a host name`},
		{"ca without tls", `[{log: status, syslog: {address: h, ca: /x}}]`, `ca is for transport tls`},
		{"ca missing", `[{log: status, syslog: {address: h, transport: tls, ca: /nonexistent/ca.pem}}]`, `CA file: open /nonexistent/ca.pem`},
		{"max_message", `[{log: status, syslog: {address: h, max_message: 100}}]`, `100 is below the minimum 480`},
		{"status interval", "[]\n  status_interval: 10ms", `logs.status_interval: duration 10ms is below the minimum 1s`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, "logs:\n  subscriptions: "+tt.yaml+"\nhttp: {address: \"\"}\n")
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant %q", ps, tt.want)
			}
		})
	}
}

// testCAPEM is a self-signed certificate (from crypto/tls's tests).
const testCAPEM = `-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIQIRi6zePL6mKjOipn+dNuaTAKBggqhkjOPQQDAjASMRAw
DgYDVQQKEwdBY21lIENvMB4XDTE3MTAyMDE5NDMwNloXDTE4MTAyMDE5NDMwNlow
EjEQMA4GA1UEChMHQWNtZSBDbzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABD0d
7VNhbWvZLWPuj/RtHFjvtJBEwOkhbN/BnnE8rnZR8+sbwnc/KhCk3FhnpHZnQz7B
5aETbbIgmuvewdjvSBSjYzBhMA4GA1UdDwEB/wQEAwICpDATBgNVHSUEDDAKBggr
BgEFBQcDATAPBgNVHRMBAf8EBTADAQH/MCkGA1UdEQQiMCCCDmxvY2FsaG9zdDo1
NDUzgg4xMjcuMC4wLjE6NTQ1MzAKBggqhkjOPQQDAgNIADBFAiEA2zpJEPQyz6/l
Wf86aX6PepsntZv2GYlA5UpabfT2EZICICpJ5h/iI+i341gBmLiAFQOyTDT+/wQc
6MF9+Yw1Yy0t
-----END CERTIFICATE-----
`
