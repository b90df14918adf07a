// Package badmime generates hostile messages for the tests of everything
// that reads message content (rfc822's MIME walk, the content filters, the
// binary over SMTP): malformed MIME, deep and wide trees, huge names, bad
// encodings, unknown charsets, NUL bytes. The large ones are written to an
// io.Writer as they are generated, so that a test can stream 200 MB over
// SMTP without holding it. It imports nothing of the project.
//
// Each message carries the same three baits where its structure lets a
// reader find them: the text "wire transfer now" in a text part, an
// attachment named "evil.exe" and content starting "MZ" (a PE
// executable). Want says which of them a reader within rfc822's default
// limits (32 levels, 1,000 parts, 64 KiB per header) finds.
package badmime

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// The baits.
const (
	Text = "wire transfer now"
	Name = "evil.exe"
)

// Exe is the start of a PE executable: what sniffing calls
// application/x-msdownload.
var Exe = "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + strings.Repeat("\x00", 48) + "This program cannot be run in DOS mode.\r\n$" // "\r\r\n" in a real one: a bare CR, which SMTP refuses

// Found is which baits a reader finds.
type Found struct {
	Text, Name, Exe bool
}

// Message is one hostile message.
type Message struct {
	Name string
	Msg  []byte
	Want Found
}

const head = "From: Mallory <m@pass.test>\r\nTo: bob@example.net\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"

// b64 is s base64-encoded in lines of 76.
func b64(s string) string {
	e := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(e) > 76 {
		b.WriteString(e[:76] + "\r\n")
		e = e[76:]
	}
	b.WriteString(e)
	return b.String()
}

// exePart is an attachment part of Exe called name.
func exePart(name string) string {
	return "Content-Type: application/octet-stream; name=\"" + name + "\"\r\nContent-Disposition: attachment; filename=\"" + name +
		"\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(Exe) + "\r\n"
}

const textPart = "Content-Type: text/plain; charset=us-ascii\r\n\r\nPlease, " + Text + ".\r\n"

// Corpus returns the hostile messages small enough to hold (up to a few
// MB): each of the malformations alone, baits around it.
func Corpus() []Message {
	return []Message{
		{"unterminated boundary", []byte(fmt.Sprintf(head, "unterminated") + "Content-Type: multipart/mixed; boundary=\"never-closed\"\r\n\r\n" +
			"--never-closed\r\n" + textPart + "--never-closed\r\n" + exePart(Name) + "--never-closed-\r\nnot a delimiter\r\n"), Found{true, true, true}},
		// A multipart without its boundary parameter is a leaf of a type
		// that is not text: nothing in it is read.
		{"boundary never declared", []byte(fmt.Sprintf(head, "no boundary") + "Content-Type: multipart/mixed\r\n\r\n" +
			"--b\r\n" + textPart + "--b\r\n" + exePart(Name) + "--b--\r\n"), Found{}},
		{"boundary declared, never used", []byte(fmt.Sprintf(head, "no parts") + "Content-Type: multipart/mixed; boundary=declared\r\n\r\n" +
			"--other\r\n" + textPart + "--other\r\n" + exePart(Name) + "--other--\r\n"), Found{}},
		{"1,000 nested multiparts", Nested(1000), Found{}},
		{"10,000 nested multiparts", Nested(10000), Found{}},
		{"100,000 sibling parts", Siblings(100000), Found{Text: true}},
		{"invalid base64", []byte(fmt.Sprintf(head, "bad base64") + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64("Please, "+Text+".") + "\r\n!!!*** not base64 ***\r\n" +
			"--b\r\nContent-Type: application/octet-stream; name=" + Name + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(Exe) + "\r\n%%%%\r\n" +
			"--b\r\nContent-Type: application/octet-stream; name=nothing.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%%" + b64(Exe) + "\r\n--b--\r\n"), Found{true, true, true}},
		{"invalid quoted-printable", []byte(fmt.Sprintf(head, "bad qp") + "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"=ZZ=G=\r\n=0 wire=20transfer now =XX=\r\n="), Found{Text: true}},
		{"unknown encoding", []byte(fmt.Sprintf(head, "x-uuencode") + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-rot13\r\n\r\n" + Text + "\r\n" +
			"--b\r\nContent-Type: application/octet-stream; name=" + Name + "\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n" + Exe + "\r\n--b--\r\n"), Found{true, true, true}},
		// Charsets nobody knows: the names are still read, their ASCII
		// at least.
		{"unknown charsets", []byte(fmt.Sprintf(head, "=?x-klingon?Q?unknown_charset?=") + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n" + Text + "\r\n" +
			"--b\r\nContent-Type: application/octet-stream; name=\"=?x-klingon?B?" + base64.StdEncoding.EncodeToString([]byte(Name)) + "?=\"\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + b64(Exe) + "\r\n" +
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=x-klingon''%65vil.exe\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + b64(Exe) + "\r\n--b--\r\n"), Found{true, true, true}},
		{"NUL bytes", []byte(fmt.Sprintf(head, "nul\x00subject") + "X-Nul: a\x00b\r\nContent-Type: multipart/mixed; boundary=\"b\x00\"\r\n\r\n" +
			"--b\x00\r\nContent-Type: text/plain\r\n\r\n\x00\x00" + Text + "\x00\r\n" +
			"--b\x00\r\nContent-Type: application/octet-stream; name=\"x\x00" + Name + "\"\r\n\r\n" + Exe + "\r\n--b\x00--\r\n"), Found{true, true, true}},
		// Every delimiter line is the outermost multipart's too: it reads
		// as 100 forwarded messages side by side, the attachment last.
		{"message/rfc822 loop", Loop(100), Found{Name: true, Exe: true}},
		{"a 1 MB attachment name", LongName(1 << 20), Found{Text: true, Exe: true}},
		{"a 60 KB attachment name", LongName(60 << 10), Found{true, true, true}},
	}
}

// Nested is a message of n multiparts, each the only part of the one
// before, the baits at the bottom.
func Nested(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, head, fmt.Sprintf("%d nested", n))
	for i := range n {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString(exePart(Name))
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return []byte(b.String())
}

// Siblings is a multipart of n parts side by side: the text first, the
// executable last.
func Siblings(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, head, fmt.Sprintf("%d siblings", n))
	b.WriteString("Content-Type: multipart/mixed; boundary=w\r\n\r\n--w\r\n" + textPart)
	for i := range n - 2 {
		fmt.Fprintf(&b, "--w\r\nContent-Type: text/plain; name=\"p%d.txt\"\r\n\r\np%d\r\n", i, i)
	}
	b.WriteString("--w\r\n" + exePart(Name) + "--w--\r\n")
	return []byte(b.String())
}

// Loop is n forwarded messages each inside the one before, every one a
// multipart with the same boundary as its parent's: each inner delimiter
// line is also one of every outer multipart's.
func Loop(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, head, "loop")
	for range n {
		b.WriteString("Content-Type: multipart/mixed; boundary=loop\r\n\r\n--loop\r\nContent-Type: message/rfc822\r\n\r\n" +
			"Subject: again\r\n")
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=loop\r\n\r\n--loop\r\n" + exePart(Name) + "--loop--\r\n")
	return []byte(b.String())
}

// LongName is a message whose attachment name is n bytes long (n at least
// 8), in a Content-Disposition folded as an RFC 2231 continuation of lines
// of 900 bytes, the text before it.
func LongName(n int) []byte {
	var b strings.Builder
	WriteLongName(&b, n)
	return []byte(b.String())
}

// WriteLongName writes LongName(n) to w.
func WriteLongName(w io.Writer, n int) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, head, "long name")
	bw.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + textPart +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment")
	writeContinuation(bw, n)
	bw.WriteString("\r\n\r\n" + b64(Exe) + "\r\n--b--\r\n")
	return bw.err
}

// WriteLongNameTop writes a message of one part, the executable, whose
// name of n bytes is folded as an RFC 2231 continuation in the message's
// own header, after its other fields.
func WriteLongNameTop(w io.Writer, n int) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, head, "long name top")
	bw.WriteString("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment")
	writeContinuation(bw, n)
	bw.WriteString("\r\n\r\n" + b64(Exe) + "\r\n")
	return bw.err
}

// writeContinuation writes the parameter filename of n bytes ending in
// Name as an RFC 2231 continuation, each piece on a line of its own.
func writeContinuation(bw *errWriter, n int) {
	const line = 900
	rest := n
	for i := 0; rest > 0 && bw.err == nil; i++ {
		k := min(line, rest)
		seg := strings.Repeat("a", k)
		if rest == k { // the last: it ends the name
			seg = seg[:max(0, k-len(Name))] + Name
		}
		fmt.Fprintf(bw, ";\r\n filename*%d=%s", i, seg)
		rest -= k
	}
}

// WriteLongNameLine writes a message whose attachment name of n bytes is
// on one header line.
func WriteLongNameLine(w io.Writer, n int) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, head, "long name line")
	bw.WriteString("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"")
	chunk := strings.Repeat("a", 64<<10)
	for rest := n - len(Name); rest > 0 && bw.err == nil; rest -= len(chunk) {
		bw.WriteString(chunk[:min(rest, len(chunk))])
	}
	bw.WriteString(Name + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(Exe) + "\r\n")
	return bw.err
}

// WriteBigBody writes a message of a text part with the text at its end,
// after n bytes of text lines, then the executable.
func WriteBigBody(w io.Writer, n int64) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, head, "big body")
	bw.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n")
	lines := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 800) // 64,000 bytes
	for rest := n; rest > 0 && bw.err == nil; rest -= int64(len(lines)) {
		bw.WriteString(lines[:min(rest, int64(len(lines)))])
	}
	bw.WriteString("\r\n" + Text + "\r\n--b\r\n" + exePart(Name) + "--b--\r\n")
	return bw.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	var n int
	n, e.err = e.w.Write(p)
	return n, e.err
}

func (e *errWriter) WriteString(s string) { e.Write([]byte(s)) }
