package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME",
		"mail from: <\"quoted\\\"x\"@[IPv6:2001:db8::1]> SMTPUTF8",
		"RCPT TO:<@hop1,@hop2:user@example.com>",
		"RCPT TO:<postmaster>",
		"MAIL FROM:<>",
		"MAIL FROM:<jö@exämple.org> SMTPUTF8",
		"EHLO [192.0.2.1]",
		"\x00\xff MAIL",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd := ParseCommand([]byte(line))
		if strings.ContainsAny(cmd.Verb, " ") {
			t.Fatalf("verb %q holds a space", cmd.Verb)
		}
		for _, kw := range []string{"FROM:", "TO:"} {
			raw, params, err := parsePathArg(cmd.Arg, kw)
			if err != nil {
				continue
			}
			p, perr := parseMailParams(params)
			if perr == nil && p.Size < 0 {
				t.Fatalf("negative SIZE from %q", params)
			}
			for _, utf8ok := range []bool{false, true} {
				path, err := ParsePath(raw, utf8ok)
				if err != nil {
					continue
				}
				s := path.String()
				if strings.ContainsAny(s, "\x00\r\n\t") {
					t.Fatalf("accepted path %q holds a control character", s)
				}
				if !utf8ok && !isASCII(s) {
					t.Fatalf("non-ASCII path %q accepted without SMTPUTF8", s)
				}
				// What we accept, rendered, is accepted again as the same path
				// (without its source route, which String drops).
				again, err := ParsePath(s, utf8ok)
				if err != nil || again != (Path{Local: path.Local, Domain: path.Domain}) {
					t.Fatalf("path %q (from %q) re-parses as %q, %v", s, raw, again, err)
				}
			}
		}
	})
}

// FuzzDataReader feeds arbitrary bytes to the DATA reader. Whatever it
// accepts must be a clean message that is exactly the input up to the
// end-of-data line, unstuffed; and it must not find an end where there
// is no CRLF.CRLF.
func FuzzDataReader(f *testing.F) {
	for _, s := range []string{
		"a\r\n.\r\n",
		".\r\n",
		"..x\r\n.\r\n",
		"a\n.\nMAIL FROM:<x@y>\r\n.\r\n",
		"a\r.\r\n.\r\n",
		strings.Repeat("x", 5000) + "\r\n.\r\n",
		"a\r\n.\n.\r\n",
	} {
		f.Add([]byte(s), int64(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, max int64) {
		if max < 0 {
			max = -max
		}
		s := &Session{r: bufio.NewReaderSize(bytes.NewReader(in), 4096), cfg: Config{MaxMessageSize: max}}
		var body bytes.Buffer
		derr, err := readMessage(s, &body)
		end := findEnd(in)
		if err != nil {
			if end >= 0 {
				t.Fatalf("no end found, but input has CRLF.CRLF at %d", end)
			}
			return
		}
		if end < 0 {
			t.Fatalf("end of data found in %q, which has no CRLF.CRLF", in)
		}
		if s.dataBytes != int64(end)+3 {
			t.Fatalf("consumed %d bytes, end line at %d", s.dataBytes, end)
		}
		if derr != nil {
			return
		}
		msg := body.Bytes()
		for i, c := range msg {
			if c == '\n' && (i == 0 || msg[i-1] != '\r') {
				t.Fatalf("accepted message has a bare LF at %d", i)
			}
			if c == '\r' && (i+1 >= len(msg) || msg[i+1] != '\n') {
				t.Fatalf("accepted message has a bare CR at %d", i)
			}
		}
		if max > 0 && int64(len(msg)) > max {
			t.Fatalf("accepted %d bytes over the limit %d", len(msg), max)
		}
		// Transparency (RFC 5321 4.5.2): the message is the input with the
		// first "." of every line removed.
		var want bytes.Buffer
		for _, l := range bytes.SplitAfter(in[:end], []byte("\r\n")) {
			if len(l) > MaxTextLine {
				t.Fatalf("accepted a line of %d octets", len(l))
			}
			want.Write(bytes.TrimPrefix(l, []byte(".")))
		}
		if !bytes.Equal(msg, want.Bytes()) {
			t.Fatalf("message %q is not the unstuffed input %q", msg, in[:end])
		}
	})
}

// findEnd returns the offset of the "." of the first end-of-data line:
// ".\r\n" at the start, or after a CRLF whose line did not start a
// different end. It is the simple definition the reader must agree with.
func findEnd(in []byte) int {
	if bytes.HasPrefix(in, []byte(".\r\n")) {
		return 0
	}
	i := bytes.Index(in, []byte("\r\n.\r\n"))
	if i < 0 {
		return -1
	}
	return i + 2
}

// readMessage reads a message as a handler copying it whole would, then
// as the engine does to its end: the message, the rule it broke and the
// connection's error.
func readMessage(s *Session, buf *bytes.Buffer) (derr, err error) {
	d := newDataReader(s)
	buf.ReadFrom(d) // stops at the first error, which drain reports
	return d.drain()
}
