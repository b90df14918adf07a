package rfc822

import (
	"slices"
	"strings"
	"testing"
)

func TestReadHeader(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		len      int // -1: the whole input
		lines    int
		blank    bool
		subject  string
		hasSubj  bool
		id       string
		fields   []string // "Name=Value"; nil: not checked
		bodyWant string   // the body, in[len:]; "" with len -1
	}{
		{name: "plain", in: "Subject: hi\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n", len: 34, lines: 2, blank: true,
			subject: "hi", hasSubj: true, id: "<1@x>", fields: []string{"Subject=hi", "Message-ID=<1@x>"}, bodyWant: "body\r\n"},
		{name: "folded subject keeps the whitespace after the break", in: "Subject: a long\r\n\tsubject\r\n  that folds\r\n\r\n", len: -1, lines: 3, blank: true,
			subject: "a long\tsubject  that folds", hasSubj: true},
		{name: "encoded words, UTF-8 and Latin-1, whitespace between words dropped",
			in:  "Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?ISO-8859-1?Q?aus_M=FCnchen?=\r\n\r\n",
			len: -1, lines: 1, blank: true, subject: "Grüßeaus München", hasSubj: true},
		{name: "encoded words folded", in: "Subject: =?utf-8?q?caf=C3=A9?=\r\n =?us-ascii?Q?_au_lait?=\r\n\r\n", len: -1, lines: 2, blank: true,
			subject: "café au lait", hasSubj: true},
		{name: "charset the standard library does not know: as it came", in: "Subject: =?windows-1252?Q?=80uro?=\r\n\r\n", len: -1, lines: 1, blank: true,
			subject: "=?windows-1252?Q?=80uro?=", hasSubj: true},
		{name: "broken encoded word", in: "Subject: =?utf-8?B?!!!?= x\r\n\r\n", len: -1, lines: 1, blank: true,
			subject: "=?utf-8?B?!!!?= x", hasSubj: true},
		{name: "duplicate fields: the first counts", in: "Subject: one\r\nSubject: two\r\nmessage-id: <a@x>\r\nMessage-Id: <b@x>\r\n\r\n", len: -1, lines: 4, blank: true,
			subject: "one", hasSubj: true, id: "<a@x>"},
		{name: "empty subject is a subject", in: "Subject:\r\n\r\n", len: -1, lines: 1, blank: true, subject: "", hasSubj: true},
		{name: "whitespace before the colon", in: "Subject  : spaced\r\nMessage-ID\t:\t<1@x> \r\n\r\n", len: -1, lines: 2, blank: true,
			subject: "spaced", hasSubj: true, id: "<1@x>", fields: []string{"Subject=spaced", "Message-ID=<1@x>"}},
		{name: "LF only", in: "Subject: a\n folded\nMessage-ID: <1@x>\n\nbody\n", len: 38, lines: 3, blank: true,
			subject: "a folded", hasSubj: true, id: "<1@x>", bodyWant: "body\n"},
		{name: "no separator: the body starts at the first line that is not a field",
			in: "Subject: hi\r\nthis is the body\r\nMessage-ID: <in-the-body@x>\r\n", len: 13, lines: 1,
			subject: "hi", hasSubj: true, bodyWant: "this is the body\r\nMessage-ID: <in-the-body@x>\r\n"},
		{name: "no separator, header only", in: "Subject: hi\r\nX: y", len: -1, lines: 2, subject: "hi", hasSubj: true},
		{name: "field name with a space is not a field", in: "Subject: a\r\nNot A: field\r\n", len: 12, lines: 1,
			subject: "a", hasSubj: true, bodyWant: "Not A: field\r\n"},
		{name: "8-bit field name is not a field", in: "Subj\xe9ct: a\r\n\r\n", len: 0, bodyWant: "Subj\xe9ct: a\r\n\r\n"},
		{name: "empty name is not a field", in: ": a\r\n", len: 0, bodyWant: ": a\r\n"},
		{name: "no header", in: "\r\nbody\r\n", len: 2, blank: true, bodyWant: "body\r\n"},
		{name: "empty", in: "", len: 0},
		{name: "a blank line of bare CRs", in: "Subject: a\r\n\r\r\nX: body\r\n", len: 15, lines: 1, blank: true,
			subject: "a", hasSubj: true, bodyWant: "X: body\r\n"},
		{name: "continuation before the first field belongs to no field", in: " Subject: not one\r\nSubject: yes\r\n\r\n", len: -1, lines: 2, blank: true,
			subject: "yes", hasSubj: true, fields: []string{"Subject=yes"}},
		{name: "bare CR inside a value is kept", in: "Subject: a\rb\r\n\r\n", len: -1, lines: 1, blank: true, subject: "a\rb", hasSubj: true},
		{name: "Unicode spaces trimmed", in: "Subject: \u00a0x\u00a0\r\n\r\n", len: -1, lines: 1, blank: true, subject: "x", hasSubj: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ReadHeader([]byte(tt.in))
			wantLen := tt.len
			if wantLen < 0 {
				wantLen = len(tt.in)
			}
			if h.Len != wantLen || h.Lines != tt.lines || h.Blank != tt.blank {
				t.Errorf("Len %d, Lines %d, Blank %v; want %d, %d, %v", h.Len, h.Lines, h.Blank, wantLen, tt.lines, tt.blank)
			}
			if body := tt.in[h.Len:]; body != tt.bodyWant {
				t.Errorf("body %q, want %q", body, tt.bodyWant)
			}
			if s, ok := h.Subject(); s != tt.subject || ok != tt.hasSubj {
				t.Errorf("Subject %q %v, want %q %v", s, ok, tt.subject, tt.hasSubj)
			}
			if id := h.MessageID(); id != tt.id {
				t.Errorf("Message-ID %q, want %q", id, tt.id)
			}
			if tt.fields != nil {
				var got []string
				for f := range h.Fields() {
					got = append(got, f.Name+"="+f.Value)
				}
				if !slices.Equal(got, tt.fields) {
					t.Errorf("fields %q, want %q", got, tt.fields)
				}
			}
		})
	}
}

func TestValues(t *testing.T) {
	h := ReadHeader([]byte("Received: a\r\nX: 1\r\nreceived: b\r\n  c\r\nRECEIVED:d\r\n\r\n"))
	if got, want := h.Values("Received"), []string{"a", "b  c", "d"}; !slices.Equal(got, want) {
		t.Errorf("Values = %q, want %q", got, want)
	}
	if got := h.Values("Nope"); got != nil {
		t.Errorf("Values(Nope) = %q", got)
	}
	if _, ok := h.Get("Receive"); ok {
		t.Error("Get matched a prefix of a name")
	}
}

// TestLimit: a cap cuts before the first field that does not fit whole,
// folded lines included, and nothing after it is read.
func TestLimit(t *testing.T) {
	msg := "A: 1\r\nB: 2\r\n 2b\r\nC: 3\r\n\r\nbody"
	tests := []struct {
		n      int
		raw    string
		fields []string
	}{
		{100, "A: 1\r\nB: 2\r\n 2b\r\nC: 3\r\n", []string{"A", "B", "C"}},
		{23, "A: 1\r\nB: 2\r\n 2b\r\nC: 3\r\n", []string{"A", "B", "C"}},
		{22, "A: 1\r\nB: 2\r\n 2b\r\n", []string{"A", "B"}},
		{17, "A: 1\r\nB: 2\r\n 2b\r\n", []string{"A", "B"}},
		{16, "A: 1\r\n", []string{"A"}},
		{5, "", nil},
		{0, "", nil},
	}
	for _, tt := range tests {
		h := ReadHeader([]byte(msg)).Limit(tt.n)
		var names []string
		for f := range h.Fields() {
			names = append(names, f.Name)
		}
		if string(h.Raw()) != tt.raw || !slices.Equal(names, tt.fields) || h.Truncated != (tt.n < 23) {
			t.Errorf("Limit(%d): %q %q truncated %v; want %q %q", tt.n, h.Raw(), names, h.Truncated, tt.raw, tt.fields)
		}
		if h.Len != 25 || h.Lines != 4 {
			t.Errorf("Limit(%d) changed where the body starts: Len %d, Lines %d", tt.n, h.Len, h.Lines)
		}
	}
	// The fields past the cut are not found.
	if _, ok := ReadHeader([]byte(msg)).Limit(16).Get("C"); ok {
		t.Error("Get found a field past the cut")
	}
}

// TestLongHeader reads a header of many lines and a huge field: one pass,
// whatever its size, and the fields are all there.
func TestLongHeader(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		b.WriteString("X-Line: ")
		b.WriteString(strings.Repeat("v", i%100))
		b.WriteString("\r\n")
	}
	b.WriteString("Subject: " + strings.Repeat("s", 1<<20) + "\r\n\r\nbody")
	h := ReadHeader([]byte(b.String()))
	if h.Lines != 5001 || !h.Blank || b.String()[h.Len:] != "body" {
		t.Fatalf("Lines %d, Blank %v, body %q", h.Lines, h.Blank, b.String()[h.Len:])
	}
	if s, _ := h.Subject(); len(s) != 1<<20 {
		t.Errorf("Subject of %d bytes", len(s))
	}
}

// TestReadHeaderAllocs: reading a header allocates nothing and stops at its
// end, whatever the body holds; only the values asked for are copied.
func TestReadHeaderAllocs(t *testing.T) {
	msg := []byte("Subject: plain\r\nMessage-ID: <1@x>\r\nX: folded\r\n value\r\n\r\n" + strings.Repeat("Body: not a field\r\n", 1000))
	var h Header
	if n := testing.AllocsPerRun(100, func() { h = ReadHeader(msg) }); n != 0 {
		t.Errorf("ReadHeader: %v allocations", n)
	}
	if h.Lines != 4 || h.Len != 56 {
		t.Errorf("Lines %d, Len %d", h.Lines, h.Len)
	}
	if n := testing.AllocsPerRun(100, func() { h.Subject() }); n != 1 {
		t.Errorf("Subject: %v allocations, want 1 (the value)", n)
	}
}
