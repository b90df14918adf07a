package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// ExpiryWarning is how long before a certificate expires check-config and
// the gateway warn of it: long enough to renew by hand, and shorter than
// the 30 days before expiry at which ACME clients renew, so that a
// working renewal never warns.
const ExpiryWarning = 21 * 24 * time.Hour

// LoadCertificate reads a PEM certificate (with its chain) and key,
// checks that the key is the certificate's, and returns the pair with
// its leaf parsed.
func LoadCertificate(f TLSFiles) (tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("certificate %s: %w", f.Cert, err)
		}
	}
	return pair, nil
}

// Expiry says what is wrong with a certificate's dates at now: expired,
// not yet valid, or expiring within ExpiryWarning; "" when nothing is.
func Expiry(leaf *x509.Certificate, now time.Time) string {
	const day = 24 * time.Hour
	switch left := leaf.NotAfter.Sub(now); {
	case left <= 0:
		return fmt.Sprintf("the certificate (%s) expired on %s: clients that check it refuse TLS",
			leaf.Subject, leaf.NotAfter.UTC().Format(time.DateTime+" MST"))
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("the certificate (%s) is not valid before %s",
			leaf.Subject, leaf.NotBefore.UTC().Format(time.DateTime+" MST"))
	case left < ExpiryWarning:
		return fmt.Sprintf("the certificate (%s) expires on %s, in %d day(s)",
			leaf.Subject, leaf.NotAfter.UTC().Format(time.DateTime+" MST"), int((left+day-1)/day))
	}
	return ""
}

// checkCertificate reports a key that is not the certificate's (the
// gateway could not start) and warns of its dates.
func (d *decoder) checkCertificate(n *yaml.Node, path string, f TLSFiles) {
	pair, err := LoadCertificate(f)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	if msg := Expiry(pair.Leaf, time.Now()); msg != "" {
		d.warnf(n, path, "%s", msg)
	}
}
