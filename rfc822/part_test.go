package rfc822

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestParseGolden")

// TestParseGolden parses each testdata/*.eml and compares the tree, as
// dump shows it, with its .golden file.
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			msg, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := dump(msg, Parse(msg, DefaultLimits))
			golden := strings.TrimSuffix(f, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// dump shows a tree of parts one line each, checking on the way that every
// part's body is where its offset and header say in msg.
func dump(msg []byte, root *Part) string {
	var b strings.Builder
	for p := range root.All() {
		fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", p.Depth), p.Type)
		if p.Params["charset"] != "" {
			fmt.Fprintf(&b, " charset=%s", p.Params["charset"])
		}
		if p.Disposition != "" {
			fmt.Fprintf(&b, " %s", p.Disposition)
		}
		if p.Filename != "" {
			fmt.Fprintf(&b, " filename=%q", p.Filename)
		}
		fmt.Fprintf(&b, " %s at %d, header %d lines", p.Encoding, p.Offset, p.Header.Lines)
		if s, ok := p.Header.Subject(); ok {
			fmt.Fprintf(&b, " (Subject %q)", s)
		}
		if p.Defects != 0 {
			fmt.Fprintf(&b, " [%s]", p.Defects)
		}
		if len(p.Preamble) > 0 || len(p.Epilogue) > 0 {
			fmt.Fprintf(&b, " preamble %q epilogue %q", p.Preamble, p.Epilogue)
		}
		if len(p.Parts) == 0 {
			d, err := io.ReadAll(p.Decoded())
			fmt.Fprintf(&b, ": %q", d)
			if err != nil {
				fmt.Fprintf(&b, " (%v)", err)
			}
		}
		if at := p.Offset + p.Header.Len; at+len(p.Body) > len(msg) || !bytes.Equal(msg[at:at+len(p.Body)], p.Body) {
			fmt.Fprintf(&b, " BODY NOT AT ITS OFFSET")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestDeepNesting: 1,000 multiparts inside each other, and 1,000 messages
// inside each other, stop at Limits.Depth; the innermost part read holds
// the rest whole.
func TestDeepNesting(t *testing.T) {
	const n = 1000
	var mp bytes.Buffer
	for i := range n {
		fmt.Fprintf(&mp, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	mp.WriteString("Content-Type: text/plain\r\n\r\ncore\r\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&mp, "--b%d--\r\n", i)
	}
	msg822 := []byte(strings.Repeat("Content-Type: message/rfc822\r\n\r\n", n) + "Subject: core\r\n\r\ncore\r\n")

	for _, tt := range []struct {
		name string
		msg  []byte
	}{{"multipart", mp.Bytes()}, {"message/rfc822", msg822}} {
		for _, depth := range []int{1, 32} {
			root := Parse(tt.msg, Limits{Depth: depth, Parts: 5000, HeaderBytes: 1 << 10})
			deepest, parts := root, 0
			for p := range root.All() {
				parts++
				if p.Depth > deepest.Depth {
					deepest = p
				}
			}
			if deepest.Depth != depth || deepest.Defects != TooDeep || len(deepest.Parts) != 0 || parts != depth+1 {
				t.Errorf("%s, depth %d: deepest part at %d [%s] with %d parts, %d parts in all", tt.name, depth, deepest.Depth, deepest.Defects, len(deepest.Parts), parts)
			}
			if !bytes.Contains(deepest.Body, []byte("core")) {
				t.Errorf("%s, depth %d: the rest is not in the deepest part's body", tt.name, depth)
			}
		}
	}
}

// TestManyParts: a multipart of 3,000 parts is read up to Limits.Parts;
// the rest is its epilogue.
func TestManyParts(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n", i)
	}
	b.WriteString("--b--\r\n")
	for _, max := range []int{1, 2, 100, 1000} {
		root := Parse(b.Bytes(), Limits{Depth: 5, Parts: max})
		if len(root.Parts) != max-1 || root.Defects != TooManyParts {
			t.Fatalf("Parts %d: %d parts [%s]", max, len(root.Parts), root.Defects)
		}
		if max > 1 && string(root.Parts[max-2].Body) != fmt.Sprintf("part %d", max-2) {
			t.Errorf("Parts %d: last part %q", max, root.Parts[max-2].Body)
		}
		if want := fmt.Sprintf("Content-Type: text/plain\r\n\r\npart %d\r\n", max-1); !bytes.HasPrefix(root.Epilogue, []byte(want)) {
			t.Errorf("Parts %d: epilogue starts %.60q, want %q", max, root.Epilogue, want)
		}
	}
	// Unlimited.
	if root := Parse(b.Bytes(), Limits{}); len(root.Parts) != 3000 || root.Defects != 0 {
		t.Errorf("no limit: %d parts [%s]", len(root.Parts), root.Defects)
	}
}

// TestLongFilename: a file name of 100 KB is read when the header limit
// allows it, and its field is left out, the part marked, when not.
func TestLongFilename(t *testing.T) {
	name := strings.Repeat("ä", 50<<10) + ".exe" // 100 KB of UTF-8
	tests := []struct {
		name, disposition string
	}{
		{"quoted", `attachment; filename="` + name + `"`},
		{"RFC 2231", `attachment; filename*=UTF-8''` + strings.Repeat("%C3%A4", 50<<10) + ".exe"},
		{"RFC 2231 continuations", `attachment; filename*0*=UTF-8''` + strings.Repeat("%C3%A4", 25<<10) + ";\r\n filename*1*=" + strings.Repeat("%C3%A4", 25<<10) + ".exe"},
		{"RFC 2047", `attachment; filename="=?UTF-8?B?` + b64(name) + `?="`},
	}
	for _, tt := range tests {
		msg := []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: " +
			tt.disposition + "\r\n\r\nMZ\r\n--b--\r\n")
		p := Parse(msg, Limits{Depth: 5, Parts: 10, HeaderBytes: 1 << 20}).Parts[0]
		if p.Filename != name || p.Disposition != "attachment" || string(p.Body) != "MZ" || p.Defects != 0 {
			t.Errorf("%s, 1 MiB header limit: %d-byte filename %.20q... [%s], body %q", tt.name, len(p.Filename), p.Filename, p.Defects, p.Body)
		}
		p = Parse(msg, DefaultLimits).Parts[0]
		if p.Filename != "" || p.Disposition != "" || string(p.Body) != "MZ" || p.Defects != LongHeader || p.Type != "application/octet-stream" {
			t.Errorf("%s, default limits: filename %.20q, %s [%s], body %q", tt.name, p.Filename, p.Type, p.Defects, p.Body)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// BenchmarkParse walks testdata/nested.eml: 10 parts, 4 levels.
func BenchmarkParse(b *testing.B) {
	msg, err := os.ReadFile("testdata/nested.eml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if p := Parse(msg, DefaultLimits); len(p.Parts) != 4 {
			b.Fatalf("%d parts", len(p.Parts))
		}
	}
}
