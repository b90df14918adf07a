package config

import (
	"path"
	"regexp"
	"strings"
	"testing"
)

func TestContentFiltersConfig(t *testing.T) {
	c, err := Parse([]byte(`
content_filters:
  - name: no_exe
    combine: any
    conditions:
      - {attachment_name: ["*.exe", "*.SCR"]}
      - {detected_type: application/x-msdownload}
      - {header: Subject, matches: "(?i)invoice", not: true}
      - {spf: [Fail, softfail]}
      - {size_over: 10M}
      - {sender: "@example.com"}
    actions:
      - {log_entry: "executable found"}
      - {strip_header: X-Mailer}
      - {quarantine: Policy}
  - name: tag_external
    actions: [{tag_subject: "[EXT]"}, skip_remaining]
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fs := c.ContentFilters
	if len(fs) != 2 || fs[0].Name != "no_exe" || !fs[0].Any || fs[1].Any || len(fs[0].Conditions) != 6 {
		t.Fatalf("ContentFilters = %+v", fs)
	}
	conds := fs[0].Conditions
	if !conds[0].Regexp.MatchString("Setup.EXE") || !conds[0].Regexp.MatchString("a.scr") || conds[0].Regexp.MatchString("a.exe.txt") {
		t.Errorf("attachment globs compiled to %v", conds[0].Regexp)
	}
	if c := conds[2]; c.Kind != CondHeader || c.Header != "subject" || !c.Not || !c.Regexp.MatchString("INVOICE 12") {
		t.Errorf("header condition %+v", c)
	}
	if c := conds[3]; strings.Join(c.Words, ",") != "fail,softfail" {
		t.Errorf("spf words %v", c.Words)
	}
	if c := conds[4]; c.Number != 10<<20 {
		t.Errorf("size_over %d", c.Number)
	}
	if a := fs[0].Actions; len(a) != 3 || a[1] != (FilterAction{ActStripHeader, "x-mailer"}) || a[2] != (FilterAction{ActQuarantine, "Policy"}) {
		t.Errorf("actions %+v", a)
	}
	if a := fs[1].Actions; len(a) != 2 || a[1].Kind != ActSkipRemaining {
		t.Errorf("actions %+v", a)
	}
}

func TestContentFiltersProblems(t *testing.T) {
	const pre = "content_filters:\n  - name: f\n"
	for _, c := range []struct{ yaml, want string }{
		{pre + "    conditions:\n      - {body: \"a(b\"}\n    actions: [drop]\n", "t.yaml:4: content_filters[0].conditions[0].body: error parsing regexp"},
		{pre + "    conditions:\n      - {header: X-A, matches: \"[\"}\n    actions: [drop]\n", "t.yaml:4: content_filters[0].conditions[0].matches: error parsing regexp"},
		{pre + "    conditions:\n      - {attachment_name: \"a[\"}\n    actions: [drop]\n", "t.yaml:4: content_filters[0].conditions[0].attachment_name[0]: \"a[\" is not a pattern"},
		{pre + "    conditions:\n      - {body: a, header: X-A}\n    actions: [drop]\n", "t.yaml:4: content_filters[0].conditions[0]: one test per condition"},
		{pre + "    conditions:\n      - {bdy: a}\n    actions: [drop]\n", "did you mean \"body\"?"},
		{pre + "    conditions:\n      - {spf: failed}\n    actions: [drop]\n", "t.yaml:4: content_filters[0].conditions[0].spf[0]: \"failed\": want one of"},
		{pre + "    conditions:\n      - {header: \"X A\"}\n    actions: [drop]\n", "is not a header field name"},
		{pre + "    conditions:\n      - {body: a, matches: b}\n    actions: [drop]\n", "matches goes with header only"},
		{pre + "    conditions:\n      - {sender: example.com}\n    actions: [drop]\n", "t.yaml:4: content_filters[0].conditions[0].sender[0]:"},
		{pre + "    actions: [drop, bounce]\n", "t.yaml:3: content_filters[0].actions[1]: bounce after drop: a filter has one final action"},
		{pre + "    actions: [quarantine]\n", "quarantine takes an argument"},
		{pre + "    actions: [{quarantine: Polcy}]\n", "t.yaml:3: content_filters[0].actions[0].quarantine: no quarantine \"Polcy\" (the quarantines are Policy, Virus, Outbreak, Spam)"},
		{pre + "    actions: [explode]\n", "\"explode\": want one of"},
		{pre + "    actions: [{add_header: \"no colon\"}]\n", "want \"Name: value\""},
		{pre + "    actions: [{alternate_recipient: \"Bob <b@c.d>\"}]\n", "want a bare address"},
		{pre + "    actions: [{alternate_host: \"h:99999\"}]\n", "a port is 1 to 65535"},
		{pre + "    actions: [{notify: \"zoë@example.com\"}]\n", "the address must be ASCII"},
		{pre + "    actions: [{log_entry: \"a\\nb\"}]\n", "control character"},
		{pre + "    actions: [{notify: a@b.c, drop: x}]\n", "unknown key"},
		{pre + "    actions: []\n", "no action"},
		{pre, "t.yaml:2: content_filters[0].actions: required"},
		{"content_filters:\n  - {name: f, actions: [drop]}\n  - {name: f, actions: [drop]}\n", "t.yaml:3: content_filters[1].name: content filter \"f\" is defined already"},
		{"content_filters:\n  - {name: \"a b\", actions: [drop]}\n", "a name is letters"},
		{"content_filters:\n  - {name: clamav, actions: [drop]}\n", "t.yaml:2: content_filters[0].name: \"clamav\" is a scanning engine's name: a content filter needs a name of its own"},
	} {
		_, err := Parse([]byte(c.yaml), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.yaml, err, c.want)
		}
	}
	// A quarantine whose name has a space, declared, is one a filter may name.
	c, err := Parse([]byte("quarantines:\n  - {name: File Analysis, retention: 1h, on_expiry: release}\n"+
		pre+"    actions: [{quarantine: File Analysis}]\n"), "t.yaml")
	if err != nil || c.ContentFilters[0].Actions[0].Arg != "File Analysis" {
		t.Errorf("a filter quarantining in \"File Analysis\": %v", err)
	}
}

// FuzzGlob: a pattern path.Match takes compiles, and matches what
// path.Match matches (names without '/', where the two agree by design;
// lower case, as the globs ignore case).
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{{"*.exe", "setup.exe"}, {"[a-c]?.z*", "bx.zip"}, {"[^a]b", "cb"}, {`\*x`, "*x"}, {"résumé*", "résumé.scr"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, name string) {
		pat, name = strings.ToLower(pat), strings.ToLower(name)
		if _, err := path.Match(pat, ""); err != nil || pat == "" || strings.Contains(name, "/") {
			return
		}
		re, err := regexp.Compile(`(?s)^(?:` + globRegexp(pat) + `)$`)
		if err != nil {
			t.Fatalf("%q: %v", pat, err)
		}
		want, _ := path.Match(pat, name)
		if got := re.MatchString(name); got != want && !strings.Contains(pat, "/") {
			t.Fatalf("%q on %q: regexp %v, path.Match %v (%s)", pat, name, got, want, re)
		}
	})
}
