package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/internal/smtptest"
)

// writeCert writes a self-signed certificate for mx.test valid until
// notAfter, and its key, under dir.
func writeCert(t *testing.T, dir, name string, notAfter time.Time) config.TLSFiles {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"}, DNSNames: []string{"mx.test"},
		NotBefore: notAfter.AddDate(-1, 0, 0), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	f := config.TLSFiles{Cert: filepath.Join(dir, name+"-cert.pem"), Key: filepath.Join(dir, name+"-key.pem")}
	if err := os.WriteFile(f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// A running gateway warns of a certificate as its expiry approaches, not
// only at start: each check logs what is near its end.
func TestCertWatchWarns(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	soon := writeCert(t, dir, "soon", now.Add(10*24*time.Hour))
	fine := writeCert(t, dir, "fine", now.AddDate(1, 0, 0))
	out := smtptest.NewLog()
	w := watchCertificates([]config.TLSFiles{soon, fine, soon}, slog.New(slog.NewTextHandler(out, nil)), time.Millisecond)
	out.Wait(t, "mailgate: TLS certificate")
	w.close()
	log := out.String()
	if !strings.Contains(log, "file="+soon.Cert) || !strings.Contains(log, "in 10 day(s)") || strings.Contains(log, fine.Cert) {
		t.Errorf("want warnings of %s only:\n%s", soon.Cert, log)
	}
}

// check-config fails for a key that is not the certificate's and for an
// expired certificate (a warning); serve logs the warning at start and
// runs.
func TestCheckConfigCertificates(t *testing.T) {
	dir := t.TempDir()
	good := writeCert(t, dir, "good", time.Now().AddDate(1, 0, 0))
	other := writeCert(t, dir, "other", time.Now().AddDate(1, 0, 0))
	expired := writeCert(t, dir, "expired", time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		name string
		tls  config.TLSFiles
		code int
		want string
	}{
		{"matching", good, 0, ": ok (1 listener(s)"},
		{"mismatched", config.TLSFiles{Cert: good.Cert, Key: other.Key}, 1,
			":4: listeners[0].tls.cert: certificate " + good.Cert + " and key " + other.Key + ": tls: private key does not match public key"},
		{"expired", expired, 1, ":4: listeners[0].tls.cert: the certificate (CN=mx.test) expired on 2020-06-01 00:00:00 UTC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGW(t, "5s")
			cfg := fmt.Sprintf("hostname: mx.test\ndata_dir: %s\nlisteners:\n  - {name: InboundMail, interface: Management, address: %s, tls: {cert: %s, key: %s}}\nhttp: {address: \"\"}\n",
				g.dir, g.addr, tt.tls.Cert, tt.tls.Key)
			if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(binary, "check-config", g.config).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Fatalf("check-config: exit %d, want %d with %q:\n%s", code, tt.code, tt.want, out)
			}
			if tt.name == "expired" {
				// A warning: the gateway starts, and says it.
				g.start()
				if !strings.Contains(g.stderr.String(), "expired on 2020-06-01") {
					t.Errorf("serve does not warn of the expired certificate:\n%s", g.stderr)
				}
			}
		})
	}
}
