package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// minFrameLimit is the smallest octet count beyond which a count is taken
// for a framing error rather than an over-long message, as rsyslog's
// default maxFrameSize. Trusting any count would let one stray number make
// us skip (and lose) everything the peer sends for the next gigabytes.
const minFrameLimit = 200000

// maxCountDigits bounds the digits of an octet count, so that the count
// cannot overflow even a 32-bit int; a longer one is a framing error.
const maxCountDigits = 9

// frameReader splits a TCP syslog stream into messages (RFC 6587). Like
// rsyslog, it decides the framing per frame by the first byte: a digit
// starts an octet count ("123 <166>..."), anything else a message ended by
// LF or NUL. A count that is not digits followed by a space, is 0 or is
// beyond the frame limit is a framing error; the frame is then read as
// ended by LF, its digits being the start of the message, which recovers
// the common case of an LF-framed message that begins with a digit.
type frameReader struct {
	r     *bufio.Reader
	max   int // longest message returned
	limit int // largest octet count trusted
	buf   []byte
	eof   bool

	// What happened to the message last returned, for diagnostics.
	truncated bool // it was longer than max; the rest was skipped
	badCount  bool // it began like an octet count that was not one
}

func newFrameReader(r io.Reader, maxMessage int) *frameReader {
	return &frameReader{r: bufio.NewReader(r), max: maxMessage, limit: max(maxMessage, minFrameLimit)}
}

// errPartialFrame reports a stream that ended inside an octet-counted
// frame: the message is incomplete, so it is dropped.
var errPartialFrame = errors.New("stream ended inside an octet-counted frame")

// next returns the next message, framing and trailing CR/LF/NUL removed,
// never empty and never longer than f.max. Its bytes are valid until the
// next call. At the end of the stream it returns io.EOF; a message not
// ended by LF before a clean end is still returned (the peer just did not
// end its last line), but one cut by any other read error is dropped and
// the error returned.
func (f *frameReader) next() ([]byte, error) {
	for {
		if f.eof {
			return nil, io.EOF
		}
		f.buf = f.buf[:0]
		f.truncated, f.badCount = false, false
		first, err := f.r.Peek(1)
		if err != nil {
			return nil, err
		}
		if isDigit(first[0]) {
			err = f.readCounted()
		} else {
			err = f.readLine()
		}
		if err != nil {
			return nil, err
		}
		msg := trimTrailers(f.buf)
		if len(msg) > 0 {
			return msg, nil
		}
		// An empty frame, such as the LF some senders put after an
		// octet-counted one: nothing to hand on.
	}
}

// readCounted reads an octet-counted frame into f.buf, or falls back to
// readLine if the count is not one.
func (f *frameReader) readCounted() error {
	var digits [maxCountDigits]byte
	n, count := 0, 0
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				// Digits alone before a clean end: a message like any other.
				f.eof = true
				f.badCount = true
				f.add(digits[:n])
				return nil
			}
			return err
		}
		if isDigit(c) && n < len(digits) {
			digits[n] = c
			n++
			count = count*10 + int(c-'0')
			continue
		}
		if c == ' ' && count > 0 && count <= f.limit {
			break
		}
		// Not a count: give the byte back (UnreadByte cannot fail right
		// after ReadByte) so readLine sees it, e.g. as the LF ending the
		// message.
		_ = f.r.UnreadByte()
		f.badCount = true
		f.add(digits[:n])
		return f.readLine()
	}

	keep := min(count, f.max)
	if cap(f.buf) < keep {
		f.buf = make([]byte, 0, keep)
	}
	f.buf = f.buf[:keep]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		return partial(err)
	}
	if count > keep {
		f.truncated = true
		if _, err := f.r.Discard(count - keep); err != nil {
			return partial(err)
		}
	}
	return nil
}

func partial(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errPartialFrame
	}
	return err
}

// readLine appends to f.buf up to the next LF or NUL, which it consumes.
func (f *frameReader) readLine() error {
	for {
		if _, err := f.r.Peek(1); err != nil {
			if err == io.EOF {
				f.eof = true
				return nil
			}
			return err
		}
		data, _ := f.r.Peek(f.r.Buffered())
		if i := bytes.IndexAny(data, "\n\x00"); i >= 0 {
			f.add(data[:i])
			_, _ = f.r.Discard(i + 1) // buffered: cannot fail
			return nil
		}
		f.add(data)
		_, _ = f.r.Discard(len(data))
	}
}

// add appends p to the message as far as f.max allows.
func (f *frameReader) add(p []byte) {
	if room := f.max - len(f.buf); len(p) > room {
		p = p[:max(room, 0)]
		f.truncated = true
	}
	f.buf = append(f.buf, p...)
}
