// Package userdb is the user database of SMTP AUTH: a file of "user:hash"
// lines, the hash an argon2id PHC string or a bcrypt hash, read whole and
// swapped in whole on Reload (SIGHUP). It checks passwords and hands out
// the stored SCRAM-SHA-256 keys of the users that have them; it knows
// nothing of SMTP.
//
// The file, one user a line ('#' starts a comment line):
//
//	user:HASH[:SCRAM[:SENDERS]]
//
// HASH is "$argon2id$v=19$m=...,t=...,p=...$salt$key" or "$2a$"/"$2b$"/"$2y$"
// bcrypt. SCRAM, optional, is "SCRAM-SHA-256$iterations$salt$storedkey$serverkey"
// (base64, as RFC 5803 keeps them): SCRAM needs keys derived from the
// password, which neither hash can give, so only users whose line has them
// may use SCRAM-SHA-256. SENDERS, optional, is a comma-separated list of
// envelope senders the user may use besides its own name, an entry
// "@example.com" standing for the whole domain (see AuthorizedSender).
// `mailgate passwd` writes lines with HASH and SCRAM.
package userdb

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/xdg-go/scram"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/mailgate/mailgate/internal/atomicfile"
)

// User is one line of the file.
type User struct {
	Name    string
	Hash    string
	SCRAM   *scram.StoredCredentials // nil: the user cannot use SCRAM-SHA-256
	Senders []string                 // extra envelope senders; "@domain" for a domain
}

// DB is a loaded users file. Its methods are safe for concurrent use;
// Reload replaces the whole set at once.
type DB struct {
	path   string
	users  atomic.Pointer[map[string]*User]
	secret [32]byte // keys the stand-in SCRAM salts of users without keys
}

// Open reads the file at path.
func Open(path string) (*DB, error) {
	db := &DB{path: path}
	if _, err := rand.Read(db.secret[:]); err != nil {
		return nil, fmt.Errorf("userdb: %w", err)
	}
	if err := db.Reload(); err != nil {
		return nil, err
	}
	return db, nil
}

// Path is the file the database was read from.
func (db *DB) Path() string { return db.path }

// Reload reads the file again. On error the users loaded before stay.
func (db *DB) Reload() error {
	data, err := os.ReadFile(db.path)
	if err != nil {
		return fmt.Errorf("userdb: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return fmt.Errorf("userdb: %s: %w", db.path, err)
	}
	db.users.Store(&m)
	return nil
}

// Len is the number of users.
func (db *DB) Len() int { return len(*db.users.Load()) }

// Lookup returns the user of that name.
func (db *DB) Lookup(name string) (*User, bool) {
	u, ok := (*db.users.Load())[name]
	return u, ok
}

// dummyHash is checked against for unknown users, so that the time an
// answer takes does not tell whether a user exists.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashArgon2id("not a password")
	return h
})

// Check reports whether password is the user's. An unknown user costs as
// much time as a wrong password.
func (db *DB) Check(name, password string) bool {
	u, ok := db.Lookup(name)
	if !ok {
		checkHash(dummyHash(), password)
		return false
	}
	return checkHash(u.Hash, password)
}

// SCRAM returns the stored SCRAM-SHA-256 keys of a user, for the SCRAM
// server's lookup. A user without them, or unknown, gets keys no password
// matches, behind a salt that is the same at every attempt: the exchange
// then fails at its proof, as a wrong password does, and does not tell
// who exists (RFC 5802 9).
func (db *DB) SCRAM(name string) (scram.StoredCredentials, error) {
	if u, ok := db.Lookup(name); ok && u.SCRAM != nil {
		return *u.SCRAM, nil
	}
	m := hmac.New(sha256.New, db.secret[:])
	m.Write([]byte(name))
	salt := m.Sum(nil)[:saltLen]
	return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: scramIters},
		StoredKey: make([]byte, sha256.Size), ServerKey: make([]byte, sha256.Size)}, nil
}

// AuthorizedSender reports whether the user may send with from as the
// envelope sender: from is the user's own name (when that is an address)
// or one of the user's Senders. The domain is compared without case, the
// local part exactly (RFC 5321 2.4). The null sender is never authorized:
// a submission client has no reason to send a bounce.
func (u *User) AuthorizedSender(from string) bool {
	if from == "" {
		return false
	}
	if sameAddress(u.Name, from) {
		return true
	}
	_, fromDomain, ok := cutDomain(from)
	for _, s := range u.Senders {
		if strings.HasPrefix(s, "@") {
			if ok && strings.EqualFold(s[1:], fromDomain) {
				return true
			}
			continue
		}
		if sameAddress(s, from) {
			return true
		}
	}
	return false
}

func sameAddress(a, b string) bool {
	al, ad, aok := cutDomain(a)
	bl, bd, bok := cutDomain(b)
	return aok && bok && al == bl && strings.EqualFold(ad, bd)
}

func cutDomain(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// Parse reads the lines of a users file.
func Parse(data []byte) (map[string]*User, error) {
	m := map[string]*User{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		u, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, dup := m[u.Name]; dup {
			return nil, fmt.Errorf("line %d: user %q appears twice", n, u.Name)
		}
		m[u.Name] = u
	}
	return m, sc.Err()
}

func parseLine(line string) (*User, error) {
	f := strings.Split(line, ":")
	if len(f) < 2 || len(f) > 4 || f[0] == "" {
		return nil, errors.New("want user:hash[:scram[:senders]]")
	}
	u := &User{Name: f[0], Hash: f[1]}
	switch {
	case strings.HasPrefix(u.Hash, "$argon2id$"):
		if _, err := parseArgon2id(u.Hash); err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
	case strings.HasPrefix(u.Hash, "$2a$"), strings.HasPrefix(u.Hash, "$2b$"), strings.HasPrefix(u.Hash, "$2y$"):
		if _, err := bcrypt.Cost([]byte(u.Hash)); err != nil {
			return nil, fmt.Errorf("user %q: bcrypt hash: %w", u.Name, err)
		}
	default:
		return nil, fmt.Errorf("user %q: the hash is neither argon2id ($argon2id$...) nor bcrypt ($2b$...)", u.Name)
	}
	if len(f) > 2 && f[2] != "" {
		c, err := parseSCRAM(f[2])
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		u.SCRAM = c
	}
	if len(f) > 3 {
		for _, s := range strings.Split(f[3], ",") {
			if s = strings.TrimSpace(s); s != "" {
				u.Senders = append(u.Senders, s)
			}
		}
	}
	return u, nil
}

// argon2id parameters of new hashes: the second recommended option of RFC
// 9106 4 (64 MiB, 3 passes), with one lane, as a login costs ~50 ms on
// this project's two cores.
const (
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	scramIters   = 4096 // RFC 7677's minimum for SCRAM-SHA-256
)

type argonParams struct {
	m, t    uint32
	p       uint8
	salt, k []byte
}

var b64 = base64.RawStdEncoding

// parseArgon2id reads "$argon2id$v=19$m=65536,t=3,p=1$salt$key".
func parseArgon2id(s string) (argonParams, error) {
	var a argonParams
	f := strings.Split(s, "$")
	if len(f) != 6 || f[1] != "argon2id" || f[2] != "v=19" {
		return a, errors.New("argon2id hash: want $argon2id$v=19$m=...,t=...,p=...$salt$key")
	}
	var p uint32
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &a.m, &a.t, &p); err != nil || p == 0 || p > 255 || a.t == 0 {
		return a, fmt.Errorf("argon2id hash: parameters %q", f[3])
	}
	a.p = uint8(p)
	var err error
	if a.salt, err = b64.DecodeString(f[4]); err != nil {
		return a, fmt.Errorf("argon2id hash: salt: %w", err)
	}
	if a.k, err = b64.DecodeString(f[5]); err != nil || len(a.k) == 0 {
		return a, errors.New("argon2id hash: bad key")
	}
	return a, nil
}

func checkHash(hash, password string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		a, err := parseArgon2id(hash)
		if err != nil {
			return false
		}
		k := argon2.IDKey([]byte(password), a.salt, a.t, a.m, a.p, uint32(len(a.k)))
		return subtle.ConstantTimeCompare(k, a.k) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// HashArgon2id returns the PHC string of a new argon2id hash of password.
func HashArgon2id(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	k := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(k)), nil
}

// SCRAMSHA256 returns the stored SCRAM-SHA-256 keys of password, in the
// file's form.
func SCRAMSHA256(user, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	c, err := scram.SHA256.NewClient(user, password, "")
	if err != nil {
		return "", fmt.Errorf("userdb: SCRAM: %w", err)
	}
	sc, err := c.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: scramIters})
	if err != nil {
		return "", fmt.Errorf("userdb: SCRAM: %w", err)
	}
	e := base64.StdEncoding
	return "SCRAM-SHA-256$" + strconv.Itoa(scramIters) + "$" + e.EncodeToString(salt) + "$" +
		e.EncodeToString(sc.StoredKey) + "$" + e.EncodeToString(sc.ServerKey), nil
}

func parseSCRAM(s string) (*scram.StoredCredentials, error) {
	f := strings.Split(s, "$")
	if len(f) != 5 || f[0] != "SCRAM-SHA-256" {
		return nil, errors.New("SCRAM field: want SCRAM-SHA-256$iterations$salt$storedkey$serverkey")
	}
	iters, err := strconv.Atoi(f[1])
	if err != nil || iters < scramIters {
		return nil, fmt.Errorf("SCRAM field: iterations %q (at least %d)", f[1], scramIters)
	}
	e := base64.StdEncoding
	var b [3][]byte
	for i := range b {
		if b[i], err = e.DecodeString(f[2+i]); err != nil || len(b[i]) == 0 {
			return nil, errors.New("SCRAM field: bad base64")
		}
	}
	if len(b[1]) != sha256.Size || len(b[2]) != sha256.Size {
		return nil, errors.New("SCRAM field: keys are not SHA-256 sized")
	}
	return &scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(b[0]), Iters: iters},
		StoredKey: b[1], ServerKey: b[2]}, nil
}

// SetPassword writes the user's line in the file at path with new argon2id
// and SCRAM-SHA-256 hashes of password, keeping the user's senders and
// every other line; the file is created (0600) if missing and replaced
// atomically and durably (atomicfile).
func SetPassword(path, user, password string) error {
	if user == "" || strings.ContainsAny(user, ":\n\r") || strings.TrimSpace(user) != user {
		return fmt.Errorf("userdb: user name %q: no colon, line break or surrounding space", user)
	}
	h, err := HashArgon2id(password)
	if err != nil {
		return fmt.Errorf("userdb: %w", err)
	}
	sc, err := SCRAMSHA256(user, password)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("userdb: %w", err)
	}
	if _, err := Parse(old); err != nil {
		return fmt.Errorf("userdb: %s: %w", path, err)
	}
	var out bytes.Buffer
	found := false
	for _, line := range strings.SplitAfter(string(old), "\n") {
		t := strings.TrimSpace(line)
		name, rest, _ := strings.Cut(t, ":")
		if t == "" || t[0] == '#' || name != user {
			out.WriteString(line)
			continue
		}
		found = true
		senders := ""
		if f := strings.Split(rest, ":"); len(f) == 3 {
			senders = ":" + f[2]
		}
		fmt.Fprintf(&out, "%s:%s:%s%s\n", user, h, sc, senders)
	}
	if !found {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		fmt.Fprintf(&out, "%s:%s:%s\n", user, h, sc)
	}
	if err := atomicfile.WriteFile(path, out.Bytes(), 0o600); err != nil {
		return fmt.Errorf("userdb: %w", err)
	}
	return nil
}
