package dkimsign

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MinRSABits is the smallest RSA key that signs: RFC 8301 3.2 forbids
// signing with less than 1024 bits. Below RecommendedRSABits receivers may
// treat the signature as weak (RFC 8301 recommends 2048).
const (
	MinRSABits         = 1024
	RecommendedRSABits = 2048
	maxRSABits         = 8192 // a TXT record of more does not fit most DNS servers' 4096-byte answers, nor patience
)

// ParseKey reads a PEM private key: PKCS#1 ("RSA PRIVATE KEY") or PKCS#8
// ("PRIVATE KEY", RSA or Ed25519), the forms openssl, opendkim-genkey,
// rspamadm and `mailgate dkim keygen` write.
func ParseKey(data []byte) (crypto.Signer, error) {
	var b *pem.Block
	for {
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key in the file")
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			break
		}
	}
	var key any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: %w", b.Type, ErrKey)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM block %q: %w", b.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if n := k.N.BitLen(); n < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits; DKIM needs at least %d (RFC 8301)", n, MinRSABits)
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%T: %w", key, ErrKey)
}

// GenerateKey makes a key of type "rsa" (of bits) or "ed25519", and its
// PKCS#8 PEM form.
func GenerateKey(typ string, bits int) (crypto.Signer, []byte, error) {
	var key crypto.Signer
	switch typ {
	case "rsa":
		if bits < MinRSABits || bits > maxRSABits {
			return nil, nil, fmt.Errorf("RSA keys of %d to %d bits, not %d", MinRSABits, maxRSABits, bits)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, nil, err
		}
		key = k
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		key = k
	default:
		return nil, nil, fmt.Errorf("key type %q: want rsa or ed25519", typ)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// RecordValue is the text of the key's DNS TXT record: "v=DKIM1; k=rsa;
// p=<SubjectPublicKeyInfo>" (RFC 6376 3.6.1) or "v=DKIM1; k=ed25519;
// p=<the raw 32-byte key>" (RFC 8463 4.2).
func RecordValue(key crypto.Signer) (string, error) {
	var p []byte
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", err
		}
		p = der
	case ed25519.PublicKey:
		p = pub
	default:
		return "", fmt.Errorf("%T: %w", pub, ErrKey)
	}
	return "v=DKIM1; k=" + KeyType(key) + "; p=" + base64.StdEncoding.EncodeToString(p), nil
}

// RecordName is where the key of a selector is published:
// "<selector>._domainkey.<domain>." (RFC 6376 3.6.2.1).
func RecordName(domain, selector string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".") + "."
}

// Record is the key's DNS record in zone-file form, its text cut into
// strings of at most 255 bytes (a TXT record's strings are no longer;
// verifiers join them, RFC 6376 3.6.2.2):
//
//	s1._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=MIIB..." "...IDAQAB"
func Record(domain, selector string, key crypto.Signer) (string, error) {
	v, err := RecordValue(key)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(RecordName(domain, selector))
	b.WriteString(" IN TXT")
	for len(v) > 0 {
		n := min(len(v), 255)
		b.WriteString(` "`)
		b.WriteString(v[:n]) // base64 and "v=DKIM1; k=...; p=" hold no quote or backslash
		b.WriteByte('"')
		v = v[n:]
	}
	return b.String(), nil
}
