// Package status holds RFC 3463 enhanced status codes ("5.1.1") and the
// one wording of each that mailgate writes: after the code in the mail
// log's Bounced, Delayed and Double bounce lines, and in the bounce (DSN)
// sent to the sender, so that the two never say different things of one
// code.
package status

import "strings"

// Valid reports whether s is class "." subject "." detail with class 2, 4
// or 5, subject and detail of 1 to 3 digits without leading zeros (RFC 3463
// section 2; a DSN must carry a valid one).
func Valid(s string) bool {
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

// Reason returns the short text of a status code as the ESA writes it
// after the code ("5.1.1 - Bad destination email address"). A detail the
// table does not know gets its subject's text ("5.1.99": that of 5.1.0), an
// unknown subject or a code that is not valid "Other undefined Status".
// The class does not change the text.
func Reason(s string) string {
	if !Valid(s) {
		return reasons["0.0"]
	}
	sub := s[2:] // subject.detail
	if r, ok := reasons[sub]; ok {
		return r
	}
	subject, _, _ := strings.Cut(sub, ".")
	if r, ok := reasons[subject+".0"]; ok {
		return r
	}
	return reasons["0.0"]
}

// reasons maps the subject and detail of a code to its text. Where ESA
// logs show the appliance's own wording (marked ESA) it is used, so that
// existing log searches keep working; the rest is RFC 3463's titles (RFC
// 6531's for 6.7, RFC 7505's for 1.10).
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
	"3.1":  "Mail system full",                    // ESA (and RFC 3463)
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
