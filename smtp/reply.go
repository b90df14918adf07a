package smtp

import (
	"strconv"
	"strings"
)

// Reply is an SMTP reply. Text may hold several lines separated by "\n";
// they are sent as a multi-line reply.
type Reply struct {
	Code     int
	Enhanced string // RFC 3463 status code such as "5.5.1"; "" for none
	Text     string
}

// IsZero reports whether r is the zero Reply, which handlers return to let
// the engine send its default.
func (r Reply) IsZero() bool { return r.Code == 0 }

// Positive reports a 2xx or 3xx reply.
func (r Reply) Positive() bool { return r.Code >= 200 && r.Code < 400 }

// appendTo writes the reply on the wire. The enhanced code is written the
// RFC 2034 way ("550 5.1.1 text") once the client has negotiated
// ENHANCEDSTATUSCODES with EHLO; without it, failures carry the code the ESA
// way ("550 #5.1.1 text"), which HELO-only clients take as plain text, and
// successes carry none.
func (r Reply) appendTo(dst []byte, enhanced bool) []byte {
	text := r.Text
	for {
		line, rest, more := strings.Cut(text, "\n")
		dst = strconv.AppendInt(dst, int64(r.Code), 10)
		if more {
			dst = append(dst, '-')
		} else {
			dst = append(dst, ' ')
		}
		if r.Enhanced != "" {
			if enhanced {
				dst = append(dst, r.Enhanced...)
				dst = append(dst, ' ')
			} else if r.Code >= 400 {
				dst = append(dst, '#')
				dst = append(dst, r.Enhanced...)
				dst = append(dst, ' ')
			}
		}
		dst = append(dst, line...)
		dst = append(dst, '\r', '\n')
		if !more {
			return dst
		}
		text = rest
	}
}

// String renders the reply as an EHLO client would see it, without CRLFs
// between lines; for logs and tests.
func (r Reply) String() string {
	b := r.appendTo(nil, true)
	return strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
}

// Replies the engine sends itself. Where the ESA has a reply, the text is
// the ESA's (ESA-REFERENCE.md 3.7).
var (
	replyOK              = Reply{250, "2.0.0", "Ok"}
	replyUnrecognized    = Reply{500, "5.5.1", "command not recognized"}
	replyLineTooLong     = Reply{500, "5.5.2", "Line too long"}
	replyBadSyntax       = Reply{501, "5.5.4", "Syntax error in parameters or arguments"}
	replyBadSender       = Reply{501, "5.1.7", "Bad sender address syntax"}
	replyBadRecipient    = Reply{501, "5.1.3", "Bad recipient address syntax"}
	replyPathTooLong     = Reply{501, "5.5.4", "Address too long"}
	replyNeedUTF8        = Reply{553, "5.6.7", "Non-ASCII address requires SMTPUTF8"}
	replyBadParam        = Reply{555, "5.5.4", "Unsupported MAIL or RCPT parameter"}
	replyNeedHelo        = Reply{503, "5.5.1", "EHLO or HELO first"}
	replyNestedMail      = Reply{503, "5.5.1", "Nested MAIL command"}
	replyNeedMail        = Reply{503, "5.5.1", "MAIL first"}
	replyNoValidRcpt     = Reply{554, "5.5.1", "No valid recipients"}
	replyBadSequence     = Reply{503, "5.5.1", "Bad sequence of commands"}
	replyNotImplemented  = Reply{502, "5.5.1", "Command not implemented"}
	replyDataGoAhead     = Reply{354, "", "go ahead"}
	replyVRFY            = Reply{252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery"}
	replySizeTooBig      = Reply{552, "5.3.4", "Message size exceeds fixed maximum message size"}
	replyDataTooBig      = Reply{552, "5.3.4", "Message size exceeds limit"}
	replyBareLineEnding  = Reply{550, "5.6.0", "Message contains bare CR or LF line endings, which are not allowed (RFC 5321 2.3.8)"}
	replyDataLineTooLong = Reply{550, "5.6.0", "Message contains a line longer than 1000 octets (RFC 5321 4.5.3.1.6)"}
	replyTLSActive       = Reply{503, "5.5.1", "TLS already active"}
	replyTLSGoAhead      = Reply{220, "2.0.0", "Ready to start TLS"}
	replyNeedTLS         = Reply{530, "5.7.0", "Must issue a STARTTLS command first"}
	replyRejectedSession = Reply{503, "5.5.1", "Bad sequence of commands: this connection was rejected, send QUIT"}
	replyEarlyTalker     = Reply{554, "5.5.0", "SMTP synchronization error: data sent before the greeting"}

	// ESA disconnect replies: exactly the appliance's text, no status code.
	replyTimeoutUnsuccessful = Reply{421, "", "Timed out waiting for successful message injection, disconnecting."}
	replyTimeoutTotal        = Reply{421, "", "Exceeded allowable connection time, disconnecting."}
	replyTooManyBad          = Reply{421, "", "Exceeded bad SMTP command limit, disconnecting."}

	// Limits the ESA does not have, worded as its disconnects are.
	replyTimeoutIdle   = Reply{421, "4.4.2", "Timed out waiting for a command, disconnecting."}
	replyTooManyJunk   = Reply{421, "4.7.0", "Exceeded junk SMTP command limit, disconnecting."}
	replyTooManyErrors = Reply{421, "4.7.0", "Exceeded SMTP error limit, disconnecting."}
)

// ShutdownReply is sent to sessions closed because the gateway stops.
func ShutdownReply(hostname string) Reply {
	return Reply{421, "4.3.2", hostname + " Service not available, closing transmission channel"}
}
