package outbound

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/queue"
)

func TestRewriteFields(t *testing.T) {
	for _, c := range []struct {
		name, in string
		strip    []string
		tag      string
		want     string
	}{
		{"strip one", "From: a\r\nX-Secret: 1\r\nTo: b\r\n", []string{"x-secret"}, "", "From: a\r\nTo: b\r\n"},
		{"strip every one, folded, any case", "x-secret: 1\r\n\tmore\r\nFrom: a\r\nX-SECRET : 2\r\n", []string{"x-secret"}, "", "From: a\r\n"},
		{"strip several", "Received: 1\r\nReceived: 2\r\n x\r\nFrom: a\r\nX-A: 1\r\n", []string{"received", "x-a"}, "", "From: a\r\n"},
		{"strip nothing of a prefix", "X-Secrets: 1\r\n", []string{"x-secret"}, "", "X-Secrets: 1\r\n"},
		{"tag", "From: a\r\nSubject: hello\r\n", nil, "[EXT] ", "From: a\r\nSubject: [EXT] hello\r\n"},
		{"tag once, the first Subject", "Subject:hello\r\nSubject: again\r\n", nil, "[EXT]", "Subject: [EXT] hello\r\nSubject: again\r\n"},
		{"tag a folded Subject", "Subject: a long\r\n subject\r\n", nil, "[SPAM]", "Subject: [SPAM] a long\r\n subject\r\n"},
		{"tag an empty Subject", "Subject:\r\nFrom: a\r\n", nil, "[SPAM]", "Subject: [SPAM]\r\nFrom: a\r\n"},
		{"tag without Subject", "From: a\r\n", nil, "[SPAM]", "From: a\r\nSubject: [SPAM]\r\n"},
		{"tag an encoded Subject", "Subject: =?utf-8?B?w4k=?=\r\n", nil, "[EXT]", "Subject: [EXT] =?utf-8?B?w4k=?=\r\n"},
		{"bare LF kept", "Subject: hi\nX-Secret: 1\nFrom: a\n", []string{"x-secret"}, "[T]", "Subject: [T] hi\nFrom: a\n"},
		{"not a field kept", "garbage line\r\nX-Secret: 1\r\n", []string{"x-secret"}, "", "garbage line\r\n"},
	} {
		if got := string(RewriteFields([]byte(c.in), c.strip, c.tag)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestRewriteHeader: the header rewritten, the body streamed untouched,
// and the size change exact (it goes in SIZE=).
func TestRewriteHeader(t *testing.T) {
	big := strings.Repeat("X-Pad: "+strings.Repeat("p", 70)+"\r\n", maxRewriteHeader/79+10)
	for _, c := range []struct {
		name, in, want string
	}{
		{"message", "Subject: hi\r\nX-Secret: 1\r\n\r\nbody\r\nX-Secret: in the body\r\n", "Subject: [T] hi\r\n\r\nbody\r\nX-Secret: in the body\r\n"},
		{"no body", "Subject: hi\r\nX-Secret: 1\r\n", "Subject: [T] hi\r\n"},
		{"no header", "\r\nbody\r\n", "Subject: [T]\r\n\r\nbody\r\n"},
		{"a header past the bound", "Subject: hi\r\n" + big + "X-Secret: 1\r\n\r\nbody\r\n", "Subject: [T] hi\r\n" + big + "X-Secret: 1\r\n\r\nbody\r\n"},
	} {
		r, delta, err := rewriteHeader(strings.NewReader(c.in), queue.Work{Strip: []string{"x-secret"}, TagSubject: "[T] "})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		if !bytes.Equal(got, []byte(c.want)) {
			if len(got) > 200 {
				t.Errorf("%s: got %d bytes, want %d", c.name, len(got), len(c.want))
			} else {
				t.Errorf("%s: %q, want %q", c.name, got, c.want)
			}
		}
		if int64(len(c.in))+delta != int64(len(got)) {
			t.Errorf("%s: size change %d, but %d -> %d bytes", c.name, delta, len(c.in), len(got))
		}
	}
}
