package smtp

import (
	"bufio"
	"bytes"
	"io"
)

// dataReader is the message as the Handler reads it: dot-unstuffed, lines
// ending in CRLF, the end-of-data line left out. It reads from the
// session's buffered reader as the handler asks, so that a session in DATA
// holds that buffer and no more, whatever the size of the message.
//
// Read returns io.EOF at the end of the message. When the message breaks a
// rule (ErrMessageTooBig, ErrBareLineEnding, ErrLineTooLong) Read returns
// that error from then on, at once: the handler can drop what it has, and
// the engine discards the rest up to the end of the message, so that the
// dialogue stays in step, before it refuses the message. A connection
// error is returned as it is, the peer closing it as io.ErrUnexpectedEOF.
type dataReader struct {
	s *Session

	pending []byte // the rest of the current line, in s.r's buffer
	done    bool   // the end-of-data line was read
	derr    error  // the first rule the message broke
	err     error  // the connection's error

	size      int64
	prevCRLF  bool // the previous line ended with CRLF (the DATA line did)
	lineStart bool
	lineLen   int
	last      byte // last byte of the previous chunk of the same line
}

func newDataReader(s *Session) *dataReader {
	return &dataReader{s: s, prevCRLF: true, lineStart: true}
}

// Read fills p with as much of the message as is buffered, so that a
// handler copying it to a file makes few, large writes however short the
// lines; it blocks for input only when it has nothing to return.
func (d *dataReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(d.pending) == 0 {
			if d.err != nil || d.derr != nil || d.done {
				break
			}
			if n > 0 && d.s.r.Buffered() == 0 {
				break // return what we have rather than wait for the client
			}
			d.next()
			continue
		}
		k := copy(p[n:], d.pending)
		d.pending = d.pending[k:]
		n += k
	}
	if n > 0 {
		return n, nil
	}
	switch {
	case d.err != nil:
		return 0, d.err
	case d.derr != nil:
		return 0, d.derr
	case d.done:
		return 0, io.EOF
	}
	return 0, nil
}

// drain reads the rest of the message, discarding it. It returns the rule
// the message broke, if any, and the connection's error.
func (d *dataReader) drain() (derr, err error) {
	for d.err == nil && !d.done {
		d.pending = nil
		d.next()
	}
	return d.derr, d.err
}

// next reads the next chunk of a line (a whole line unless it is longer
// than the buffer) and checks it. The message ends only at CRLF "." CRLF: a
// "." line after a bare LF, or ending in a bare LF, is not the end (SMTP
// smuggling, RFC 5321 2.3.8 and 4.1.1.4). What the message may keep is
// left in pending; once it broke a rule, nothing is.
func (d *dataReader) next() {
	s := d.s
	chunk, err := s.r.ReadSlice('\n')
	s.dataBytes += int64(len(chunk))
	if err != nil && err != bufio.ErrBufferFull {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // io.EOF is the message's end
		}
		d.err = err
		return
	}
	complete := err == nil
	if complete && d.lineStart && d.prevCRLF && len(chunk) == 3 && chunk[0] == '.' && chunk[1] == '\r' {
		s.transcript(false, chunk[:1])
		d.done = true
		return
	}
	if s.cfg.Transcript != nil {
		s.cfg.Transcript(false, trimEOL(chunk))
	}
	d.lineLen += len(chunk)
	body := chunk
	if d.lineStart && body[0] == '.' {
		body = body[1:] // dot-stuffing
	}
	if complete {
		// A line longer than the buffer arrives in chunks; its CR may end
		// the previous one.
		crlf := (len(chunk) >= 2 && chunk[len(chunk)-2] == '\r') || (len(chunk) == 1 && d.last == '\r')
		content := body[:len(body)-1]
		if crlf && len(content) > 0 {
			content = content[:len(content)-1]
		}
		if !crlf || bytes.IndexByte(content, '\r') >= 0 {
			d.derr = firstErr(d.derr, ErrBareLineEnding)
		}
		d.prevCRLF = crlf
	}
	if d.lineLen > MaxTextLine {
		d.derr = firstErr(d.derr, ErrLineTooLong)
	}
	d.size += int64(len(body))
	if max := s.cfg.MaxMessageSize; max > 0 && d.size > max {
		d.derr = ErrMessageTooBig // the reason a client can act on: it wins
	}
	if d.derr == nil {
		d.pending = body
	}
	d.lineStart = complete
	d.last = chunk[len(chunk)-1]
	if complete {
		d.lineLen = 0
	}
}

func firstErr(have, err error) error {
	if have != nil {
		return have
	}
	return err
}
