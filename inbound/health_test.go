package inbound_test

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/smtptest"
)

// health_checks on the base listener: one address and one network.
var healthConfig = strings.Replace(baseConfig, "    timeouts: {unsuccessful: %s, total: %s}\n",
	"    timeouts: {unsuccessful: %s, total: %s}\n    health_checks: [127.0.0.5, 127.0.9.0/24]\n", 1)

// A connection from a health checker that leaves without a command is a
// health check: no "lost" line, its own cause. From anyone else, or after
// a command, it is what it was.
func TestHealthCheckConnections(t *testing.T) {
	for _, tc := range []struct {
		name, from string
		run        func(c *smtptest.Conn)
		lost       bool
		cause      string
	}{
		{"checker reads the greeting and closes", "127.0.0.5", func(c *smtptest.Conn) { c.Expect("220"); c.C.Close() }, false,
			"cause=health-check state=connect last=- data_bytes=0"},
		{"checker in the network resets", "127.0.9.7", func(c *smtptest.Conn) { c.Expect("220"); c.Reset() }, false,
			"cause=health-check state=connect"},
		{"checker that sent a command", "127.0.0.5", func(c *smtptest.Conn) { c.Expect("220"); c.Cmd("EHLO lb.test", "250"); c.C.Close() }, true,
			"cause=peer-closed state=helo last=EHLO"},
		{"anyone else", "127.0.0.6", func(c *smtptest.Conn) { c.Expect("220"); c.C.Close() }, true,
			"cause=peer-closed state=connect last=-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, opts{yaml: healthConfig})
			tc.run(h.dial(tc.from))
			all := h.lines.WaitLines(t, `^mailgate: ICID \d+ ended`)
			esa := esaLines(all)
			if got := esa[len(esa)-1]; got != "ICID N close" {
				t.Errorf("last ESA line %q, want the close", got)
			}
			if lost := strings.Contains(strings.Join(esa, "\n"), "ICID N lost"); lost != tc.lost {
				t.Errorf("lost line: %v, want %v:\n%s", lost, tc.lost, strings.Join(esa, "\n"))
			}
			if own := ownLine(t, all); !strings.Contains(own, tc.cause) {
				t.Errorf("own line %q, want %q", own, tc.cause)
			}
		})
	}
}
