package smtp

import "testing"

// A source route is dropped from the address but reported, so that a
// listener can refuse it from clients it does not relay for.
func TestParsePathSourceRoute(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Path
	}{
		{"user@ours.example", Path{Local: "user", Domain: "ours.example"}},
		{"@relay.example:user@ours.example", Path{Local: "user", Domain: "ours.example", SourceRoute: true}},
		{"@a.example,@b.example:user@ours.example", Path{Local: "user", Domain: "ours.example", SourceRoute: true}},
		{"@relay.example:postmaster", Path{Local: "postmaster", SourceRoute: true}},
		{`"user@other.example"@ours.example`, Path{Local: `"user@other.example"`, Domain: "ours.example"}},
	} {
		got, err := ParsePath(tc.in, false)
		if err != nil || got != tc.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
