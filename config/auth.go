package config

import (
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// SMTP AUTH defaults.
const (
	DefaultAuthPolicy        = "RELAYED"
	DefaultAuthProfile       = "users"
	DefaultAuthMaxFailures   = 5 // per client address in the window; Postfix's anvil-less default is unbounded
	DefaultAuthFailureDelay  = time.Second
	DefaultAuthFailureWindow = 10 * time.Minute
)

// AuthMechanisms are the SASL mechanisms mailgate can offer, in the order
// EHLO lists them. PLAIN and LOGIN are offered only under TLS.
var AuthMechanisms = []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}

// Auth is the SMTP AUTH of a listener ("auth:").
type Auth struct {
	Required   bool     // MAIL before AUTH is refused (530 5.7.0): a submission listener
	Users      string   // the users file (see package userdb), absolute
	Mechanisms []string // of AuthMechanisms
	// AuthorizeSender binds MAIL FROM to the user: its own name or the
	// senders its line of the users file lists.
	AuthorizeSender bool
	Policy          string // the HAT policy an authenticated session takes
	Profile         string // the log's "with profile:" word
	MaxFailures     int    // failed AUTHs per client address in FailureWindow; then 421
	FailureDelay    time.Duration
	FailureWindow   time.Duration
}

var authKeys = []string{"required", "users", "mechanisms", "authorize_sender", "policy", "profile",
	"max_failures", "failure_delay", "failure_window"}

func (d *decoder) auth(n *yaml.Node, path, dataDir string, policies func(string) bool) *Auth {
	f := d.fields(n, path, authKeys...)
	a := &Auth{Mechanisms: AuthMechanisms, Policy: DefaultAuthPolicy, Profile: DefaultAuthProfile,
		MaxFailures: DefaultAuthMaxFailures, FailureDelay: DefaultAuthFailureDelay, FailureWindow: DefaultAuthFailureWindow}
	if v := f["required"]; present(v) {
		a.Required, _ = d.boolean(v, join(path, "required"))
	}
	if v := f["authorize_sender"]; present(v) {
		a.AuthorizeSender, _ = d.boolean(v, join(path, "authorize_sender"))
	}
	if v := f["users"]; present(v) {
		if s, ok := d.str(v, join(path, "users")); ok {
			a.Users = dataPath(dataDir, s)
			if _, err := os.Stat(a.Users); err != nil {
				d.errorf(v, join(path, "users"), "%v (mailgate passwd USER --file FILE creates it)", err)
			}
		}
	} else {
		d.errorf(n, join(path, "users"), "required (a file of user:hash lines; mailgate passwd writes them)")
	}
	if v := f["mechanisms"]; present(v) {
		a.Mechanisms = nil
		for i, it := range d.list(v, join(path, "mechanisms")) {
			s, ok := d.str(it, index(join(path, "mechanisms"), i))
			if !ok {
				continue
			}
			s = strings.ToUpper(s)
			if !slices.Contains(AuthMechanisms, s) {
				d.errorf(it, index(join(path, "mechanisms"), i), "unknown mechanism %q (want %s)", s, strings.Join(AuthMechanisms, ", "))
				continue
			}
			a.Mechanisms = append(a.Mechanisms, s)
		}
		if len(a.Mechanisms) == 0 {
			d.errorf(v, join(path, "mechanisms"), "no mechanism")
		}
	}
	if v := f["policy"]; present(v) {
		if s, ok := d.str(v, join(path, "policy")); ok {
			if !policies(s) {
				d.errorf(v, join(path, "policy"), "policy %q is not defined in the listener's HAT", s)
			}
			a.Policy = s
		}
	}
	if v := f["profile"]; present(v) {
		if s, ok := d.str(v, join(path, "profile")); ok {
			if err := checkName(s); err != nil {
				d.errorf(v, join(path, "profile"), "profile %v", err)
			}
			a.Profile = s
		}
	}
	if v := f["max_failures"]; present(v) {
		a.MaxFailures, _ = d.integer(v, join(path, "max_failures"), 1)
	}
	if v := f["failure_delay"]; present(v) {
		a.FailureDelay, _ = d.duration(v, join(path, "failure_delay"), 0)
	}
	if v := f["failure_window"]; present(v) {
		a.FailureWindow, _ = d.duration(v, join(path, "failure_window"), time.Second)
	}
	return a
}

// cutImplicit takes "implicit: true" out of a listener's tls mapping (the
// rest is the certificate and key, as elsewhere); "tls: implicit" alone is
// implicit TLS with the self-signed pair.
func (d *decoder) cutImplicit(n *yaml.Node, path string) (rest *yaml.Node, implicit bool) {
	if !present(n) {
		return n, false
	}
	if n.Kind == yaml.ScalarNode {
		if n.Value != "implicit" {
			d.errorf(n, path, "want implicit or {cert, key, implicit}")
		}
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		return n, false
	}
	c := *n
	c.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "implicit" {
			implicit, _ = d.boolean(n.Content[i+1], join(path, "implicit"))
			continue
		}
		c.Content = append(c.Content, n.Content[i], n.Content[i+1])
	}
	if len(c.Content) == 0 {
		return nil, implicit
	}
	return &c, implicit
}
