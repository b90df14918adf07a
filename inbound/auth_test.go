package inbound_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"
	"golang.org/x/crypto/bcrypt"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/userdb"
)

// authConfig: 127.0.0.1 is an ordinary client (ACCEPTED: the RAT
// applies), 127.0.0.2 a partner whose sessions the injection debug log
// records. AUTH_EXTRA takes the options of each test.
const authConfig = `
hostname: mx.test
data_dir: %s
listeners:
  - name: Submission
    interface: Management
    address: 127.0.0.1:0
    timeouts: {unsuccessful: %s, total: %s}
    TLS_LINE
    hat:
      sender_groups:
        - {name: PARTNERS, match: [.partner.test], policy: ACCEPTED}
      default_policy: ACCEPTED
    rat:
      - {domain: example.com, action: accept}
      - {domain: ALL, action: reject}
    auth: {users: USERS, AUTH_EXTRA}
dns: {servers: ["%s"], timeout: 2s}
logs:
  injection_debug:
    - {hosts: [.partner.test], sessions: 20}
`

const (
	alicePass = "correct horse battery"
	bobPass   = "bcrypt-only"
)

// authHarness starts a listener with AUTH for alice@example.com (argon2id
// and SCRAM keys, may also send as sales@example.com) and bob (bcrypt
// only, so no SCRAM).
func authHarness(t *testing.T, extra, tlsLine string) (*harness, string) {
	t.Helper()
	users := filepath.Join(t.TempDir(), "users")
	bc, err := bcrypt.GenerateFromPassword([]byte(bobPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(users, []byte("bob:"+string(bc)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := userdb.SetPassword(users, "alice@example.com", alicePass); err != nil {
		t.Fatal(err)
	}
	// alice's line is the last: SetPassword added it.
	b, _ := os.ReadFile(users)
	if err := os.WriteFile(users, []byte(strings.TrimSuffix(string(b), "\n")+":sales@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.NewReplacer("USERS", users, "AUTH_EXTRA", extra, "TLS_LINE", tlsLine).Replace(authConfig)
	return start(t, opts{yaml: y}), users
}

func plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// ehloTLS greets, starts TLS and greets again.
func ehloTLS(c *smtptest.Conn) string {
	c.T.Helper()
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Cmd("STARTTLS", "220")
	c.StartTLS()
	return c.Cmd("EHLO client.test", "250")
}

// Before TLS only SCRAM-SHA-256 is offered, and PLAIN or LOGIN are refused
// with RFC 4954's 538 whatever EHLO said; after STARTTLS all three are.
func TestAuthPlainOnlyUnderTLS(t *testing.T) {
	h, _ := authHarness(t, "failure_delay: 0s", "")
	c := h.dial("")
	c.Expect("220")
	ehlo := c.Cmd("EHLO client.test", "250")
	if !regexp.MustCompile(`(?m)^250[- ]AUTH SCRAM-SHA-256$`).MatchString(ehlo) || strings.Contains(ehlo, "PLAIN") {
		t.Errorf("EHLO before TLS:\n%s", ehlo)
	}
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", alicePass), "538 5.7.11")
	c.Cmd("AUTH LOGIN", "538 5.7.11")
	c.Cmd("AUTH CRAM-MD5", "504 5.5.4")
	c.Cmd("STARTTLS", "220")
	c.StartTLS()
	ehlo = c.Cmd("EHLO client.test", "250")
	if !regexp.MustCompile(`(?m)^250[- ]AUTH PLAIN LOGIN SCRAM-SHA-256$`).MatchString(ehlo) {
		t.Errorf("EHLO after TLS:\n%s", ehlo)
	}
	c.Cmd("AUTH PLAIN "+plain("nobody@example.com", alicePass), "535 5.7.8")
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", alicePass), "235 2.7.0")
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", alicePass), "503 5.5.1")
	h.lines.WaitFor(t, `^SMTP Auth: \(ICID \d+\) succeeded for user: alice@example\.com using AUTH mechanism: PLAIN with profile: users$`)
	h.lines.WaitFor(t, `^SMTP Auth: \(ICID \d+\) failed for user: nobody@example\.com using AUTH mechanism: PLAIN`)
}

// An ordinary client may not relay; the same client authenticated relays
// as the RELAYED policy says (no RAT). With authorize_sender, alice may
// send as herself and as her listed sender, not as bob.
func TestAuthRelayAndAuthorizeSender(t *testing.T) {
	h, _ := authHarness(t, "failure_delay: 0s, authorize_sender: true", "")
	c := h.dial("")
	ehloTLS(c)
	c.Cmd("MAIL FROM:<alice@example.com>", "250")
	c.Cmd("RCPT TO:<friend@elsewhere.test>", "550")
	c.Cmd("RSET", "250")
	c.Cmd("AUTH LOGIN", "334 "+b64("Username:"))
	c.Cmd(b64("alice@example.com"), "334 "+b64("Password:"))
	c.Cmd(b64(alicePass), "235")
	c.Cmd("MAIL FROM:<bob@example.com>", "553 5.7.1")
	c.Cmd("MAIL FROM:<>", "553 5.7.1")
	c.Cmd("MAIL FROM:<sales@EXAMPLE.com>", "250")
	c.Cmd("RSET", "250")
	c.Cmd("MAIL FROM:<alice@example.com> AUTH=<>", "250")
	c.Cmd("RCPT TO:<friend@elsewhere.test>", "250")
	c.Cmd("DATA", "354")
	c.Cmd("Subject: relayed\r\n\r\nhello\r\n.", "250")
	h.lines.WaitFor(t, `^MID \d+ matched all recipients for per-recipient policy DEFAULT in the outbound table$`)

	// Without authorize_sender any sender goes.
	h2, _ := authHarness(t, "failure_delay: 0s", "")
	c = h2.dial("")
	ehloTLS(c)
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", alicePass), "235")
	c.Cmd("MAIL FROM:<bob@example.com>", "250")
}

// Wrong passwords get 535 and the ESA's failed line;
// the third failure from an address ends the session with 421, and the
// address gets 421 to AUTH until the window passes. Each failure is
// delayed.
func TestAuthFailuresLimited(t *testing.T) {
	h, _ := authHarness(t, "failure_delay: 300ms, max_failures: 3", "")
	c := h.dial("")
	ehloTLS(c)
	// bob's hash is bcrypt at its least cost: the time is the delay's.
	began := time.Now()
	c.Cmd("AUTH PLAIN "+plain("bob", "wrong"), "535 5.7.8")
	c.Cmd("AUTH PLAIN "+plain("bob", "wrong again"), "535 5.7.8")
	if d := time.Since(began); d < 900*time.Millisecond {
		t.Errorf("two failures answered in %v, want at least 300ms + 600ms of delay", d)
	}
	c.Cmd("AUTH LOGIN "+b64("alice@example.com"), "334")
	c.Cmd(b64("wrong"), "421 4.7.0")
	h.lines.WaitN(t, 2, `^SMTP Auth: \(ICID \d+\) failed for user: bob using AUTH mechanism: PLAIN with profile: users$`)
	h.lines.WaitFor(t, `^SMTP Auth: \(ICID \d+\) failed for user: alice@example\.com using AUTH mechanism: LOGIN`)
	c = h.dial("")
	ehloTLS(c)
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", alicePass), "421 4.7.0")
	// Another address is not held for this one's failures.
	c = h.dial("127.0.0.3")
	ehloTLS(c)
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", alicePass), "235")
}

// Cancelling is not a failure; bad base64 is refused and is one.
func TestAuthCancelAndSyntax(t *testing.T) {
	h, _ := authHarness(t, "failure_delay: 0s, max_failures: 2", "")
	c := h.dial("")
	ehloTLS(c)
	c.Cmd("AUTH PLAIN", "334")
	c.Cmd("*", "501 5.0.0")
	c.Cmd("AUTH LOGIN", "334")
	c.Cmd("*", "501 5.0.0")
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", alicePass), "235")
	if l := h.lines.Grep(`SMTP Auth.*failed`); len(l) != 0 {
		t.Errorf("a cancel was logged as a failure: %q", l)
	}
	c = h.dial("127.0.0.3")
	ehloTLS(c)
	c.Cmd("AUTH PLAIN !!!", "501 5.5.2")
	// PLAIN's authorization identity must be the user's own.
	c.Cmd("AUTH PLAIN "+b64("bob\x00alice@example.com\x00"+alicePass), "421 4.7.0")
	c = h.dial("127.0.0.4")
	ehloTLS(c)
	c.Cmd("AUTH PLAIN "+b64("alice@example.com\x00alice@example.com\x00"+alicePass), "235")
}

// SCRAM-SHA-256 with xdg-go/scram's client, in clear text (the password
// never crosses the wire); bob's line has no SCRAM keys, so he cannot.
func TestAuthSCRAM(t *testing.T) {
	h, _ := authHarness(t, "failure_delay: 0s", "")
	for _, tt := range []struct {
		user, pass, authz string
		ok                bool
	}{
		{"alice@example.com", alicePass, "", true},
		{"alice@example.com", alicePass, "alice@example.com", true},
		{"alice@example.com", "wrong", "", false},
		{"alice@example.com", alicePass, "bob", false}, // acting as another user is not offered
		{"bob", bobPass, "", false},
		{"nobody@example.com", alicePass, "", false},
	} {
		c := h.dial("")
		c.Expect("220")
		c.Cmd("EHLO client.test", "250")
		cl, err := scram.SHA256.NewClient(tt.user, tt.pass, tt.authz)
		if err != nil {
			t.Fatal(err)
		}
		conv := cl.NewConversation()
		first, _ := conv.Step("")
		// Whoever the user, the server answers with its first message:
		// an unknown user, or one without SCRAM keys, fails only at the
		// proof, as a wrong password does (RFC 5802 9).
		r := c.Cmd("AUTH SCRAM-SHA-256 "+b64(first), "334 ")
		for strings.HasPrefix(r, "334 ") {
			ch, err := base64.StdEncoding.DecodeString(r[4:])
			if err != nil {
				t.Fatal(err)
			}
			resp, err := conv.Step(string(ch))
			if err != nil && tt.ok {
				t.Fatalf("%s: client step: %v", tt.user, err)
			}
			c.Send(b64(resp) + "\r\n")
			r = c.Reply()
		}
		if ok := strings.HasPrefix(r, "235 "); ok != tt.ok {
			t.Errorf("%s/%s/%s: %q", tt.user, tt.pass, tt.authz, r)
		}
		if tt.ok && !conv.Valid() {
			t.Errorf("the client did not verify the server's signature")
		}
	}
	h.lines.WaitFor(t, `succeeded for user: alice@example\.com using AUTH mechanism: SCRAM-SHA-256 with profile: users$`)
	h.lines.WaitFor(t, `failed for user: bob using AUTH mechanism: SCRAM-SHA-256`)
	h.lines.WaitFor(t, `failed for user: nobody@example\.com using AUTH mechanism: SCRAM-SHA-256`)
}
