package config

import (
	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/quarantine"
)

// quarantineRef is a quarantine the configuration names: a mail flow
// policy's dmarc.quarantine, a content filter's quarantine action, a scan
// action's quarantine. It must name one of the quarantines, which are
// decoded after the listeners and the filters: the check waits for them
// (checkQuarantineRefs).
type quarantineRef struct {
	n    *yaml.Node
	path string
	name string
}

// dmarcQuarantine decodes dmarc.quarantine into p.
func (d *decoder) dmarcQuarantine(n *yaml.Node, path string, p *policy.DMARCPolicy) {
	if !present(n) {
		return
	}
	name, ok := d.str(n, path)
	if !ok {
		return
	}
	if !quarantineName.MatchString(name) {
		d.errorf(n, path, "%q: a quarantine's name is letters, digits, spaces, '_', '.' and '-', at most 64", name)
		return
	}
	p.Quarantine = name
	d.quarantineRefs = append(d.quarantineRefs, quarantineRef{n, path, name})
}

// checkQuarantineRefs reports each quarantine named in the configuration
// that is none of specs: a misspelt name is found at start, not when a
// message first meets it (and waits in the work queue for a quarantine
// that does not exist).
func (d *decoder) checkQuarantineRefs(specs []quarantine.Spec) {
	for _, k := range d.quarantineRefs {
		found := false
		for _, s := range specs {
			found = found || s.Name == k.name
		}
		if !found {
			names := ""
			for i, s := range specs {
				if i > 0 {
					names += ", "
				}
				names += s.Name
			}
			d.errorf(k.n, k.path, "no quarantine %q (the quarantines are %s)", k.name, names)
		}
	}
}
