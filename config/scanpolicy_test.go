package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/policy"
)

func TestScanPolicyActions(t *testing.T) {
	c, err := Parse([]byte(`
quarantines:
  - {name: Virus Hold, retention: 48h, on_expiry: delete}   # a name with a space, as the ESA's "File Analysis"
scanners: {rspamd: {}, spamassassin: {}, clamav: {}}
mail_policies:
  incoming:
    - name: strict
      recipients: ["@example.com"]
      antispam: {engine: rspamd, positive: reject, suspect: {action: quarantine}, max_size: 1MB}
      antivirus: {engine: clamav, infected: {action: quarantine, quarantine: Virus Hold}, unscannable: drop}
    - name: named
      recipients: ["@example.net"]
      antispam: spamassassin
    - name: DEFAULT
      antispam:
        engine: rspamd
        positive: {action: deliver, tag_subject: "[SPAM] ", add_header: ["X-Spam: yes", "X-Spam-Engine: rspamd"]}
      antivirus: clamav
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*policy.MailPolicy{}
	for _, p := range c.MailPolicies.Incoming {
		byName[p.Name] = p
	}
	for _, w := range []struct {
		name, got, want string
	}{
		{"strict spam", fmt.Sprint(byName["strict"].AntiSpam, byName["strict"].Spam), "rspamd{{reject   []} {quarantine Spam  []} {deliver   []} 1048576}"},
		{"strict virus", fmt.Sprint(byName["strict"].Virus), "{{quarantine Virus Hold  []} {drop   []} {deliver  [WARNING: MESSAGE ENCRYPTED]  []}}"},
		// A name alone inherits DEFAULT's actions.
		{"named spam", fmt.Sprint(byName["named"].AntiSpam, byName["named"].Spam.Positive), "spamassassin{deliver  [SPAM]  [X-Spam: yes X-Spam-Engine: rspamd]}"},
		{"default virus", fmt.Sprint(byName["DEFAULT"].Virus.Infected), "{drop   []}"},
		{"default suspect", fmt.Sprint(byName["DEFAULT"].Spam.Suspect), "{deliver  [SUSPECTED SPAM]  []}"},
	} {
		if w.got != w.want {
			t.Errorf("%s = %q, want %q", w.name, w.got, w.want)
		}
	}
	if !byName["strict"].Rejects("spam") || byName["strict"].Rejects("virus") || byName["DEFAULT"].Rejects("spam") {
		t.Error("Rejects")
	}
}

func TestScanPolicyProblems(t *testing.T) {
	const head = "mail_policies:\n  incoming:\n    - name: DEFAULT\n"
	// After the policies, so that the lines above keep their numbers.
	const engines = "scanners: {rspamd: {}, spamassassin: {}, clamav: {}}\n"
	for _, c := range []struct{ yaml, want string }{
		{head + "      antispam: {positive: drop}\n", "t.yaml:4: mail_policies.incoming[0].antispam.engine: required"},
		{head + "      antispam: {engine: rspamd, positive: explode}\n", "t.yaml:4: mail_policies.incoming[0].antispam.positive: unknown value \"explode\""},
		{head + "      antispam: {engine: rspamd, suspect: reject}\n", "t.yaml:4: mail_policies.incoming[0].antispam.suspect: unknown value \"reject\""},
		{head + "      antivirus: {engine: clamav, unscannable: reject}\n", "t.yaml:4: mail_policies.incoming[0].antivirus.unscannable: unknown value \"reject\""},
		{head + "      antispam: {engine: rspamd, positive: {action: drop, tag_subject: x}}\n", "a drop action delivers nothing to tag"},
		{head + "      antispam: {engine: rspamd, positive: {action: deliver, add_header: nocolon}}\n", "\"nocolon\": want \"Name: value\""},
		{head + "      antispam: {engine: rspamd, positive: {action: deliver, quarantine: Spam}}\n", "a quarantine is for action quarantine"},
		{head + "      antispam: {engine: rspamd, positiv: drop}\n", "did you mean \"positive\"?"},
	} {
		_, err := Parse([]byte(c.yaml+engines), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
}

// TestScanPolicyEngines: antispam names a configured anti-spam engine
// and antivirus a configured anti-virus engine, or the start fails at
// the line that names it. Before, an anti-virus engine under antispam
// ran as the anti-spam stage with the anti-virus settings, and an engine
// left out of scanners stopped the work queue without a line.
func TestScanPolicyEngines(t *testing.T) {
	const head = "mail_policies:\n  incoming:\n    - name: a\n      recipients: [a@example.com]\n"
	for _, c := range []struct {
		name, yaml, scanners, want string
	}{
		{"an anti-virus engine as antispam", "      antispam: clamav\n", "{clamav: {}}",
			`t.yaml:5: mail_policies.incoming[0].antispam: clamav is not an anti-spam engine: want rspamd or spamassassin, or off`},
		{"an anti-spam engine as antivirus", "      antivirus: {engine: spamassassin}\n", "{spamassassin: {}}",
			`t.yaml:5: mail_policies.incoming[0].antivirus.engine: spamassassin is not an anti-virus engine: want clamav, or off`},
		{"rspamd as antivirus in DEFAULT", "    - name: DEFAULT\n      antivirus: rspamd\n", "{rspamd: {}, clamav: {}}",
			`t.yaml:6: mail_policies.incoming[1].antivirus: rspamd is not an anti-virus engine`},
		{"an engine not configured", "      antispam: {engine: rspamd, positive: drop}\n", "{spamassassin: {}}",
			`t.yaml:5: mail_policies.incoming[0].antispam.engine: rspamd is not configured: add it to scanners ("rspamd: {}" takes every default)`},
		{"no scanners at all", "      antivirus: clamav\n", "",
			`t.yaml:5: mail_policies.incoming[0].antivirus: clamav is not configured`},
		{"no such engine", "      antispam: sophos\n", "{rspamd: {}}",
			`t.yaml:5: mail_policies.incoming[0].antispam: no anti-spam engine "sophos": want rspamd or spamassassin, or off`},
		{"clamd is not the key", "      antivirus: clamd\n", "{clamav: {}}",
			`t.yaml:5: mail_policies.incoming[0].antivirus: no anti-virus engine "clamd": want clamav, or off`},
	} {
		text := head + c.yaml
		if c.scanners != "" {
			text += "scanners: " + c.scanners + "\n"
		}
		_, err := Parse([]byte(text), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.name, err, c.want)
		}
	}
	// Each kind with its own engines, configured, off, or left out.
	for _, text := range []string{
		head + "      antispam: spamassassin\n      antivirus: clamav\nscanners: {spamassassin: {}, clamav: {}}\n",
		head + "      antispam: {engine: rspamd}\n      antivirus: off\nscanners:\n  rspamd:\n",
		head + "      antispam: off\n",
	} {
		if _, err := Parse([]byte(text), "t.yaml"); err != nil {
			t.Errorf("%q: %v", text, err)
		}
	}
}
