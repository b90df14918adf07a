package smtp

import (
	"crypto/tls"
	"testing"
)

func TestTLSVersion(t *testing.T) {
	for _, tt := range []struct {
		v    uint16
		want string
	}{
		{tls.VersionTLS10, "TLSv1"},
		{tls.VersionTLS11, "TLSv1.1"},
		{tls.VersionTLS12, "TLSv1.2"},
		{tls.VersionTLS13, "TLSv1.3"},
		{0x0300, "TLS(0x0300)"}, // SSLv3
		{0x0305, "TLS(0x0305)"},
	} {
		if got := TLSVersion(tt.v); got != tt.want {
			t.Errorf("TLSVersion(%#04x) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
