package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/workqueue"
)

func TestMailPoliciesConfig(t *testing.T) {
	c, err := Parse([]byte(`
mail_policies:
  workers: 2
  initial_retry: 10s
  max_retry: 5m
  incoming:
    - name: executives
      recipients: [ceo@example.com, "@.board.example.com"]
      antivirus: off
    - name: partners
      senders: ["@partner.net"]
      content_filters: []
      scan_failure: deliver
    - name: DEFAULT
      antispam: rspamd
      antivirus: clamav
      content_filters: [no_exe, tag_external]
scanners: {rspamd: {}, clamav: {}}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := c.MailPolicies
	if m == nil || m.Workers != 2 || len(m.Incoming) != 3 || len(m.Outgoing) != 1 {
		t.Fatalf("MailPolicies = %+v", m)
	}
	if m.InitialRetry != 10*time.Second || m.MaxRetry != 5*time.Minute {
		t.Errorf("retry = %v, %v; want 10s, 5m", m.InitialRetry, m.MaxRetry)
	}
	// Left out: the work queue's own defaults.
	if c, err := Parse([]byte("mail_policies:\n  workers: 1\n"), "t.yaml"); err != nil ||
		c.MailPolicies.InitialRetry != workqueue.DefaultRetryMin || c.MailPolicies.MaxRetry != workqueue.DefaultRetryMax {
		t.Errorf("default retry: %v, %+v", err, c.MailPolicies)
	}
	for _, w := range []struct {
		name, as, av string
		cf           []string
		fail         policy.ScanFailure
	}{
		// executives turns anti-virus off and inherits the rest.
		{"executives", "rspamd", "", []string{"no_exe", "tag_external"}, policy.ScanTempfail},
		// partners: an empty list is no filters, not DEFAULT's.
		{"partners", "rspamd", "clamav", []string{}, policy.ScanDeliver},
		{"DEFAULT", "rspamd", "clamav", []string{"no_exe", "tag_external"}, policy.ScanTempfail},
	} {
		p := m.Incoming[slices.IndexFunc(m.Incoming, func(p *policy.MailPolicy) bool { return p.Name == w.name })]
		if p.AntiSpam != w.as || p.AntiVirus != w.av || !slices.Equal(p.ContentFilters, w.cf) || p.OnScanFailure != w.fail {
			t.Errorf("%s = %+v", w.name, p)
		}
	}
	if got := policy.Match(m.Incoming, "x@y.net", "a@eu.board.example.com").Name; got != "executives" {
		t.Errorf("match = %s", got)
	}
	if def := m.Outgoing[0]; def.Name != "DEFAULT" || def.HasStages() {
		t.Errorf("outgoing default = %+v", def)
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
	// Without the section there is no work queue.
	if c, err := Parse([]byte("hostname: mx.test\n"), "t.yaml"); err != nil || c.MailPolicies != nil {
		t.Errorf("no section: %v, %+v", err, c.MailPolicies)
	}
}

func TestMailPoliciesProblems(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"mail_policies:\n  incoming:\n    - name: DEFAULT\n    - name: a\n      recipients: [a@b.com]\n", "t.yaml:3: mail_policies.incoming[0].name: DEFAULT must be the last row"},
		{"mail_policies:\n  incoming:\n    - name: a\n", "t.yaml:3: mail_policies.incoming[0]: policy \"a\" needs recipients or senders"},
		{"mail_policies:\n  incoming:\n    - name: a\n      recipients: [example.com]\n", "t.yaml:4: mail_policies.incoming[0].recipients[0]: \"example.com\" is not"},
		{"mail_policies:\n  outgoing:\n    - name: DEFAULT\n      antispam: \"rs pamd\"\n", "t.yaml:4: mail_policies.outgoing[0].antispam: \"rs pamd\": a name is"},
		{"mail_policies:\n  outgoing:\n    - name: DEFAULT\n      scan_failure: drop\n", "t.yaml:4: mail_policies.outgoing[0].scan_failure:"},
		{"mail_policies:\n  workers: 0\n", "t.yaml:2: mail_policies.workers: 0 is below the minimum 1"},
		{"mail_policies:\n  max_retry: 10s\n", "t.yaml:2: mail_policies.max_retry: 10s is below initial_retry 30s; it caps the growing wait"},
		{"mail_policies:\n  initial_retry: 1h\n", "t.yaml:2: mail_policies.max_retry: 15m0s is below initial_retry 1h0m0s"},
		{"mail_policies:\n  initial_retry: 0s\n", "t.yaml:2: mail_policies.initial_retry: duration 0s is below the minimum 1ms"},
		{"mail_policies:\n  retry: {initial: 1m}\n", "t.yaml:2: mail_policies.retry: unknown key"},
		{"mail_policies:\n  incoming:\n    - name: a\n      recipients: [a@b.com]\n    - name: a\n      recipients: [a@c.com]\n", "t.yaml:5: mail_policies.incoming[1].name: policy \"a\" is in this table already"},
	} {
		_, err := Parse([]byte(c.yaml), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.yaml, err, c.want)
		}
	}
}
