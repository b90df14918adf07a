package dsn

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailgate/mailgate/rfc822"
	"github.com/mailgate/mailgate/smtp/status"
)

// explain says in plain words, for a sender who is not a mail
// administrator, what a status means and what to do about it.
func explain(status string) string {
	code := status[2:]
	subject, _, _ := strings.Cut(code, ".")
	temporary := status[0] == '4'
	switch code {
	case "1.1", "1.0":
		return "The recipient's address does not exist at the destination. Check it for typing mistakes, or ask the recipient for the right address."
	case "1.2":
		return "The recipient's domain (the part after the @) does not exist or does not receive mail. Check it for typing mistakes."
	case "1.3":
		return "The recipient's address is not a valid address."
	case "1.6":
		return "The recipient's mailbox has moved; ask the recipient for the new address."
	case "1.7", "1.8":
		return "The destination refused your sender address."
	case "2.1":
		return "The recipient's mailbox is disabled and takes no mail."
	case "2.2", "3.1":
		if temporary {
			return "The recipient's mailbox or mail system is full."
		}
		return "The recipient's mailbox or mail system is full. Try again later, or reach the recipient another way."
	case "2.3", "3.4":
		return "Your message is larger than the destination accepts. Send it without large attachments, or share them another way."
	case "4.7":
		return "The destination could not be reached, or kept refusing the message, for as long as the mail system keeps trying. Try again later, or check the address."
	case "5.3":
		return "The message had more recipients than the destination accepts at once."
	case "6.7":
		return "The destination does not accept addresses in non-Latin scripts."
	case "7.1":
		return "The destination refused the message by its policy: for example a spam filter, or a rule about who may send to this recipient. The reply below may say more."
	}
	switch subject {
	case "1":
		return "There is a problem with the recipient's address."
	case "2":
		return "There is a problem with the recipient's mailbox."
	case "3":
		if temporary {
			return "The destination's mail system is not accepting mail at the moment."
		}
		return "The destination's mail system could not accept the message."
	case "4":
		return "The mail system could not reach the destination's mail server (a network or routing problem)."
	case "5":
		return "The destination's mail server did not understand the mail system's request."
	case "6":
		return "The destination cannot handle the format or content of your message."
	case "7":
		return "The destination refused the message for security reasons."
	}
	return "The destination could not accept the message."
}

const textWidth = 76

// text returns the human-readable part: what happened to which recipient,
// why, and what the remote server said.
func (r *Report) text(header rfc822.Header) string {
	host := mtaHost(r.ReportingMTA)
	var failed, delayed []Recipient
	for _, rc := range r.Recipients {
		if rc.Action == Failed {
			failed = append(failed, rc)
		} else {
			delayed = append(delayed, rc)
		}
	}
	var b strings.Builder
	para := func(indent string, s string) { wrap(&b, indent, s) }

	para("", "This is the mail system at "+host+".")
	b.WriteString("\r\n")
	about := "Your message"
	if s := originalSubject(header); s != "" {
		about += ` "` + s + `"`
	}
	if len(failed) > 0 {
		para("", about+" could not be delivered to "+count(len(failed))+
			". This is a permanent error: the mail system has given up and will not try again.")
		r.recipients(&b, failed)
		about = "Your message"
	}
	if len(delayed) > 0 {
		para("", about+" has not yet been delivered to "+count(len(delayed))+
			". The mail system will keep trying; you do not need to send it again. If it still cannot be delivered, you will get another notice.")
		r.recipients(&b, delayed)
	}
	received := fmt.Sprintf("MID %d", r.MID)
	if !r.ArrivalDate.IsZero() {
		received += ", received " + r.ArrivalDate.Format(time.RFC1123Z)
	}
	para("", "The header of your message ("+received+") is attached. If you need help, forward this whole notice to your mail administrator.")
	return b.String()
}

func count(n int) string {
	if n == 1 {
		return "the recipient below"
	}
	return fmt.Sprintf("the %d recipients below", n)
}

func (r *Report) recipients(b *strings.Builder, list []Recipient) {
	for _, rc := range list {
		b.WriteString("\r\n")
		wrap(b, "  ", "<"+clean(rc.Original, true)+">")
		wrap(b, "    ", status.Reason(rc.Status)+" ("+rc.Status+"). "+explain(rc.Status))
		diag := clean(rc.Diagnostic, true)
		switch remote := clean(rc.RemoteMTA, true); {
		case diag != "" && remote != "":
			wrap(b, "    ", "The server "+remote+" answered:")
			wrap(b, "      ", diag)
		case diag != "":
			wrap(b, "    ", "Details: "+diag)
		case remote != "":
			wrap(b, "    ", "The last server tried was "+remote+".")
		}
		if !rc.LastAttempt.IsZero() {
			wrap(b, "    ", "Last attempt: "+rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			wrap(b, "    ", "The mail system will keep trying until "+rc.WillRetryUntil.Format(time.RFC1123Z)+".")
		}
	}
	b.WriteString("\r\n")
}

// wrap writes s as lines of at most textWidth columns (when its words
// allow), each starting with indent, ending in CRLF. A word too long even
// for a line of maxLine octets is cut.
func wrap(b *strings.Builder, indent, s string) {
	n := 0
	for _, word := range strings.Fields(s) {
		for len(indent)+len(word) > maxLine {
			if n > 0 {
				b.WriteString("\r\n")
			}
			cut := runeCut(word, maxLine-len(indent))
			b.WriteString(indent + word[:cut] + "\r\n")
			word, n = word[cut:], 0
		}
		switch {
		case n == 0:
			b.WriteString(indent)
			n = len(indent)
		case n+1+utf8.RuneCountInString(word) > textWidth:
			b.WriteString("\r\n" + indent)
			n = len(indent)
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += utf8.RuneCountInString(word)
	}
	if n > 0 {
		b.WriteString("\r\n")
	}
}

// originalSubject returns the Subject of the original header, decoded and
// cleaned, shortened to 120 characters.
func originalSubject(h rfc822.Header) string {
	s, _ := h.Subject()
	s = clean(s, true)
	if utf8.RuneCountInString(s) > 120 {
		i := 0
		for n := 0; n < 117; n++ {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		s = s[:i] + "..."
	}
	return s
}
