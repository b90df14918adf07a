package smtp

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// streamer is a Handler whose Data is the test's: it embeds recorder for
// the rest.
type streamer struct {
	recorder
	data func(r io.Reader) Reply
}

func (s *streamer) Data(r io.Reader) Reply { return s.data(r) }

// got waits for what the handler reports while the client is still
// sending: a handler that only heard of the message at its end would
// never report.
func got[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("the handler saw nothing before the end of the message")
	}
	var zero T
	return zero
}

// openData opens a transaction and sends DATA; send writes message text
// and, after the end of data, returns the reply.
func openData(t *testing.T, h Handler, cfg Config) (send func(string) string) {
	t.Helper()
	conn, _ := serve(t, h, cfg)
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	send = func(s string) string {
		c.Send(s)
		if strings.HasSuffix(s, "\r\n.\r\n") {
			return c.Reply()
		}
		return ""
	}
	return send
}

func (s *streamer) failures() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.failed...)
}

// The handler reads the message as it arrives: the first lines before the
// client sent the rest.
func TestDataStreams(t *testing.T) {
	first := make(chan string, 1)
	h := &streamer{data: func(r io.Reader) Reply {
		b := make([]byte, 4096)
		n, err := r.Read(b)
		if err != nil {
			t.Errorf("read: %v", err)
		}
		first <- string(b[:n])
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "second line\r\n.dot\r\n" {
			t.Errorf("rest %q, %v", rest, err)
		}
		return Reply{250, "2.0.0", "streamed"}
	}}
	send := openData(t, h, Config{})
	send("first line\r\n")
	if got := got(t, first); got != "first line\r\n" {
		t.Errorf("first read %q", got)
	}
	if r := send("second line\r\n..dot\r\n.\r\n"); r != "250 2.0.0 streamed" {
		t.Errorf("reply %q", r)
	}
}

// A message over the limit: Read says so as soon as it passes the limit,
// not at its end; the engine reads the rest and refuses the message
// whatever Data replied.
func TestDataTooBigEarly(t *testing.T) {
	seen := make(chan error, 1)
	h := &streamer{data: func(r io.Reader) Reply {
		_, err := io.Copy(io.Discard, r)
		seen <- err
		return Reply{250, "2.0.0", "accepted anyway"}
	}}
	send := openData(t, h, Config{MaxMessageSize: 1000})
	send(strings.Repeat("0123456789012345678\r\n", 60))
	if err := got(t, seen); !errors.Is(err, ErrMessageTooBig) {
		t.Errorf("Read: %v, want ErrMessageTooBig", err)
	}
	if r := send(strings.Repeat("more\r\n", 100) + ".\r\n"); !strings.HasPrefix(r, "552 5.3.4") {
		t.Errorf("reply %q, want 552", r)
	}
	if f := h.failures(); len(f) != 1 || !errors.Is(f[0], ErrMessageTooBig) {
		t.Errorf("DataFailed got %v", f)
	}
}

// The reason a client can act on wins: a bare LF stops the handler, and a
// size excess after it is still what the client hears.
func TestDataBareLFThenTooBig(t *testing.T) {
	seen := make(chan error, 1)
	h := &streamer{data: func(r io.Reader) Reply {
		_, err := io.Copy(io.Discard, r)
		seen <- err
		return Reply{}
	}}
	send := openData(t, h, Config{MaxMessageSize: 1000})
	send("bare\nLF\r\n")
	if err := got(t, seen); !errors.Is(err, ErrBareLineEnding) {
		t.Errorf("Read: %v, want ErrBareLineEnding", err)
	}
	if r := send(strings.Repeat("0123456789012345678\r\n", 60) + ".\r\n"); !strings.HasPrefix(r, "552 5.3.4") {
		t.Errorf("reply %q, want 552", r)
	}
	if f := h.failures(); len(f) != 1 || !errors.Is(f[0], ErrMessageTooBig) {
		t.Errorf("DataFailed got %v", f)
	}
}

// A handler that refuses without reading: the engine discards the message
// and the dialogue stays in step.
func TestDataHandlerStopsEarly(t *testing.T) {
	h := &streamer{data: func(io.Reader) Reply { return Reply{554, "5.7.1", "not wanted"} }}
	conn, ends := serve(t, h, Config{})
	c := newClient(t, conn)
	c.Expect("220")
	c.Cmd("EHLO client.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.com>", "250")
	c.Cmd("DATA", "354")
	c.Send(strings.Repeat("MAIL FROM:<smuggled@example.org>\r\n", 5000))
	c.Cmd(".", "554 5.7.1 not wanted")
	c.Cmd("QUIT", "221")
	if e := waitEnd(t, ends); e.Cause != event.CauseQuit {
		t.Errorf("end %+v", e)
	}
	if f := h.failures(); len(f) != 0 {
		t.Errorf("DataFailed got %v", f)
	}
}
