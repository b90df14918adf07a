package userdb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestCheck(t *testing.T) {
	argon, err := HashArgon2id("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse([]byte("# users\nalice@example.com:" + argon + "\n\nbob:" + string(bc) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	db := &DB{}
	db.users.Store(&m)
	for _, tt := range []struct {
		user, pass string
		want       bool
	}{
		{"alice@example.com", "s3cret", true},
		{"alice@example.com", "s3cret ", false},
		{"alice@example.com", "hunter2", false},
		{"bob", "hunter2", true},
		{"bob", "s3cret", false},
		{"Bob", "hunter2", false}, // names are exact
		{"carol", "s3cret", false},
	} {
		if got := db.Check(tt.user, tt.pass); got != tt.want {
			t.Errorf("Check(%q, %q) = %v, want %v", tt.user, tt.pass, got, tt.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, line := range []string{
		"alice",
		"alice:plaintext",
		":$2b$04$abcdefghijklmnopqrstuuB1o4Xa6fC8hQ8GlOvz8Gh2b5jMS5yNi",
		"alice:$argon2id$v=19$m=65536,t=3,p=1$c2FsdA",
		"alice:$argon2id$v=18$m=65536,t=3,p=1$c2FsdA$a2V5",
		"alice:$2b$04$short",
		"alice:$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$a2V5:SCRAM-SHA-1$4096$c2FsdA==$a2V5$a2V5",
		"alice:$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$a2V5:SCRAM-SHA-256$10$c2FsdA==$a2V5$a2V5",
		"alice:$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$a2V5::a@b:extra",
		"alice:$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$a2V5\nalice:$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$a2V5",
	} {
		if _, err := Parse([]byte(line)); err == nil {
			t.Errorf("Parse(%q) succeeded", line)
		}
	}
}

func TestAuthorizedSender(t *testing.T) {
	u := &User{Name: "alice@Example.com", Senders: []string{"sales@example.com", "@alias.test"}}
	for _, tt := range []struct {
		from string
		want bool
	}{
		{"alice@example.com", true},
		{"alice@EXAMPLE.COM", true},
		{"Alice@example.com", false}, // the local part is exact (RFC 5321 2.4)
		{"sales@example.com", true},
		{"anyone@alias.test", true},
		{"anyone@sub.alias.test", false},
		{"bob@example.com", false},
		{"", false},
	} {
		if got := u.AuthorizedSender(tt.from); got != tt.want {
			t.Errorf("AuthorizedSender(%q) = %v, want %v", tt.from, got, tt.want)
		}
	}
	if (&User{Name: "alice"}).AuthorizedSender("alice") {
		t.Error("a user name that is not an address authorizes a sender")
	}
}

// SetPassword writes a line Check and SCRAM accept, keeps the other
// lines and the user's senders, and Reload picks it up; a broken file
// leaves the loaded users.
func TestSetPasswordAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("# keep me\nbob:$2b$04$abcdefghijklmnopqrstuuB1o4Xa6fC8hQ8GlOvz8Gh2b5jMS5yNi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "alice", "one"); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !db.Check("alice", "one") || db.Len() != 2 {
		t.Fatalf("after SetPassword: check %v, %d users", db.Check("alice", "one"), db.Len())
	}
	if _, err := db.SCRAM("alice"); err != nil {
		t.Errorf("SCRAM(alice): %v", err)
	}
	// bob has no SCRAM keys: a stand-in with a stable salt, as for an
	// unknown user, that no password matches.
	bob1, _ := db.SCRAM("bob")
	bob2, _ := db.SCRAM("bob")
	nobody, _ := db.SCRAM("nobody")
	if bob1.Salt != bob2.Salt || bob1.Salt == nobody.Salt || len(bob1.Salt) != saltLen {
		t.Errorf("stand-in salts: %x %x %x", bob1.Salt, bob2.Salt, nobody.Salt)
	}
	// Give alice a sender by hand, as an administrator would.
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(mustRead(t, path)), "\n"), "\n") {
		if strings.HasPrefix(l, "alice:") {
			l += ":alias@example.com"
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "alice", "two"); err != nil {
		t.Fatal(err)
	}
	if err := db.Reload(); err != nil {
		t.Fatal(err)
	}
	if db.Check("alice", "one") || !db.Check("alice", "two") {
		t.Error("Reload did not take the new password")
	}
	if u, _ := db.Lookup("alice"); len(u.Senders) != 1 || u.Senders[0] != "alias@example.com" {
		t.Errorf("senders after SetPassword: %+v", u)
	}
	if s := string(mustRead(t, path)); !strings.HasPrefix(s, "# keep me\nbob:") {
		t.Errorf("other lines not kept:\n%s", s)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	os.WriteFile(path, []byte("alice:broken\n"), 0o600)
	if err := db.Reload(); err == nil {
		t.Error("Reload of a broken file succeeded")
	}
	if !db.Check("alice", "two") {
		t.Error("a failed Reload dropped the users")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
