package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCertificate writes a self-signed certificate valid from notBefore
// to notAfter, and its key, as dir/name-cert.pem and dir/name-key.pem.
func writeCertificate(t *testing.T, dir, name string, notBefore, notAfter time.Time) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + ".example"},
		DNSNames: []string{name + ".example"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// A listener's certificate is checked as the gateway will load it: a key
// that is not the certificate's is an error (serve could not start), a
// certificate expired or near its expiry a warning.
func TestCertificateChecks(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	good, goodKey := writeCertificate(t, dir, "good", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	_, otherKey := writeCertificate(t, dir, "other", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	expired, expiredKey := writeCertificate(t, dir, "expired", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	soon, soonKey := writeCertificate(t, dir, "soon", now.Add(-time.Hour), now.Add(10*24*time.Hour))
	later, laterKey := writeCertificate(t, dir, "later", now.Add(24*time.Hour), now.AddDate(1, 0, 0))
	for _, tt := range []struct {
		name, cert, key string
		err, warning    string // substrings; "" for none
	}{
		{"matching and valid", good, goodKey, "", ""},
		{"key of another certificate", good, otherKey, "private key does not match public key", ""},
		{"expired in 2020", expired, expiredKey, "", "expired on 2020-01-01 00:00:00 UTC"},
		{"expires in 10 days", soon, soonKey, "", "in 10 day(s)"},
		{"not yet valid", later, laterKey, "", "is not valid before"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := "data_dir: " + dir + "\nlisteners:\n  - name: In\n    address: 127.0.0.1:2525\n    tls: {cert: " + tt.cert + ", key: " + tt.key + "}\nhttp: {address: \"\"}\n"
			c, err := Parse([]byte(yaml), "t.yaml")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), "t.yaml:5: listeners[0].tls.cert: ") || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse: %v; want t.yaml:5 listeners[0].tls.cert: ...%s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.warning == "" && len(c.Warnings) != 0:
				t.Errorf("warnings %v, want none", c.Warnings)
			case tt.warning != "" && (len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), tt.warning) ||
				!strings.HasPrefix(c.Warnings[0].Error(), "t.yaml:5: listeners[0].tls.cert: ")):
				t.Errorf("warnings %v, want one at t.yaml:5 listeners[0].tls.cert saying %q", c.Warnings, tt.warning)
			}
		})
	}
}
