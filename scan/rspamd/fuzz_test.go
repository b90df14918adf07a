package rspamd

import (
	"errors"
	"slices"
	"testing"

	"github.com/mailgate/mailgate/scan"
)

// FuzzParse: any reply gives a verdict or a typed error, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0}}}`,
		`{"score":-0.1,"required_score":15,"action":"no action","symbols":{"A":{"score":1,"options":["x","y"]}}}`,
		`{"score":1}`, `[]`, `{"action":"add header","score":"1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		v, err := Parse(reply, scan.Thresholds{})
		var se *scan.Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("untyped error %v", err)
		}
		if err == nil && !slices.Contains(actions, v.Action) {
			t.Fatalf("verdict %+v", v)
		}
	})
}
