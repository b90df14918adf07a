package config

import (
	"crypto"
	"crypto/rsa"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/policy"
)

// DKIM signing: the top-level dkim_signing_profiles and the mail flow
// policies' dkim_signing key. The policy key is declared here, with the
// feature, rather than in the list of the other policy keys.
func init() { policyParams = append(policyParams, "dkim_signing") }

// dkimSigningParam decodes a policy's dkim_signing.
func (d *decoder) dkimSigningParam(f map[string]*yaml.Node, path string, p *policy.Policy) {
	v := f["dkim_signing"]
	if !present(v) {
		return
	}
	if on, ok := d.boolean(v, join(path, "dkim_signing")); ok {
		p.DKIMSigning = on
		if on && d.signingOn == nil {
			d.signingOn, d.signingOnPath = v, join(path, "dkim_signing")
		}
	}
}

// dkimSigning decodes dkim_signing_profiles; nil when there are none.
func (d *decoder) dkimSigning(n *yaml.Node, path, dataDir string) *dkimsign.Profiles {
	if !present(n) {
		if d.signingOn != nil {
			d.warnf(d.signingOn, d.signingOnPath, "the policy signs, but dkim_signing_profiles is empty: "+
				"every message will log \"DKIM: cannot sign - no profile matches\"")
		}
		return nil
	}
	nprobs := len(d.probs)
	var ps []*dkimsign.Profile
	names := map[string]bool{}
	users := map[string]string{} // user -> path of its first entry
	for i, it := range d.list(n, path) {
		p := index(path, i)
		if prof := d.dkimProfile(it, p, dataDir, names, users); prof != nil {
			ps = append(ps, prof)
		}
	}
	if len(d.probs) > nprobs {
		return nil
	}
	x, err := dkimsign.New(ps)
	if err != nil {
		// What this file checked is what New relies on.
		d.errorf(n, path, "internal error: %v", err)
		return nil
	}
	return x
}

func (d *decoder) dkimProfile(n *yaml.Node, path, dataDir string, names map[string]bool, users map[string]string) *dkimsign.Profile {
	nprobs := len(d.probs)
	f := d.fields(n, path, "name", "domain", "selector", "key", "key_type", "canonicalization", "headers", "oversign", "users")
	p := &dkimsign.Profile{HeaderCanon: dkimsign.Relaxed, BodyCanon: dkimsign.Relaxed,
		Headers: dkimsign.DefaultHeaders, Oversign: dkimsign.DefaultOversign}
	if v := f["name"]; present(v) {
		if s, ok := d.str(v, join(path, "name")); ok {
			if err := checkName(s); err != nil {
				d.errorf(v, join(path, "name"), "profile %v", err)
			} else if names[s] {
				d.errorf(v, join(path, "name"), "profile %q is defined twice", s)
			}
			names[s] = true
			p.Name = s
		}
	} else {
		d.errorf(n, join(path, "name"), "required")
	}
	if v := f["domain"]; present(v) {
		if s, ok := d.str(v, join(path, "domain")); ok {
			s = strings.ToLower(strings.TrimSuffix(s, "."))
			if err := policy.CheckDomain(s); err != nil {
				d.errorf(v, join(path, "domain"), "%v", err)
			}
			p.Domain = s
		}
	} else {
		d.errorf(n, join(path, "domain"), "required (the d= of the signature)")
	}
	if v := f["selector"]; present(v) {
		if s, ok := d.str(v, join(path, "selector")); ok {
			// A selector is one or more DNS labels (RFC 6376 3.1).
			if err := policy.CheckDomain(s); err != nil {
				d.errorf(v, join(path, "selector"), "%v", err)
			}
			p.Selector = s
		}
	} else {
		d.errorf(n, join(path, "selector"), "required (the s= of the signature: the key is at <selector>._domainkey.<domain>)")
	}
	if v := f["key"]; present(v) {
		if s, ok := d.str(v, join(path, "key")); ok {
			p.Key = d.dkimKey(v, join(path, "key"), dataPath(dataDir, s))
		}
	} else {
		d.errorf(n, join(path, "key"), "required (a PEM private key file; mailgate dkim keygen writes one)")
	}
	if v := f["key_type"]; present(v) {
		if s, ok := d.oneOf(v, join(path, "key_type"), "rsa", "ed25519"); ok && p.Key != nil && p.KeyType() != s {
			d.errorf(v, join(path, "key_type"), "the key file holds an %s key, not %s", p.KeyType(), s)
		}
	}
	if v := f["canonicalization"]; present(v) {
		if s, ok := d.str(v, join(path, "canonicalization")); ok {
			h, b, _ := strings.Cut(strings.ToLower(s), "/")
			canon := []string{dkimsign.Simple, dkimsign.Relaxed}
			if !slices.Contains(canon, h) || !slices.Contains(canon, b) {
				d.errorf(v, join(path, "canonicalization"), "%q: want header/body, each relaxed or simple (relaxed/relaxed)", s)
			}
			p.HeaderCanon, p.BodyCanon = h, b
		}
	}
	if v := f["headers"]; present(v) {
		p.Headers = d.headerNames(v, join(path, "headers"))
		if !slices.ContainsFunc(p.Headers, func(h string) bool { return strings.EqualFold(h, "From") }) {
			d.errorf(v, join(path, "headers"), "must hold From: DKIM always signs it (RFC 6376 5.4)")
		}
	}
	if v := f["oversign"]; present(v) {
		p.Oversign = d.headerNames(v, join(path, "oversign"))
	}
	if v := f["users"]; present(v) {
		up := join(path, "users")
		for i, it := range d.list(v, up) {
			ip := index(up, i)
			s, ok := d.str(it, ip)
			if !ok {
				continue
			}
			u, err := checkSigningUser(s)
			if err != nil {
				d.errorf(it, ip, "%v", err)
				continue
			}
			if first, dup := users[u]; dup {
				d.errorf(it, ip, "%q is already a user of %s: one profile signs for it", u, first)
				continue
			}
			users[u] = ip
			p.Users = append(p.Users, u)
		}
	} else if p.Domain != "" {
		// Left out: the profile signs for its own domain.
		if first, dup := users[p.Domain]; dup {
			d.errorf(n, join(path, "users"), "the default (the profile's domain %s) is already a user of %s", p.Domain, first)
		}
		users[p.Domain] = join(path, "domain")
		p.Users = []string{p.Domain}
	}
	if len(d.probs) > nprobs {
		return nil
	}
	return p
}

// dkimKey reads a profile's key file. A key that others may read is a
// warning (opendkim refuses it): whoever reads it can sign as the domain.
func (d *decoder) dkimKey(n *yaml.Node, path, file string) crypto.Signer {
	fi, err := os.Stat(file)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return nil
	}
	if !fi.Mode().IsRegular() {
		d.errorf(n, path, "%s is not a regular file", file)
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return nil
	}
	key, err := dkimsign.ParseKey(data)
	if err != nil {
		d.errorf(n, path, "%s: %v", file, err)
		return nil
	}
	if k, ok := key.(*rsa.PrivateKey); ok && k.N.BitLen() < dkimsign.RecommendedRSABits {
		d.warnf(n, path, "%s: RSA key of %d bits; receivers may not trust less than %d (RFC 8301)", file, k.N.BitLen(),
			dkimsign.RecommendedRSABits)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		d.warnf(n, path, "%s is readable by others (mode %04o); chmod 600 it", file, fi.Mode().Perm())
	}
	return key
}

// headerNames decodes a list of header field names.
func (d *decoder) headerNames(n *yaml.Node, path string) []string {
	var out []string
	for i, it := range d.list(n, path) {
		ip := index(path, i)
		s, ok := d.str(it, ip)
		if !ok {
			continue
		}
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == ':' || r >= 0x7f }) {
			d.errorf(it, ip, "%q is not a header field name", s)
			continue
		}
		out = append(out, s)
	}
	return out
}

// checkSigningUser checks a profile's user: "alice@example.com",
// "example.com" or ".example.com"; it returns it in lower case.
func checkSigningUser(s string) (string, error) {
	u := strings.ToLower(s)
	dom := u
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		if at == 0 || strings.ContainsAny(u[:at], " <>\"") {
			return "", fmt.Errorf("%q: want an address (alice@example.com), a domain (example.com) or .example.com", s)
		}
		dom = u[at+1:]
	} else {
		dom = strings.TrimPrefix(u, ".")
	}
	if err := policy.CheckDomain(dom); err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	return u, nil
}
