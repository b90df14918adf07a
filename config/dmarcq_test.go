package config

import (
	"strings"
	"testing"
)

// dmarc.quarantine names the quarantine of DMARC's quarantine action: the
// Policy quarantine by default, any quarantine of the configuration, and
// no other (reported at its line).
func TestDMARCQuarantine(t *testing.T) {
	c := parseString(t, `
listeners:
  - name: L
    address: 127.0.0.1:0
    hat:
      policies:
        STRICT:
          action: accept
          dmarc: {quarantine_policy: quarantine, quarantine: Legal hold}
        PLAIN: {action: accept, dmarc: {quarantine_policy: quarantine}}
quarantines:
  - {name: Legal hold, retention: 240h, on_expiry: delete}
`)
	h := c.Listeners[0].HAT
	for _, tt := range []struct{ pol, want string }{{"STRICT", "Legal hold"}, {"PLAIN", "Policy"}, {"ACCEPTED", "Policy"}} {
		if got := h.Policies[tt.pol].DMARC.QuarantineName(); got != tt.want {
			t.Errorf("%s: quarantine %q, want %q", tt.pol, got, tt.want)
		}
	}

	pol := "listeners:\n  - name: a\n    address: ':0'\n    hat:\n      policies:\n        ACCEPTED:\n"
	for _, tt := range []struct{ name, yaml, want string }{
		{"unknown", pol + "          dmarc: {quarantine: Nope}\n",
			`test.yaml:7: listeners[0].hat.policies.ACCEPTED.dmarc.quarantine: no quarantine "Nope" (the quarantines are Policy, Virus, Outbreak, Spam)`},
		{"bad name", pol + "          dmarc:\n            quarantine: \"a\\\"b\"\n",
			`test.yaml:8: listeners[0].hat.policies.ACCEPTED.dmarc.quarantine: "a\"b": a quarantine's name is`},
		{"not a string", pol + "          dmarc: {quarantine: [Policy]}\n", `test.yaml:7: listeners[0].hat.policies.ACCEPTED.dmarc.quarantine: `},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant one starting %q", ps, tt.want)
			}
		})
	}
}
