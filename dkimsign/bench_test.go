package dkimsign_test

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/dkimsign"
)

// BenchmarkSign: the cost of signing a 4 KiB message and a 1 MiB one with
// each key type, as a session pays it before its 250.
func BenchmarkSign(b *testing.B) {
	for _, key := range []string{"rsa2048", "ed25519"} {
		p := profile(b, "a", "example.com", "s1", key, "relaxed/relaxed")
		x, err := dkimsign.New([]*dkimsign.Profile{p})
		if err != nil {
			b.Fatal(err)
		}
		for _, size := range []int{4 << 10, 1 << 20} {
			msg := []byte(plain + strings.Repeat("a line of a message body, 40 bytes...\r\n", size/40))
			b.Run(key+"/"+map[int]string{4 << 10: "4KiB", 1 << 20: "1MiB"}[size], func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				for b.Loop() {
					sign(b, x, "", msg, 64<<10)
				}
			})
		}
	}
}
