package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that no file, however broken, makes Parse panic, and that
// its result is either a configuration whose HATs are valid and whose
// delivery values are all resolved, or a non-empty Problems.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"default.yaml", "testdata/design.yaml", "testdata/full.yaml", "testdata/mistakes.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("listeners:\n  - {name: a, address: ':0', hat: {policies: {P: &p {action: relay}, Q: *p}}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("logs:\n  mail: {rollover: \"03:00\", max_age: 720h}\n  status_interval: 30s\n  subscriptions:\n" +
		"    - {log: mail_logs, level: warning, syslog: {address: \"[::1]:514\", transport: tcp, framing: newline, facility: mail, tag: t, hostname: \"-\"}}\n" +
		"    - {log: status, file: {path: s/s.current, rollover: 24h, max_files: 3}}\n"))
	f.Add([]byte("content_filters:\n  - name: f\n    combine: any\n    conditions:\n      - {header: X-A, matches: \"^a(b|c)$\", not: true}\n" +
		"      - {attachment_name: [\"*.exe\", \"[a-c]?.z*\"]}\n      - {spf: [fail]}\n      - {size_over: 1k}\n" +
		"    actions: [{tag_subject: \"[X]\"}, {alternate_host: \"h:25\"}, bounce]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 || c != nil {
				t.Fatalf("Parse = %v, %#v", c, err)
			}
			return
		}
		// A content filter the gateway takes is one it can run: its
		// tests compiled, its actions known.
		for _, cf := range c.ContentFilters {
			if cf.Name == "" || len(cf.Actions) == 0 {
				t.Fatalf("content filter %+v accepted", cf)
			}
			for _, cond := range cf.Conditions {
				switch cond.Kind {
				case CondHeader:
				case CondBody, CondAttachmentName, CondDeclaredType, CondDetectedType:
					if cond.Regexp == nil {
						t.Fatalf("condition %+v without its test", cond)
					}
				}
			}
		}
		for _, l := range c.Listeners {
			if err := l.HAT.Validate(); err != nil {
				t.Fatalf("listener %s: invalid HAT accepted: %v", l.Name, err)
			}
		}
		// What the queue manager relies on: every control resolved.
		dl := &c.Delivery
		for _, e := range append([]Destination{dl.Default}, dl.Destinations...) {
			if e.Domain == "" || e.MaxConnections < 1 || e.MaxMessagesPerConnection < 1 || e.TLS == "" {
				t.Fatalf("unresolved destination controls %+v", e)
			}
		}
		if dl.Port < 1 || dl.MaxConcurrency < 1 || dl.MaxActiveMessages < 1 || dl.Hostname == "" ||
			dl.Bounce.MaxRetry < dl.Bounce.InitialRetry || dl.Bounce.From == "" {
			t.Fatalf("delivery %+v", dl)
		}
	})
}
