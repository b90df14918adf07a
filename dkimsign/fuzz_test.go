package dkimsign_test

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/dkimsign"
)

// tagOf returns a tag of a DKIM-Signature field, its folding removed.
func tagOf(field, name string) string {
	v := strings.Join(strings.Fields(field), "")
	for part := range strings.SplitSeq(v, ";") {
		if k, val, ok := strings.Cut(part, "="); ok && k == name {
			return val
		}
	}
	return ""
}

// FuzzSign: any message, cut into writes anywhere, is signed or refused
// without a panic or a hang, and the same way however it is cut: the same
// outcome, address, signed fields and body hash.
func FuzzSign(f *testing.F) {
	for _, s := range []string{plain, folded, "From: a@example.com\r\n", "\r\n\r\n", "From: <a@example.com>\n\nbody\n",
		"DKIM-Signature: d=example.com\r\nFrom: a@example.com\r\n\r\nx", "From: =?x?q?a?= <@example.com>\r\n\r\n",
		"From: a@example.com\r\nX: y\r\n\r", "From: \"a\r\n\r\n b\" <c@example.com>\r\n\r\n"} {
		f.Add([]byte(s), uint16(1), "b@example.org")
	}
	p := profile(f, "a", "example.com", "s1", "ed25519", "relaxed/relaxed", "example.com", ".example.com", "b@example.org")
	x, err := dkimsign.New([]*dkimsign.Profile{p})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte, chunk uint16, envFrom string) {
		whole, _ := sign(t, x, envFrom, msg, len(msg)+1)
		cut, _ := sign(t, x, envFrom, msg, int(chunk%512)+1)
		if whole.Outcome != cut.Outcome || whole.Addr != cut.Addr || whole.Profile != cut.Profile {
			t.Fatalf("whole: %q, in pieces of %d: %q", whole.Text(), chunk%512+1, cut.Text())
		}
		for _, tag := range []string{"h", "bh", "d", "s", "c"} {
			if a, b := tagOf(whole.Field, tag), tagOf(cut.Field, tag); a != b {
				t.Fatalf("%s= whole %q, in pieces %q", tag, a, b)
			}
		}
	})
}
