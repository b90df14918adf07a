package outbound

import (
	"strconv"
	"strings"

	"github.com/mailgate/mailgate/smtp/status"
)

// Outcomes of a recipient's delivery attempt.
type result uint8

const (
	delivered result = iota + 1
	deferred         // soft failure: retried
	bounced          // hard failure: a DSN, no retry
)

// outcome is what became of some recipients in one attempt: how the mail
// log shows it ("5.1.1 - Bad destination email address ('550', [...])"),
// and what goes into the spool's state and the DSN.
type outcome struct {
	result result
	status string   // enhanced status code, "5.1.1"
	code   string   // the remote reply code, "000" when there was none
	lines  []string // the reply's lines as the server wrote them, or the error
	remote string   // the host that answered, "" when none did
	last   string   // for an expiry: the failure before it, for the DSN
}

// text is the outcome as one line, "550 5.1.1 <a@b>: unknown user", for the
// spool's Reason and the DSN's Diagnostic-Code.
func (o outcome) text() string {
	s := strings.Join(o.lines, " ")
	if o.code == "000" {
		return s
	}
	return o.code + " " + s
}

// diagnostic is the outcome for the DSN's Diagnostic-Code: the remote reply
// or the error, and for an expiry the failure that preceded it.
func (o outcome) diagnostic() string {
	if o.last != "" {
		return o.last
	}
	return o.text()
}

// expiry is the outcome of a recipient whose time in the queue is over, as
// the ESA logs it: "5.4.7 - Delivery expired (message too old) ('000',
// ['timeout'])".
func expiry(last outcome) outcome {
	return outcome{result: bounced, status: "5.4.7", code: "000", lines: []string{"timeout"}, remote: last.remote, last: last.text()}
}

// step is where in the dialogue a reply came, which decides the enhanced
// code of a reply that has none.
type step uint8

const (
	stepConnect step = iota // greeting, EHLO, STARTTLS
	stepMail
	stepRcpt
	stepData // the DATA command and the reply after the dot
)

// replyStatus returns the enhanced status code of a reply: the one the
// server gave (in Enhanced, or at the front of the text when it did not
// announce ENHANCEDSTATUSCODES, as ESAs write "#5.1.0"), its class made to
// agree with the basic code as RFC 3463 requires; otherwise one derived
// from the code and the step.
func replyStatus(code int, enhanced, text string, st step) string {
	class := code / 100
	if class != 4 && class != 5 {
		class = 4 // a reply that is no failure at a failure's place: retry
	}
	if !status.Valid(enhanced) {
		enhanced = leadingStatus(text)
	}
	if enhanced != "" {
		return strconv.Itoa(class) + enhanced[1:]
	}
	c := strconv.Itoa(class)
	switch {
	case code == 421:
		return "4.3.2"
	case st == stepConnect:
		return c + ".3.2"
	case code == 452:
		return "4.3.1"
	case code == 552 && st == stepData:
		return "5.3.4"
	case code == 552:
		return "5.2.2"
	case code >= 530 && code <= 539:
		return c + ".7.0"
	case st == stepData:
		return c + ".3.0"
	}
	// The ESA gives MAIL and RCPT failures without a code X.1.0.
	return c + ".1.0"
}

// leadingStatus finds an RFC 3463 code at the start of a reply's text,
// "5.1.1 ..." or the ESA's "#5.1.1 ...". It returns "" when there is none.
func leadingStatus(text string) string {
	s := strings.TrimPrefix(text, "#")
	end := strings.IndexAny(s, " \n")
	if end < 0 {
		end = len(s)
	}
	if status.Valid(s[:end]) {
		return s[:end]
	}
	return ""
}
