package maillog

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
)

// TestEscapeControls: every character that could end a line, act on a
// terminal or reorder what follows it is escaped, by Unicode's own tables
// rather than the list escapedRune keeps: the C0 and C1 controls, the line
// and paragraph separators, every bidi control, the BOM.
func TestEscapeControls(t *testing.T) {
	var runes []rune
	for _, tab := range []*unicode.RangeTable{unicode.Cc, unicode.Bidi_Control, unicode.Zl, unicode.Zp} {
		for _, r16 := range tab.R16 {
			for r := rune(r16.Lo); r <= rune(r16.Hi); r += rune(r16.Stride) {
				runes = append(runes, r)
			}
		}
		for _, r32 := range tab.R32 {
			for r := rune(r32.Lo); r <= rune(r32.Hi); r += rune(r32.Stride) {
				runes = append(runes, r)
			}
		}
	}
	runes = append(runes, '\ufeff')
	for _, r := range runes {
		t.Run(fmt.Sprintf("%U", r), func(t *testing.T) {
			in := "a" + string(r) + "b"
			out := Escape(in)
			if strings.ContainsRune(out, r) || !strings.HasPrefix(out, `a\`) || !strings.HasSuffix(out, "b") {
				t.Errorf("Escape(%q) = %q", in, out)
			}
		})
	}
}
