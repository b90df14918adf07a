package smtp

import (
	"crypto/tls"
	"fmt"
)

// TLSVersion names a TLS version as the ESA's log lines do ("TLSv1.2"),
// for the TLS lines of both directions and the Received field.
func TLSVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("TLS(0x%04x)", v)
}
