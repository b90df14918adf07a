package smtp

import "strconv"

// BadKind says why the engine refused a command as bad: the refusals that
// count towards Config.BadCommandLimit. A Handler picks what to log by the
// kind, never by the reply's code, which several kinds share.
type BadKind uint8

const (
	BadUnknown        BadKind = iota + 1 // not a command: an unknown verb, or a NUL in the line (500 5.5.1)
	BadLineTooLong                       // longer than MaxCommandLine (500 5.5.2)
	BadSyntax                            // a malformed argument: HELO or EHLO or VRFY without one, DATA or STARTTLS with one (501)
	BadSender                            // MAIL FROM without a valid path: malformed, too long, non-ASCII without SMTPUTF8 (501, 553)
	BadRecipient                         // RCPT TO without a valid path, the same way (501, 553)
	BadParameter                         // an unsupported ESMTP parameter of MAIL or RCPT, or any after HELO (555)
	BadSequence                          // out of order: no HELO, no MAIL, a nested MAIL, STARTTLS twice or in a transaction, anything but QUIT on a rejected connection (503)
	BadNotImplemented                    // EXPN, or STARTTLS without TLS configured (502)
)

var badNames = [...]string{
	BadUnknown:        "unknown",
	BadLineTooLong:    "line-too-long",
	BadSyntax:         "syntax",
	BadSender:         "sender",
	BadRecipient:      "recipient",
	BadParameter:      "parameter",
	BadSequence:       "sequence",
	BadNotImplemented: "not-implemented",
}

func (k BadKind) String() string {
	if k >= BadUnknown && int(k) < len(badNames) {
		return badNames[k]
	}
	return "BadKind(" + strconv.Itoa(int(k)) + ")"
}
