package rfc822

import (
	"bytes"
	"encoding/base64"
	"io"
	"iter"
	"mime"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"
)

// Part is a message or one MIME part of it, and the parts inside it.
type Part struct {
	Header Header
	// Offset is where the part (its header) starts in the message Parse read.
	Offset int
	// Depth is 0 for the message, 1 for the parts of its multipart, and one
	// more for each multipart or message/rfc822 further in.
	Depth int

	// Type is the media type, lower case ("text/plain"): the Content-Type
	// field's, or the default (text/plain; message/rfc822 in a
	// multipart/digest) when there is none or it cannot be read.
	Type string
	// Params are the Content-Type parameters, names lower case, RFC 2231
	// continuations and charsets decoded; nil when there are none or they
	// cannot be read.
	Params map[string]string
	// Disposition is the Content-Disposition, lower case ("attachment",
	// "inline"), or "".
	Disposition string
	// Filename is the disposition's filename parameter, else the type's
	// name, with RFC 2231 and RFC 2047 encodings decoded; "" when neither.
	Filename string
	// Encoding is the Content-Transfer-Encoding, lower case; "7bit" when
	// there is none.
	Encoding string

	// Body is the part's body as it was sent (still transfer-encoded): for
	// a multipart, everything after its header, delimiters included.
	Body []byte
	// Parts are a multipart's parts in order, or the one message inside a
	// message/rfc822 part. A part without Parts is a leaf: its content is
	// Body (Decoded).
	Parts []*Part
	// Preamble and Epilogue are a multipart's text before the first
	// delimiter and after the closing one. Mail clients do not show them;
	// a scanner should read them all the same.
	Preamble, Epilogue []byte

	// Defects are what Parse had to tolerate or refuse in this part.
	Defects Defect
}

// Defect is a set of flags: what was wrong with a part, and how Parse took
// it.
type Defect uint8

const (
	// Unterminated: a multipart without its closing delimiter; its last
	// part ends at the end of the input.
	Unterminated Defect = 1 << iota
	// NoParts: a multipart with no delimiter in its body; it is a leaf.
	NoParts
	// NoBoundary: a multipart without a boundary parameter; it is a leaf.
	NoBoundary
	// TooDeep: a multipart or message/rfc822 nested deeper than
	// Limits.Depth; it is a leaf, its Body the whole of it.
	TooDeep
	// TooManyParts: Limits.Parts was reached inside this multipart; what
	// follows the last part read is its Epilogue.
	TooManyParts
	// LongHeader: the header passed Limits.HeaderBytes; only the fields
	// before the limit were read.
	LongHeader
)

var defectNames = []string{"unterminated", "no-parts", "no-boundary", "too-deep", "too-many-parts", "long-header"}

func (d Defect) String() string {
	var names []string
	for i, n := range defectNames {
		if d&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// Limits bound what Parse takes apart. Input beyond them is not lost: it
// stays in a Body or an Epilogue, and the part says so in its Defects. A
// zero field is no limit; what comes from the network is read with
// DefaultLimits or tighter.
type Limits struct {
	Depth       int // nesting below the message (1: its own parts only); deeper multiparts are leaves
	Parts       int // parts in all, the message included
	HeaderBytes int // of each header; fields past it are not read
}

// DefaultLimits are generous for mail and small for hostile input: mail
// clients rarely nest beyond 5 levels or write more than a few dozen parts,
// and a header of 64 KiB already holds many DKIM, ARC and Received fields.
var DefaultLimits = Limits{Depth: 32, Parts: 1000, HeaderBytes: 64 << 10}

// Parse reads msg into its tree of parts. It never fails: what it cannot
// take apart stays whole, with Defects saying why. The parts refer to msg.
func Parse(msg []byte, lim Limits) *Part {
	p := parser{lim: lim}
	return p.part(msg, 0, 0, "text/plain")
}

type parser struct {
	lim   Limits
	parts int
}

func (ps *parser) part(b []byte, off, depth int, defType string) *Part {
	ps.parts++
	h := ReadHeader(b)
	p := &Part{Offset: off, Depth: depth, Body: b[h.Len:], Type: defType, Encoding: "7bit"}
	if ps.lim.HeaderBytes > 0 && len(h.raw) > ps.lim.HeaderBytes {
		h = h.Limit(ps.lim.HeaderBytes)
		p.Defects |= LongHeader
	}
	p.Header = h
	p.readFields()

	switch {
	case strings.HasPrefix(p.Type, "multipart/"):
		if p.deeper(ps.lim) {
			ps.multipart(p, off+h.Len)
		}
	case (p.Type == "message/rfc822" || p.Type == "message/global") &&
		(p.Encoding == "7bit" || p.Encoding == "8bit" || p.Encoding == "binary"):
		if p.deeper(ps.lim) && ps.room(p) {
			p.Parts = []*Part{ps.part(p.Body, off+h.Len, depth+1, "text/plain")}
		}
	}
	return p
}

// deeper reports whether p's parts may be read, marking p TooDeep if not.
func (p *Part) deeper(lim Limits) bool {
	if lim.Depth > 0 && p.Depth >= lim.Depth {
		p.Defects |= TooDeep
		return false
	}
	return true
}

// room reports whether one more part may be read, marking p TooManyParts if
// not.
func (ps *parser) room(p *Part) bool {
	if ps.lim.Parts > 0 && ps.parts >= ps.lim.Parts {
		p.Defects |= TooManyParts
		return false
	}
	return true
}

// readFields sets the part's type, disposition, file name and encoding
// from its header. Values that cannot be read leave the defaults.
func (p *Part) readFields() {
	if v, ok := p.Header.Get("Content-Type"); ok {
		if t, params := parseMediaType(v); strings.Contains(t, "/") {
			p.Type, p.Params = t, params
			if name, ok := extendedParam(v, "name"); ok {
				if p.Params == nil {
					p.Params = map[string]string{}
				}
				p.Params["name"] = name
			}
		}
	}
	if v, ok := p.Header.Get("Content-Disposition"); ok {
		var params map[string]string
		p.Disposition, params = parseMediaType(v)
		p.Filename = params["filename"]
		if name, ok := extendedParam(v, "filename"); ok {
			p.Filename = name
		}
	}
	if p.Filename == "" {
		p.Filename = p.Params["name"]
	}
	// RFC 2047 words in a parameter are against RFC 2047 (5, 8) and written
	// by the most common mail clients. A name in a charset the standard
	// library does not know is still read, as far as it is ASCII: the
	// extension a filter looks for is.
	if strings.Contains(p.Filename, "=?") {
		if d, err := nameDecoder.DecodeHeader(p.Filename); err == nil {
			p.Filename = d
		}
	}
	if v, ok := p.Header.Get("Content-Transfer-Encoding"); ok && v != "" {
		p.Encoding = strings.ToLower(v)
	}
}

// parseMediaType reads a Content-Type or Content-Disposition value with
// mime.ParseMediaType. When that refuses it whole, for one broken or
// repeated parameter, the parameters that can be read are kept, the first
// of each name: a mail client shows the file name of
// 'attachment; filename="a.exe"; junk', and a scanner must see it too.
func parseMediaType(v string) (string, map[string]string) {
	t, params, err := mime.ParseMediaType(v)
	if err == nil {
		return t, params
	}
	pieces := strings.Split(v, ";")
	t = strings.ToLower(strings.TrimSpace(pieces[0]))
	if _, _, err := mime.ParseMediaType(t); err != nil {
		return "", nil
	}
	kept := []string{t}
	seen := map[string]bool{}
	for _, piece := range pieces[1:] {
		name, _, _ := strings.Cut(piece, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if seen[name] {
			continue
		}
		if _, _, err := mime.ParseMediaType("x/x;" + piece); err == nil {
			seen[name] = true
			kept = append(kept, piece)
		}
	}
	if _, params, err = mime.ParseMediaType(strings.Join(kept, ";")); err != nil {
		return t, nil
	}
	return t, params
}

// nameDecoder decodes the RFC 2047 words of a file name, in any charset:
// those the standard library does not know (it knows UTF-8, ISO-8859-1
// and US-ASCII) as lossy does.
var nameDecoder = mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(r) // an encoded word: bounded by its header
	if err != nil {
		return nil, err
	}
	return strings.NewReader(lossy(charset, b)), nil
}}

// lossy reads b in charset without a table for it: UTF-8 as it is (invalid
// sequences replaced), ISO-8859-1 and Windows-1252 byte by byte (the
// latter's 0x80-0x9f aside), any other charset's ASCII bytes as they are
// and the rest as U+FFFD. Names are for matching, not for display: "evil.exe"
// must read as such whatever charset its sender claimed.
func lossy(charset string, b []byte) string {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8", "us-ascii":
		return strings.ToValidUTF8(string(b), "\uFFFD")
	case "iso-8859-1", "latin1", "windows-1252", "cp1252":
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
			if 0x80 <= c && c < 0xa0 {
				r[i] = utf8.RuneError
			}
		}
		return string(r)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
		if c >= 0x80 {
			r[i] = utf8.RuneError
		}
	}
	return string(r)
}

// extendedParam reads parameter name of a Content-Type or
// Content-Disposition value when it is an RFC 2231 extended value in a
// charset other than UTF-8 and US-ASCII: mime.ParseMediaType decodes no
// other, and drops the parameter, or the first part of a continuation.
// Its percent-encoded bytes are read as lossy reads them in that charset.
// Only the parameter's first occurrence is tried, so that a value of
// thousands of them is read again once, not thousands of times.
func extendedParam(v, name string) (string, bool) {
	if !strings.Contains(v, "*") {
		return "", false
	}
	off := 0
	for piece := range strings.SplitSeq(v, ";") {
		at := off
		off += len(piece) + 1
		if at == 0 {
			continue // the type
		}
		p := strings.TrimLeft(piece, " \t\r\n")
		lead := len(piece) - len(p)
		key, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		k, ok := strings.CutSuffix(key, "*")
		if !ok {
			continue
		}
		k = strings.TrimSuffix(k, "*0")
		if !strings.EqualFold(k, name) {
			continue
		}
		// The charset: up to the first quote of the value.
		trimmed := strings.TrimLeft(val, " \t\"")
		charset, _, ok := strings.Cut(trimmed, "'")
		if !ok || strings.ContainsAny(charset, " \t\"") || strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "us-ascii") {
			return "", false // Go's to read, or not RFC 2231
		}
		// Read again as UTF-8: the value is its bytes as sent.
		cs := at + lead + len(p) - len(trimmed) // where the charset starts in v
		_, params := parseMediaType(v[:cs] + "utf-8" + v[cs+len(charset):])
		raw, ok := params[strings.ToLower(name)]
		if !ok {
			return "", false
		}
		return lossy(charset, []byte(raw)), true
	}
	return "", false
}

// multipart splits p.Body at its boundary's delimiter lines (RFC 2046
// 5.1.1). bodyOff is where p.Body starts in the message.
func (ps *parser) multipart(p *Part, bodyOff int) {
	boundary := p.Params["boundary"]
	if boundary == "" {
		p.Defects |= NoBoundary
		return
	}
	dash := []byte("--" + boundary)
	b := p.Body
	start, end, closing, ok := delimiter(b, 0, dash)
	if !ok {
		p.Defects |= NoParts
		return
	}
	p.Preamble = b[:start]
	defType := "text/plain"
	if p.Type == "multipart/digest" {
		defType = "message/rfc822"
	}
	for !closing {
		if !ps.room(p) {
			p.Epilogue = b[end:]
			return
		}
		from := end
		start, end, closing, ok = delimiter(b, from, dash)
		if !ok {
			// No closing delimiter: the last part runs to the end rather
			// than hide its content behind an error.
			p.Defects |= Unterminated
			p.Parts = append(p.Parts, ps.part(b[from:], bodyOff+from, p.Depth+1, defType))
			return
		}
		p.Parts = append(p.Parts, ps.part(b[from:start], bodyOff+from, p.Depth+1, defType))
	}
	p.Epilogue = b[end:]
}

// delimiter finds the first delimiter line of dash ("--" boundary) in b at
// or after from, which is at the start of a line. start is where the
// delimiter begins, with the line break before it, which belongs to it;
// end is after its line. A delimiter line holds dash, "--" if it closes,
// then only spaces and tabs.
func delimiter(b []byte, from int, dash []byte) (start, end int, closing, ok bool) {
	for i := from; i < len(b); {
		j := bytes.Index(b[i:], dash)
		if j < 0 {
			return 0, 0, false, false
		}
		k := i + j
		i = k + 1
		if k > from && b[k-1] != '\n' {
			continue // not at the start of a line
		}
		rest := b[k+len(dash):]
		closing = bytes.HasPrefix(rest, []byte("--"))
		if closing {
			rest = rest[2:]
		}
		line, next := lineAt(rest, 0)
		if len(bytes.TrimRight(line, " \t\r")) != 0 {
			continue // a longer boundary, or text
		}
		start = k
		if k > from {
			start = k - 1
			if start > from && b[start-1] == '\r' {
				start--
			}
		}
		return start, len(b) - len(rest) + next, closing, true
	}
	return 0, 0, false, false
}

// Decoded returns a reader of the part's body with its transfer encoding
// (base64, quoted-printable) undone. A body in another encoding reads as it
// is. Errors in the encoding surface from Read.
func (p *Part) Decoded() io.Reader {
	r := bytes.NewReader(p.Body)
	switch p.Encoding {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// All returns p and every part inside it, depth first, in the order they
// appear in the message.
func (p *Part) All() iter.Seq[*Part] {
	return func(yield func(*Part) bool) { p.walk(yield) }
}

func (p *Part) walk(yield func(*Part) bool) bool {
	if !yield(p) {
		return false
	}
	for _, c := range p.Parts {
		if !c.walk(yield) {
			return false
		}
	}
	return true
}
