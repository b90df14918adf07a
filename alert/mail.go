package alert

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"
)

// maxLine is RFC 5322's limit of a line, without its CRLF.
const maxLine = 998

// buildMessage is the alert mail: the ESA's subject, a plain-text body with
// what was measured and what to do, and the fields that tell mail systems
// it is automatic (RFC 3834 Auto-Submitted), so that no vacation reply
// answers it.
func buildMessage(o Options, c Condition, subject string, mid uint64, now time.Time) []byte {
	var body strings.Builder
	fmt.Fprintf(&body, "The %s message is:\n\n%s\n\n", c.Severity, c.Message)
	if c.Detail != "" {
		fmt.Fprintf(&body, "What was seen:\n%s\n\n", c.Detail)
	}
	if c.Next != "" {
		fmt.Fprintf(&body, "What to do:\n%s\n\n", c.Next)
	}
	fmt.Fprintf(&body, "Class: %s\nSeverity: %s\nCondition: %s\n", c.Class, c.Severity, c.Key)
	if c.Severity != Information {
		fmt.Fprintf(&body, "Repeats: at most once every %s while the condition holds (alerts.repeat_interval); an Information alert \"Cleared\" when it ends.\n",
			o.RepeatInterval)
	}
	fmt.Fprintf(&body, "\nVersion: %s\nHostname: %s\nTimestamp: %s\nMID: %d\n", o.Version, o.Hostname,
		now.UTC().Format(time.RFC1123Z), mid)

	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("From", o.From)
	header("To", strings.Join(o.To, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", fmt.Sprintf("<alert.%d.%d@%s>", mid, now.Unix(), o.Hostname))
	header("Auto-Submitted", "auto-generated")
	header("X-Mailgate-Alert", fmt.Sprintf("%s/%s %s", c.Class, c.Severity, mime.QEncoding.Encode("utf-8", oneLine(c.Key))))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	text := body.String()
	if isASCII(text) {
		header("Content-Transfer-Encoding", "7bit")
	} else {
		header("Content-Transfer-Encoding", "8bit")
	}
	b.WriteString("\r\n")
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		for len(line) > maxLine {
			cut := maxLine
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			b.WriteString(line[:cut])
			b.WriteString("\r\n")
			line = line[cut:]
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// oneLine replaces the controls of s (CR, LF among them) by spaces: a
// header field's value must not end early.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
