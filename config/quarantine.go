package config

import (
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/quarantine"
)

// quarantineName is what a quarantine's name may be: it is written in
// double quotes in the lines ("Anti-Virus", "File Analysis").
var quarantineName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$`)

// minRetention keeps the expiry from turning into a busy loop.
const minRetention = time.Second

// quarantines decodes the quarantines section: the defaults
// (quarantine.Defaults) with the rows given. A row named as a default
// changes the keys it gives; another adds a quarantine, and must give
// retention and on_expiry. max_size 0 is no limit.
func (d *decoder) quarantines(n *yaml.Node, path string) []quarantine.Spec {
	specs := quarantine.Defaults()
	if !present(n) {
		return specs
	}
	seen := map[string]bool{}
	for i, it := range d.list(n, path) {
		p := index(path, i)
		f := d.fields(it, p, "name", "retention", "on_expiry", "max_size")
		v := f["name"]
		if !present(v) {
			d.errorf(it, join(p, "name"), "required")
			continue
		}
		name, ok := d.str(v, join(p, "name"))
		if !ok {
			continue
		}
		if !quarantineName.MatchString(name) {
			d.errorf(v, join(p, "name"), "%q: a name is letters, digits, spaces, '_', '.' and '-', at most 64", name)
			continue
		}
		if seen[name] {
			d.errorf(v, join(p, "name"), "quarantine %q is given twice", name)
			continue
		}
		seen[name] = true
		k := -1
		for j := range specs {
			if specs[j].Name == name {
				k = j
			}
		}
		if k < 0 {
			for _, key := range []string{"retention", "on_expiry"} {
				if !present(f[key]) {
					d.errorf(it, join(p, key), "required for a quarantine that is not one of the defaults (Policy, Virus, Outbreak, Spam)")
				}
			}
			specs = append(specs, quarantine.Spec{Name: name})
			k = len(specs) - 1
		}
		sp := &specs[k]
		if v := f["retention"]; present(v) {
			sp.Retention, _ = d.duration(v, join(p, "retention"), minRetention)
		}
		if v := f["on_expiry"]; present(v) {
			if s, ok := d.oneOf(v, join(p, "on_expiry"), string(quarantine.ExpireDelete), string(quarantine.ExpireRelease)); ok {
				sp.OnExpiry = quarantine.Expiry(s)
			}
		}
		if v := f["max_size"]; present(v) {
			if v.Value == "0" {
				sp.MaxSize = 0
			} else {
				sp.MaxSize, _ = d.size(v, join(p, "max_size"))
			}
		}
	}
	return specs
}
