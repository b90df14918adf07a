package policy

import (
	"errors"
	"fmt"
	"strings"
)

// The reply to a recipient the RAT rejects when its entry sets no code or
// text (and when no entry matches). From product knowledge of the ESA; not
// confirmed by a source we could read.
const (
	RATRejectCode = 550
	RATRejectText = "#5.1.0 Address rejected."
)

// RATEntry is one line of the Recipient Access Table. Make entries with
// ParseRATEntry; the exported fields may then be set.
type RATEntry struct {
	Pattern string // as configured
	Accept  bool
	Code    int    // reply code; 0: the default (250 for accept, RATRejectCode for reject)
	Text    string // reply text; "": the default

	all    bool
	local  string // "user" of "user@" or "user@example.com"
	domain string // "example.com", or ".example.com" for subdomains; lower case
}

// RAT is a listener's Recipient Access Table; the first matching entry
// decides, and a recipient no entry matches is rejected.
type RAT []RATEntry

// ParseRATEntry parses a pattern and an action ("accept" or "reject", in any
// case). Patterns:
//
//	example.com        recipients at that domain (not its subdomains)
//	.example.com       recipients at any domain strictly under example.com
//	user@              that local part at any domain
//	user@example.com   that address
//	ALL                every recipient
//
// Domains and local parts compare case-insensitively, as on the ESA (RFC 5321
// lets a receiver treat local parts case-sensitively; none of the systems
// behind a gateway do in practice). A trailing dot on a domain is ignored.
// An address literal (user@[10.0.0.1]) matches only ALL.
func ParseRATEntry(pattern, action string) (RATEntry, error) {
	e := RATEntry{Pattern: strings.TrimSpace(pattern)}
	switch strings.ToLower(action) {
	case "accept":
		e.Accept = true
	case "reject":
	default:
		return RATEntry{}, fmt.Errorf("unknown RAT action %q (want accept or reject)", action)
	}
	if err := e.parse(); err != nil {
		return RATEntry{}, fmt.Errorf("invalid RAT pattern %q: %w", e.Pattern, err)
	}
	return e, nil
}

func (e *RATEntry) parse() error {
	p := e.Pattern
	if strings.EqualFold(p, "ALL") {
		e.all = true
		return nil
	}
	local, domain, hasAt := cutLast(p, '@')
	if !hasAt {
		local, domain = "", p
	} else if local == "" {
		return errors.New("empty local part; write the domain alone to match all of its addresses")
	}
	if local != "" {
		if err := checkLocal(local); err != nil {
			return err
		}
		e.local = local
	}
	if hasAt && domain == "" {
		return nil // "user@"
	}
	if strings.HasPrefix(domain, "[") {
		return errors.New("address literals cannot be matched (only ALL covers them)")
	}
	if local != "" && strings.HasPrefix(domain, ".") {
		return errors.New("a subdomain pattern cannot have a local part")
	}
	name, err := parseHostPattern(domain)
	if err != nil {
		return err
	}
	e.domain = name
	return nil
}

func checkLocal(s string) error {
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == '@' {
			return fmt.Errorf("invalid character %q in local part", r)
		}
	}
	return nil
}

func cutLast(s string, sep byte) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// Decide returns the entry that decides the recipient (an address without
// angle brackets) and whether it is accepted. The entry's Code and Text are
// filled in with the defaults for a rejection; for an acceptance a zero Code
// means the listener's usual reply. With no matching entry the result is a
// rejection with an empty Pattern.
func (r RAT) Decide(rcpt string) (RATEntry, bool) {
	local, domain, hasAt := cutLast(rcpt, '@')
	if !hasAt {
		domain = "" // "RCPT TO:<postmaster>": only user@ entries and ALL apply
	}
	domain = strings.TrimSuffix(domain, ".")
	literal := strings.HasPrefix(domain, "[")
	for _, e := range r {
		if e.match(local, domain, literal) {
			if !e.Accept {
				e = e.withRejectDefaults()
			}
			return e, e.Accept
		}
	}
	return RATEntry{}.withRejectDefaults(), false
}

func (e RATEntry) withRejectDefaults() RATEntry {
	if e.Code == 0 {
		e.Code = RATRejectCode
	}
	if e.Text == "" {
		e.Text = RATRejectText
	}
	return e
}

func (e *RATEntry) match(local, domain string, literal bool) bool {
	if e.all {
		return true
	}
	if e.local != "" && !strings.EqualFold(e.local, local) {
		return false
	}
	switch {
	case e.domain == "":
		return e.local != "" // "user@"; a zero entry matches nothing
	case literal:
		return false
	case e.domain[0] == '.':
		return len(domain) > len(e.domain) && strings.EqualFold(domain[len(domain)-len(e.domain):], e.domain)
	}
	return strings.EqualFold(domain, e.domain)
}
