package policy

import "testing"

func TestSenderRouted(t *testing.T) {
	for _, tc := range []struct {
		local string
		route bool
		want  bool
	}{
		{"user", false, false},
		{"first.last+tag", false, false},
		{`"john smith"`, false, false},
		{"user%other.example", false, true},
		{"other.example!user", false, true},
		{`"user@other.example"`, false, true},
		{`"user%other.example"`, false, true},
		{`"a\@b"`, false, true}, // an escaped @ is an @
		{"user", true, true},    // @relay.example:user@ours
	} {
		if got := SenderRouted(tc.local, tc.route); got != tc.want {
			t.Errorf("SenderRouted(%q, %v) = %v, want %v", tc.local, tc.route, got, tc.want)
		}
	}
}
