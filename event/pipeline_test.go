package event

import "testing"

func TestAbortCause(t *testing.T) {
	cases := []struct {
		reason string
		want   AbortCause
	}{
		{"Receiving aborted", AbortCause{Kind: AbortConn}},
		{"Receiving aborted by sender", AbortCause{Kind: AbortSender}},
		{"Injection aborted", AbortCause{Kind: AbortInjection}},
		{"Dropped by CASE", AbortCause{Kind: AbortDropped, By: "CASE"}},
		{"Dropped by amp", AbortCause{Kind: AbortDropped, By: "amp"}},
		{"Dropped by filter 'FileType'", AbortCause{Kind: AbortDropped, By: "filter 'FileType'"}},
		{"Dropped by content filter 'x y' in the inbound table", AbortCause{Kind: AbortDropped, By: "content filter 'x y'", Table: "inbound"}},
		{"Bounced by content filter 'big' in the outbound table", AbortCause{Kind: AbortBounced, By: "content filter 'big'", Table: "outbound"}},
		{"Bounced by filter 'in the table'", AbortCause{Kind: AbortBounced, By: "filter 'in the table'"}},
		{"Something else", AbortCause{}},
		{"", AbortCause{}},
	}
	for _, c := range cases {
		if got := (MessageAborted{MID: 1, Reason: c.reason}).Cause(); got != c.want {
			t.Errorf("Cause(%q) = %+v, want %+v", c.reason, got, c.want)
		}
	}
}

func TestExternalQuarantine(t *testing.T) {
	for extra, want := range map[string]bool{
		"(external quarantine)":                      true,
		"[('X-SBRS', 'None')] (external quarantine)": true,
		"":                     false,
		"[('X-SBRS', 'None')]": false,
	} {
		if got := (MessageDone{Extra: extra}).ExternalQuarantine(); got != want {
			t.Errorf("ExternalQuarantine() with Extra %q = %v, want %v", extra, got, want)
		}
	}
}
