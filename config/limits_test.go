package config

import (
	"strings"
	"testing"
	"time"
)

// The abuse limits and the idle timeout: the full example's values, and
// the mistakes they can hold.
func TestAbuseLimits(t *testing.T) {
	c, _, _ := loadFull(t)
	in := c.Listeners[0]
	if in.JunkCommandLimit != 50 || in.SoftErrorLimit != 5 || in.HardErrorLimit != 8 || in.ErrorDelay != 2*time.Second || in.Timeouts.Idle != 3*time.Minute {
		t.Errorf("listener %+v", in)
	}
	off := parseString(t, "listeners: [{name: L, address: '127.0.0.1:0', junk_command_limit: 0, soft_error_limit: 0, hard_error_limit: 0, error_delay: 0s}]")
	if l := off.Listeners[0]; l.JunkCommandLimit != 0 || l.SoftErrorLimit != 0 || l.HardErrorLimit != 0 || l.ErrorDelay != 0 {
		t.Errorf("0 does not turn the limits off: %+v", l)
	}
	tests := []struct {
		keys string
		want string
	}{
		{"soft_error_limit: 20", "test.yaml:1: listeners[0].soft_error_limit: 20 is not below hard_error_limit 20: the tarpit would never start"},
		{"hard_error_limit: 5", "test.yaml:1: listeners[0].soft_error_limit: 10 is not below hard_error_limit 5: the tarpit would never start"},
		{"junk_command_limit: -1", "test.yaml:1: listeners[0].junk_command_limit: -1 is below the minimum 0"},
		{"error_delay: 1", "test.yaml:1: listeners[0].error_delay: duration 1 has no unit; write 1s or 1m"},
		{"timeouts: {idle: 0s}", "test.yaml:1: listeners[0].timeouts.idle: duration 0s is below the minimum 1s"},
	}
	for _, tt := range tests {
		ps := problemsOf(t, "listeners: [{name: L, address: '127.0.0.1:0', "+tt.keys+"}]")
		if got := ps.Error(); !strings.Contains(got, tt.want) {
			t.Errorf("%s: problems\n%s\nwant %s", tt.keys, got, tt.want)
		}
	}
}
