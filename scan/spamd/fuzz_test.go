package spamd

import (
	"errors"
	"testing"

	"github.com/mailgate/mailgate/scan"
)

// FuzzParse: any reply gives a verdict or a typed error, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 11\r\nSpam: True ; 15.0 / 5.0\r\n\r\nGTUBE,OTHER",
		"SPAMD/1.1 0 EX_OK\r\nSpam: False ; 0.3 / 5.0\r\n\r\n",
		"SPAMD/1.0 76 Bad header line\r\n",
		"SPAMD/1.5 0 PONG\r\n",
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 99\r\nSpam: True ; 1e308 / -0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		v, err := Parse(reply, scan.Thresholds{})
		var se *scan.Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("untyped error %v", err)
		}
		if err == nil && (v.Action != "spam" && v.Action != "ham") {
			t.Fatalf("verdict %+v", v)
		}
	})
}
