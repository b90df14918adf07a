package smtp

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzReadReply feeds a server's arbitrary bytes to the reply reader. It
// must never panic nor return more than its caps; what it accepts must be
// a well-formed reply that reads back the same once written out.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"220 mx.example.com ESMTP\r\n",
		"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250 ENHANCEDSTATUSCODES\r\n",
		"550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 https://support.example/ x\r\n",
		"250 2.0.0 Ok: queued as 3jjSKc6HnKz4GTHJ\r\n354 go\r\n",
		"250-a\r\n251 b\r\n",
		"250ok\r\n",
		"421\r\n",
		"550 #5.1.1 esa\n",
		"250-\r\n250 \r\n",
		"550 5.999.1 x\r\n",
		strings.Repeat("250-x\r\n", 70),
		"250 " + strings.Repeat("y", 5000) + "\r\n",
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, enhanced bool) {
		r := bufio.NewReaderSize(bytes.NewReader(in), maxReplyLine)
		for n := 0; n < 100; n++ { // a reply reads at least one byte: bounded by len(in) anyway
			var lines int
			rep, err := readReply(r, enhanced, func(sent bool, line []byte) {
				lines++
				if sent || len(line) > maxReplyLine {
					t.Fatalf("transcript line %q (sent %v)", clip(line), sent)
				}
			})
			if err != nil {
				return
			}
			if lines > maxReplyLines {
				t.Fatalf("accepted a reply of %d lines", lines)
			}
			if rep.Code < 200 || rep.Code > 599 {
				t.Fatalf("accepted code %d", rep.Code)
			}
			if len(rep.Text) > maxReplyLines*maxReplyLine {
				t.Fatalf("reply text of %d bytes", len(rep.Text))
			}
			if rep.Enhanced != "" {
				if !enhanced {
					t.Fatalf("status code %q parsed when not offered", rep.Enhanced)
				}
				if _, rest, ok := cutEnhanced([]byte(rep.Enhanced), rep.Enhanced[0]); !ok || len(rest) != 0 || rep.Enhanced[0] != byte('0'+rep.Code/100) {
					t.Fatalf("status code %q for reply %d", rep.Enhanced, rep.Code)
				}
			}
			// Written out the way the server side writes replies and read
			// again, the reply is the same.
			wire := rep.appendTo(nil, true)
			if bytes.Count(wire, []byte("\n")) != lines {
				t.Fatalf("%d lines read, %d written: %q", lines, bytes.Count(wire, []byte("\n")), wire)
			}
			for _, l := range bytes.SplitAfter(wire, []byte("\n")) {
				if len(l) > maxReplyLine {
					return // the status code written on a line that lacked it
				}
			}
			again, err := readReply(bufio.NewReaderSize(bytes.NewReader(wire), maxReplyLine), enhanced, nil)
			if err != nil || again != rep {
				t.Fatalf("reply %+v written as %q reads back as %+v, %v", rep, wire, again, err)
			}
		}
	})
}

// bufConn is a connection that keeps what is written to it.
type bufConn struct {
	net.Conn // nil: only writes are expected
	buf      bytes.Buffer
}

func (c *bufConn) Write(p []byte) (int, error)      { return c.buf.Write(p) }
func (c *bufConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzWriteMessage checks the DATA writer on arbitrary messages (the
// spool holds what the internet sent): the output has only CRLF line
// endings, exactly one end of data, at its end, and the server side of
// the package reads back the message with its line endings made CRLF.
func FuzzWriteMessage(f *testing.F) {
	for _, s := range []string{"", ".", "a\r\n.\r\nb", ".\r\n.\r\n", "a\n.\nb\r.\r", "\r\n\r\n", "x\r\r\n.", "..\r\n", "\rb\nc"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		conn := &bufConn{}
		c := &Client{conn: conn, to: ClientTimeouts{}.withDefaults()}
		if err := c.writeMessage(bytes.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		out := conn.buf.Bytes()
		// Read a byte at a time, a CRLF or a line's first dot split
		// between reads, the message goes out the same.
		bytewise := &bufConn{}
		c = &Client{conn: bytewise, to: ClientTimeouts{}.withDefaults()}
		if err := c.writeMessage(iotest.OneByteReader(bytes.NewReader(msg))); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytewise.buf.Bytes(), out) {
			t.Fatalf("message %q read a byte at a time is sent as %q, read whole as %q", msg, bytewise.buf.Bytes(), out)
		}
		for i, b := range out {
			if b == '\n' && (i == 0 || out[i-1] != '\r') || b == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
				t.Fatalf("bare line ending at %d of %q", i, out)
			}
		}
		if end := findEnd(out); end != len(out)-3 {
			t.Fatalf("end of data at %d of %d in %q", end, len(out), out)
		}
		s := &Session{r: bufio.NewReaderSize(bytes.NewReader(out), 4096)}
		var got bytes.Buffer
		derr, err := readMessage(s, &got)
		if err != nil || derr == ErrBareLineEnding {
			t.Fatalf("server reads %q: %v, %v", out, derr, err)
		}
		if derr != nil {
			return // a line too long for the server: its business
		}
		want := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
		want = bytes.ReplaceAll(want, []byte("\r"), []byte("\n"))
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(want, '\n')
		}
		want = bytes.ReplaceAll(want, []byte("\n"), []byte("\r\n"))
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("message %q sent as %q reads back as %q", msg, out, got.Bytes())
		}
	})
}
