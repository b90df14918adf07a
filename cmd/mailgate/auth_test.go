package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/mailgate/mailgate/internal/wait"
)

const authTestConfig = `hostname: mx.test
data_dir: %s
listeners:
  - name: Submission
    interface: Management
    address: %s
    hat:
      sender_groups: []
      default_policy: ACCEPTED
    auth: {users: users, required: true, failure_delay: 0s, max_failures: 100}
delivery: {suspended: true}
http: {address: ""}
`

// passwd sets a password with the binary, as an administrator would.
func passwd(t *testing.T, users, user, pw string) {
	t.Helper()
	cmd := exec.Command(binary, "passwd", user, "--file", users)
	cmd.Stdin = strings.NewReader(pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mailgate passwd: %v\n%s", err, out)
	}
}

// tryAuth logs in over STARTTLS and returns the reply to AUTH.
func tryAuth(t *testing.T, addr, user, pw string) string {
	t.Helper()
	c := dialSMTP(t, addr)
	c.Cmd("EHLO client.test", "250")
	c.Cmd("STARTTLS", "220")
	c.StartTLS()
	c.Cmd("EHLO client.test", "250")
	r := c.Cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pw)), "")
	c.Cmd("QUIT", "221")
	return r
}

// mailgate passwd writes the users file; SIGHUP makes the running gateway
// read it again, and a broken file leaves the users it had.
func TestSIGHUPReloadsUsers(t *testing.T) {
	g := newGW(t, "5s")
	users := filepath.Join(g.dir, "users")
	passwd(t, users, "alice@example.com", "first password")
	if fi, err := os.Stat(users); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v %v", fi, err)
	}
	if err := os.WriteFile(g.config, []byte(fmt.Sprintf(authTestConfig, g.dir, g.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	if r := tryAuth(t, g.addr, "alice@example.com", "first password"); !strings.HasPrefix(r, "235 ") {
		t.Fatalf("first password: %q", r)
	}
	passwd(t, users, "alice@example.com", "second password")
	g.signal(syscall.SIGHUP)
	g.stderr.Wait(t, `mailgate: users reloaded.*users=1`)
	if r := tryAuth(t, g.addr, "alice@example.com", "first password"); !strings.HasPrefix(r, "535 ") {
		t.Errorf("old password after reload: %q", r)
	}
	if r := tryAuth(t, g.addr, "alice@example.com", "second password"); !strings.HasPrefix(r, "235 ") {
		t.Errorf("new password after reload: %q", r)
	}
	os.WriteFile(users, []byte("alice@example.com:plain-text\n"), 0o600)
	g.signal(syscall.SIGHUP)
	g.stderr.Wait(t, `mailgate: reload users`)
	if r := tryAuth(t, g.addr, "alice@example.com", "second password"); !strings.HasPrefix(r, "235 ") {
		t.Errorf("after a broken file: %q", r)
	}
	// SIGHUP rolled the mail log over: the lines are in all its files.
	var log string
	wait.Until(t, "the failed AUTH is in the mail logs", func() bool {
		files, _ := filepath.Glob(filepath.Join(g.dir, "logs/mail_logs/mail_logs.*"))
		log = ""
		for _, f := range files {
			b, _ := os.ReadFile(f)
			log += string(b)
		}
		return regexp.MustCompile(`SMTP Auth: \(ICID \d+\) failed for user: alice@example\.com using AUTH mechanism: PLAIN with profile: users`).MatchString(log)
	})
	for _, pw := range []string{"first password", "second password"} {
		if strings.Contains(log, pw) || strings.Contains(g.stderr.String(), pw) {
			t.Errorf("%q is in a log", pw)
		}
	}
	g.signal(syscall.SIGTERM)
	g.wait()
}

func TestPasswdUsage(t *testing.T) {
	for _, args := range [][]string{{"passwd"}, {"passwd", "a", "b"}, {"passwd", "a"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, &errb)
		}
	}
	// An empty password is refused.
	stdin = strings.NewReader("\n")
	defer func() { stdin = os.Stdin }()
	var out, errb bytes.Buffer
	if code := run([]string{"passwd", "a", "--file", filepath.Join(t.TempDir(), "u")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "empty password") {
		t.Errorf("empty password: exit %d\n%s", code, &errb)
	}
}
