package maillog

import (
	"strings"
	"unicode/utf8"
)

// Escaping. Text that reaches a log line from the network (addresses,
// Subject, Message-ID, SMTP commands, replies, error details) must not be
// able to end the line, start a forged one, or hide what follows it. The
// renderer therefore rewrites:
//
//	TAB, LF, CR               as \t, \n, \r
//	other C0 controls, DEL    as \xNN
//	bytes that are not UTF-8  as \xNN
//	C1 controls (U+0080-U+009F, incl. NEL U+0085), the line and paragraph
//	separators U+2028/U+2029, the bidi controls (Unicode's Bidi_Control:
//	U+061C, U+200E/U+200F, U+202A-U+202E, U+2066-U+2069), and U+FEFF
//	as \uNNNN
//
// The backslash itself is not escaped: the ESA writes header text with
// literal "\r\n\t" sequences (for folded Subjects) and a line must render
// back exactly as the ESA wrote it. Escaping is therefore not reversible,
// and the parser does not try: it keeps the escaped form (a line with raw
// control characters is normalised to it first), which makes escaping
// idempotent and parse/render a fixed point.

// plain[b] is true for the ASCII bytes written as they are.
var plain = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = true
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// escapedRune reports whether a valid rune other than ASCII is escaped.
func escapedRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029, r == 0x061c, r == 0x200e, r == 0x200f, r == 0xfeff:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// needsEscape reports whether appendEscaped would change s.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !plain[c] {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || escapedRune(r) {
			return true
		}
		i += size
	}
	return false
}

// Escape returns s as the mail log writes text from the network: controls,
// invalid UTF-8, line separators and bidi controls as \xNN or \uNNNN, so
// that the text can neither end the line nor hide or reorder what follows.
// Printers of such text to a terminal use it for the same reason: a Subject
// holding ESC [2J must not clear the administrator's screen. So does the
// quarantines' view of a message, in the terminal and the web page
// (quarantine.EscapeText keeps a body's lines and tabs on top of it): one
// set of rules for all the gateway shows of a message.
func Escape(s string) string { return escapeString(s) }

// escapeString returns s escaped; s itself (no allocation) when it is clean.
func escapeString(s string) string {
	if !needsEscape(s) {
		return s
	}
	return string(appendEscaped(make([]byte, 0, len(s)+16), s))
}

// appendEscaped appends s with the escaping described above.
func appendEscaped(dst []byte, s string) []byte {
	return appendEscapedExtra(dst, s, "")
}

// appendEscapedExtra is appendEscaped that also writes the ASCII bytes in
// extra as \xNN: '<' and '>' in addresses, ' ' and '=' in key=value tokens,
// so that field boundaries cannot be forged from inside a field.
func appendEscapedExtra(dst []byte, s, extra string) []byte {
	i := 0
	for i < len(s) && plain[s[i]] && (extra == "" || strings.IndexByte(extra, s[i]) < 0) {
		i++
	}
	if i == len(s) {
		return append(dst, s...)
	}
	dst = append(dst, s[:i]...)
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf && plain[c] && (extra == "" || strings.IndexByte(extra, c) < 0) {
			dst = append(dst, c)
			i++
			continue
		}
		dst, i = appendEscapedChar(dst, s, i)
	}
	return dst
}

// appendEscapedChar appends the character at s[i], which is not plain, in
// its escaped form, and returns the index after it: \t \n \r for those
// controls, \xNN for other ASCII bytes and for bytes of invalid UTF-8,
// \uNNNN for the runes escapedRune names, the rune itself otherwise.
func appendEscapedChar(dst []byte, s string, i int) ([]byte, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		switch c {
		case '\t':
			return append(dst, `\t`...), i + 1
		case '\n':
			return append(dst, `\n`...), i + 1
		case '\r':
			return append(dst, `\r`...), i + 1
		}
		return appendHexByte(dst, c), i + 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && size == 1:
		return appendHexByte(dst, c), i + 1
	case escapedRune(r):
		return appendU4(dst, r), i + size
	}
	return append(dst, s[i:i+size]...), i + size
}

func appendHexByte(dst []byte, c byte) []byte {
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u',
		hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// Characters escaped in addition to the common set, per kind of field.
const (
	addrExtra  = "<>" // inside <...>
	tokenExtra = " =" // key=value tokens of mailgate's own line
)

// Python string literals. The ESA is written in Python and logs SMTP replies
// as the repr() of a list of str: ('550', ['5.1.1 unknown user']). Those
// lists are decoded into []string and encoded back in the canonical form
// repr() produces, using the same escapes as the rest of the line.

// appendPyStr appends s as a Python literal: single quotes unless s holds a
// ' and no ", backslash and the quote escaped, controls as above.
func appendPyStr(dst []byte, s string) []byte {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	dst = append(dst, q)
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\' || c == q:
			dst = append(dst, '\\', c)
			i++
		case c < utf8.RuneSelf && plain[c]:
			dst = append(dst, c)
			i++
		default:
			dst, i = appendEscapedChar(dst, s, i)
		}
	}
	return append(dst, q)
}

// cutPyStr decodes the Python string literal at the start of s and returns
// its value and what follows it. Escapes Python knows are decoded (\xNN to
// that byte); an unknown escape is kept with its backslash, as Python does.
func cutPyStr(s string) (val, rest string, ok bool) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", s, false
	}
	q := s[0]
	// Fast path: no escapes.
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case q:
			return s[1:i], s[i+1:], true
		case '\\':
			return cutPyStrSlow(s)
		}
	}
	return "", s, false
}

func cutPyStrSlow(s string) (val, rest string, ok bool) {
	q := s[0]
	var b []byte
	for i := 1; i < len(s); {
		c := s[i]
		if c == q {
			return string(b), s[i+1:], true
		}
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			i++
			continue
		}
		e := s[i+1]
		switch e {
		case '\\', '\'', '"':
			b = append(b, e)
			i += 2
		case 't':
			b = append(b, '\t')
			i += 2
		case 'n':
			b = append(b, '\n')
			i += 2
		case 'r':
			b = append(b, '\r')
			i += 2
		case 'x':
			if v, ok := hexVal(s[i+2:], 2); ok {
				b = append(b, byte(v))
				i += 4
				continue
			}
			b = append(b, c, e)
			i += 2
		case 'u', 'U':
			n := 4
			if e == 'U' {
				n = 8
			}
			if v, ok := hexVal(s[i+2:], n); ok && utf8.ValidRune(rune(v)) {
				b = utf8.AppendRune(b, rune(v))
				i += 2 + n
				continue
			}
			b = append(b, c, e)
			i += 2
		default:
			b = append(b, c, e)
			i += 2
		}
	}
	return "", s, false
}

func hexVal(s string, n int) (uint32, bool) {
	if len(s) < n {
		return 0, false
	}
	var v uint32
	for i := 0; i < n; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint32(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
