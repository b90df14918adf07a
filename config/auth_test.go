package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestListenerAuth(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	doc := func(listener string) string {
		return fmt.Sprintf("hostname: mx.test\ndata_dir: %s\nlisteners:\n  - name: Submission\n    address: 127.0.0.1:0\n%s\n", dir, listener)
	}
	c, err := Parse([]byte(doc("    tls: implicit\n    auth: {users: users, required: true, mechanisms: [plain, SCRAM-SHA-256], authorize_sender: true, policy: ACCEPTED, max_failures: 3, failure_delay: 2s}")), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	want := &Auth{Required: true, Users: users, Mechanisms: []string{"PLAIN", "SCRAM-SHA-256"}, AuthorizeSender: true,
		Policy: "ACCEPTED", Profile: DefaultAuthProfile, MaxFailures: 3, FailureDelay: 2 * time.Second, FailureWindow: DefaultAuthFailureWindow}
	if !reflect.DeepEqual(l.Auth, want) || !l.ImplicitTLS || !l.TLS.SelfSigned {
		t.Errorf("auth %+v implicit %v tls %+v", l.Auth, l.ImplicitTLS, l.TLS)
	}
	c, err = Parse([]byte(doc("    auth: {users: users}")), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Listeners[0].Auth; a.Required || a.Policy != "RELAYED" || !reflect.DeepEqual(a.Mechanisms, AuthMechanisms) || c.Listeners[0].ImplicitTLS {
		t.Errorf("defaults: %+v", a)
	}
	for _, tt := range []struct{ listener, want string }{
		{"    auth: {required: true}", "auth.users: required"},
		{"    auth: {users: missing}", "no such file"},
		{"    auth: {users: users, mechanisms: [CRAM-MD5]}", `unknown mechanism "CRAM-MD5"`},
		{"    auth: {users: users, policy: NOPE}", `policy "NOPE" is not defined`},
		{"    auth: {users: users, max_failures: 0}", "max_failures"},
		{"    tls: starttls", "want implicit"},
	} {
		_, err := Parse([]byte(doc(tt.listener)), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.listener, err, tt.want)
		}
	}
}
