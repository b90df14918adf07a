package policy

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultMailPolicy is the name of the last row of a mail-policy table,
// which matches every recipient and which the other rows inherit from.
const DefaultMailPolicy = "DEFAULT"

// Tables, as the ESA names them in its log lines.
const (
	InboundTable  = "inbound"  // incoming mail policies: mail accepted on a listener
	OutboundTable = "outbound" // outgoing mail policies: mail relayed
)

// ScanFailure is what a policy does with a message when one of its stages
// fails (an engine down, a timeout, garbage for an answer).
type ScanFailure string

const (
	// ScanTempfail keeps the message in the work queue and runs its stages
	// again later: nothing is lost, nothing unscanned is delivered.
	ScanTempfail ScanFailure = "tempfail"
	// ScanDeliver delivers the message unscanned by that stage, with a log
	// line, and runs the next stage.
	ScanDeliver ScanFailure = "deliver"
)

// MailPolicy is one row of a mail-policy table, with what it inherits
// from DEFAULT already filled in.
type MailPolicy struct {
	Name       string
	Recipients []AddrPattern // any of them; none: every recipient
	Senders    []AddrPattern // any of them; none: every sender

	// The stages, in the ESA's order. An engine is named as the engine
	// configuration names it; "" is off.
	AntiSpam       string
	AntiVirus      string
	ContentFilters []string
	OnScanFailure  ScanFailure
	// What the engines' verdicts do (scanactions.go).
	Spam  SpamSettings
	Virus VirusSettings
}

// HasStages reports whether the policy runs anything on a message.
func (p *MailPolicy) HasStages() bool {
	return p.AntiSpam != "" || p.AntiVirus != "" || len(p.ContentFilters) > 0
}

// MailPolicies are the two tables. Each ends with its DEFAULT row.
type MailPolicies struct {
	Incoming []*MailPolicy
	Outgoing []*MailPolicy
}

// Table returns the table for a message: outgoing for relayed mail, and
// its name as log lines give it.
func (m *MailPolicies) Table(outgoing bool) ([]*MailPolicy, string) {
	if outgoing {
		return m.Outgoing, OutboundTable
	}
	return m.Incoming, InboundTable
}

// Validate checks the invariants the matching relies on.
func (m *MailPolicies) Validate() error {
	for _, t := range [][]*MailPolicy{m.Incoming, m.Outgoing} {
		if len(t) == 0 || t[len(t)-1].Name != DefaultMailPolicy {
			return errors.New("a mail-policy table must end with its DEFAULT row")
		}
		for _, p := range t[:len(t)-1] {
			if p.Name == DefaultMailPolicy {
				return errors.New("DEFAULT must be the last row")
			}
			if len(p.Recipients) == 0 && len(p.Senders) == 0 {
				return fmt.Errorf("mail policy %s matches nothing (no recipients, no senders)", p.Name)
			}
		}
	}
	return nil
}

// Match returns the first policy of table that matches the recipient rcpt
// of a message from sender. The last row (DEFAULT) matches everything.
func Match(table []*MailPolicy, sender, rcpt string) *MailPolicy {
	for _, p := range table[:len(table)-1] {
		if p.matches(sender, rcpt) {
			return p
		}
	}
	return table[len(table)-1]
}

func (p *MailPolicy) matches(sender, rcpt string) bool {
	if len(p.Recipients) > 0 && !anyMatch(p.Recipients, rcpt) {
		return false
	}
	return len(p.Senders) == 0 || anyMatch(p.Senders, sender)
}

func anyMatch(ps []AddrPattern, addr string) bool {
	for _, a := range ps {
		if a.Match(addr) {
			return true
		}
	}
	return false
}

// PolicyGroup is the recipients of a message that one policy took.
type PolicyGroup struct {
	Policy *MailPolicy
	Rcpts  []int // indexes into the message's recipients, ascending
}

// Split groups the recipients of a message by their first matching
// policy: one group per policy, in the order of each group's first
// recipient. More than one group means the message is split, the first
// group staying with the message as the ESA keeps it with its MID.
func Split(table []*MailPolicy, sender string, rcpts []string) []PolicyGroup {
	var groups []PolicyGroup
	for i, r := range rcpts {
		p := Match(table, sender, r)
		k := 0
		for k < len(groups) && groups[k].Policy != p {
			k++
		}
		if k == len(groups) {
			groups = append(groups, PolicyGroup{Policy: p})
		}
		groups[k].Rcpts = append(groups[k].Rcpts, i)
	}
	return groups
}

// AddrPattern is an address in a mail-policy row, in the ESA's forms:
// "user@example.com" (that address), "user@" (that local part at any
// domain), "@example.com" (the domain) and "@.example.com" (any subdomain
// of it, not the domain itself). Everything compares without case.
type AddrPattern struct {
	Local  string // "" for any
	Domain string // "" for any; with a leading "." for subdomains
}

// ParseAddrPattern parses one of the forms of AddrPattern.
func ParseAddrPattern(s string) (AddrPattern, error) {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return AddrPattern{}, fmt.Errorf("%q is not user@domain, user@, @domain or @.domain", s)
	}
	p := AddrPattern{Local: strings.ToLower(s[:at]), Domain: strings.ToLower(s[at+1:])}
	if p.Local == "" && p.Domain == "" {
		return AddrPattern{}, fmt.Errorf("%q matches nothing in particular (leave the list out for everyone)", s)
	}
	if p.Domain != "" {
		if err := CheckDomain(strings.TrimPrefix(p.Domain, ".")); err != nil {
			return AddrPattern{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	return p, nil
}

// Match reports whether addr (an envelope address; "" is the null sender,
// which only a pattern of any local part and any domain could match, and
// there is none) matches.
func (p AddrPattern) Match(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	local, domain := addr[:at], addr[at+1:]
	if p.Local != "" && !strings.EqualFold(p.Local, local) {
		return false
	}
	switch {
	case p.Domain == "":
		return true
	case p.Domain[0] == '.':
		return len(domain) > len(p.Domain) && strings.EqualFold(domain[len(domain)-len(p.Domain):], p.Domain)
	}
	return strings.EqualFold(p.Domain, domain)
}

func (p AddrPattern) String() string { return p.Local + "@" + p.Domain }
