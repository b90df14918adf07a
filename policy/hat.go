package policy

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/mailgate/mailgate/event"
)

// Action is the connection behaviour of a mail flow policy (the ESA's
// "access rule").
type Action string

const (
	Accept    Action = "accept"    // accept; recipients go through the RAT
	Relay     Action = "relay"     // accept and relay without a RAT check
	Reject    Action = "reject"    // send the reject banner and close
	TCPRefuse Action = "tcprefuse" // close the TCP connection without a word
)

// ParseAction accepts the four actions in any case ("RELAY" as the ESA
// writes it, "relay" as the configuration does).
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(s)); a {
	case Accept, Relay, Reject, TCPRefuse:
		return a, nil
	case "continue":
		return "", errors.New(`action "continue" is not supported`)
	}
	return "", fmt.Errorf("unknown action %q (want accept, relay, reject or tcprefuse)", s)
}

// ESA returns the word the HAT log line uses: "ACCEPT", "RELAY", "REJECT" or
// "TCPREFUSE".
func (a Action) ESA() string {
	switch a {
	case Accept:
		return event.ActionAccept
	case Relay:
		return event.ActionRelay
	case Reject:
		return event.ActionReject
	case TCPRefuse:
		return event.ActionTCPRefuse
	}
	return strings.ToUpper(string(a))
}

// STARTTLS modes of a policy.
const (
	TLSOff       = "off"       // STARTTLS is not offered
	TLSPreferred = "preferred" // offered, not demanded
	TLSRequired  = "required"  // offered; MAIL before STARTTLS is refused
)

// The listener-wide policy parameters ("Use Default" in the ESA) that
// mailgate ships. The size is what a 14.x ESA advertised in EHLO; the
// message and recipient counts are those of the ESA's suggested $ACCEPTED
// policy. Its 1,000 connections per IP equals the listener's 1,000, so one
// address could take every slot; 50 is Postfix's per-client share
// (smtpd_client_connection_count_limit), 2.5 times the 20 connections an
// MTA opens to one destination by default (Postfix, and mailgate's own
// delivery), and leaves a full listener to 20 clients at least. The rate
// limits are off, as on the ESA's $ACCEPTED and in Postfix.
const (
	DefaultMaxMessageSize           = 10 << 20
	DefaultMaxRecipientsPerMessage  = 1000
	DefaultMaxMessagesPerConnection = 1000
	DefaultMaxConcurrencyPerIP      = 50
	DefaultMaxConnectionsPerMinute  = 0 // no limit
	DefaultMaxRecipientsPerHour     = 0 // no limit
	DefaultBannerCode               = 220
	DefaultRejectCode               = 554
	DefaultTLS                      = TLSPreferred
)

// DefaultBannerText is the greeting text after "220 ": the ESA's "<hostname>
// ESMTP".
func DefaultBannerText(hostname string) string { return hostname + " ESMTP" }

// DefaultRejectText is the text of the reject banner after "554 ". The ESA
// factory text was not found in a source we could read; this one names the
// gateway as the greeting does and says what happened.
func DefaultRejectText(hostname string) string { return hostname + " Access denied" }

// Policy is a mail flow policy with every parameter resolved: the config
// package fills in the listener-wide defaults for those a policy leaves out.
type Policy struct {
	Name                     string
	Action                   Action
	MaxMessageSize           int64 // bytes, advertised in EHLO SIZE
	MaxRecipientsPerMessage  int
	MaxMessagesPerConnection int
	MaxConcurrencyPerIP      int // per client (see ClientKey)
	MaxConnectionsPerMinute  int // per client; 0: no limit
	MaxRecipientsPerHour     int // per client, on all listeners; 0: no limit
	// The same rates for all the clients of one sender group together;
	// 0: no limit.
	GroupMaxConnectionsPerMinute int
	GroupMaxRecipientsPerHour    int
	BannerCode                   int    // the greeting
	BannerText                   string // may hold HAT variables; see Expand
	RejectCode                   int    // the banner of a reject action
	RejectText                   string
	TLS                          string // TLSOff, TLSPreferred or TLSRequired
	// Sender authentication (mailauth.go); off on relaying policies.
	SPF   SPFPolicy
	DKIM  bool // verify DKIM signatures
	DMARC DMARCPolicy
	// DKIMSigning signs the messages received under the policy with the
	// signing profile their sending address matches (the ESA's "Domain
	// Key/DKIM Signing: On", typically on RELAYED).
	DKIMSigning bool
}

// Throttled sets the limits of the ESA's suggested $THROTTLED policy (an
// accept policy for suspect senders, the ESA's SUSPECTLIST) on p: 10
// messages per connection, 20 recipients per message, 1 MB, 10 connections
// per client and 20 recipients per hour. The ESA has no connection rate;
// this one allows one connection every 6 seconds on average.
func Throttled(p Policy) Policy {
	p.MaxMessagesPerConnection = 10
	p.MaxRecipientsPerMessage = 20
	p.MaxMessageSize = 1 << 20
	p.MaxConcurrencyPerIP = 10
	p.MaxConnectionsPerMinute = 10
	p.MaxRecipientsPerHour = 20
	return p
}

// SenderGroup is a named list of rules bound to a policy.
type SenderGroup struct {
	Name   string
	Rules  []Rule
	Policy string
}

// Match returns the first rule of the group that covers the client.
func (g *SenderGroup) Match(c Client) (Rule, bool) {
	for _, r := range g.Rules {
		if r.Match(c) {
			return r, true
		}
	}
	return Rule{}, false
}

// HAT is the Host Access Table of one listener.
type HAT struct {
	Groups   []SenderGroup      // in order; the first match wins
	Policies map[string]*Policy // by name
	Default  string             // the policy of the final ALL entry
}

// Decision is the outcome of the HAT for one connection; its fields are what
// the "ICID n ACCEPT SG RELAY_SG match 10.1.1.0/24" line logs.
type Decision struct {
	Group  string // sender-group name, or "None" when the default policy applied
	Rule   string // the matched rule text, "ALL" for the default
	Policy *Policy
	// DNSList is the DNS list whose rule matched, for the stages after the
	// HAT (authentication results, content filters); its Zone is "" when
	// the decision was not made by a dnslist rule.
	DNSList ListMatch
}

// ListMatch is a DNS list's listing of a client: the list's zone and the
// code (the A record) that the matching rule counted.
type ListMatch struct {
	Zone string
	Code netip.Addr
}

// NoGroup is the group name of a decision made by the default policy.
const NoGroup = "None"

// Decide returns the decision for a client: the first group, in order, with
// a rule that matches, else the default policy. The HAT must be valid (see
// Validate); otherwise Policy may be nil.
func (h *HAT) Decide(c Client) Decision {
	for i := range h.Groups {
		g := &h.Groups[i]
		if r, ok := g.Match(c); ok {
			d := Decision{Group: g.Name, Rule: r.String(), Policy: h.Policies[g.Policy]}
			if code, ok := r.listCode(c); ok {
				d.DNSList = ListMatch{Zone: r.name, Code: code}
			}
			return d
		}
	}
	return Decision{Group: NoGroup, Rule: "ALL", Policy: h.Policies[h.Default]}
}

// ESAAction returns the action word of the HAT log line.
func (d Decision) ESAAction() string { return d.Policy.Action.ESA() }

// DNSLists returns the zones of all the HAT's dnslist rules, in order,
// each once.
func (h *HAT) DNSLists() []string {
	var zones []string
	for _, g := range h.Groups {
		for _, r := range g.Rules {
			if z := r.DNSList(); z != "" && !slices.Contains(zones, z) {
				zones = append(zones, z)
			}
		}
	}
	return zones
}

// DNSListsFor returns the zones, in order and each once, that Decide may
// consult for the client: those of the dnslist rules before the first
// other rule that matches it. A client that an earlier address rule places
// (this machine in RELAY_SG) costs no lookup. The client's host name may be
// left out, when the lookups run beside the reverse DNS lookup: host-name
// rules then match nothing, and the zones are those that any name would
// need.
func (h *HAT) DNSListsFor(c Client) []string {
	var zones []string
	for _, g := range h.Groups {
		for _, r := range g.Rules {
			if z := r.DNSList(); z != "" {
				if !slices.Contains(zones, z) {
					zones = append(zones, z)
				}
				continue
			}
			if r.Match(c) {
				return zones
			}
		}
	}
	return zones
}

// Decided reports whether the decision for the client can no longer change
// when the DNS lists in pending answer: a rule that matches comes before
// every dnslist rule of a pending list. A client on an allow list early in
// the HAT need not wait for a slow block list further down.
func (h *HAT) Decided(c Client, pending map[string]bool) bool {
	for _, g := range h.Groups {
		for _, r := range g.Rules {
			if z := r.DNSList(); z != "" && pending[z] {
				return false
			}
			if r.Match(c) {
				return true
			}
		}
	}
	return true
}

// NeedsHostname reports whether a reverse DNS name can change anything the
// HAT does: some rule matches host names, or some banner uses $Hostname.
// When it is false a listener may skip the lookup (the "New SMTP ICID" line
// then says "reverse dns host unknown verified no").
func (h *HAT) NeedsHostname() bool {
	for _, g := range h.Groups {
		for _, r := range g.Rules {
			if r.NeedsHostname() {
				return true
			}
		}
	}
	for _, p := range h.Policies {
		if usesVar(p.BannerText, "hostname") || usesVar(p.RejectText, "hostname") {
			return true
		}
	}
	return false
}

// Validate checks what Decide relies on: the default and every group's
// policy exist, group names are unique (and not "None"), and every policy
// has a known action and TLS mode.
func (h *HAT) Validate() error {
	var errs []error
	if _, ok := h.Policies[h.Default]; !ok {
		errs = append(errs, fmt.Errorf("default policy %q is not defined", h.Default))
	}
	seen := make(map[string]bool, len(h.Groups))
	for _, g := range h.Groups {
		switch {
		case strings.EqualFold(g.Name, NoGroup):
			errs = append(errs, fmt.Errorf("sender group name %q is reserved for the default policy", g.Name))
		case seen[g.Name]:
			errs = append(errs, fmt.Errorf("sender group %q is defined twice", g.Name))
		}
		seen[g.Name] = true
		if _, ok := h.Policies[g.Policy]; !ok {
			errs = append(errs, fmt.Errorf("sender group %q: policy %q is not defined", g.Name, g.Policy))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.Policies)) {
		p := h.Policies[name]
		if p == nil {
			errs = append(errs, fmt.Errorf("policy %q is nil", name))
			continue
		}
		if _, err := ParseAction(string(p.Action)); err != nil {
			errs = append(errs, fmt.Errorf("policy %q: %w", name, err))
		}
		switch p.TLS {
		case TLSOff, TLSPreferred, TLSRequired:
		default:
			errs = append(errs, fmt.Errorf("policy %q: unknown tls mode %q", name, p.TLS))
		}
	}
	return errors.Join(errs...)
}
