// Package dkimsign signs outgoing mail with DKIM (RFC 6376; Ed25519 keys
// by RFC 8463) the way the Cisco ESA does: signing profiles, each a domain,
// a selector and a key, are matched by the message's sending address, and
// a message is signed as it is written (the body is hashed as it streams
// by; only the header is held). It also makes keys and the DNS record that
// publishes them. The cryptography and canonicalization are
// github.com/emersion/go-msgauth's; this package decides what to sign with
// which profile, and says so in the ESA's words.
package dkimsign

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// Canonicalizations (RFC 6376 3.4).
const (
	Simple  = string(dkim.CanonicalizationSimple)
	Relaxed = string(dkim.CanonicalizationRelaxed)
)

// DefaultHeaders are the fields signed when a profile names none: those of
// RFC 6376 5.4.1 that a mail system does not rewrite in transit, and the
// MIME fields that say how to read the body.
var DefaultHeaders = []string{
	"From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-ID", "Content-Description",
	"In-Reply-To", "References",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Message-ID",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe", "List-Post",
	"List-Owner", "List-Archive",
}

// DefaultOversign are the fields signed once more than they occur, so that
// one added in transit (a second From, a Subject where there was none)
// breaks the signature: rspamd's default set.
var DefaultOversign = []string{"From", "Reply-To", "Subject", "To", "Cc"}

// Profile is one signing profile: whom it signs for, and how.
type Profile struct {
	Name        string        // in the log line: "signing with <Name> - matches <addr>"
	Domain      string        // d=
	Selector    string        // s=
	Key         crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
	HeaderCanon string        // Simple or Relaxed
	BodyCanon   string
	Headers     []string // signed as often as they occur; From is always signed
	Oversign    []string // signed once more than they occur
	// Users are what the profile signs for, in lower case: an address
	// ("alice@example.com"), a domain ("example.com") or every domain
	// under one (".example.com").
	Users []string
}

// KeyType is "rsa" or "ed25519", the k= of the key's DNS record.
func (p *Profile) KeyType() string { return KeyType(p.Key) }

// KeyType is "rsa" or "ed25519" for the keys this package signs with, ""
// for others.
func KeyType(k crypto.Signer) string {
	switch k.Public().(type) {
	case *rsa.PublicKey:
		return "rsa"
	case ed25519.PublicKey:
		return "ed25519"
	}
	return ""
}

// Profiles are the signing profiles of a gateway, indexed by what they
// match.
type Profiles struct {
	list    []*Profile
	addrs   map[string]*Profile // "alice@example.com"
	domains map[string]*Profile // "example.com"
	subs    map[string]*Profile // "example.com" for ".example.com"
}

// New indexes profiles. A user claimed by two profiles is an error: which
// key signs a message must not depend on the order of the configuration.
func New(ps []*Profile) (*Profiles, error) {
	x := &Profiles{list: ps, addrs: map[string]*Profile{}, domains: map[string]*Profile{}, subs: map[string]*Profile{}}
	for _, p := range ps {
		if p.Key == nil || KeyType(p.Key) == "" {
			return nil, fmt.Errorf("dkimsign: profile %s: no RSA or Ed25519 key", p.Name)
		}
		if !slices.ContainsFunc(p.Headers, func(h string) bool { return strings.EqualFold(h, "From") }) {
			return nil, fmt.Errorf("dkimsign: profile %s: From must be among the signed headers (RFC 6376 5.4)", p.Name)
		}
		for _, u := range p.Users {
			m, key := x.addrs, u
			switch {
			case strings.HasPrefix(u, "."):
				m, key = x.subs, u[1:]
			case !strings.Contains(u, "@"):
				m = x.domains
			}
			if q := m[key]; q != nil {
				return nil, fmt.Errorf("dkimsign: %q is a user of both profile %s and profile %s", u, q.Name, p.Name)
			}
			m[key] = p
		}
	}
	return x, nil
}

// Len is the number of profiles.
func (x *Profiles) Len() int {
	if x == nil {
		return 0
	}
	return len(x.list)
}

// Match returns the profile for a sending address: the one that names the
// address, else the one that names its domain, else the one that names
// the closest domain above it (".example.com"). Case does not matter.
func (x *Profiles) Match(addr string) (*Profile, bool) {
	if x == nil {
		return nil, false
	}
	addr = strings.ToLower(addr)
	if p := x.addrs[addr]; p != nil {
		return p, true
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return nil, false
	}
	dom := strings.TrimSuffix(addr[at+1:], ".")
	if p := x.domains[dom]; p != nil {
		return p, true
	}
	for d := dom; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return nil, false
		}
		d = d[i+1:]
		if p := x.subs[d]; p != nil {
			return p, true
		}
	}
}

// ErrKey is a key this package cannot sign with.
var ErrKey = errors.New("not an RSA or Ed25519 private key")
