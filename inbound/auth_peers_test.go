package inbound_test

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/wait"
)

// smtplibScript logs in with Python's smtplib (STARTTLS, or SMTP_SSL on
// an implicit-TLS listener) and relays one message.
const smtplibScript = `
import smtplib, ssl, sys
host, port, mode, mech, user, pw = sys.argv[1:7]
ctx = ssl._create_unverified_context()
if mode == "ssl":
    s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
else:
    s = smtplib.SMTP(host, int(port), timeout=20)
    s.starttls(context=ctx)
s.ehlo("client.test")
s.user, s.password = user, pw
try:
    code, _ = s.auth(mech, {"PLAIN": s.auth_plain, "LOGIN": s.auth_login}[mech], initial_response_ok=(mech == "PLAIN"))
except smtplib.SMTPAuthenticationError as e:
    print("auth failed", e.smtp_code)
    sys.exit(3)
print("auth", code)
print("refused", s.sendmail(user, ["friend@elsewhere.test"], "Subject: smtplib\r\n\r\nhello\r\n"))
s.quit()
`

func lookTool(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is not installed (the README's test command installs it): %v", tool, err)
	}
	return p
}

func TestAuthPythonSmtplib(t *testing.T) {
	py := lookTool(t, "python3")
	starttls, _ := authHarness(t, "failure_delay: 0s", "")
	implicit, _ := authHarness(t, "failure_delay: 0s", "tls: implicit")
	for _, tt := range []struct {
		name     string
		h        *harness
		mode     string
		mech     string
		pass     string
		wantExit int
	}{
		{"starttls/PLAIN", starttls, "starttls", "PLAIN", alicePass, 0},
		{"starttls/LOGIN", starttls, "starttls", "LOGIN", alicePass, 0},
		{"starttls/wrong", starttls, "starttls", "PLAIN", "wrong", 3},
		{"implicit/PLAIN", implicit, "ssl", "PLAIN", alicePass, 0},
		{"implicit/LOGIN", implicit, "ssl", "LOGIN", alicePass, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			host, port, _ := strings.Cut(tt.h.addr, ":")
			out, err := exec.Command(py, "-c", smtplibScript, host, port, tt.mode, tt.mech, "alice@example.com", tt.pass).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.wantExit, out)
			}
			if code == 0 && !strings.Contains(string(out), "auth 235\nrefused {}") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
	implicit.lines.WaitFor(t, `ICID \d+ TLS success protocol TLSv1\.3`)
	implicit.lines.WaitN(t, 2, `^MID \d+ matched all recipients for per-recipient policy DEFAULT in the outbound table$`)
}

func TestAuthSwaks(t *testing.T) {
	swaks := lookTool(t, "swaks")
	h, _ := authHarness(t, "failure_delay: 0s", "")
	host, port, _ := strings.Cut(h.addr, ":")
	for _, tt := range []struct {
		mech, pass string
		ok         bool
	}{
		{"PLAIN", alicePass, true},
		{"LOGIN", alicePass, true},
		{"LOGIN", "wrong", false},
	} {
		out, err := exec.Command(swaks, "--server", host, "--port", port, "--tls", "--helo", "client.test",
			"--auth", tt.mech, "--auth-user", "alice@example.com", "--auth-password", tt.pass,
			"--from", "alice@example.com", "--to", "friend@elsewhere.test", "--timeout", "20").CombinedOutput()
		if (err == nil) != tt.ok {
			t.Errorf("swaks --auth %s, password %q: err %v\n%s", tt.mech, tt.pass, err, out)
		}
	}
	h.lines.WaitN(t, 2, `succeeded for user: alice@example\.com`)
}

// A submission listener (auth required) refuses MAIL before AUTH, with
// the ESA's line.
func TestAuthRequired(t *testing.T) {
	h, _ := authHarness(t, "failure_delay: 0s, required: true", "")
	c := h.dial("")
	ehloTLS(c)
	c.Cmd("MAIL FROM:<alice@example.com>", "530 5.7.0")
	h.lines.WaitFor(t, `^SMTP Auth: \(ICID \d+\) was required but remote host did not initiate it$`)
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", alicePass), "235")
	c.Cmd("MAIL FROM:<alice@example.com>", "250")
}

// The password, in clear or in base64, is in no log: neither the mail
// log's lines nor the injection debug transcript, which shows "*****" for
// the AUTH argument and each SASL response.
func TestAuthSecretsNotLogged(t *testing.T) {
	h, _ := authHarness(t, "failure_delay: 0s", "")
	c := h.dial("127.0.0.2") // a partner: its sessions are in the debug log
	ehloTLS(c)
	c.Cmd("AUTH PLAIN "+plain("alice@example.com", "wrong-"+alicePass), "535")
	c.Cmd("AUTH LOGIN "+b64("alice@example.com"), "334")
	c.Cmd(b64(alicePass), "235")
	c.Cmd("QUIT", "221")
	h.lines.WaitFor(t, `^ICID \d+ close$`)
	debugPath := h.cfg.Logs.InjectionDebug[0].Path
	var debug string
	wait.Until(t, "the debug log has the QUIT", func() bool {
		b, _ := os.ReadFile(debugPath)
		debug = string(b)
		return strings.Contains(debug, "QUIT")
	})
	for _, want := range []string{"AUTH PLAIN *****", "AUTH LOGIN *****", "'*****'"} {
		if !strings.Contains(debug, want) {
			t.Errorf("debug log lacks %q:\n%s", want, debug)
		}
	}
	secrets := []string{alicePass, b64(alicePass), plain("alice@example.com", "wrong-"+alicePass),
		base64.StdEncoding.EncodeToString([]byte("\x00alice@example.com\x00wrong-" + alicePass))}
	all := debug + strings.Join(h.lines.Snapshot(), "\n")
	filepath.Walk(filepath.Dir(filepath.Dir(debugPath)), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.Contains(p, "log") {
			b, _ := os.ReadFile(p)
			all += string(b)
		}
		return nil
	})
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("%q is in a log:\n%s", s, all)
		}
	}
}
