// Package rfc822 reads Internet messages (RFC 5322) and their MIME
// structure (RFC 2045-2049): the header section and its fields, and the
// tree of parts with their types, file names and decoded contents. It is
// the one reader of message content in mailgate: the listener's log lines
// and header limit, the queue listing, the bounces, and the scanners and
// filters that walk the parts. (The name is MIME's for a whole message,
// message/rfc822.)
//
// It reads a message held in memory and copies nothing: a Header and the
// Parts refer to the caller's bytes, which must not change while they are
// in use. It is tolerant, as mail software must be, and says where it had
// to be (Defect): a line is ended by LF or CRLF, a header without the blank
// line ends where its fields end, a multipart without its closing delimiter
// ends at the end of the input. Hostile input cannot make it work or
// allocate beyond bounds: a header is read in one pass without copies, and
// Parse stops at Limits.
package rfc822

import (
	"bytes"
	"iter"
	"mime"
	"strings"
)

// Header is a header section: the fields at the start of a message or of a
// MIME part, up to the blank line.
//
// The header ends at the first blank line, or before the first line that
// is neither a field ("Name: value", WSP allowed before the colon) nor the
// continuation of one (it begins with a space or a tab): that line is the
// first of the body, as Postfix and qmail take it, so that text a broken
// mailer put straight after the fields is read as the body it is, not
// hidden in the header. A line of nothing but CRs counts as blank: some
// readers end a line at a bare CR and others do not, and either way no
// field is read from it.
type Header struct {
	raw []byte // the fields as read: the section without the blank line, or less (Limit)

	// Len is the length of the header section with the blank line that
	// ends it: the body starts at msg[Len:].
	Len int
	// Lines counts the lines of the header section, the blank line not
	// included.
	Lines int
	// Blank reports that the header ended with a blank line; false when it
	// ended at a line that is not a field, or at the end of the input.
	Blank bool
	// Truncated reports that Limit left fields out.
	Truncated bool
}

// ReadHeader reads the header section at the start of msg. It does not
// look past the header's end and allocates nothing.
func ReadHeader(msg []byte) Header {
	var h Header
	i := 0
	for i < len(msg) {
		line, next := lineAt(msg, i)
		if onlyCR(line) {
			h.raw, h.Len, h.Blank = msg[:i], next, true
			return h
		}
		if line[0] != ' ' && line[0] != '\t' && !isField(line) {
			break
		}
		h.Lines++
		i = next
	}
	h.raw, h.Len = msg[:i], i
	return h
}

// lineAt returns the line of b that starts at i, without its LF or CRLF,
// and where the next one starts.
func lineAt(b []byte, i int) (line []byte, next int) {
	j := bytes.IndexByte(b[i:], '\n')
	if j < 0 {
		return b[i:], len(b)
	}
	line, next = b[i:i+j], i+j+1
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, next
}

func onlyCR(line []byte) bool {
	for _, c := range line {
		if c != '\r' {
			return false
		}
	}
	return true
}

// isField reports whether line begins a header field: a name of printable
// ASCII other than the colon, then optional WSP (RFC 5322's obsolete
// syntax, still written), then a colon.
func isField(line []byte) bool {
	for i, c := range line {
		switch {
		case c == ':':
			return i > 0
		case c == ' ' || c == '\t':
			rest := bytes.TrimLeft(line[i:], " \t")
			return i > 0 && len(rest) > 0 && rest[0] == ':'
		case c < '!' || c > '~':
			return false
		}
	}
	return false
}

// Raw returns the header's fields as they were written, folded lines and
// line endings included, without the blank line.
func (h Header) Raw() []byte { return h.raw }

// Limit returns the header with only the fields that fit whole in its first
// n bytes, line endings included: a cap that cuts between fields, never
// inside one. Truncated says whether any were left out.
func (h Header) Limit(n int) Header {
	if len(h.raw) <= n {
		return h
	}
	end := 0
	for end < len(h.raw) {
		next := fieldEnd(h.raw, end)
		if next > n {
			break
		}
		end = next
	}
	h.raw, h.Truncated = h.raw[:end], true
	return h
}

// fieldEnd returns where the field that starts at b[i] ends: after its
// last continuation line. Continuation lines before the first field, which
// belong to no field, end together as if they were one.
func fieldEnd(b []byte, i int) int {
	_, i = lineAt(b, i)
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		_, i = lineAt(b, i)
	}
	return i
}

// next splits the first field off b: its name and its value as written
// (after the colon, folded lines with their line endings), and the rest.
// Continuation lines before the first field are skipped. ok is false at
// the end.
func next(b []byte) (name, value, rest []byte, ok bool) {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		_, n := lineAt(b, 0)
		b = b[n:]
	}
	if len(b) == 0 {
		return nil, nil, nil, false
	}
	end := fieldEnd(b, 0)
	colon := bytes.IndexByte(b[:end], ':') // ReadHeader let only fields in
	return bytes.TrimRight(b[:colon], " \t"), b[colon+1 : end], b[end:], true
}

// unfold returns a field value as RFC 5322 2.2.3 unfolds it (the line
// breaks removed, the whitespace after them kept), trimmed.
func unfold(v []byte) string {
	v = bytes.TrimSpace(v)
	if bytes.IndexByte(v, '\n') < 0 {
		return string(v)
	}
	b := make([]byte, 0, len(v))
	for len(v) > 0 {
		line, n := lineAt(v, 0)
		b = append(b, line...)
		v = v[n:]
	}
	return string(b)
}

// Get returns the value of the first field called name (case-insensitive),
// unfolded and trimmed, and whether there is one. Encoded words are left as
// they are; see Subject.
func (h Header) Get(name string) (string, bool) {
	for b := h.raw; ; {
		n, v, rest, ok := next(b)
		if !ok {
			return "", false
		}
		if equalFold(n, name) {
			return unfold(v), true
		}
		b = rest
	}
}

// Values returns the values of every field called name, in order.
func (h Header) Values(name string) []string {
	var vals []string
	for f := range h.Fields() {
		if strings.EqualFold(f.Name, name) {
			vals = append(vals, f.Value)
		}
	}
	return vals
}

// Field is one header field: its name as written and its value unfolded
// and trimmed.
type Field struct {
	Name, Value string
}

// Fields returns the header's fields in order.
func (h Header) Fields() iter.Seq[Field] {
	return func(yield func(Field) bool) {
		for b := h.raw; ; {
			n, v, rest, ok := next(b)
			if !ok || !yield(Field{Name: string(n), Value: unfold(v)}) {
				return
			}
			b = rest
		}
	}
}

// Subject returns the first Subject field with its RFC 2047 encoded words
// decoded, and whether there is one.
func (h Header) Subject() (string, bool) {
	s, ok := h.Get("Subject")
	return DecodeWords(s), ok
}

// MessageID returns the value of the first Message-ID field as written
// (trimmed), or "".
func (h Header) MessageID() string {
	id, _ := h.Get("Message-ID")
	return id
}

var wordDecoder mime.WordDecoder

// DecodeWords decodes the RFC 2047 encoded words of s so that it reads as
// its recipient will read it. Text in a charset the standard library does
// not know (it knows UTF-8, ISO-8859-1 and US-ASCII) is returned as it
// came, encoded words and all.
func DecodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// equalFold compares an ASCII field name with name, ignoring case.
func equalFold(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], name[i]
		if c != d && lower(c) != lower(d) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
