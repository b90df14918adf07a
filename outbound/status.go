package outbound

import (
	"strconv"
	"strings"
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

// reason is the mail log's wording of an enhanced status code.
func reason(status string) string {
	_, sub, ok := strings.Cut(status, ".")
	if !ok {
		return reasons["0.0"]
	}
	if r, ok := reasons[sub]; ok {
		return r
	}
	subject, _, _ := strings.Cut(sub, ".")
	if r, ok := reasons[subject+".0"]; ok {
		return r
	}
	return reasons["0.0"]
}

// reasons maps the subject and detail of an RFC 3463 code to the text of
// Bounced/Delayed lines. Where ESA logs show the appliance's own wording
// (marked ESA) it is used, so that existing log searches keep working; the
// rest is RFC 3463's (and RFC 7505's for 1.10).
var reasons = map[string]string{
	"0.0":  "Other undefined Status",
	"1.0":  "Unknown address error",         // ESA
	"1.1":  "Bad destination email address", // ESA
	"1.2":  "Bad destination host",          // ESA
	"1.3":  "Bad destination mailbox address syntax",
	"1.4":  "Destination mailbox address ambiguous",
	"1.5":  "Destination address valid",
	"1.6":  "Destination mailbox has moved, No forwarding address",
	"1.7":  "Bad sender's mailbox address syntax",
	"1.8":  "Bad sender's system address",
	"1.10": "Recipient address has null MX",
	"2.0":  "Other or undefined mailbox status",
	"2.1":  "Mailbox disabled, not accepting messages",
	"2.2":  "Mailbox full",
	"2.3":  "Message length exceeds administrative limit",
	"2.4":  "Mailing list expansion problem",
	"3.0":  "Other or undefined mail system status",
	"3.1":  "Mail system full",                    // ESA
	"3.2":  "Not accepting messages at this time", // ESA
	"3.3":  "System not capable of selected features",
	"3.4":  "Message too big for system",
	"3.5":  "System incorrectly configured",
	"4.0":  "Other network problem", // ESA
	"4.1":  "No answer from host",
	"4.2":  "Bad connection",
	"4.3":  "Directory server failure",
	"4.4":  "Unable to route",
	"4.5":  "Mail system congestion",
	"4.6":  "Routing loop detected",
	"4.7":  "Delivery expired (message too old)", // ESA
	"5.0":  "Other or undefined protocol status",
	"5.1":  "Invalid command",
	"5.2":  "Syntax error",
	"5.3":  "Too many recipients",
	"5.4":  "Invalid command arguments",
	"5.5":  "Wrong protocol version",
	"6.0":  "Other or undefined media error",
	"6.1":  "Media not supported",
	"6.2":  "Conversion required and prohibited",
	"6.3":  "Conversion required but not supported",
	"6.4":  "Conversion with loss performed",
	"6.5":  "Conversion Failed",
	"6.7":  "Non-ASCII addresses not permitted for that sender/recipient",
	"7.0":  "Other or undefined security status",
	"7.1":  "Delivery not authorized, message refused",
	"7.2":  "Mailing list expansion prohibited",
	"7.3":  "Security conversion required but not possible",
	"7.4":  "Security features not supported",
	"7.5":  "Cryptographic failure",
	"7.6":  "Cryptographic algorithm not supported",
	"7.7":  "Message integrity failure",
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
	if !validStatus(enhanced) {
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
	if validStatus(s[:end]) {
		return s[:end]
	}
	return ""
}

// validStatus reports whether s is class.subject.detail with class 2, 4 or
// 5, subject and detail of 1 to 3 digits without leading zeros (RFC 3463
// 2; a DSN must carry a valid one).
func validStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || strings.IndexByte("245", parts[0][0]) < 0 {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
		if len(p) > 1 && p[0] == '0' {
			return false
		}
	}
	return true
}
