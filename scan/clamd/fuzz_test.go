package clamd

import (
	"errors"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/scan"
)

// FuzzParse: any reply gives a verdict or a typed error, never a panic,
// and only "stream: OK" is clean.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"stream: OK\x00", "stream: Eicar-Test-Signature FOUND\x00",
		"INSTREAM size limit exceeded. ERROR\x00", "stream: Heuristics.Encrypted.Zip FOUND\n", "PONG\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		v, err := Parse(reply)
		var se *scan.Error
		var tb *scan.TooBigError
		if err != nil && !errors.As(err, &se) && !errors.As(err, &tb) {
			t.Fatalf("untyped error %v", err)
		}
		if err == nil && v.Class == scan.Clean && strings.TrimRight(strings.TrimRight(string(reply), "\x00"), "\r\n") != "stream: OK" {
			t.Fatalf("%q is clean", reply)
		}
		if err == nil && v.Class != scan.Clean && v.Name == "" {
			t.Fatalf("%q: %v without a name", reply, v.Class)
		}
	})
}
