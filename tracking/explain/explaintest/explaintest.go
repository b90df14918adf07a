// Package explaintest holds the check every test that makes an explanation
// runs on it: an explanation may quote only lines the record holds.
package explaintest

import (
	"strings"
	"testing"

	"github.com/mailgate/mailgate/tracking/explain"
)

// Unquoted returns the fragments of x in double quotes that no line of the
// timeline holds. A quoted line may itself hold double quotes
// (`quarantined to "Policy"`): its pieces between them are then checked
// each, and each is in that line too.
func Unquoted(x explain.Explanation, timeline []explain.Entry) []string {
	var bad []string
	for _, s := range append(append([]string{x.Summary}, x.Why...), x.Next...) {
		parts := strings.Split(s, `"`)
		if len(parts)%2 == 0 {
			bad = append(bad, "an odd number of double quotes in: "+s)
			continue
		}
		for i := 1; i < len(parts); i += 2 {
			if !inTimeline(parts[i], timeline) {
				bad = append(bad, parts[i])
			}
		}
	}
	return bad
}

func inTimeline(frag string, tl []explain.Entry) bool {
	for _, l := range tl {
		if strings.Contains(l.Text, frag) {
			return true
		}
	}
	return false
}

// Check fails t for every fragment Unquoted finds.
func Check(t testing.TB, what string, x explain.Explanation, timeline []explain.Entry) {
	t.Helper()
	for _, f := range Unquoted(x, timeline) {
		t.Errorf("%s: the explanation quotes %q, which is in no line of the record", what, f)
	}
}
