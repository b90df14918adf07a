package config

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/policy"
)

// A mail policy's antispam and antivirus keys: an engine's name alone
// ("antispam: rspamd", the actions inherited from DEFAULT, whose own are
// the defaults) or a mapping with the engine and the actions of the
// verdict categories it changes (the others inherited).

var scanActionWords = []string{string(policy.ActDeliver), string(policy.ActDrop), string(policy.ActBounce),
	string(policy.ActQuarantine), string(policy.ActReject)}

// engineRef is the engine a policy's antispam or antivirus names. It must
// be one of the scanners of its kind, which are decoded after the mail
// policies: the check waits for them (checkEngineRefs).
type engineRef struct {
	n     *yaml.Node
	path  string
	name  string
	virus bool // antivirus; antispam otherwise
}

// scanEngine decodes the engine a policy's antispam names (its antivirus
// when virus), and keeps it for checkEngineRefs.
func (d *decoder) scanEngine(n *yaml.Node, path string, virus bool) string {
	s := d.engine(n, path)
	if s != "" {
		d.engineRefs = append(d.engineRefs, engineRef{n, path, s, virus})
	}
	return s
}

// checkEngineRefs reports each antispam that names no configured spam
// engine and each antivirus that names no configured anti-virus engine:
// an engine of the other kind would be run with the wrong settings, and
// one left out of scanners would stop the work queue at start without
// the line that names it.
func (d *decoder) checkEngineRefs(sc *Scanners) {
	// The engines of each kind, and whether each is configured.
	spam := map[string]bool{"rspamd": sc.Rspamd != nil, "spamassassin": sc.SpamAssassin != nil}
	virus := map[string]bool{"clamav": sc.ClamAV != nil}
	for _, r := range d.engineRefs {
		own, other, kind, want := spam, virus, "anti-spam", "rspamd or spamassassin"
		if r.virus {
			own, other, kind, want = virus, spam, "anti-virus", "clamav"
		}
		configured, known := own[r.name]
		_, otherKind := other[r.name]
		switch {
		case configured:
		case known:
			d.errorf(r.n, r.path, "%s is not configured: add it to scanners (\"%s: {}\" takes every default)", r.name, r.name)
		case otherKind:
			d.errorf(r.n, r.path, "%s is not an %s engine: want %s, or off", r.name, kind, want)
		default:
			d.errorf(r.n, r.path, "no %s engine %q: want %s, or off", kind, r.name, want)
		}
	}
}

// antispam decodes a policy's antispam key into p.
func (d *decoder) antispam(n *yaml.Node, path string, p *policy.MailPolicy) {
	if n.Kind != yaml.MappingNode {
		p.AntiSpam = d.scanEngine(n, path, false)
		return
	}
	f := d.fields(n, path, "engine", "positive", "suspect", "too_big", "max_size")
	if v := f["engine"]; present(v) {
		p.AntiSpam = d.scanEngine(v, join(path, "engine"), false)
	} else {
		d.errorf(n, join(path, "engine"), "required (rspamd or spamassassin, or off)")
	}
	d.scanAction(f["positive"], join(path, "positive"), &p.Spam.Positive, "Spam", true)
	d.scanAction(f["suspect"], join(path, "suspect"), &p.Spam.Suspect, "Spam", false)
	d.scanAction(f["too_big"], join(path, "too_big"), &p.Spam.TooBig, "Spam", false)
	if v := f["max_size"]; present(v) {
		p.Spam.MaxSize, _ = d.size(v, join(path, "max_size"))
	}
}

// antivirus decodes a policy's antivirus key into p.
func (d *decoder) antivirus(n *yaml.Node, path string, p *policy.MailPolicy) {
	if n.Kind != yaml.MappingNode {
		p.AntiVirus = d.scanEngine(n, path, true)
		return
	}
	f := d.fields(n, path, "engine", "infected", "unscannable", "encrypted")
	if v := f["engine"]; present(v) {
		p.AntiVirus = d.scanEngine(v, join(path, "engine"), true)
	} else {
		d.errorf(n, join(path, "engine"), "required (clamav, or off)")
	}
	d.scanAction(f["infected"], join(path, "infected"), &p.Virus.Infected, "Virus", true)
	d.scanAction(f["unscannable"], join(path, "unscannable"), &p.Virus.Unscannable, "Virus", false)
	d.scanAction(f["encrypted"], join(path, "encrypted"), &p.Virus.Encrypted, "Virus", false)
}

// scanAction decodes one category's action: a word ("drop") or a mapping
// {action, quarantine, tag_subject, add_header}. A mapping replaces the
// default whole: what it leaves out is none (deliver, no tag). Reject is
// allowed where the verdict is certain (spam positive, virus infected).
func (d *decoder) scanAction(n *yaml.Node, path string, a *policy.ScanAction, quarantine string, canReject bool) {
	if !present(n) {
		return
	}
	words := scanActionWords
	if !canReject {
		words = words[:len(words)-1]
	}
	if n.Kind != yaml.MappingNode {
		if w, ok := d.oneOf(n, path, words...); ok {
			*a = policy.ScanAction{Action: policy.ScanActionKind(w)}
			if a.Action == policy.ActQuarantine {
				a.Quarantine = quarantine
			}
		}
		return
	}
	f := d.fields(n, path, "action", "quarantine", "tag_subject", "add_header")
	*a = policy.ScanAction{Action: policy.ActDeliver}
	if v := f["action"]; present(v) {
		if w, ok := d.oneOf(v, join(path, "action"), words...); ok {
			a.Action = policy.ScanActionKind(w)
		}
	}
	if v := f["quarantine"]; present(v) {
		if s, ok := d.str(v, join(path, "quarantine")); ok {
			if !quarantineName.MatchString(s) {
				d.errorf(v, join(path, "quarantine"), "%q: a quarantine's name is letters, digits, spaces, '_', '.' and '-', at most 64", s)
			} else {
				d.quarantineRefs = append(d.quarantineRefs, quarantineRef{v, join(path, "quarantine"), s})
			}
			a.Quarantine = s
		}
		if a.Action != policy.ActQuarantine {
			d.errorf(v, join(path, "quarantine"), "a quarantine is for action quarantine")
		}
	} else if a.Action == policy.ActQuarantine {
		a.Quarantine = quarantine
	}
	if v := f["tag_subject"]; present(v) {
		a.TagSubject, _ = d.text(v, join(path, "tag_subject"))
	}
	if v := f["add_header"]; present(v) {
		items := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			items = d.list(v, join(path, "add_header"))
		}
		for i, it := range items {
			p := join(path, "add_header")
			if v.Kind == yaml.SequenceNode {
				p = index(p, i)
			}
			s, ok := d.text(it, p)
			if !ok {
				continue
			}
			name, val, found := strings.Cut(s, ":")
			if !found || name == "" || strings.ContainsAny(name, " \t") || strings.TrimSpace(val) == "" {
				d.errorf(it, p, "%q: want \"Name: value\"", s)
				continue
			}
			a.AddHeaders = append(a.AddHeaders, s)
		}
	}
	if (a.Action == policy.ActDrop || a.Action == policy.ActReject) && (a.TagSubject != "" || len(a.AddHeaders) > 0) {
		d.errorf(n, path, "a %s action delivers nothing to tag", a.Action)
	}
}
