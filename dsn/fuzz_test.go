package dsn

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzBuild builds reports from arbitrary remote replies, host names,
// recipient addresses and original messages. Whatever they hold, the report
// reads back as a multipart/report of three parts with CRLF lines of at
// most 998 octets, one recipient block per recipient with the fields given,
// the attached header as extracted, and only ASCII in a plain report.
func FuzzBuild(f *testing.F) {
	f.Add(hostileReply, "mx1.example.net", "joe@example.net", []byte(original), false)
	f.Add("550 5.1.1 <jöe@example.net>: unknown", "2001:db8::1", "jöe@example.net", []byte("Subject: Grüße\r\n"), true)
	f.Add("", "", "a@b", []byte{}, false)
	f.Add("--=_mailgate_\r\n", "\r\n", "x\r\n@y", []byte("X: =_mailgate_\n\n--=_mailgate_--\r\n"), false)
	f.Add(strings.Repeat("é", 700), strings.Repeat("h", 1200), strings.Repeat("+", 1100), bytes.Repeat([]byte("\xff\r"), 800), true)
	f.Fuzz(func(t *testing.T, diag, remote, rcpt string, orig []byte, smtputf8 bool) {
		r := failure()
		r.SMTPUTF8 = smtputf8
		r.Original = orig
		r.Recipients[0].Diagnostic = diag
		r.Recipients[0].RemoteMTA = remote
		r.Recipients[0].Original = rcpt
		r.Recipients = append(r.Recipients, Recipient{Original: "ann@example.net", Action: Delayed, Status: "4.4.1", Diagnostic: diag})
		msg, err := Build(r)
		if err != nil {
			if strings.TrimSpace(rcpt) != "" {
				t.Fatalf("Build: %v", err)
			}
			return
		}
		rep, err := readReport(msg)
		if err != nil {
			t.Fatalf("%v\n%q", err, msg)
		}
		if !smtputf8 && !isASCII(string(msg)) {
			t.Fatal("a plain report holds 8-bit bytes")
		}
		if smtputf8 && !utf8.Valid(msg) {
			t.Fatal("a global report is not valid UTF-8")
		}
		if len(rep.perRecipient) != 2 {
			t.Fatalf("%d recipient blocks, want 2", len(rep.perRecipient))
		}
		for i, want := range []string{Failed, Delayed} {
			pr := rep.perRecipient[i]
			if len(pr["Action"]) != 1 || pr.Get("Action") != want || len(pr["Final-Recipient"]) != 1 {
				t.Fatalf("recipient block %d = %v", i, pr)
			}
			// Folding adds at most spaces.
			d := clean(diag, smtputf8)
			got := strings.ReplaceAll(pr.Get("Diagnostic-Code"), " ", "")
			if d == "" && got != "" || d != "" && !strings.HasSuffix(got, ";"+strings.ReplaceAll(d, " ", "")) {
				t.Fatalf("recipient block %d: Diagnostic-Code %q for %q", i, pr.Get("Diagnostic-Code"), d)
			}
		}
		if hdr := originalHeader(orig); !bytes.Equal(rep.parts[2].body, hdr) {
			t.Fatalf("attached header %q, want %q", rep.parts[2].body, hdr)
		}
	})
}
