package explain_test

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
)

// TestAbortPatterns: the kinds that are a broken connection (mailgate's
// FIN, RST and I/O error, the ESA's lost) count together as lost, and the
// kinds of the sender and of the timeouts each make their pattern.
func TestAbortPatterns(t *testing.T) {
	ms := func(kinds ...tracking.Abort) []tracking.Message {
		var out []tracking.Message
		for _, k := range kinds {
			out = append(out, tracking.Message{Status: tracking.Aborted, Abort: k, RemoteIP: "192.0.2.7", AbortState: "data"})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		ms    []tracking.Message
		want  string
		kinds int
	}{
		{"lost", ms(tracking.AbortPeerReset, tracking.AbortPeerClosed, tracking.AbortIOError, tracking.AbortLost), "4 of the 4 lost connections came from 192.0.2.7", 4},
		{"sender", ms(tracking.AbortSenderReset, tracking.AbortSender, tracking.AbortSenderQuit), "3 of the 3 aborts were the senders", 3},
		{"timeouts", ms(tracking.AbortTimeout, tracking.AbortTimeLimit, tracking.AbortTimeout), "3 of the 3 aborts were timeouts", 2},
	} {
		r := explain.Aborts(tc.ms)
		if all := strings.Join(r.Patterns, "\n"); !strings.Contains(all, tc.want) {
			t.Errorf("%s: patterns lack %q:\n%s", tc.name, tc.want, all)
		}
		if len(r.ByKind) != tc.kinds {
			t.Errorf("%s: %d kinds, want %d: %+v", tc.name, len(r.ByKind), tc.kinds, r.ByKind)
		}
	}
}
