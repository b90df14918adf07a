package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
)

// keygen runs "mailgate dkim keygen" and returns the DNS record and the
// profile it printed.
func keygen(t *testing.T, args ...string) (record, profile string) {
	t.Helper()
	out, errOut, code := mailgate(t, append([]string{"dkim", "keygen"}, args...)...)
	if code != 0 {
		t.Fatalf("keygen %v: exit %d: %s", args, code, errOut)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "._domainkey.") && strings.Contains(l, " IN TXT ") && !strings.HasPrefix(l, "#") {
			record = l
		}
	}
	_, profile, ok := strings.Cut(out, "dkim_signing_profiles:\n")
	if record == "" || !ok {
		t.Fatalf("keygen printed no record or profile:\n%s", out)
	}
	return record, profile
}

// TestKeygen: the key file is private and never written over; the record
// is one a DNS server loads, with the key of the file.
func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		typ, keyType string
		strings      int
	}{{"rsa", "rsa", 2}, {"ed25519", "ed25519", 1}} {
		out := filepath.Join(dir, tt.typ+".pem")
		record, profile := keygen(t, "--type", tt.typ, "--out", out, "Example.COM.", "s2026")
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", tt.typ, fi.Mode().Perm())
		}
		data, _ := os.ReadFile(out)
		key, err := dkimsign.ParseKey(data)
		if err != nil || dkimsign.KeyType(key) != tt.keyType {
			t.Fatalf("%s: the key file: %v", tt.typ, err)
		}
		rr, err := dns.NewRR(record)
		if err != nil {
			t.Fatalf("%s: %q: %v", tt.typ, record, err)
		}
		txt := rr.(*dns.TXT)
		want, _ := dkimsign.RecordValue(key)
		if txt.Hdr.Name != "s2026._domainkey.example.com." || len(txt.Txt) != tt.strings || strings.Join(txt.Txt, "") != want {
			t.Errorf("%s: record %q, want the key's %q in %d strings", tt.typ, record, want, tt.strings)
		}
		if !strings.Contains(profile, "key: "+out+"\n") || !strings.Contains(profile, "domain: example.com\n") {
			t.Errorf("%s: profile:\n%s", tt.typ, profile)
		}
		// Never over a key that may be published.
		if _, errOut, code := mailgate(t, "dkim", "keygen", "--out", out, "example.com", "s2026"); code != 1 || !strings.Contains(errOut, "exists") {
			t.Errorf("keygen over an existing key: exit %d: %s", code, errOut)
		}
		if after, _ := os.ReadFile(out); !bytes.Equal(after, data) {
			t.Error("the existing key changed")
		}
	}
	for _, args := range [][]string{
		{"example.com"}, {"--type", "dsa", "example.com", "s1"}, {"--bits", "512", "example.com", "s1"}, {"exa mple.com", "s1"},
		{"example.com", "s_1 x"},
	} {
		if _, errOut, code := mailgate(t, append([]string{"dkim", "keygen", "--out", filepath.Join(dir, "x.pem")}, args...)...); code != 2 {
			t.Errorf("keygen %q: exit %d, want 2: %s", args, code, errOut)
		}
	}
}

// TestDKIMSignedDelivery: keys made by keygen, their records served by the
// tests' DNS and their printed profiles pasted into the configuration;
// mail relayed through the gateway reaches Postfix's smtp-sink signed, and
// dkimpy verifies what smtp-sink received, for an RSA domain and an
// Ed25519 one. A sender of neither is delivered unsigned, and the mail log
// says why.
func TestDKIMSignedDelivery(t *testing.T) {
	smtptest.NeedPythonDKIM(t)
	keys := t.TempDir()
	rsaRR, rsaProfile := keygen(t, "--out", filepath.Join(keys, "com.pem"), "example.com", "s1")
	edRR, edProfile := keygen(t, "--type", "ed25519", "--out", filepath.Join(keys, "org.pem"), "example.org", "ed1")
	zone := smtptest.StartDNS(t, rsaRR, edRR)

	// smtp-sink writes as nobody: not under t.TempDir's private parent.
	dump, err := os.MkdirTemp("", "smtp-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dump) })
	if err := os.Chmod(dump, 0o777); err != nil {
		t.Fatal(err)
	}
	sink := smtptest.Sink(t, "127.0.0.1:0", "-d", filepath.Join(dump, "%M."))
	g := relayGW(t, sink, "dkim_signing_profiles:\n"+rsaProfile+edProfile)
	cfg, _ := os.ReadFile(g.config)
	group := "        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}\n"
	cfg = bytes.Replace(cfg, []byte(group), []byte(group+"      policies:\n        RELAYED: {action: relay, dkim_signing: true}\n"), 1)
	if err := os.WriteFile(g.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()

	msgs := []struct{ from, header, line string }{
		{"alice@example.com", "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: signed\r\n\twith RSA\r\n",
			`MID 1 DKIM: signing with example_com - matches alice@example\.com`},
		{"carol@example.org", "From: carol@example.org\r\nTo: bob@example.net\r\nSubject: signed with Ed25519\r\n",
			`MID 2 DKIM: signing with example_org - matches carol@example\.org`},
		{"dave@elsewhere.test", "From: dave@elsewhere.test\r\nTo: bob@example.net\r\nSubject: not signed\r\n",
			`MID 3 DKIM: cannot sign - no profile matches dave@elsewhere\.test`},
	}
	for i, m := range msgs {
		body := m.header + fmt.Sprintf("X-Token: t%d\r\n\r\nmessage %d\r\n.. a dot-stuffed line\r\n", i, i)
		if _, err := sendRawEnvelope(g.addr, m.from, "bob@example.net", body); err != nil {
			t.Fatal(err)
		}
	}
	log := g.waitLog(`(?s)(Message finished MID \d+ done.*){3}`)
	for _, m := range msgs {
		if !regexp.MustCompile(`Info: ` + m.line + `\n`).MatchString(log) {
			t.Errorf("no line %s in:\n%s", m.line, log)
		}
	}
	var files []string
	wait.Until(t, "smtp-sink wrote three messages", func() bool {
		files, _ = filepath.Glob(filepath.Join(dump, "*"))
		return len(files) == 3
	})
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// smtp-sink writes lines with LF: the message on the wire had CRLF.
		msg := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
		signed := bytes.Contains(msg, []byte("\r\nDKIM-Signature: "))
		ok, out := smtptest.DKIMVerify(t, zone.Addr, msg)
		switch {
		case bytes.Contains(msg, []byte("X-Token: t2")):
			if signed {
				t.Errorf("the message of no profile was signed:\n%s", data)
			}
		case !ok:
			t.Errorf("dkimpy: %s\n%s", out, data)
		}
	}
}
