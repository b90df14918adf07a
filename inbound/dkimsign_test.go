package inbound_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/internal/smtptest"
)

// signConfig: this machine (127.0.0.1) relays under RELAYED, which signs;
// the partner (127.0.0.2) is accepted under PARTNER, which does not. The
// profiles' keys are %[5]s/*.pem.
const signConfig = `
hostname: mx.test
data_dir: %[1]s
listeners:
  - name: OutboundMail
    interface: Management
    address: 127.0.0.1:0
    timeouts: {unsuccessful: %[2]s, total: %[3]s}
    hat:
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.1], policy: RELAYED}
        - {name: PARTNERS, match: [.partner.test], policy: PARTNER}
      policies:
        RELAYED: {action: relay, dkim_signing: true, max_message_size: 20MB}
        PARTNER: {action: accept}
    rat:
      - {domain: example.com, action: accept}
dns: {servers: ["%[4]s"], timeout: 2s}
dkim_signing_profiles:
  - {name: example_com, domain: example.com, selector: s1, key: %[5]s/rsa.pem}
  - {name: example_org, domain: example.org, selector: ed, key: %[5]s/ed.pem, canonicalization: relaxed/simple}
`

// signingKeys writes an RSA and an Ed25519 key into a new directory and
// returns it with the DNS records of the profiles of signConfig.
func signingKeys(t *testing.T) (string, []string) {
	dir := t.TempDir()
	var zone []string
	for _, k := range []struct{ file, typ, domain, selector string }{
		{"rsa.pem", "rsa", "example.com", "s1"}, {"ed.pem", "ed25519", "example.org", "ed"},
	} {
		key, p, err := dkimsign.GenerateKey(k.typ, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, k.file), p, 0o600); err != nil {
			t.Fatal(err)
		}
		rr, err := dkimsign.Record(k.domain, k.selector, key)
		if err != nil {
			t.Fatal(err)
		}
		zone = append(zone, rr)
	}
	return dir, zone
}

var acceptedMID = regexp.MustCompile(`Message (\d+) accepted`)

// TestDKIMSigning: a message relayed under a policy that signs is spooled
// with its DKIM-Signature first (so every delivery sends the same one),
// which dkimpy verifies over DNS; the mail log says which profile signed
// it, why another was not signed, or that it already was; a policy that
// does not sign leaves the message as it came.
func TestDKIMSigning(t *testing.T) {
	keyDir, zone := signingKeys(t)
	yaml := strings.ReplaceAll(signConfig, "%[5]s", keyDir)
	h := start(t, opts{yaml: yaml})
	dns := smtptest.StartDNS(t, zone...)
	bigBody := strings.Repeat("a line of a message larger than the session's buffer\r\n", 4000)
	tests := []struct {
		name, client, from, header, body, line string
		signatures                             int // DKIM-Signature fields in the spooled message
	}{
		{"RSA, by From", "", "bounces@elsewhere.test", "From: Alice <alice@example.com>\r\nTo: b@example.com\r\nSubject: hello\r\n",
			"Hello.\r\n", "DKIM: signing with example_com - matches alice@example.com", 1},
		{"Ed25519, folded header", "", "carol@example.org", "From: \"Carol\r\n Example\" <carol@example.org>\r\nSubject: a\r\n\tfolded  subject\r\n",
			"Hi  there \r\n\r\n", "DKIM: signing with example_org - matches carol@example.org", 1},
		{"spilled to a stage", "", "alice@example.com", "From: alice@example.com\r\nSubject: big\r\n",
			bigBody, "DKIM: signing with example_com - matches alice@example.com", 1},
		{"no profile", "", "dave@elsewhere.test", "From: dave@elsewhere.test\r\nSubject: x\r\n",
			"x\r\n", "DKIM: cannot sign - no profile matches dave@elsewhere.test", 0},
		{"already signed", "", "alice@example.com", "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=old; h=from; bh=x; b=y\r\nFrom: alice@example.com\r\n",
			"x\r\n", "DKIM: cannot sign - already signed", 1},
		{"policy that does not sign", "127.0.0.2", "alice@example.com", "From: alice@example.com\r\nSubject: x\r\n",
			"x\r\n", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.header + "\r\n" + tt.body
			c := h.dial(tt.client)
			c.Expect("220")
			c.Cmd("EHLO client.example.org", "250")
			c.Cmd("MAIL FROM:<"+tt.from+">", "250")
			c.Cmd("RCPT TO:<b@example.com>", "250")
			c.Cmd("DATA", "354")
			c.Send(msg)
			m := acceptedMID.FindStringSubmatch(c.Cmd(".", "250"))
			c.Cmd("QUIT", "221")
			if m == nil {
				t.Fatal("no MID in the reply")
			}
			mid := m[1]
			lines := h.lines.WaitLines(t, `^MID `+mid+` queued for delivery$`)
			var got []string
			for _, l := range lines {
				if strings.HasPrefix(l, "MID "+mid+" ") && !strings.Contains(l, " ICID ") {
					got = append(got, strings.TrimPrefix(l, "MID "+mid+" "))
				}
			}
			// The line comes after "ready" (and the checks'), before the
			// mail policy's.
			if n := len(got); tt.line != "" && (n < 4 || got[n-3] != tt.line || !strings.HasPrefix(got[n-4], "ready ")) {
				t.Errorf("lines of MID %s: %q, want %q after ready, before matched and queued", mid, got, tt.line)
			}
			if tt.line == "" && len(h.lines.Grep(`^MID `+mid+` DKIM`)) > 0 {
				t.Errorf("a DKIM line for a policy that does not sign: %q", got)
			}
			n, _ := strconv.ParseUint(mid, 10, 64)
			_, stored, err := h.spool.Read(n)
			if err != nil {
				t.Fatal(err)
			}
			if c := bytes.Count(stored, []byte("DKIM-Signature:")); c != tt.signatures {
				t.Errorf("%d DKIM-Signature fields, want %d", c, tt.signatures)
			}
			if !bytes.HasSuffix(stored, []byte(msg)) {
				t.Errorf("the message changed:\n%.300s", stored)
			}
			if tt.signatures == 0 || tt.name == "already signed" {
				return
			}
			// Added first, above the Received field: the signature is
			// the last thing this gateway did to the message.
			if !bytes.HasPrefix(stored, []byte("DKIM-Signature: ")) || !bytes.Contains(stored, []byte("\r\nReceived: from client.example.org")) {
				t.Errorf("stored message:\n%.600s", stored)
			}
			if ok, out := smtptest.DKIMVerify(t, dns.Addr, stored); !ok {
				t.Errorf("dkimpy: %s\n%.800s", out, stored)
			}
		})
	}
}
