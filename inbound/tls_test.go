package inbound

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailgate/mailgate/config"
)

// TestLoadTLSSelfSigned: a self-signed pair is generated on first start,
// in a directory made for it, the key readable by its owner only, and
// reused on the next start.
func TestLoadTLSSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	files := config.TLSFiles{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), SelfSigned: true}
	first, err := LoadTLS(files, "mx.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for path, perm := range map[string]os.FileMode{files.Key: 0o600, files.Cert: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), perm)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 2 {
		t.Errorf("%s holds %v (%v), want the key and the certificate only", dir, ents, err)
	}
	again, err := LoadTLS(files, "mx.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Certificates[0].Certificate[0], again.Certificates[0].Certificate[0]) {
		t.Error("a second start made another certificate")
	}
}
