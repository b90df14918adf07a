package rfc822

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/badmime"
)

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Subject: a\r\n b\r\nMessage-ID: <1@x>\r\n\r\nbody"))
	f.Add([]byte(" lead\r\nX :y\n\r\r\nbody"))
	f.Add([]byte("X-A: 1\r\nX-B: 2\r\n\t2b\r\nsubject: s\r\nX-A: 3\r\n\r\nbody"))
}

// FuzzHeader reads arbitrary headers. The header is a prefix of the input
// made of whole lines; its fields are what net/textproto reads from the
// same bytes when textproto can read them (folding whitespace aside: it
// collapses what RFC 5322 keeps); Limit keeps a prefix of the fields.
func FuzzHeader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		h := ReadHeader(msg)
		if h.Len > len(msg) || len(h.raw) > h.Len || !bytes.Equal(msg[:len(h.raw)], h.raw) {
			t.Fatalf("Len %d, raw %d of %d bytes", h.Len, len(h.raw), len(msg))
		}
		if h.Len > 0 && h.Len < len(msg) && msg[h.Len-1] != '\n' {
			t.Fatalf("the body starts inside a line, at %d", h.Len)
		}
		if h.Lines > bytes.Count(h.raw, []byte("\n"))+1 {
			t.Fatalf("%d lines in %q", h.Lines, h.raw)
		}
		// Reading the header alone gives the same fields.
		if again := ReadHeader(msg[:h.Len]); !bytes.Equal(again.raw, h.raw) || again.Lines != h.Lines {
			t.Fatalf("header read again: %q, want %q", again.raw, h.raw)
		}
		var fields []Field
		for f := range h.Fields() {
			if f.Name == "" || strings.ContainsAny(f.Name, ": \t\r\n") {
				t.Fatalf("field name %q", f.Name)
			}
			fields = append(fields, f)
		}
		for i, f := range fields {
			first := 0
			for first < i && !strings.EqualFold(fields[first].Name, f.Name) {
				first++
			}
			if v, ok := h.Get(f.Name); !ok || v != fields[first].Value {
				t.Fatalf("Get(%q) = %q, %v; want the first, %q", f.Name, v, ok, fields[first].Value)
			}
		}
		{
			n := len(h.raw) / 2
			c := h.Limit(n)
			if len(c.raw) > n || !bytes.HasPrefix(h.raw, c.raw) || c.Len != h.Len {
				t.Fatalf("Limit(%d): %q of %q", n, c.raw, h.raw)
			}
			i := 0
			for f := range c.Fields() {
				if i >= len(fields) || f != fields[i] {
					t.Fatalf("Limit(%d): field %d is %q, not one of the header's", n, i, f)
				}
				i++
			}
		}
		checkTextproto(t, msg, h, fields)
	})
}

// checkTextproto compares the fields with net/textproto's reading when the
// header ends with a blank line of CRLF or LF, holds no bare CR, and
// textproto accepts it.
func checkTextproto(t *testing.T, msg []byte, h Header, fields []Field) {
	if !h.Blank || bytes.IndexByte(msg[:h.Len], '\r') >= 0 && bytes.Count(msg[:h.Len], []byte("\r")) != bytes.Count(msg[:h.Len], []byte("\r\n")) {
		return
	}
	if len(fields) > 0 && h.raw[0] == ' ' || len(fields) == 0 && len(h.raw) > 0 {
		return // textproto refuses a leading continuation line
	}
	for line := range bytes.SplitSeq(h.raw, []byte("\n")) {
		if name, _, _ := bytes.Cut(line, []byte(":")); len(line) > 0 && line[0] != ' ' && line[0] != '\t' && bytes.ContainsAny(name, " \t") {
			return // textproto keeps WSP before the colon in the name
		}
	}
	tp, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg[:h.Len]))).ReadMIMEHeader()
	if err != nil && err != io.EOF {
		return
	}
	n := 0
	for _, vals := range tp {
		n += len(vals)
	}
	if n != len(fields) {
		t.Fatalf("%d fields, textproto reads %d: %q", len(fields), n, tp)
	}
	for _, f := range fields {
		v, _ := h.Get(f.Name)
		if got, want := strings.Join(strings.Fields(v), " "), strings.Join(strings.Fields(tp.Get(f.Name)), " "); got != want {
			t.Fatalf("%s: %q, textproto reads %q", f.Name, got, want)
		}
	}
}

// FuzzWalk parses arbitrary messages with small limits. Parse keeps to the
// limits, every part's body is where its offset says, parts follow each
// other inside their parent, and every body decodes to no more than it
// holds.
func FuzzWalk(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n"))
	// Past the limits below: 6 levels of nesting, 30 parts.
	f.Add([]byte(strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 6) + "x"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n" + strings.Repeat("--a\r\n\r\nx\r\n", 30) + "--a--\r\n"))
	// The hostile corpus, those small enough to be seeds.
	for _, m := range badmime.Corpus() {
		if len(m.Msg) < 16<<10 {
			f.Add(m.Msg)
		}
	}
	f.Add(badmime.Nested(8))
	f.Add(badmime.Siblings(30))
	f.Add([]byte("Content-Type: x/y; name*0*=koi8-r'ru'%F0a; name*1*=%41.exe; name*2=\"=?x?Q?b?=\"\r\n\r\n"))
	lim := Limits{Depth: 4, Parts: 20, HeaderBytes: 200}
	f.Fuzz(func(t *testing.T, msg []byte) {
		root := Parse(msg, lim)
		n := 0
		for p := range root.All() {
			n++
			if p.Depth > lim.Depth {
				t.Fatalf("part at depth %d", p.Depth)
			}
			if len(p.Header.raw) > lim.HeaderBytes {
				t.Fatalf("header of %d bytes read", len(p.Header.raw))
			}
			at := p.Offset + p.Header.Len
			if p.Offset < 0 || at+len(p.Body) > len(msg) || !bytes.Equal(msg[at:at+len(p.Body)], p.Body) {
				t.Fatalf("part at %d: body not where it says", p.Offset)
			}
			end := at
			for _, c := range p.Parts {
				if c.Depth != p.Depth+1 || c.Offset < end || c.Offset+c.Header.Len+len(c.Body) > at+len(p.Body) {
					t.Fatalf("part at %d (depth %d) not inside its parent at %d", c.Offset, c.Depth, p.Offset)
				}
				end = c.Offset + c.Header.Len + len(c.Body)
			}
			d, _ := io.ReadAll(io.LimitReader(p.Decoded(), int64(len(p.Body))+1))
			if len(d) > len(p.Body) {
				t.Fatalf("%s body of %d bytes decodes to more", p.Encoding, len(p.Body))
			}
		}
		if n > lim.Parts {
			t.Fatalf("%d parts", n)
		}
	})
}
