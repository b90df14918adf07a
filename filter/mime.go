package filter

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/mailgate/mailgate/rfc822"
)

// text returns the decoded text of the message's body, read once: the
// text parts that are not attachments (text/plain, text/html, and a part
// without a type), their transfer encoding undone, one after the other,
// up to MaxBodyScan bytes in all. A part whose encoding is broken gives
// what decoded before the damage. Charsets are not converted: a pattern
// in ASCII finds its text in any ASCII-compatible charset.
func (e *eval) text(root *rfc822.Part) []byte {
	if e.bodyRead {
		return e.body
	}
	e.bodyRead = true
	var b bytes.Buffer
	for p := range root.All() {
		if b.Len() >= MaxBodyScan {
			break
		}
		if len(p.Parts) > 0 || !strings.HasPrefix(p.Type, "text/") || p.Disposition == "attachment" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		io.Copy(&b, io.LimitReader(p.Decoded(), int64(MaxBodyScan-b.Len())))
	}
	e.body = b.Bytes()
	return e.body
}

// detected returns the types of the leaf parts' content, sniffed, read
// once.
func (e *eval) detected(root *rfc822.Part) []string {
	if e.typesRead {
		return e.types
	}
	e.typesRead = true
	buf := make([]byte, sniffLen)
	for p := range root.All() {
		if len(p.Parts) > 0 || len(p.Body) == 0 {
			continue
		}
		n, _ := io.ReadFull(p.Decoded(), buf)
		if n == 0 {
			continue
		}
		e.types = append(e.types, Sniff(buf[:n]))
	}
	return e.types
}

// magics are the mail-relevant types http.DetectContentType does not know
// or names too broadly, by their first bytes.
var magics = []struct {
	prefix string
	typ    string
}{
	{"MZ", "application/x-msdownload"},      // PE executables (.exe, .dll, .scr) and DOS ones
	{"\x7fELF", "application/x-executable"}, // ELF
	{"\xcf\xfa\xed\xfe", "application/x-mach-binary"},
	{"\xfe\xed\xfa\xcf", "application/x-mach-binary"},
	{"\xca\xfe\xba\xbe", "application/x-mach-binary"},                 // universal binary (also Java classes)
	{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"}, // legacy Office (.doc, .xls, .ppt), .msi
	{"%PDF-", "application/pdf"},
	{"Rar!\x1a\x07", "application/x-rar-compressed"},
	{"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"},
	{"\x1f\x8b", "application/x-gzip"},
	{"{\\rtf", "text/rtf"},
}

// Sniff returns the media type of content from its first bytes, without
// parameters: the magics above, Office Open XML (a zip whose first entry is
// [Content_Types].xml or _rels/), then http.DetectContentType's answer.
func Sniff(b []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(b, []byte(m.prefix)) {
			return m.typ
		}
	}
	if bytes.HasPrefix(b, []byte("PK\x03\x04")) {
		if len(b) > 30 {
			name := b[30:]
			if bytes.HasPrefix(name, []byte("[Content_Types].xml")) || bytes.HasPrefix(name, []byte("_rels/")) {
				return "application/vnd.openxmlformats-officedocument"
			}
		}
		return "application/zip"
	}
	t := http.DetectContentType(b)
	t, _, _ = strings.Cut(t, ";")
	return t
}
