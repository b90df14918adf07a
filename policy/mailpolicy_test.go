package policy

import (
	"slices"
	"testing"
)

func pats(t testing.TB, ss ...string) []AddrPattern {
	t.Helper()
	var out []AddrPattern
	for _, s := range ss {
		p, err := ParseAddrPattern(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestAddrPattern(t *testing.T) {
	for _, c := range []struct {
		pat, addr string
		want      bool
	}{
		{"ceo@example.com", "ceo@example.com", true},
		{"ceo@example.com", "CEO@Example.COM", true},
		{"ceo@example.com", "cfo@example.com", false},
		{"ceo@example.com", "ceo@sub.example.com", false},
		{"ceo@", "ceo@anywhere.net", true},
		{"ceo@", "cfo@anywhere.net", false},
		{"@example.com", "a@example.com", true},
		{"@example.com", "a@sub.example.com", false},
		{"@example.com", "a@badexample.com", false},
		{"@.example.com", "a@sub.example.com", true},
		{"@.example.com", "a@deep.sub.EXAMPLE.com", true},
		{"@.example.com", "a@example.com", false},
		{"@.example.com", "a@badexample.com", false},
		{"@example.com", "", false},
		{"@example.com", "no-at-sign", false},
	} {
		p, err := ParseAddrPattern(c.pat)
		if err != nil {
			t.Fatalf("%q: %v", c.pat, err)
		}
		if got := p.Match(c.addr); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pat, c.addr, got, c.want)
		}
	}
	for _, bad := range []string{"example.com", "@", "@bad..domain", "a@x y.com"} {
		if _, err := ParseAddrPattern(bad); err == nil {
			t.Errorf("ParseAddrPattern(%q) accepted", bad)
		}
	}
}

func TestMailPolicyMatch(t *testing.T) {
	exec := &MailPolicy{Name: "executives", Recipients: pats(t, "ceo@example.com", "cfo@example.com")}
	sales := &MailPolicy{Name: "sales", Recipients: pats(t, "@.sales.example.com")}
	partner := &MailPolicy{Name: "partner", Recipients: pats(t, "@example.com"), Senders: pats(t, "@partner.net")}
	def := &MailPolicy{Name: DefaultMailPolicy}
	table := []*MailPolicy{exec, sales, partner, def}
	for _, c := range []struct {
		sender, rcpt string
		want         *MailPolicy
	}{
		{"x@a.net", "ceo@example.com", exec},
		{"x@partner.net", "ceo@example.com", exec}, // first match wins
		{"x@partner.net", "bob@example.com", partner},
		{"x@other.net", "bob@example.com", def}, // sender condition not met
		{"", "bob@example.com", def},            // null sender
		{"x@a.net", "bob@eu.sales.example.com", sales},
		{"x@a.net", "bob@sales.example.com", def},
		{"x@a.net", "bob@elsewhere.org", def},
	} {
		if got := Match(table, c.sender, c.rcpt); got != c.want {
			t.Errorf("Match(%q, %q) = %s, want %s", c.sender, c.rcpt, got.Name, c.want.Name)
		}
	}

	groups := Split(table, "x@a.net", []string{"a@elsewhere.org", "ceo@example.com", "b@elsewhere.org", "cfo@example.com", "c@eu.sales.example.com"})
	type g struct {
		name  string
		rcpts []int
	}
	want := []g{{"DEFAULT", []int{0, 2}}, {"executives", []int{1, 3}}, {"sales", []int{4}}}
	if len(groups) != len(want) {
		t.Fatalf("Split: %d groups, want %d", len(groups), len(want))
	}
	for i, w := range want {
		if groups[i].Policy.Name != w.name || !slices.Equal(groups[i].Rcpts, w.rcpts) {
			t.Errorf("group %d = %s %v, want %s %v", i, groups[i].Policy.Name, groups[i].Rcpts, w.name, w.rcpts)
		}
	}
	if n := len(Split(table, "x@a.net", []string{"ceo@example.com", "cfo@example.com"})); n != 1 {
		t.Errorf("two recipients of one policy: %d groups, want 1", n)
	}
}

func TestMailPoliciesValidate(t *testing.T) {
	def := &MailPolicy{Name: DefaultMailPolicy}
	ok := &MailPolicy{Name: "a", Recipients: pats(t, "@a.com")}
	for _, c := range []struct {
		name string
		m    MailPolicies
		ok   bool
	}{
		{"defaults only", MailPolicies{Incoming: []*MailPolicy{def}, Outgoing: []*MailPolicy{def}}, true},
		{"rows", MailPolicies{Incoming: []*MailPolicy{ok, def}, Outgoing: []*MailPolicy{def}}, true},
		{"no default", MailPolicies{Incoming: []*MailPolicy{ok}, Outgoing: []*MailPolicy{def}}, false},
		{"default not last", MailPolicies{Incoming: []*MailPolicy{def, ok, def}, Outgoing: []*MailPolicy{def}}, false},
		{"matches nothing", MailPolicies{Incoming: []*MailPolicy{{Name: "x"}, def}, Outgoing: []*MailPolicy{def}}, false},
	} {
		if err := c.m.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate() = %v", c.name, err)
		}
	}
}

// FuzzMailPolicyMatch: any envelope address (the network's) against
// patterns of every form: no panic, and Split accounts for every recipient
// once.
func FuzzMailPolicyMatch(f *testing.F) {
	f.Add("a@example.com", "b@sub.example.com")
	f.Add("", "@")
	f.Add("x@@", "é@ÉXAMPLE.com")
	f.Fuzz(func(t *testing.T, sender, rcpt string) {
		table := []*MailPolicy{
			{Name: "a", Recipients: pats(t, "ceo@", "@.example.com")},
			{Name: "b", Senders: pats(t, "@example.com", "x@y.org")},
			{Name: DefaultMailPolicy},
		}
		groups := Split(table, sender, []string{rcpt, sender, rcpt})
		n := 0
		for _, g := range groups {
			n += len(g.Rcpts)
		}
		if n != 3 {
			t.Fatalf("Split lost or doubled recipients: %+v", groups)
		}
	})
}
