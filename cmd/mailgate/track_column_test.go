package main

import (
	"testing"

	"github.com/mailgate/mailgate/tracking"
)

// TestRecipientColumn: track's table never lists a refused recipient beside
// accepted ones as if it were one of them.
func TestRecipientColumn(t *testing.T) {
	r := func(addr string, st tracking.Status) tracking.Recipient {
		return tracking.Recipient{Address: addr, Status: st}
	}
	for _, tt := range []struct {
		name string
		rs   []tracking.Recipient
		want string
	}{
		{"none", nil, "-"},
		{"accepted", []tracking.Recipient{r("a@x.example", tracking.Queued), r("b@x.example", tracking.Delivered)}, "a@x.example, b@x.example"},
		{"mixed", []tracking.Recipient{r("no@y.example", tracking.Rejected), r("a@x.example", tracking.Queued), r("no2@y.example", tracking.Rejected)}, "a@x.example (+2 rejected)"},
		{"all refused", []tracking.Recipient{r("no@y.example", tracking.Rejected)}, "no@y.example (rejected)"},
	} {
		if got := recipientColumn(tt.rs); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
