package config

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/policy"
)

// The sender-authentication keys of a mail flow policy: spf, dkim, dmarc.
// Each is a mapping, or true/false for verification on or off with the
// other keys at their defaults:
//
//	spf: {verify: true, helo: true, fail: reject, softfail: accept, neutral: accept,
//	      none: accept, permerror: accept, temperror: defer}
//	dkim: {verify: true}
//	dmarc: {verify: true, reject_policy: reject, quarantine_policy: quarantine,
//	        temperror: accept, permerror: accept, quarantine: Policy}

// authServID decodes the top-level authserv_id: the name the gateway
// signs its Authentication-Results with (RFC 8601 2.5), the hostname by
// default. Downstream filters trust the results of this name only.
func (d *decoder) authServID(n *yaml.Node, c *Config) {
	c.AuthServID = c.Hostname
	if !present(n) {
		return
	}
	if s, ok := d.str(n, "authserv_id"); ok {
		if err := policy.CheckDomain(s); err != nil {
			d.errorf(n, "authserv_id", "%v", err)
		}
		c.AuthServID = s
	}
}

// authDefaults sets the checks of an accepting policy (see policy.DefaultSPF).
func authDefaults(p *policy.Policy) {
	p.SPF, p.DKIM, p.DMARC = policy.DefaultSPF, policy.DefaultDKIM, policy.DefaultDMARC
}

// relayAuth turns the checks off on a relaying policy whose own entry
// (f, nil for a predefined one) does not set them: its mail comes from the
// gateway's own hosts and is outgoing.
func relayAuth(p *policy.Policy, f map[string]*yaml.Node) {
	if p.Action != policy.Relay {
		return
	}
	if !present(f["spf"]) {
		p.SPF.Verify = false
	}
	if !present(f["dkim"]) {
		p.DKIM = false
	}
	if !present(f["dmarc"]) {
		p.DMARC.Verify = false
	}
}

func (d *decoder) authParams(f map[string]*yaml.Node, path string, p *policy.Policy) {
	if v := f["spf"]; present(v) {
		d.spfPolicy(v, join(path, "spf"), &p.SPF)
	}
	if v := f["dkim"]; present(v) {
		sp := join(path, "dkim")
		if v.Kind == yaml.ScalarNode {
			p.DKIM, _ = d.onOff(v, sp)
		} else if vf := d.fields(v, sp, "verify"); present(vf["verify"]) {
			p.DKIM, _ = d.onOff(vf["verify"], join(sp, "verify"))
		}
	}
	if v := f["dmarc"]; present(v) {
		d.dmarcPolicy(v, join(path, "dmarc"), &p.DMARC)
	}
}

func (d *decoder) spfPolicy(n *yaml.Node, path string, p *policy.SPFPolicy) {
	if n.Kind == yaml.ScalarNode {
		p.Verify, _ = d.onOff(n, path)
		return
	}
	f := d.fields(n, path, "verify", "helo", "fail", "softfail", "neutral", "none", "permerror", "temperror")
	if v := f["verify"]; present(v) {
		p.Verify, _ = d.onOff(v, join(path, "verify"))
	}
	if v := f["helo"]; present(v) {
		p.HELO, _ = d.onOff(v, join(path, "helo"))
	}
	for _, a := range []struct {
		key string
		dst *policy.AuthAction
	}{{"fail", &p.Fail}, {"softfail", &p.SoftFail}, {"neutral", &p.Neutral}, {"none", &p.None}, {"permerror", &p.PermError}} {
		d.authAction(f[a.key], join(path, a.key), a.dst, policy.AuthAccept, policy.AuthReject)
	}
	d.authAction(f["temperror"], join(path, "temperror"), &p.TempError, policy.AuthAccept, policy.AuthDefer)
}

func (d *decoder) dmarcPolicy(n *yaml.Node, path string, p *policy.DMARCPolicy) {
	if n.Kind == yaml.ScalarNode {
		p.Verify, _ = d.onOff(n, path)
		return
	}
	f := d.fields(n, path, "verify", "reject_policy", "quarantine_policy", "temperror", "permerror", "quarantine")
	if v := f["verify"]; present(v) {
		p.Verify, _ = d.onOff(v, join(path, "verify"))
	}
	d.authAction(f["reject_policy"], join(path, "reject_policy"), &p.RejectPolicy, policy.AuthNone, policy.AuthQuarantine, policy.AuthReject)
	d.authAction(f["quarantine_policy"], join(path, "quarantine_policy"), &p.QuarantinePolicy, policy.AuthNone, policy.AuthQuarantine)
	d.authAction(f["temperror"], join(path, "temperror"), &p.TempError, policy.AuthAccept, policy.AuthReject)
	d.authAction(f["permerror"], join(path, "permerror"), &p.PermError, policy.AuthAccept, policy.AuthReject)
	d.dmarcQuarantine(f["quarantine"], join(path, "quarantine"), p) // dmarcq.go
}

func (d *decoder) authAction(n *yaml.Node, path string, dst *policy.AuthAction, allowed ...policy.AuthAction) {
	if !present(n) {
		return
	}
	words := make([]string, len(allowed))
	for i, a := range allowed {
		words[i] = string(a)
	}
	if s, ok := d.oneOf(n, path, words...); ok {
		*dst = policy.AuthAction(s)
	}
}

// onOff decodes a switch: true or false, or on or off as the ESA's
// settings say (YAML 1.2 reads those as strings).
func (d *decoder) onOff(n *yaml.Node, path string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		switch strings.ToLower(n.Value) {
		case "on":
			return true, true
		case "off":
			return false, true
		}
	}
	return d.boolean(n, path)
}
