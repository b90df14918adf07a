package config

import (
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/workqueue"
)

// DefaultWorkQueueWorkers is how many messages the work queue works on at
// once when mail_policies.workers is left out.
const DefaultWorkQueueWorkers = 4

// MailPolicies is the mail_policies section: the two policy tables and the
// work queue that runs them.
type MailPolicies struct {
	policy.MailPolicies
	Workers int // messages worked on at once
	// InitialRetry is the wait of a message whose stage failed under a
	// tempfail policy before it is worked on again; each next wait
	// doubles, up to MaxRetry. The words are delivery.bounce's.
	InitialRetry, MaxRetry time.Duration
}

// engineName is what an engine or content filter name may be: a word that
// fits a log line unquoted.
var engineName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// mailPolicies decodes mail_policies. Without the section a gateway has no
// work queue (messages go straight to delivery, as with DEFAULT rows
// that run nothing, but without the policy lines).
func (d *decoder) mailPolicies(n *yaml.Node, path string) *MailPolicies {
	f := d.fields(n, path, "workers", "initial_retry", "max_retry", "incoming", "outgoing")
	m := &MailPolicies{Workers: DefaultWorkQueueWorkers, InitialRetry: workqueue.DefaultRetryMin, MaxRetry: workqueue.DefaultRetryMax}
	if v := f["workers"]; present(v) {
		m.Workers, _ = d.integer(v, join(path, "workers"), 1)
	}
	d.retry(f, path, &m.InitialRetry, &m.MaxRetry)
	m.Incoming = d.policyTable(f["incoming"], join(path, "incoming"))
	m.Outgoing = d.policyTable(f["outgoing"], join(path, "outgoing"))
	return m
}

// retry decodes initial_retry and max_retry of f, a mapping at path, into
// initial and most: a growing wait, capped.
func (d *decoder) retry(f map[string]*yaml.Node, path string, initial, most *time.Duration) {
	for _, it := range []struct {
		key string
		dst *time.Duration
	}{{"initial_retry", initial}, {"max_retry", most}} {
		if v := f[it.key]; present(v) {
			if dur, ok := d.duration(v, join(path, it.key), time.Millisecond); ok {
				*it.dst = dur
			}
		}
	}
	if *most < *initial {
		at := f["max_retry"]
		if !present(at) {
			at = f["initial_retry"]
		}
		d.errorf(at, join(path, "max_retry"), "%s is below initial_retry %s; it caps the growing wait", *most, *initial)
	}
}

// policyTable decodes one table. Its DEFAULT row, when given, must be the
// last; when left out it is one that runs nothing. The other rows take
// every stage setting they leave out from DEFAULT.
func (d *decoder) policyTable(n *yaml.Node, path string) []*policy.MailPolicy {
	def := &policy.MailPolicy{Name: policy.DefaultMailPolicy, OnScanFailure: policy.ScanTempfail,
		Spam: policy.DefaultSpamSettings, Virus: policy.DefaultVirusSettings}
	if !present(n) {
		return []*policy.MailPolicy{def}
	}
	type row struct {
		p *policy.MailPolicy
		f map[string]*yaml.Node
		n *yaml.Node
		i int
	}
	var rows []row
	names := map[string]bool{}
	items := d.list(n, path)
	for i, it := range items {
		p := index(path, i)
		f := d.fields(it, p, "name", "recipients", "senders", "antispam", "antivirus", "content_filters", "scan_failure")
		mp := &policy.MailPolicy{}
		if v := f["name"]; present(v) {
			if s, ok := d.str(v, join(p, "name")); ok {
				switch {
				case !engineName.MatchString(s):
					d.errorf(v, join(p, "name"), "%q: a name is letters, digits, '_', '.' and '-', at most 64", s)
				case names[s]:
					d.errorf(v, join(p, "name"), "policy %q is in this table already", s)
				case s == policy.DefaultMailPolicy && i != len(items)-1:
					d.errorf(v, join(p, "name"), "DEFAULT must be the last row: the others inherit from it")
				}
				names[s] = true
				mp.Name = s
			}
		} else {
			d.errorf(it, join(p, "name"), "required")
		}
		mp.Recipients = d.addrPatterns(f["recipients"], join(p, "recipients"))
		mp.Senders = d.addrPatterns(f["senders"], join(p, "senders"))
		if mp.Name == policy.DefaultMailPolicy {
			if present(f["recipients"]) || present(f["senders"]) {
				d.errorf(it, p, "DEFAULT matches every recipient: it takes no recipients or senders")
			}
			def = mp
			def.OnScanFailure = policy.ScanTempfail
		} else if mp.Name != "" && len(mp.Recipients) == 0 && len(mp.Senders) == 0 {
			d.errorf(it, p, "policy %q needs recipients or senders to match (DEFAULT takes the rest)", mp.Name)
		}
		rows = append(rows, row{mp, f, it, i})
	}
	if len(rows) == 0 || rows[len(rows)-1].p.Name != policy.DefaultMailPolicy {
		rows = append(rows, row{p: def})
	}
	// DEFAULT first, so that the others can inherit what it has.
	last := rows[len(rows)-1]
	d.stageSettings(last.f, index(path, last.i), last.p, nil)
	table := make([]*policy.MailPolicy, 0, len(rows))
	for _, r := range rows[:len(rows)-1] {
		d.stageSettings(r.f, index(path, r.i), r.p, def)
		table = append(table, r.p)
	}
	return append(table, def)
}

// stageSettings decodes a row's stage settings; a setting left out is
// inherited from def (nil for DEFAULT itself, whose defaults are off and
// tempfail).
func (d *decoder) stageSettings(f map[string]*yaml.Node, path string, p, def *policy.MailPolicy) {
	if def != nil {
		p.AntiSpam, p.AntiVirus, p.OnScanFailure = def.AntiSpam, def.AntiVirus, def.OnScanFailure
		p.ContentFilters = def.ContentFilters
		p.Spam, p.Virus = def.Spam, def.Virus
	} else {
		p.Spam, p.Virus = policy.DefaultSpamSettings, policy.DefaultVirusSettings
	}
	if f == nil {
		return
	}
	if v := f["antispam"]; present(v) {
		d.antispam(v, join(path, "antispam"), p)
	}
	if v := f["antivirus"]; present(v) {
		d.antivirus(v, join(path, "antivirus"), p)
	}
	if v := f["content_filters"]; present(v) {
		cp := join(path, "content_filters")
		p.ContentFilters = []string{} // given and empty: none, not DEFAULT's
		for i, it := range d.list(v, cp) {
			if s := d.engine(it, index(cp, i)); s != "" {
				p.ContentFilters = append(p.ContentFilters, s)
			}
		}
	}
	if v := f["scan_failure"]; present(v) {
		if s, ok := d.oneOf(v, join(path, "scan_failure"), string(policy.ScanTempfail), string(policy.ScanDeliver)); ok {
			p.OnScanFailure = policy.ScanFailure(s)
		}
	}
}

// engine decodes the name of an engine or content filter; "off" (or false)
// is none. The engines' own settings are elsewhere: here the name only.
func (d *decoder) engine(n *yaml.Node, path string) string {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "want a name or off, got %s", kindName(n))
		return ""
	}
	s := n.Value
	if strings.EqualFold(s, "off") || strings.EqualFold(s, "false") {
		return ""
	}
	if !engineName.MatchString(s) {
		d.errorf(n, path, "%q: a name is letters, digits, '_', '.' and '-', at most 64", s)
		return ""
	}
	return s
}

func (d *decoder) addrPatterns(n *yaml.Node, path string) []policy.AddrPattern {
	if !present(n) {
		return nil
	}
	var out []policy.AddrPattern
	for i, it := range d.list(n, path) {
		s, ok := d.str(it, index(path, i))
		if !ok {
			continue
		}
		a, err := policy.ParseAddrPattern(s)
		if err != nil {
			d.errorf(it, index(path, i), "%v", err)
			continue
		}
		out = append(out, a)
	}
	return out
}
