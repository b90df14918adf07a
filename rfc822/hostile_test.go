package rfc822

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/badmime"
)

// hostileMax bounds what Parse may allocate for any message, whatever its
// size, within DefaultLimits: the tree of at most 1,000 parts (about a
// kilobyte each with their parameters) and the decoded names. The message
// itself is the caller's and is never copied.
const hostileMax = 4 << 20

// hostile is the corpus and two messages of 100 MB: an attachment name of
// 100 MB on one header line, and one folded as an RFC 2231 continuation.
func hostile(t testing.TB) []badmime.Message {
	msgs := badmime.Corpus()
	for _, tt := range []struct {
		name  string
		write func(io.Writer, int) error
	}{
		{"a 100 MB attachment name on one line", badmime.WriteLongNameLine},
		{"a 100 MB attachment name, RFC 2231 continuations", badmime.WriteLongName},
	} {
		var b bytes.Buffer
		b.Grow(101 << 20)
		if err := tt.write(&b, 100<<20); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, badmime.Message{Name: tt.name, Msg: b.Bytes()})
	}
	return msgs
}

// TestHostile parses each hostile message with DefaultLimits: the tree
// keeps to the limits, says what it had to tolerate, and costs at most
// hostileMax however large the input. The trees' summaries are in
// testdata/hostile.golden.
func TestHostile(t *testing.T) {
	var got strings.Builder
	for _, m := range hostile(t) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		root := Parse(m.Msg, DefaultLimits)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc

		parts, depth, defects, names := 0, 0, Defect(0), []string{}
		for p := range root.All() {
			parts++
			depth = max(depth, p.Depth)
			defects |= p.Defects
			if p.Filename != "" {
				names = append(names, p.Filename)
			}
			if len(p.Header.Raw()) > DefaultLimits.HeaderBytes {
				t.Errorf("%s: a header of %d bytes read", m.Name, len(p.Header.Raw()))
			}
		}
		if parts > DefaultLimits.Parts || depth > DefaultLimits.Depth {
			t.Errorf("%s: %d parts, %d levels: past the limits", m.Name, parts, depth)
		}
		if alloc > hostileMax {
			t.Errorf("%s (%d bytes): Parse allocated %d bytes, more than %d", m.Name, len(m.Msg), alloc, hostileMax)
		}
		t.Logf("%s: %d bytes, %d parts, Parse allocated %d bytes", m.Name, len(m.Msg), parts, alloc)
		fmt.Fprintf(&got, "%s: %d parts, depth %d", m.Name, parts, depth)
		if defects != 0 {
			fmt.Fprintf(&got, " [%s]", defects)
		}
		slices.Sort(names)
		names = slices.Compact(names)
		for i, n := range names {
			if i == 3 {
				fmt.Fprintf(&got, " and %d more", len(names)-3)
				break
			}
			if len(n) > 40 {
				n = fmt.Sprintf("%s...(%d bytes)", n[:20], len(n))
			}
			fmt.Fprintf(&got, " %q", n)
		}
		got.WriteString("\n")
	}
	const golden = "testdata/hostile.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got.String(), want)
	}
}

// TestFilenameCharsets: a file name in a charset the standard library
// does not decode is still read (its ASCII, and ISO-8859-1 and
// Windows-1252 whole), in RFC 2047 words and RFC 2231 values, so that a
// filter on "*.exe" sees the extension; names Go reads are unchanged.
func TestFilenameCharsets(t *testing.T) {
	for _, tt := range []struct {
		header, want string
	}{
		{"Content-Disposition: attachment; filename*=x-klingon''%65vil.exe", "evil.exe"},
		{"Content-Disposition: attachment; filename*0*=x-klingon'tlh'%FF%65vil;\r\n filename*1=.exe", "\uFFFDevil.exe"},
		{"Content-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.pdf", "résumé.pdf"},
		{"Content-Disposition: attachment; filename*=\"windows-1252''r%E9sum%E9%80.pdf\"", "résumé\uFFFD.pdf"},
		{"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf", "résumé.pdf"},
		{"Content-Disposition: attachment; filename*=UTF-8''bad%FF.pdf", "bad\xff.pdf"}, // Go's reading, as before
		{"Content-Type: application/octet-stream; name*=koi8-r''%F0%65vil.exe", "\uFFFDevil.exe"},
		{"Content-Type: application/octet-stream; name=\"=?x-klingon?B?ZXZpbC5leGU=?=\"", "evil.exe"},
		{"Content-Type: application/octet-stream; name=\"=?koi8-r?Q?=F0=F2evil.exe?=\"", "\uFFFD\uFFFDevil.exe"},
		{"Content-Type: application/octet-stream; name=\"=?iso-8859-1?Q?r=E9sum=E9.pdf?=\"", "résumé.pdf"},
		{"Content-Disposition: attachment; filename*=''evil.exe", "evil.exe"}, // no charset: its ASCII
		{"Content-Disposition: attachment; foo*=x''a; filename=b.txt", "b.txt"},
	} {
		p := Parse([]byte(tt.header+"\r\n\r\nMZ"), DefaultLimits)
		if p.Filename != tt.want {
			t.Errorf("%q: filename %q, want %q", tt.header, p.Filename, tt.want)
		}
	}
}

// TestManyExtendedParams: a Content-Disposition of 64 KiB holding the
// filename parameter thousands of times, each in an unknown charset, and
// a thousand such parts: read in bounded time (the value is read again
// once per part, not once per occurrence).
func TestManyExtendedParams(t *testing.T) {
	v := "attachment" + strings.Repeat("; filename*=x-unknown''a", 2700)
	part := "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: " + v + "\r\n\r\nMZ\r\n"
	msg := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat(part, 999) + "--b--\r\n")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	root := Parse(msg, DefaultLimits)
	runtime.ReadMemStats(&after)
	if len(root.Parts) != 999 || root.Parts[0].Filename != "a" {
		t.Fatalf("%d parts, the first named %q", len(root.Parts), root.Parts[0].Filename)
	}
	// Each part's value is parsed a few times (mime.ParseMediaType, which
	// refuses the repeats, then piece by piece, then once more as
	// UTF-8): 184 MB in all, measured. Once per occurrence would be 2,700
	// times that.
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 512<<20 {
		t.Errorf("%d bytes of message: Parse allocated %d bytes", len(msg), alloc)
	}
	t.Logf("%d bytes of message: Parse allocated %d bytes", len(msg), alloc)
}
