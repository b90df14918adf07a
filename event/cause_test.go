package event

import "testing"

// The words are the log's: a change breaks every log already written.
func TestCauseWords(t *testing.T) {
	tests := []struct {
		c    Cause
		word string
	}{
		{CauseQuit, "quit"},
		{CausePeerClosed, "peer-closed"},
		{CausePeerReset, "peer-reset"},
		{CauseIOError, "io-error"},
		{CauseTLSFailed, "tls-failed"},
		{CauseTimeoutUnsuccessful, "timeout-unsuccessful"},
		{CauseTimeoutTotal, "timeout-total"},
		{CauseBadCommands, "bad-commands"},
		{CausePolicy, "policy"},
		{CauseProtocol, "protocol"},
		{CauseShutdown, "shutdown"},
		{CauseTimeoutIdle, "timeout-idle"},
		{CauseJunkCommands, "junk-commands"},
		{CauseErrors, "errors"},
		{CausePipelining, "pipelining"},
		{CauseHealthCheck, "health-check"},
	}
	if len(tests) != len(causeWords)-1 {
		t.Errorf("%d causes tested, %d defined", len(tests), len(causeWords)-1)
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.word {
			t.Errorf("Cause(%d).String() = %q, want %q", uint8(tt.c), got, tt.word)
		}
		if c, ok := ParseCause(tt.word); !ok || c != tt.c {
			t.Errorf("ParseCause(%q) = %v, %v; want %v", tt.word, c, ok, tt.c)
		}
	}
}

// Words that are no cause: ParseCause refuses them, and what String gives
// for a number that is no cause does not parse as one.
func TestCauseUnknown(t *testing.T) {
	for _, w := range []string{"", "Quit", "quit ", "peer_reset", "rate-limit", "Cause(0)", "Cause(12)"} {
		if c, ok := ParseCause(w); ok {
			t.Errorf("ParseCause(%q) = %v, true", w, c)
		}
	}
	for _, c := range []Cause{0, Cause(len(causeWords)), 255} {
		s := c.String()
		if _, ok := ParseCause(s); ok {
			t.Errorf("Cause(%d).String() = %q parses as a cause", uint8(c), s)
		}
	}
	if got := Cause(0).String(); got != "Cause(0)" {
		t.Errorf("Cause(0).String() = %q", got)
	}
}
