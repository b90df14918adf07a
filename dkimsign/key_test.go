package dkimsign_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mailgate/mailgate/dkimsign"
)

// TestParseKey reads the key forms openssl, opendkim-genkey and keygen
// write, and refuses the others with a reason.
func TestParseKey(t *testing.T) {
	rsaKey := keys()["rsa1024"].(*rsa.PrivateKey)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	t.Setenv("GODEBUG", "rsa1024min=0") // Go refuses to make one otherwise
	small, err := rsa.GenerateKey(rand.Reader, 512)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, typ, err string
		data           []byte
	}{
		{"PKCS#1 RSA", "rsa", "", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
		{"PKCS#8 RSA after a certificate", "rsa", "", append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), pkcs8(rsaKey)...)},
		{"PKCS#8 Ed25519", "ed25519", "", pkcs8(keys()["ed25519"])},
		{"RSA of 512 bits", "", "RSA key of 512 bits; DKIM needs at least 1024", pkcs8(small)},
		{"ECDSA", "", "not an RSA or Ed25519 private key", pkcs8(ec)},
		{"EC PRIVATE KEY block", "", "not an RSA or Ed25519 private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}})},
		{"not PEM", "", "no PEM private key", []byte("v=DKIM1; k=rsa; p=...")},
		{"broken DER", "", "PEM block \"PRIVATE KEY\"", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := dkimsign.ParseKey(tt.data)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || dkimsign.KeyType(k) != tt.typ {
				t.Errorf("%v, type %q, want %q", err, dkimsign.KeyType(k), tt.typ)
			}
		})
	}
}

// TestRecord: the record is one zone-file line a DNS server loads, its
// strings at most 255 bytes, and their text joined is the key's.
func TestRecord(t *testing.T) {
	for _, name := range []string{"rsa2048", "rsa1024", "ed25519"} {
		k := keys()[name]
		line, err := dkimsign.Record("Example.com.", "s2026", k)
		if err != nil {
			t.Fatal(err)
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("%s: %q does not parse: %v", name, line, err)
		}
		txt := rr.(*dns.TXT)
		if txt.Hdr.Name != "s2026._domainkey.Example.com." {
			t.Errorf("%s: name %q", name, txt.Hdr.Name)
		}
		for _, s := range txt.Txt {
			if len(s) > 255 {
				t.Errorf("%s: a string of %d bytes", name, len(s))
			}
		}
		want, _ := dkimsign.RecordValue(k)
		if got := strings.Join(txt.Txt, ""); got != want {
			t.Errorf("%s: record text %q, want %q", name, got, want)
		}
		if name == "rsa2048" && len(txt.Txt) < 2 {
			t.Errorf("an RSA-2048 record in %d string", len(txt.Txt))
		}
	}
}
