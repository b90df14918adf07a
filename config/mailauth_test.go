package config

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/policy"
)

func TestMailauthPolicies(t *testing.T) {
	c := parseString(t, `
hostname: mx.example.org
authserv_id: auth.example.org
listeners:
  - name: L
    address: 127.0.0.1:0
    hat:
      policies:
        STRICT:
          action: accept
          spf: {fail: reject, softfail: reject, temperror: defer, helo: false}
          dkim: {verify: false}
          dmarc: {reject_policy: reject, quarantine_policy: quarantine, temperror: reject, permerror: reject}
        LAX: {action: accept, spf: off, dkim: false, dmarc: false}
        OUT: {action: relay}
        OUTCHECKED: {action: relay, spf: true}
`)
	if c.AuthServID != "auth.example.org" {
		t.Errorf("authserv_id = %q", c.AuthServID)
	}
	h := c.Listeners[0].HAT
	strict := policy.SPFPolicy{Verify: true, HELO: false, Fail: policy.AuthReject, SoftFail: policy.AuthReject,
		Neutral: policy.AuthAccept, None: policy.AuthAccept, PermError: policy.AuthAccept, TempError: policy.AuthDefer}
	if got := h.Policies["STRICT"]; got.SPF != strict || got.DKIM ||
		got.DMARC != (policy.DMARCPolicy{Verify: true, RejectPolicy: policy.AuthReject, QuarantinePolicy: policy.AuthQuarantine,
			TempError: policy.AuthReject, PermError: policy.AuthReject, Quarantine: "Policy"}) {
		t.Errorf("STRICT = %+v %v %+v", got.SPF, got.DKIM, got.DMARC)
	}
	if got := h.Policies["LAX"]; got.SPF.Verify || got.DKIM || got.DMARC.Verify {
		t.Errorf("LAX verifies: %+v %v %+v", got.SPF, got.DKIM, got.DMARC)
	}
	for _, name := range []string{"ACCEPTED", "THROTTLED"} {
		if got := h.Policies[name]; got.SPF != policy.DefaultSPF || !got.DKIM || got.DMARC != policy.DefaultDMARC {
			t.Errorf("%s = %+v %v %+v, want the defaults", name, got.SPF, got.DKIM, got.DMARC)
		}
	}
	for _, name := range []string{"RELAYED", "OUT"} {
		if got := h.Policies[name]; got.SPF.Verify || got.DKIM || got.DMARC.Verify {
			t.Errorf("relaying %s verifies: %+v %v %+v", name, got.SPF, got.DKIM, got.DMARC)
		}
	}
	if got := h.Policies["OUTCHECKED"]; !got.SPF.Verify || got.DKIM {
		t.Errorf("OUTCHECKED = %+v %v", got.SPF, got.DKIM)
	}
	// The default authserv-id is the hostname.
	if c := parseString(t, "hostname: mx.example.org\n"); c.AuthServID != "mx.example.org" {
		t.Errorf("default authserv_id = %q", c.AuthServID)
	}
}

func TestMailauthMistakes(t *testing.T) {
	pol := "listeners:\n  - name: a\n    address: ':0'\n    hat:\n      policies:\n        ACCEPTED:\n"
	for _, tt := range []struct{ name, yaml, want string }{
		{"spf action", pol + "          spf: {fail: defer}\n", `test.yaml:7: listeners[0].hat.policies.ACCEPTED.spf.fail: unknown value "defer" (want accept, reject)`},
		{"spf temperror", pol + "          spf: {temperror: reject}\n", `test.yaml:7: listeners[0].hat.policies.ACCEPTED.spf.temperror: unknown value "reject" (want accept, defer)`},
		{"spf key", pol + "          spf: {fial: reject}\n", `test.yaml:7: listeners[0].hat.policies.ACCEPTED.spf.fial: unknown key; did you mean "fail"?`},
		{"dmarc quarantine", pol + "          dmarc: {quarantine_policy: reject}\n", `test.yaml:7: listeners[0].hat.policies.ACCEPTED.dmarc.quarantine_policy: unknown value "reject" (want none, quarantine)`},
		{"dkim scalar", pol + "          dkim: maybe\n", `test.yaml:7: listeners[0].hat.policies.ACCEPTED.dkim: want true or false`},
		{"authserv_id", "authserv_id: 'a b'\n", `test.yaml:1: authserv_id: `},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant one starting %q", ps, tt.want)
			}
		})
	}
}
