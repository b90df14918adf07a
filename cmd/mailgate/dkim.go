package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/policy"
)

// dkimCmd is "mailgate dkim keygen ...".
func dkimCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keygen" {
		return keygenCmd(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: mailgate dkim keygen [--type rsa|ed25519] [--bits 2048] [--out FILE] DOMAIN SELECTOR")
	return 2
}

// keygenCmd makes a DKIM key: it writes the private key (mode 0600, never
// over an existing file) and prints the DNS record to publish and the
// signing profile to add to the configuration.
func keygenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dkim keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	typ := fs.String("type", "rsa", "the key `type`: rsa or ed25519 (few receivers verify ed25519 alone yet: publish an rsa key beside it)")
	bits := fs.Int("bits", dkimsign.RecommendedRSABits, "the size of an RSA key")
	out := fs.String("out", "", "where to write the private key (default: DOMAIN.SELECTOR.pem in the working directory)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mailgate dkim keygen [--type rsa|ed25519] [--bits 2048] [--out FILE] DOMAIN SELECTOR")
		fs.PrintDefaults()
	}
	// Flags may come before or after the two names.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fs.Usage()
		return 2
	}
	domain, selector := strings.ToLower(strings.TrimSuffix(pos[0], ".")), pos[1]
	if err := policy.CheckDomain(domain); err != nil {
		fmt.Fprintf(stderr, "mailgate dkim keygen: domain %q: %v\n", pos[0], err)
		return 2
	}
	if err := policy.CheckDomain(selector); err != nil {
		fmt.Fprintf(stderr, "mailgate dkim keygen: selector %q: %v\n", selector, err)
		return 2
	}
	*typ = strings.ToLower(*typ)
	if *typ == "rsa" && *bits < dkimsign.RecommendedRSABits {
		fmt.Fprintf(stderr, "mailgate dkim keygen: warning: receivers may not trust RSA keys of less than %d bits (RFC 8301)\n",
			dkimsign.RecommendedRSABits)
	}
	key, pemKey, err := dkimsign.GenerateKey(*typ, *bits)
	if err != nil {
		fmt.Fprintf(stderr, "mailgate dkim keygen: %v\n", err)
		return 2
	}
	record, err := dkimsign.Record(domain, selector, key)
	if err != nil {
		fmt.Fprintf(stderr, "mailgate dkim keygen: %v\n", err)
		return 1
	}
	path := *out
	if path == "" {
		path = domain + "." + selector + ".pem"
	}
	if err := writeNew(path, pemKey); err != nil {
		fmt.Fprintf(stderr, "mailgate dkim keygen: %v\n", err)
		return 1
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	size := "Ed25519"
	if *typ == "rsa" {
		size = fmt.Sprintf("RSA %d bits", *bits)
	}
	fmt.Fprintf(stdout, `# Wrote the private key (%s) to %s, readable by its owner only.
#
# 1. Publish this record in the DNS zone of %s:

%s

# 2. Check it once the DNS serves it:
#    dig +short TXT %s
#
# 3. Add the signing profile to the configuration, and "dkim_signing: true"
#    to the mail flow policy whose mail it signs (RELAYED):

dkim_signing_profiles:
  - name: %s
    domain: %s
    selector: %s
    key: %s
    canonicalization: relaxed/relaxed
    users: [%s]
`, size, abs, domain, record, dkimsign.RecordName(domain, selector), strings.ReplaceAll(domain, ".", "_"), domain, selector, abs, domain)
	return 0
}

// writeNew writes a file that must not exist yet, readable by its owner
// only: a key written over by mistake cannot be got back, and the one
// published in the DNS would no longer match.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; remove it or give --out another file", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
