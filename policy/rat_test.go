package policy

import (
	"strings"
	"testing"
)

func TestRATPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"example.com",
			[]string{"a@example.com", "A@EXAMPLE.COM", "a@example.com.", `"x@y"@example.com`},
			[]string{"a@mx.example.com", "a@example.org", "a@badexample.com", "example.com", "a@[10.0.0.1]", "postmaster"}},
		{"EXAMPLE.com.",
			[]string{"a@example.com"},
			[]string{"a@example.co"}},
		{".example.com",
			[]string{"a@mx.example.com", "a@b.c.Example.Com"},
			[]string{"a@example.com", "a@badexample.com", "a@.example.com"}},
		{"postmaster@",
			[]string{"postmaster@example.com", "PostMaster@other.org", "postmaster", "postmaster@[10.0.0.1]"},
			[]string{"postmaster2@example.com", "abuse@example.com", "xpostmaster@example.com"}},
		{"joe@example.com",
			[]string{"joe@example.com", "JOE@Example.COM"},
			[]string{"joe@mx.example.com", "jo@example.com", "joe@example.org", "joe"}},
		{"ALL",
			[]string{"a@example.com", "user@[10.0.0.1]", "user@[IPv6:2001:db8::1]", "postmaster", ""},
			nil},
	}
	for _, tt := range tests {
		e, err := ParseRATEntry(tt.pattern, "accept")
		if err != nil {
			t.Errorf("ParseRATEntry(%q): %v", tt.pattern, err)
			continue
		}
		rat := RAT{e}
		for _, rcpt := range tt.match {
			if _, ok := rat.Decide(rcpt); !ok {
				t.Errorf("pattern %q does not match %q", tt.pattern, rcpt)
			}
		}
		for _, rcpt := range tt.miss {
			if _, ok := rat.Decide(rcpt); ok {
				t.Errorf("pattern %q matches %q", tt.pattern, rcpt)
			}
		}
	}
}

func TestRATDecide(t *testing.T) {
	entry := func(pattern, action string, code int, text string) RATEntry {
		e, err := ParseRATEntry(pattern, action)
		if err != nil {
			t.Fatal(err)
		}
		e.Code, e.Text = code, text
		return e
	}
	rat := RAT{
		entry("abuse@example.com", "reject", 550, "#5.1.1 No such user"),
		entry("example.com", "accept", 0, ""),
		entry(".example.com", "REJECT", 0, ""),
		entry("postmaster@", "Accept", 250, "postmaster ok"),
		entry("ALL", "reject", 451, ""),
	}
	tests := []struct {
		rcpt    string
		accept  bool
		pattern string
		code    int
		text    string
	}{
		{"abuse@example.com", false, "abuse@example.com", 550, "#5.1.1 No such user"},
		{"joe@example.com", true, "example.com", 0, ""},
		{"joe@sub.example.com", false, ".example.com", 550, "#5.1.0 Address rejected."},
		{"postmaster@sub.example.com", false, ".example.com", 550, "#5.1.0 Address rejected."},
		{"postmaster@elsewhere.net", true, "postmaster@", 250, "postmaster ok"},
		{"joe@elsewhere.net", false, "ALL", 451, "#5.1.0 Address rejected."},
		{"joe@[192.0.2.1]", false, "ALL", 451, "#5.1.0 Address rejected."},
	}
	for _, tt := range tests {
		e, ok := rat.Decide(tt.rcpt)
		if ok != tt.accept || e.Pattern != tt.pattern || e.Code != tt.code || e.Text != tt.text {
			t.Errorf("Decide(%q) = %v, {%q %d %q}; want %v, {%q %d %q}",
				tt.rcpt, ok, e.Pattern, e.Code, e.Text, tt.accept, tt.pattern, tt.code, tt.text)
		}
	}
}

func TestRATNoMatchRejects(t *testing.T) {
	for _, rat := range []RAT{nil, {{}}} {
		e, ok := rat.Decide("joe@example.com")
		if ok || e.Code != RATRejectCode || e.Text != RATRejectText || e.Pattern != "" {
			t.Errorf("RAT %v: Decide = %+v, %v; want a rejection with the default reply", rat, e, ok)
		}
	}
}

func TestParseRATEntryErrors(t *testing.T) {
	tests := []struct{ pattern, action, want string }{
		{"example.com", "allow", `unknown RAT action "allow" (want accept or reject)`},
		{"", "accept", `invalid RAT pattern "": empty host name`},
		{"@example.com", "accept", "empty local part; write the domain alone"},
		{"user@[10.0.0.1]", "accept", "address literals cannot be matched"},
		{"[10.0.0.1]", "accept", "address literals cannot be matched"},
		{"user@.example.com", "accept", "a subdomain pattern cannot have a local part"},
		{"us er@example.com", "accept", `invalid character ' ' in local part`},
		{"<user>@example.com", "accept", `invalid character '<' in local part`},
		{"exa mple.com", "reject", `invalid character ' ' in host name`},
		{"*.example.com", "reject", "wildcards are not supported"},
		{".", "reject", "empty host name"},
	}
	for _, tt := range tests {
		e, err := ParseRATEntry(tt.pattern, tt.action)
		if err == nil {
			t.Errorf("ParseRATEntry(%q, %q) = %+v, want an error", tt.pattern, tt.action, e)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRATEntry(%q, %q) error = %q, want it to contain %q", tt.pattern, tt.action, err, tt.want)
		}
	}
}

func BenchmarkRATDecide(b *testing.B) {
	var rat RAT
	for _, p := range []string{"a.example", "b.example", ".c.example", "postmaster@", "example.com", "ALL"} {
		e, err := ParseRATEntry(p, "accept")
		if err != nil {
			b.Fatal(err)
		}
		rat = append(rat, e)
	}
	b.ReportAllocs()
	for b.Loop() {
		rat.Decide("joe@Example.COM")
	}
}

// FuzzRATDecide checks that a recipient from the network never panics the
// RAT and that the decision does not depend on letter case.
func FuzzRATDecide(f *testing.F) {
	var rat RAT
	for _, p := range []string{"abuse@example.com", "example.com", ".example.com", "postmaster@", "ALL"} {
		e, err := ParseRATEntry(p, map[bool]string{true: "accept", false: "reject"}[p != "ALL"])
		if err != nil {
			f.Fatal(err)
		}
		rat = append(rat, e)
	}
	for _, s := range []string{"joe@example.com", "a@b@example.com", "postmaster", "@", "x@[1.2.3.4]", "x@sub.example.com.", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rcpt string) {
		e, ok := rat.Decide(rcpt)
		upper, uok := rat.Decide(asciiUpper(rcpt))
		if ok != uok || e.Pattern != upper.Pattern {
			t.Fatalf("Decide(%q) = %q %v but Decide(upper) = %q %v", rcpt, e.Pattern, ok, upper.Pattern, uok)
		}
		if !ok && (e.Code == 0 || e.Text == "") {
			t.Fatalf("Decide(%q): rejection without a reply: %+v", rcpt, e)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
