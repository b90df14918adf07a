package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/dkimsign"
)

// writeDKIMKeys writes keys for the profiles of the tests into dir:
// rsa.pem (2048 bits, PKCS#8), rsa1024.pem (PKCS#1), ed.pem, ec.pem (not a
// DKIM key) and open.pem (an Ed25519 key others may read).
func writeDKIMKeys(t *testing.T, dir string) {
	t.Helper()
	write := func(name string, typ string, der []byte, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []struct {
		name, typ string
		bits      int
		mode      os.FileMode
	}{{"rsa.pem", "rsa", 2048, 0o600}, {"ed.pem", "ed25519", 0, 0o600}, {"open.pem", "ed25519", 0, 0o644}} {
		_, p, err := dkimsign.GenerateKey(k.typ, k.bits)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, k.name), p, k.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, k.name), k.mode); err != nil {
			t.Fatal(err)
		}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	write("rsa1024.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small), 0o600)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	write("ec.pem", "PRIVATE KEY", der, 0o600)
}

const signingYAML = `data_dir: %DIR%
listeners:
  - name: Out
    type: private
    address: 127.0.0.1:0
    hat:
      sender_groups: [{name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}]
      policies:
        RELAYED: {action: relay, dkim_signing: true}
http: {address: ""}
dkim_signing_profiles:
`

// TestDKIMSigningProfiles: profiles load with their defaults, the policy
// key turns signing on, and each profile is matched as configured.
func TestDKIMSigningProfiles(t *testing.T) {
	dir := t.TempDir()
	writeDKIMKeys(t, dir)
	yaml := strings.ReplaceAll(signingYAML, "%DIR%", dir) + `  - {name: example_com, domain: Example.COM, selector: s1, key: rsa.pem}
  - name: example_org
    domain: example.org
    selector: ed.2026
    key: ` + filepath.Join(dir, "ed.pem") + `
    key_type: ed25519
    canonicalization: simple/relaxed
    headers: [From, Subject]
    oversign: []
    users: [example.org, .example.org, Boss@Example.NET]
`
	c, err := Parse([]byte(yaml), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	if !c.Listeners[0].HAT.Policies["RELAYED"].DKIMSigning || c.Listeners[0].HAT.Policies["ACCEPTED"].DKIMSigning {
		t.Error("dkim_signing is not on RELAYED alone")
	}
	if c.DKIMSigning.Len() != 2 {
		t.Fatalf("%d profiles", c.DKIMSigning.Len())
	}
	for _, tt := range []struct {
		addr, profile string
	}{
		{"a@example.com", "example_com"}, {"b@sub.example.com", ""}, {"c@example.org", "example_org"},
		{"d@eu.example.org", "example_org"}, {"boss@example.net", "example_org"}, {"e@example.net", ""},
	} {
		p, ok := c.DKIMSigning.Match(tt.addr)
		if got := ""; ok {
			got = p.Name
			if got != tt.profile {
				t.Errorf("%s: profile %s, want %q", tt.addr, got, tt.profile)
			}
		} else if tt.profile != "" {
			t.Errorf("%s: no profile, want %s", tt.addr, tt.profile)
		}
	}
	com, _ := c.DKIMSigning.Match("a@example.com")
	if com.Domain != "example.com" || com.KeyType() != "rsa" || com.HeaderCanon != "relaxed" || com.BodyCanon != "relaxed" ||
		len(com.Headers) != len(dkimsign.DefaultHeaders) || len(com.Oversign) != len(dkimsign.DefaultOversign) {
		t.Errorf("defaults of example_com: %+v", com)
	}
	org, _ := c.DKIMSigning.Match("c@example.org")
	if org.Selector != "ed.2026" || org.KeyType() != "ed25519" || org.HeaderCanon != "simple" || org.BodyCanon != "relaxed" ||
		len(org.Headers) != 2 || len(org.Oversign) != 0 {
		t.Errorf("example_org: %+v", org)
	}
	// The embedded default signs nothing.
	if d := Default(); d.DKIMSigning != nil {
		t.Error("the default has signing profiles")
	}
}

// TestDKIMSigningMistakes: each mistake is reported at its line.
func TestDKIMSigningMistakes(t *testing.T) {
	dir := t.TempDir()
	writeDKIMKeys(t, dir)
	base := strings.ReplaceAll(signingYAML, "%DIR%", dir)
	tests := []struct{ name, profiles, want string }{
		{"no key", "  - {name: a, domain: example.com, selector: s1}\n", "t.yaml:12: dkim_signing_profiles[0].key: required"},
		{"missing key file", "  - {name: a, domain: example.com, selector: s1, key: nope.pem}\n", "dkim_signing_profiles[0].key: stat " + dir + "/nope.pem: no such file"},
		{"not a DKIM key", "  - {name: a, domain: example.com, selector: s1, key: ec.pem}\n", "t.yaml:12: dkim_signing_profiles[0].key: " + dir + "/ec.pem: *ecdsa.PrivateKey: not an RSA or Ed25519 private key"},
		{"key type", "  - {name: a, domain: example.com, selector: s1, key: rsa.pem, key_type: ed25519}\n", "t.yaml:12: dkim_signing_profiles[0].key_type: the key file holds an rsa key, not ed25519"},
		{"canonicalization", "  - {name: a, domain: example.com, selector: s1, key: ed.pem, canonicalization: relaxed}\n", `t.yaml:12: dkim_signing_profiles[0].canonicalization: "relaxed": want header/body`},
		{"no From", "  - {name: a, domain: example.com, selector: s1, key: ed.pem, headers: [To, Subject]}\n", "t.yaml:12: dkim_signing_profiles[0].headers: must hold From"},
		{"bad header name", "  - {name: a, domain: example.com, selector: s1, key: ed.pem, oversign: ['From:']}\n", `t.yaml:12: dkim_signing_profiles[0].oversign[0]: "From:" is not a header field name`},
		{"bad domain", "  - {name: a, domain: 'example com', selector: s1, key: ed.pem}\n", `dkim_signing_profiles[0].domain: invalid character ' ' in host name`},
		{"bad selector", "  - {name: a, domain: example.com, selector: 's 1', key: ed.pem}\n", `dkim_signing_profiles[0].selector: invalid character`},
		{"bad user", "  - {name: a, domain: example.com, selector: s1, key: ed.pem, users: ['@example.com']}\n", `dkim_signing_profiles[0].users[0]: "@example.com": want an address`},
		{"user twice", "  - {name: a, domain: example.com, selector: s1, key: ed.pem}\n  - {name: b, domain: example.net, selector: s1, key: ed.pem, users: [example.net, EXAMPLE.com]}\n",
			`t.yaml:13: dkim_signing_profiles[1].users[1]: "example.com" is already a user of dkim_signing_profiles[0].domain`},
		{"name twice", "  - {name: a, domain: example.com, selector: s1, key: ed.pem}\n  - {name: a, domain: example.net, selector: s1, key: ed.pem}\n",
			`t.yaml:13: dkim_signing_profiles[1].name: profile "a" is defined twice`},
		{"unknown key", "  - {name: a, domain: example.com, selector: s1, key: ed.pem, body_length: 100}\n", "t.yaml:12: dkim_signing_profiles[0].body_length: unknown key"},
		{"policy key", "  - {name: a, domain: example.com, selector: s1, key: ed.pem}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := base + tt.profiles
			if tt.want == "" {
				yaml = strings.Replace(yaml, "dkim_signing: true", "dkim_signing: yes please", 1)
				tt.want = "t.yaml:9: listeners[0].hat.policies.RELAYED.dkim_signing: want true or false"
			}
			_, err := Parse([]byte(yaml), "t.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant %q", err, tt.want)
			}
		})
	}
}

// TestDKIMSigningWarnings: what loads but deserves a look.
func TestDKIMSigningWarnings(t *testing.T) {
	dir := t.TempDir()
	writeDKIMKeys(t, dir)
	base := strings.ReplaceAll(signingYAML, "%DIR%", dir)
	tests := []struct{ name, profiles, want string }{
		{"RSA of 1024 bits", "  - {name: a, domain: example.com, selector: s1, key: rsa1024.pem}\n",
			"t.yaml:12: dkim_signing_profiles[0].key: " + dir + "/rsa1024.pem: RSA key of 1024 bits; receivers may not trust less than 2048"},
		{"key others may read", "  - {name: a, domain: example.com, selector: s1, key: open.pem}\n",
			"t.yaml:12: dkim_signing_profiles[0].key: " + dir + "/open.pem is readable by others (mode 0644); chmod 600 it"},
		{"signing without profiles", "", "t.yaml:9: listeners[0].hat.policies.RELAYED.dkim_signing: the policy signs, but dkim_signing_profiles is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(base+tt.profiles), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), tt.want) {
				t.Errorf("warnings %v, want %q", c.Warnings, tt.want)
			}
		})
	}
}
