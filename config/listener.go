package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/policy"
)

// Listener defaults.
const (
	DefaultMaxConnections      = 1000
	DefaultBadCommandLimit     = 4 // the ESA tolerates 4 and closes on the 5th
	DefaultMaxHeaderLines      = 1000
	DefaultTimeoutUnsuccessful = 5 * time.Minute
	DefaultTimeoutTotal        = 15 * time.Minute
	DefaultTimeoutIdle         = 5 * time.Minute // Postfix's smtpd_timeout

	// Postfix's defaults, which the README justifies.
	DefaultJunkCommandLimit = 100
	DefaultSoftErrorLimit   = 10
	DefaultHardErrorLimit   = 20
	DefaultErrorDelay       = time.Second
)

// The predefined mail flow policies of every listener. A policy of the same
// name in the configuration replaces one, and its action may then be left
// out.
var predefined = []struct {
	name   string
	action policy.Action
}{
	{"ACCEPTED", policy.Accept},
	{"RELAYED", policy.Relay},
	{"BLOCKED", policy.Reject},
	{"THROTTLED", policy.Accept}, // with the limits of policy.Throttled
}

// The HAT of a listener that has no "hat:": the machine itself relays
// (127.0.0.1 and ::1), the rest get the default policy (ACCEPTED on a public
// listener, BLOCKED on a private one, as on the ESA). The other loopback
// addresses (127.0.0.2, ...) are outside clients, so that a first try on one
// machine can see the RAT refuse a recipient.
var defaultRelayRules = []string{"127.0.0.1", "::1"}

func defaultGroup(typ string) string {
	if typ == Private {
		return "RELAYLIST"
	}
	return "RELAY_SG"
}

func defaultPolicy(typ string) string {
	if typ == Private {
		return "BLOCKED"
	}
	return "ACCEPTED"
}

// defaultListenersNode is the "listeners:" of default.yaml, used when a file
// has none.
var defaultListenersNode = sync.OnceValue(func() *yaml.Node {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(defaultYAML)).Decode(&doc); err != nil {
		panic("config: default.yaml: " + err.Error())
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "listeners" {
			return root.Content[i+1]
		}
	}
	panic("config: default.yaml has no listeners")
})

func (d *decoder) defaultListeners(c *Config, b *binds) []Listener {
	file := d.file
	d.file = "default.yaml"
	defer func() { d.file = file }()
	return d.listeners(defaultListenersNode(), "listeners", c, b)
}

func (d *decoder) listeners(n *yaml.Node, path string, c *Config, b *binds) []Listener {
	items := d.list(n, path)
	ls := make([]Listener, 0, len(items))
	names := make(map[string]string) // name -> path of its listener
	for i, it := range items {
		p := index(path, i)
		l := d.listener(it, p, c, b)
		if l.Name != "" {
			if other, dup := names[l.Name]; dup {
				d.errorf(it, join(p, "name"), "listener name %q is also used by %s", l.Name, other)
			}
			names[l.Name] = p
		}
		ls = append(ls, l)
	}
	return ls
}

var listenerKeys = []string{"name", "type", "interface", "address", "max_connections", "bad_command_limit",
	"junk_command_limit", "soft_error_limit", "hard_error_limit", "error_delay",
	"max_header_lines", "received_header", "ipv6_client_prefix", "duplicates_ignore_local_case", "tls", "timeouts", "hat", "rat", "auth",
	"health_checks"}

func (d *decoder) listener(n *yaml.Node, path string, c *Config, b *binds) Listener {
	f := d.fields(n, path, listenerKeys...)
	l := Listener{
		Type:            Public,
		MaxConnections:  DefaultMaxConnections,
		BadCommandLimit: DefaultBadCommandLimit,
		MaxHeaderLines:  DefaultMaxHeaderLines,
		ReceivedHeader:  true,
		IPv6ClientBits:  policy.DefaultIPv6ClientBits,
		Timeouts:        Timeouts{Unsuccessful: DefaultTimeoutUnsuccessful, Total: DefaultTimeoutTotal, Idle: DefaultTimeoutIdle},

		JunkCommandLimit: DefaultJunkCommandLimit,
		SoftErrorLimit:   DefaultSoftErrorLimit,
		HardErrorLimit:   DefaultHardErrorLimit,
		ErrorDelay:       DefaultErrorDelay,
	}
	if v := f["name"]; present(v) {
		if s, ok := d.str(v, join(path, "name")); ok {
			if err := checkName(s); err != nil {
				d.errorf(v, join(path, "name"), "listener %v", err)
			}
			l.Name = s
		}
	} else {
		d.errorf(n, join(path, "name"), "required")
	}
	if v := f["type"]; present(v) {
		if s, ok := d.str(v, join(path, "type")); ok {
			switch strings.ToLower(s) {
			case Public, Private:
				l.Type = strings.ToLower(s)
			case "blackhole":
				d.errorf(v, join(path, "type"), "blackhole listeners are not supported (want public or private)")
			default:
				d.errorf(v, join(path, "type"), "unknown listener type %q (want public or private)", s)
			}
		}
	}
	l.Interface = l.Name
	if v := f["interface"]; present(v) {
		if s, ok := d.text(v, join(path, "interface")); ok {
			if s == "" || strings.TrimSpace(s) != s || strings.ContainsAny(s, "()") {
				// The ICID line is "interface Data 1 (10.1.1.1)"; parsers find
				// the address by its parentheses.
				d.errorf(v, join(path, "interface"), "interface name %q must be non-empty, without parentheses or surrounding spaces", s)
			}
			l.Interface = s
		}
	}
	if v := f["address"]; present(v) {
		if s, ok := d.str(v, join(path, "address")); ok {
			l.Address = s
			d.bind(v, join(path, "address"), s, b)
		}
	} else {
		d.errorf(n, join(path, "address"), "required (host:port, e.g. 127.0.0.1:2525)")
	}
	if v := f["max_connections"]; present(v) {
		l.MaxConnections, _ = d.integer(v, join(path, "max_connections"), 1)
	}
	if v := f["bad_command_limit"]; present(v) {
		l.BadCommandLimit, _ = d.integer(v, join(path, "bad_command_limit"), 0)
	}
	d.abuseLimits(f, path, &l)
	if v := f["max_header_lines"]; present(v) {
		l.MaxHeaderLines, _ = d.integer(v, join(path, "max_header_lines"), 0)
	}
	if v := f["received_header"]; present(v) {
		l.ReceivedHeader, _ = d.boolean(v, join(path, "received_header"))
	}
	if v := f["ipv6_client_prefix"]; present(v) {
		if n, ok := d.integer(v, join(path, "ipv6_client_prefix"), 16); ok {
			if n > 128 {
				d.errorf(v, join(path, "ipv6_client_prefix"), "%d is above the maximum 128", n)
			} else {
				l.IPv6ClientBits = n
			}
		}
	}
	if v := f["duplicates_ignore_local_case"]; present(v) {
		l.DuplicatesIgnoreLocalCase, _ = d.boolean(v, join(path, "duplicates_ignore_local_case"))
	}
	if v := f["health_checks"]; present(v) {
		l.HealthChecks = d.prefixes(v, join(path, "health_checks"))
	}
	tlsNode, implicit := d.cutImplicit(f["tls"], join(path, "tls"))
	l.TLS, l.ImplicitTLS = d.tlsFiles(tlsNode, join(path, "tls"), c.DataDir), implicit
	if v := f["timeouts"]; present(v) {
		tp := join(path, "timeouts")
		tf := d.fields(v, tp, "unsuccessful", "total", "idle")
		if v := tf["unsuccessful"]; present(v) {
			l.Timeouts.Unsuccessful, _ = d.duration(v, join(tp, "unsuccessful"), time.Second)
		}
		if v := tf["total"]; present(v) {
			l.Timeouts.Total, _ = d.duration(v, join(tp, "total"), time.Second)
		}
		if v := tf["idle"]; present(v) {
			l.Timeouts.Idle, _ = d.duration(v, join(tp, "idle"), time.Second)
		}
	}
	l.HAT = d.hat(f["hat"], join(path, "hat"), l.Type, c.Hostname)
	if v := f["auth"]; present(v) {
		l.Auth = d.auth(v, join(path, "auth"), c.DataDir, func(name string) bool { return l.HAT.Policies[name] != nil })
	}
	if v := f["rat"]; present(v) {
		if l.Type == Private {
			d.errorf(v, join(path, "rat"), "a private listener has no RAT (it relays for its sender groups); remove rat or make the listener public")
		} else {
			l.RAT = d.rat(v, join(path, "rat"))
		}
	} else if l.Type == Public {
		// The ESA's last RAT entry: recipients no entry names are rejected.
		all, _ := policy.ParseRATEntry("ALL", "reject")
		l.RAT = policy.RAT{all}
	}
	return l
}

// abuseLimits decodes the junk and error limits; 0 turns one off.
func (d *decoder) abuseLimits(f map[string]*yaml.Node, path string, l *Listener) {
	for _, k := range []struct {
		key string
		dst *int
	}{{"junk_command_limit", &l.JunkCommandLimit}, {"soft_error_limit", &l.SoftErrorLimit}, {"hard_error_limit", &l.HardErrorLimit}} {
		if v := f[k.key]; present(v) {
			*k.dst, _ = d.integer(v, join(path, k.key), 0)
		}
	}
	if v := f["error_delay"]; present(v) {
		l.ErrorDelay, _ = d.duration(v, join(path, "error_delay"), 0)
	}
	if soft, hard := l.SoftErrorLimit, l.HardErrorLimit; soft > 0 && hard > 0 && soft >= hard {
		n := f["soft_error_limit"]
		if n == nil {
			n = f["hard_error_limit"]
		}
		d.errorf(n, join(path, "soft_error_limit"), "%d is not below hard_error_limit %d: the tarpit would never start", soft, hard)
	}
}

// checkName checks the name of a listener, sender group or policy: names
// appear in log lines and metrics, so they are single words.
func checkName(s string) error {
	if s == "" {
		return errors.New("name is empty")
	}
	if s[0] == '$' {
		return fmt.Errorf("name %q: write it without the ESA's $", s)
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("name %q: invalid character %q (letters, digits, _ - . only)", s, r)
		}
	}
	return nil
}

func (d *decoder) tlsFiles(n *yaml.Node, path, dataDir string) TLSFiles {
	if !present(n) {
		return TLSFiles{
			Cert:       filepath.Join(dataDir, "tls", "self-signed-cert.pem"),
			Key:        filepath.Join(dataDir, "tls", "self-signed-key.pem"),
			SelfSigned: true,
		}
	}
	nprobs := len(d.probs)
	f := d.fields(n, path, "cert", "key")
	var t TLSFiles
	for _, k := range []struct {
		key, other string
		dst        *string
	}{{"cert", "key", &t.Cert}, {"key", "cert", &t.Key}} {
		v := f[k.key]
		if !present(v) {
			d.errorf(n, join(path, k.key), "required with %s", k.other)
			continue
		}
		s, ok := d.str(v, join(path, k.key))
		if !ok {
			continue
		}
		*k.dst = dataPath(dataDir, s)
		switch fi, err := os.Stat(*k.dst); {
		case err != nil:
			d.errorf(v, join(path, k.key), "%v", err)
		case !fi.Mode().IsRegular():
			d.errorf(v, join(path, k.key), "%s is not a regular file", *k.dst)
		}
	}
	if len(d.probs) == nprobs {
		d.checkCertificate(f["cert"], join(path, "cert"), t)
	}
	return t
}

var policyParams = []string{"max_message_size", "max_recipients_per_message", "max_messages_per_connection",
	"max_concurrency_per_ip", "max_connections_per_minute", "max_recipients_per_hour",
	"group_max_connections_per_minute", "group_max_recipients_per_hour", "banner_code", "banner_text", "reject_code", "reject_text", "tls",
	"spf", "dkim", "dmarc"}

func (d *decoder) hat(n *yaml.Node, path, typ, hostname string) *policy.HAT {
	nprobs := len(d.probs)
	var f map[string]*yaml.Node
	if present(n) {
		f = d.fields(n, path, "sender_groups", "policies", "policy_defaults", "default_policy")
	}
	base := policy.Policy{
		MaxMessageSize:           policy.DefaultMaxMessageSize,
		MaxRecipientsPerMessage:  policy.DefaultMaxRecipientsPerMessage,
		MaxMessagesPerConnection: policy.DefaultMaxMessagesPerConnection,
		MaxConcurrencyPerIP:      policy.DefaultMaxConcurrencyPerIP,
		MaxConnectionsPerMinute:  policy.DefaultMaxConnectionsPerMinute,
		MaxRecipientsPerHour:     policy.DefaultMaxRecipientsPerHour,
		BannerCode:               policy.DefaultBannerCode,
		BannerText:               policy.DefaultBannerText(hostname),
		RejectCode:               policy.DefaultRejectCode,
		RejectText:               policy.DefaultRejectText(hostname),
		TLS:                      policy.DefaultTLS,
	}
	authDefaults(&base)
	if v := f["policy_defaults"]; present(v) {
		dp := join(path, "policy_defaults")
		d.params(d.fields(v, dp, policyParams...), dp, &base)
	}
	h := &policy.HAT{Policies: make(map[string]*policy.Policy), Default: defaultPolicy(typ)}
	for _, pd := range predefined {
		p := base
		p.Name, p.Action = pd.name, pd.action
		if pd.name == "THROTTLED" {
			p = policy.Throttled(p)
		}
		relayAuth(&p, nil)
		h.Policies[pd.name] = &p
	}
	if v := f["policies"]; present(v) {
		pp := join(path, "policies")
		for _, kv := range d.pairs(v, pp) {
			name := kv.key.Value
			p := join(pp, name)
			if err := checkName(name); err != nil {
				d.errorf(kv.key, p, "policy %v", err)
				continue
			}
			pol := base
			pol.Name = name
			if old, ok := h.Policies[name]; ok {
				pol.Action = old.Action // a predefined policy keeps its action unless given
			}
			pf := d.fields(resolve(kv.val), p, append([]string{"action"}, policyParams...)...)
			if v := pf["action"]; present(v) {
				if s, ok := d.str(v, join(p, "action")); ok {
					a, err := policy.ParseAction(s)
					if err != nil {
						d.errorf(v, join(p, "action"), "%v", err)
					}
					pol.Action = a
				}
			} else if pol.Action == "" {
				d.errorf(kv.val, join(p, "action"), "required (accept, relay, reject or tcprefuse)")
			}
			d.params(pf, p, &pol)
			relayAuth(&pol, pf)
			h.Policies[name] = &pol
		}
	}
	if v := f["sender_groups"]; present(v) {
		h.Groups = d.senderGroups(v, join(path, "sender_groups"), h.Policies)
	} else {
		// Left out (not "sender_groups: []"): the ESA's relay group for loopback.
		g := policy.SenderGroup{Name: defaultGroup(typ), Policy: "RELAYED"}
		for _, s := range defaultRelayRules {
			r, _ := policy.ParseRule(s)
			g.Rules = append(g.Rules, r)
		}
		h.Groups = []policy.SenderGroup{g}
	}
	if v := f["default_policy"]; present(v) {
		if s, ok := d.str(v, join(path, "default_policy")); ok {
			if _, ok := h.Policies[s]; !ok {
				d.errorf(v, join(path, "default_policy"), "policy %q is not defined%s", s, known(h.Policies))
			}
			h.Default = s
		}
	}
	if len(d.probs) == nprobs {
		// What this file checked is what Decide relies on; a failure here
		// is a bug in this package, reported rather than left to panic later.
		if err := h.Validate(); err != nil {
			d.errorf(n, path, "internal error: %v", err)
		}
	}
	return h
}

func known(policies map[string]*policy.Policy) string {
	var names []string
	for name := range policies {
		names = append(names, name)
	}
	slices.Sort(names)
	return " (defined: " + strings.Join(names, ", ") + ")"
}

func (d *decoder) params(f map[string]*yaml.Node, path string, p *policy.Policy) {
	ints := []struct {
		key string
		dst *int
	}{
		{"max_recipients_per_message", &p.MaxRecipientsPerMessage},
		{"max_messages_per_connection", &p.MaxMessagesPerConnection},
		{"max_concurrency_per_ip", &p.MaxConcurrencyPerIP},
	}
	for _, it := range ints {
		if v := f[it.key]; present(v) {
			if n, ok := d.integer(v, join(path, it.key), 1); ok {
				*it.dst = n
			}
		}
	}
	// The rate limits may be 0: no limit.
	for _, it := range []struct {
		key string
		dst *int
	}{
		{"max_connections_per_minute", &p.MaxConnectionsPerMinute},
		{"max_recipients_per_hour", &p.MaxRecipientsPerHour},
		{"group_max_connections_per_minute", &p.GroupMaxConnectionsPerMinute},
		{"group_max_recipients_per_hour", &p.GroupMaxRecipientsPerHour},
	} {
		if v := f[it.key]; present(v) {
			if n, ok := d.integer(v, join(path, it.key), 0); ok {
				*it.dst = n
			}
		}
	}
	if v := f["max_message_size"]; present(v) {
		if n, ok := d.size(v, join(path, "max_message_size")); ok {
			p.MaxMessageSize = n
		}
	}
	codes := []struct {
		key      string
		dst      *int
		lo, hi   int
		expected string
	}{
		{"banner_code", &p.BannerCode, 200, 599, "a reply code (220)"},
		{"reject_code", &p.RejectCode, 400, 599, "a 4xx or 5xx reply code (554)"},
	}
	for _, c := range codes {
		if v := f[c.key]; present(v) {
			if n, ok := d.integer(v, join(path, c.key), 0); ok {
				if n < c.lo || n > c.hi {
					d.errorf(v, join(path, c.key), "%d is not %s", n, c.expected)
				} else {
					*c.dst = n
				}
			}
		}
	}
	for _, t := range []struct {
		key string
		dst *string
	}{{"banner_text", &p.BannerText}, {"reject_text", &p.RejectText}} {
		if v := f[t.key]; present(v) {
			if s, ok := d.text(v, join(path, t.key)); ok {
				*t.dst = s
			}
		}
	}
	if v := f["tls"]; present(v) {
		if s, ok := d.oneOf(v, join(path, "tls"), policy.TLSOff, policy.TLSPreferred, policy.TLSRequired); ok {
			p.TLS = s
		}
	}
	d.authParams(f, path, p)
	d.dkimSigningParam(f, path, p)
}

func (d *decoder) senderGroups(n *yaml.Node, path string, policies map[string]*policy.Policy) []policy.SenderGroup {
	var groups []policy.SenderGroup
	names := make(map[string]string)
	for i, it := range d.list(n, path) {
		p := index(path, i)
		f := d.fields(it, p, "name", "match", "policy")
		var g policy.SenderGroup
		if v := f["name"]; present(v) {
			if s, ok := d.str(v, join(p, "name")); ok {
				g.Name = s
				switch err := checkName(s); {
				case err != nil:
					d.errorf(v, join(p, "name"), "sender group %v", err)
				case strings.EqualFold(s, policy.NoGroup):
					d.errorf(v, join(p, "name"), "%q is reserved: the log uses it for the default policy", s)
				case names[s] != "":
					d.errorf(v, join(p, "name"), "sender group %q is also defined by %s", s, names[s])
				}
				names[s] = p
			}
		} else {
			d.errorf(it, join(p, "name"), "required")
		}
		if v := f["match"]; present(v) {
			g.Rules = d.rules(v, join(p, "match"))
		}
		if v := f["policy"]; present(v) {
			if s, ok := d.str(v, join(p, "policy")); ok {
				if _, ok := policies[s]; !ok {
					d.errorf(v, join(p, "policy"), "policy %q is not defined%s", s, known(policies))
				}
				g.Policy = s
			}
		} else {
			d.errorf(it, join(p, "policy"), "required")
		}
		groups = append(groups, g)
	}
	return groups
}

// rules decodes a list of sender-group entries; a single entry may be
// written without the list.
func (d *decoder) rules(n *yaml.Node, path string) []policy.Rule { return d.ruleList(n, path, true) }

// ruleList decodes sender-group entries, dnslist rules among them only when
// lists is set: elsewhere (injection debug logs) no list is looked up, so
// such a rule would silently match nothing.
func (d *decoder) ruleList(n *yaml.Node, path string, lists bool) []policy.Rule {
	items := []*yaml.Node{n}
	paths := []string{path}
	if n.Kind == yaml.SequenceNode {
		items = d.list(n, path)
		paths = paths[:0]
		for i := range items {
			paths = append(paths, index(path, i))
		}
	}
	var rs []policy.Rule
	for i, it := range items {
		s, ok := d.str(it, paths[i])
		if !ok {
			continue
		}
		r, err := policy.ParseRule(s)
		if err != nil {
			d.errorf(it, paths[i], "%v", err)
			continue
		}
		if !lists && r.DNSList() != "" {
			d.errorf(it, paths[i], "DNS list rules are for sender groups only")
			continue
		}
		rs = append(rs, r)
	}
	return rs
}

func (d *decoder) rat(n *yaml.Node, path string) policy.RAT {
	var rat policy.RAT
	for i, it := range d.list(n, path) {
		p := index(path, i)
		f := d.fields(it, p, "domain", "action", "code", "text")
		var pattern, action string
		ok := true
		if v := f["domain"]; present(v) {
			pattern, ok = d.str(v, join(p, "domain"))
		} else {
			d.errorf(it, join(p, "domain"), "required (example.com, .example.com, user@, user@example.com or ALL)")
			ok = false
		}
		if v := f["action"]; present(v) {
			var aok bool
			action, aok = d.oneOf(v, join(p, "action"), "accept", "reject")
			ok = ok && aok
		} else {
			d.errorf(it, join(p, "action"), "required (accept or reject)")
			ok = false
		}
		if !ok {
			continue
		}
		e, err := policy.ParseRATEntry(pattern, action)
		if err != nil {
			d.errorf(f["domain"], join(p, "domain"), "%v", err)
			continue
		}
		if v := f["code"]; present(v) {
			if c, ok := d.integer(v, join(p, "code"), 0); ok {
				switch {
				case e.Accept && (c < 200 || c > 299):
					d.errorf(v, join(p, "code"), "%d is not a 2xx code, as an accepted recipient needs", c)
				case !e.Accept && (c < 400 || c > 599):
					d.errorf(v, join(p, "code"), "%d is not a 4xx or 5xx code, as a rejected recipient needs", c)
				default:
					e.Code = c
				}
			}
		}
		if v := f["text"]; present(v) {
			e.Text, _ = d.text(v, join(p, "text"))
		}
		rat = append(rat, e)
	}
	return rat
}

// binds collects the addresses the gateway listens on, to find two that
// cannot both be bound.
type binds struct {
	list []bound
}

type bound struct {
	addr netip.Addr // invalid: all addresses
	port int
	path string
}

// bind checks a listen address (host:port, the host an IP address or empty
// for all) and that no earlier one takes the same port on an overlapping
// address. Port 0 (any free port, for tests) never conflicts.
func (d *decoder) bind(n *yaml.Node, path, s string, b *binds) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		d.errorf(n, path, "%q is not host:port (127.0.0.1:2525, [::1]:2525, :2525): %v", s, unwrapAddrErr(err))
		return
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		d.errorf(n, path, "port %q is not a number from 0 to 65535", portStr)
		return
	}
	var addr netip.Addr
	if host != "" {
		addr, err = netip.ParseAddr(host)
		if err != nil || addr.Zone() != "" {
			d.errorf(n, path, "host %q is not an IP address; listen on an address (127.0.0.1), or leave it empty for all", host)
			return
		}
		addr = addr.Unmap()
		if addr.IsUnspecified() {
			addr = netip.Addr{} // 0.0.0.0 and :: take the port on every address
		}
	}
	if port == 0 {
		return
	}
	for _, o := range b.list {
		if o.port == port && (!o.addr.IsValid() || !addr.IsValid() || o.addr == addr) {
			d.errorf(n, path, "%s conflicts with %s, which listens on the same port", s, o.path)
			return
		}
	}
	b.list = append(b.list, bound{addr, port, path})
}

func unwrapAddrErr(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}

// prefixes decodes a list of IP addresses and networks (CIDR); an address
// is the network of that address alone.
func (d *decoder) prefixes(n *yaml.Node, path string) []netip.Prefix {
	var out []netip.Prefix
	for i, it := range d.list(n, path) {
		p := index(path, i)
		s, ok := d.str(it, p)
		if !ok {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			d.errorf(it, p, "%q is neither an IP address nor a network (10.0.0.0/8, 2001:db8::/32)", s)
			continue
		}
		if pf.Addr().Is4In6() && pf.Bits() >= 96 {
			pf = netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()-96)
		}
		out = append(out, pf.Masked())
	}
	return out
}
