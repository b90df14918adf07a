package config

import (
	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/quarantine"
)

// dmarcQuarantineKey is a mail flow policy's dmarc.quarantine: the
// quarantine its quarantine action holds messages in. It must name one of
// the quarantines, which are decoded after the listeners: the check waits
// for them (checkDMARCQuarantines).
type dmarcQuarantineKey struct {
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
	d.dmarcQuarantines = append(d.dmarcQuarantines, dmarcQuarantineKey{n, path, name})
}

// checkDMARCQuarantines reports each dmarc.quarantine that names no
// quarantine of specs.
func (d *decoder) checkDMARCQuarantines(specs []quarantine.Spec) {
	for _, k := range d.dmarcQuarantines {
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
