package maillog

import (
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Forms of event.DeliveryStart.
const (
	DeliveryStartRID    = iota // Delivery start DCID 3 MID 4 to RID [0, 1]
	DeliveryStartBare          // Delivery start DCID 4901127 MID 10288263 to [0]   (before 4.x)
	DeliveryStartOffbox        // Delivery start DCID 6565554 MID 24611251 to RID [0] to offbox IronPort Spam Quarantine
)

// offboxISQ is what DeliveryStartOffbox adds after the RID list.
const offboxISQ = " to offbox IronPort Spam Quarantine"

// Forms of event.Outcome (Bounced: / Delayed:).
const (
	OutcomeFromTo         = iota // Bounced: DCID 8413617 MID 19338947 From: <a@x> To: <b@y> RID 0 - 5.4.7 - Delivery expired (message too old) ('000', ['timeout'])
	OutcomeToRID                 // Bounced: DCID 0 MID 8 to RID 0 - 5.1.2 - Bad destination host ('000', ['...'])
	OutcomeToRIDHeaders          // Bounced: DCID 3 MID 4 to RID 0 - 5.1.0 - Unknown address error ('550', ['...']) []
	OutcomeMessage               // Delayed: DCID: 4370 Message 10800 to 0 - 4.4.0 - Other network problem ('000', ['...'])
	OutcomeMessageHeaders        // Bounced: DCID: 1911 Message 3993 to 0 - 5.1.0 - Unknown address error ('554', ['Too long line.']) []
	OutcomeFromToTight           // Bounced: DCID 2 MID 15232 From:<a@x> To:<b@y> RID 0 - 5.1.0 - Unknown address error ('550', ['...'])
	OutcomeBounceLog             // Bounced: 45346670:0 From:<a@x> To:<b@y> Reason: "5.1.0 - Unknown address error" Response: "('550', ['...'])"   (the bounce log; no DCID)
)

// Forms of event.ConnectionError.
const (
	ConnErrorCurrent       = iota // Connection Error: DCID 63 domain: d.com IP: 10.13.101.31 port: 25 details: [Errno 0] Error interface: 10.10.192.50 reason: network error
	ConnErrorDCIDColon            // Connection Error: DCID: 263 IP: 128.242.110.90 details: EOF interface: 128.197.12.246 reason: network error
	ConnErrorLeadingReason        // Connection Error: connection timed out DCID: 2804 IP: 69.59.158.5 details: timeout interface: 10.20.1.49
)

// Forms of event.Pending.
const (
	PendingMIDRID      = iota // MID 154 to RID [0] pending till Wed Jul 20 10:15:41 2005 [Default]
	PendingMIDBare            // MID 4195162 to [0] pending till Tue Apr 27 13:05:17 2004 [Default]
	PendingMessageRID         // Message 1232089 to RID [0] pending till Wed May 26 14:58:26 2004
	PendingMessageBare        // Message 4195162 to [0] pending till Tue Apr 27 13:05:17 2004 [Default]
)

// QuoteFor returns the quote mailgate uses for a Subject or Response text,
// as the ESA does: ' unless the text holds a ', then ".
func QuoteFor(text string) byte {
	if strings.IndexByte(text, '\'') >= 0 {
		return '"'
	}
	return '\''
}

// AppendLine appends the local-file form of e, without the newline:
// "Wed Sep  6 13:13:16 2023 Info: " and the message. The time is written in
// loc (nil: time.Local). A zero Time writes no timestamp and a zero Level no
// level word, which is how ParseLine keeps lines that had none.
func AppendLine(dst []byte, e event.Entry, loc *time.Location) []byte {
	if loc == nil {
		loc = time.Local
	}
	if !e.Time.IsZero() {
		dst = appendStamp(dst, e.Time, loc)
		dst = append(dst, ' ')
	}
	if e.Level != 0 {
		dst = append(dst, e.Level.String()...)
		dst = append(dst, ": "...)
	}
	return appendMessage(dst, e.Event, loc)
}

// AppendMessage appends the message part of ev's line, what follows
// "Info: ". Text fields are escaped (see the package documentation), so the
// result holds no line break whatever the fields hold. Times inside a
// message (Pending) are written in their own location.
func AppendMessage(dst []byte, ev event.Event) []byte {
	return appendMessage(dst, ev, nil)
}

func appendUint(dst []byte, prefix string, n uint64) []byte {
	dst = append(dst, prefix...)
	return strconv.AppendUint(dst, n, 10)
}

func appendInt(dst []byte, prefix string, n int64) []byte {
	dst = append(dst, prefix...)
	return strconv.AppendInt(dst, n, 10)
}

// appendText appends prefix and the escaped s.
func appendText(dst []byte, prefix, s string) []byte {
	dst = append(dst, prefix...)
	return appendEscaped(dst, s)
}

// appendLabel appends label (ending in ':') and, when s is not empty, a
// space and s: an empty value leaves no trailing space.
func appendLabel(dst []byte, label, s string) []byte {
	dst = append(dst, label...)
	if s == "" {
		return dst
	}
	dst = append(dst, ' ')
	return appendEscaped(dst, s)
}

// appendAddr appends prefix and <addr>.
func appendAddr(dst []byte, prefix, addr string) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, '<')
	dst = appendEscapedExtra(dst, addr, addrExtra)
	return append(dst, '>')
}

func appendToken(dst []byte, prefix, s string) []byte {
	dst = append(dst, prefix...)
	return appendEscapedExtra(dst, s, tokenExtra)
}

// appendRIDs appends "[0, 1]".
func appendRIDs(dst []byte, rids []int) []byte {
	dst = append(dst, '[')
	for i, r := range rids {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = strconv.AppendInt(dst, int64(r), 10)
	}
	return append(dst, ']')
}

// appendQuoted appends s between quotes q (a single or a double quote), or
// bare for any other q.
func appendQuoted(dst []byte, s string, q byte) []byte {
	if q != '\'' && q != '"' {
		return appendEscaped(dst, s)
	}
	dst = append(dst, q)
	dst = appendEscaped(dst, s)
	return append(dst, q)
}

func appendConn(dst []byte, c event.ConnRef) []byte {
	dst = append(dst, c.Kind.String()...)
	dst = append(dst, ' ')
	return strconv.AppendUint(dst, c.ID, 10)
}

// appendMessage renders ev. Each kind of event has a function of its
// own, which takes ev and asserts its type there: a type switch that
// binds its cases' values keeps a copy of each of them in its frame, and
// with every kind of event that was nearly 2 KB on the stack of every
// session's goroutine, whose first log line then grew (copied) its stack
// (2 % of a relayed message's CPU).
func appendMessage(dst []byte, ev event.Event, loc *time.Location) []byte {
	switch ev.(type) {
	// Receiving.
	case event.NewICID:
		return appendNewICID(dst, ev)
	case event.HATMatch:
		return appendHATMatch(dst, ev)
	case event.TLS:
		return appendTLS(dst, ev)
	case event.StartMID:
		return appendStartMID(dst, ev)
	case event.MailFrom:
		return appendMailFrom(dst, ev)
	case event.RcptTo:
		return appendRcptTo(dst, ev)
	case event.RcptRejected:
		return appendRcptRejected(dst, ev)
	case event.InvalidAddress:
		return appendInvalidAddress(dst, ev)
	case event.ReceivingFailed:
		return appendReceivingFailed(dst, ev)
	case event.UnknownCommand:
		return appendUnknownCommand(dst, ev)
	case event.MessageIDHeader:
		return appendMessageIDHeader(dst, ev)
	case event.Subject:
		return appendSubject(dst, ev)
	case event.Ready:
		return appendReady(dst, ev)
	case event.PolicyMatch:
		return appendPolicyMatch(dst, ev)
	case event.Queued:
		return appendQueued(dst, ev)
	case event.ICIDLost:
		return appendICIDLost(dst, ev)
	case event.MessageAborted:
		return appendMessageAborted(dst, ev)
	case event.MessageFinished:
		return appendMessageFinished(dst, ev)
	case event.ICIDClose:
		return appendICIDClose(dst, ev)
	case event.ICIDDisconnected:
		return appendICIDDisconnected(dst, ev)
	case event.SMTPAuth:
		return appendSMTPAuth(dst, ev)

	// Delivery.
	case event.NewDCID:
		return appendNewDCID(dst, ev)
	case event.DeliveryStart:
		return appendDeliveryStart(dst, ev)
	case event.MessageDone:
		return appendMessageDone(dst, ev)
	case event.Response:
		return appendResponse(dst, ev)
	case event.Outcome:
		return appendOutcome(dst, ev)
	case event.ConnectionError:
		return appendConnError(dst, ev)
	case event.DCIDClose:
		return appendDCIDClose(dst, ev)
	case event.BounceGenerated:
		return appendBounceGenerated(dst, ev)
	case event.DoubleBounce:
		return appendDoubleBounce(dst, ev)
	case event.PossibleDelivery:
		return appendPossibleDelivery(dst, ev)
	case event.Deleted:
		return appendDeleted(dst, ev)
	case event.Pending:
		return appendPending(dst, ev, loc)

	// Files, debug logs, our own lines.
	case event.BeginLogfile:
		return appendBeginLogfile(dst, ev)
	case event.LogfileVersion:
		return appendLogfileVersion(dst, ev)
	case event.TimeOffset:
		return appendTimeOffset(dst, ev)
	case event.InjectionDebug:
		return appendInjectionDebug(dst, ev)
	case event.ConnectionEnd:
		return appendConnectionEnd(dst, ev)
	case event.ResourceConservation:
		return appendResourceConservation(dst, ev)
	case event.ScanSummary:
		return appendScanSummary(dst, ev)
	case event.Unknown:
		return appendUnknown(dst, ev)
	case event.AlertSent:
		return appendAlertSent(dst, ev)
	case event.Status:
		return appendStatus(dst, ev)
	// The pipeline's (pipeline.go).
	case event.SpamQuarantineTag:
		return appendSpamQuarantineTag(dst, ev)
	case event.SpamQuarantined:
		return appendSpamQuarantined(dst, ev)
	case event.SpamReinjected:
		return appendSpamReinjected(dst, ev)
	case event.Quarantined:
		return appendQuarantined(dst, ev)
	case event.QuarantineReason:
		return appendQuarantineReason(dst, ev)
	case event.QuarantineReleased:
		return appendQuarantineReleased(dst, ev)
	case event.QuarantineDeleted:
		return appendQuarantineDeleted(dst, ev)
	case event.Rewritten:
		return appendRewritten(dst, ev)
	case event.Split:
		return appendSplit(dst, ev)
	case event.Generated:
		return appendGenerated(dst, ev)
	case event.PolicyDisposal:
		return appendPolicyDisposal(dst, ev)
	case event.EngineVerdict:
		return appendEngineVerdict(dst, ev)
	case event.AVVerdict:
		return appendAVVerdict(dst, ev)
	case event.OutbreakVerdict:
		return appendOutbreakVerdict(dst, ev)
	case event.AMPVerdict:
		return appendAMPVerdict(dst, ev)
	case event.TooBig:
		return appendTooBig(dst, ev)
	case event.SPFVerdict:
		return appendSPFVerdict(dst, ev)
	case event.DKIMVerdict:
		return appendDKIMVerdict(dst, ev)
	case event.DMARCVerdict:
		return appendDMARCVerdict(dst, ev)
	case event.Signing:
		return appendSigning(dst, ev)
	case event.Attachment:
		return appendAttachment(dst, ev)
	case event.CustomLog:
		return appendCustomLog(dst, ev)
	}
	return dst
}

func appendNewICID(dst []byte, ev event.Event) []byte {
	e := ev.(event.NewICID)
	dst = appendUint(dst, "New SMTP ICID ", e.ICID)
	dst = appendText(dst, " interface ", e.Interface)
	if e.InterfaceIP != "" {
		dst = appendText(dst, " (", e.InterfaceIP)
		dst = append(dst, ')')
	}
	dst = appendText(dst, " address ", e.RemoteIP)
	if e.ReverseHost != "" {
		dst = appendText(dst, " reverse dns host ", e.ReverseHost)
		if e.Verified {
			dst = append(dst, " verified yes"...)
		} else {
			dst = append(dst, " verified no"...)
		}
	}
	return dst
}

func appendHATMatch(dst []byte, ev event.Event) []byte {
	e := ev.(event.HATMatch)
	dst = appendUint(dst, "ICID ", e.ICID)
	if e.Action != "" {
		dst = appendToken(dst, " ", e.Action)
		dst = appendText(dst, " SG ", e.Group)
		dst = appendText(dst, " match ", e.Rule)
	}
	dst = appendText(dst, " SBRS ", e.SBRS)
	if e.Country != "" {
		dst = appendText(dst, " country ", e.Country)
	}
	return dst
}

func appendTLS(dst []byte, ev event.Event) []byte {
	e := ev.(event.TLS)
	dst = appendConn(dst, e.Conn)
	if e.Success {
		dst = append(dst, " TLS success"...)
		if e.Protocol != "" || e.Cipher != "" {
			dst = append(dst, " protocol "...)
			dst = appendEscapedExtra(dst, e.Protocol, " ")
			dst = append(dst, " cipher "...)
			dst = appendEscapedExtra(dst, e.Cipher, " ")
		}
	} else {
		dst = append(dst, " TLS failed"...)
		if e.Reason != "" {
			dst = appendText(dst, ": ", e.Reason)
		}
	}
	return dst
}

func appendStartMID(dst []byte, ev event.Event) []byte {
	e := ev.(event.StartMID)
	dst = appendUint(dst, "Start MID ", e.MID)
	dst = appendUint(dst, " ICID ", e.ICID)
	return dst
}

func appendMailFrom(dst []byte, ev event.Event) []byte {
	e := ev.(event.MailFrom)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendUint(dst, " ICID ", e.ICID)
	dst = appendAddr(dst, " From: ", e.From)
	return dst
}

func appendRcptTo(dst []byte, ev event.Event) []byte {
	e := ev.(event.RcptTo)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendUint(dst, " ICID ", e.ICID)
	dst = appendInt(dst, " RID ", int64(e.RID))
	dst = appendAddr(dst, " To: ", e.To)
	return dst
}

func appendRcptRejected(dst []byte, ev event.Event) []byte {
	e := ev.(event.RcptRejected)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendUint(dst, " ICID ", e.ICID)
	dst = appendAddr(dst, " To: ", e.To)
	dst = appendText(dst, " Rejected by ", e.By)
	return dst
}

func appendInvalidAddress(dst []byte, ev event.Event) []byte {
	e := ev.(event.InvalidAddress)
	dst = appendUint(dst, "ICID ", e.ICID)
	if e.MID != 0 {
		dst = appendUint(dst, " MID ", e.MID)
	}
	if e.Recipient {
		dst = appendLabel(dst, " Invalid recipient address:", e.Detail)
	} else {
		dst = appendLabel(dst, " Invalid sender address:", e.Detail)
	}
	return dst
}

func appendReceivingFailed(dst []byte, ev event.Event) []byte {
	e := ev.(event.ReceivingFailed)
	dst = appendUint(dst, "ICID ", e.ICID)
	dst = appendLabel(dst, " Receiving Failed:", e.Reason)
	return dst
}

func appendUnknownCommand(dst []byte, ev event.Event) []byte {
	e := ev.(event.UnknownCommand)
	dst = appendUint(dst, "ICID ", e.ICID)
	dst = appendLabel(dst, " Unknown command:", e.Command)
	return dst
}

func appendMessageIDHeader(dst []byte, ev event.Event) []byte {
	e := ev.(event.MessageIDHeader)
	dst = appendUint(dst, "MID ", e.MID)
	dst = append(dst, " Message-ID "...)
	dst = appendQuoted(dst, e.MessageID, QuoteFor(e.MessageID))
	return dst
}

func appendSubject(dst []byte, ev event.Event) []byte {
	e := ev.(event.Subject)
	dst = appendUint(dst, "MID ", e.MID)
	dst = append(dst, " Subject"...)
	if e.Subject != "" || e.Quote == '\'' || e.Quote == '"' {
		dst = append(dst, ' ')
		dst = appendQuoted(dst, e.Subject, e.Quote)
	}
	return dst
}

func appendReady(dst []byte, ev event.Event) []byte {
	e := ev.(event.Ready)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendInt(dst, " ready ", e.Bytes)
	dst = appendAddr(dst, " bytes from ", e.From)
	return dst
}

func appendPolicyMatch(dst []byte, ev event.Event) []byte {
	e := ev.(event.PolicyMatch)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendText(dst, " matched all recipients for per-recipient policy ", e.Policy)
	dst = appendText(dst, " in the ", e.Table)
	dst = append(dst, " table"...)
	return dst
}

func appendQueued(dst []byte, ev event.Event) []byte {
	e := ev.(event.Queued)
	dst = appendUint(dst, "MID ", e.MID)
	dst = append(dst, " queued for delivery"...)
	return dst
}

func appendICIDLost(dst []byte, ev event.Event) []byte {
	e := ev.(event.ICIDLost)
	dst = appendUint(dst, "ICID ", e.ICID)
	dst = append(dst, " lost"...)
	return dst
}

func appendMessageAborted(dst []byte, ev event.Event) []byte {
	e := ev.(event.MessageAborted)
	dst = appendUint(dst, "Message aborted MID ", e.MID)
	if e.Reason != "" {
		dst = appendText(dst, " ", e.Reason)
	}
	return dst
}

func appendMessageFinished(dst []byte, ev event.Event) []byte {
	e := ev.(event.MessageFinished)
	dst = appendUint(dst, "Message finished MID ", e.MID)
	if e.Status != "" {
		dst = appendText(dst, " ", e.Status)
	}
	return dst
}

func appendICIDClose(dst []byte, ev event.Event) []byte {
	e := ev.(event.ICIDClose)
	dst = appendUint(dst, "ICID ", e.ICID)
	dst = append(dst, " close"...)
	return dst
}

func appendICIDDisconnected(dst []byte, ev event.Event) []byte {
	e := ev.(event.ICIDDisconnected)
	dst = appendUint(dst, "ICID ", e.ICID)
	dst = appendText(dst, " disconnected address ", e.Address)
	dst = appendText(dst, ", ", e.Reason)
	return dst
}

func appendSMTPAuth(dst []byte, ev event.Event) []byte {
	e := ev.(event.SMTPAuth)
	if e.NoColon {
		dst = appendUint(dst, "SMTP Auth (ICID ", e.ICID)
	} else {
		dst = appendUint(dst, "SMTP Auth: (ICID ", e.ICID)
	}
	dst = append(dst, ") "...)
	if e.Outcome == event.AuthRequired {
		dst = append(dst, "was required but remote host did not initiate it"...)
		return dst
	}
	dst = appendToken(dst, "", e.Outcome)
	dst = appendText(dst, " for user: ", e.User)
	dst = appendToken(dst, " using AUTH mechanism: ", e.Mechanism)
	dst = appendToken(dst, " with profile: ", e.Profile)
	return dst
}

func appendNewDCID(dst []byte, ev event.Event) []byte {
	e := ev.(event.NewDCID)
	dst = appendUint(dst, "New SMTP DCID ", e.DCID)
	dst = appendText(dst, " interface ", e.InterfaceIP)
	dst = appendText(dst, " address ", e.RemoteIP)
	if e.Port != 0 {
		dst = appendInt(dst, " port ", int64(e.Port))
	}
	return dst
}

func appendDeliveryStart(dst []byte, ev event.Event) []byte {
	e := ev.(event.DeliveryStart)
	dst = appendUint(dst, "Delivery start DCID ", e.DCID)
	dst = appendUint(dst, " MID ", e.MID)
	if e.Form == DeliveryStartBare {
		dst = append(dst, " to "...)
	} else {
		dst = append(dst, " to RID "...)
	}
	dst = appendRIDs(dst, e.RIDs)
	if e.Form == DeliveryStartOffbox {
		dst = append(dst, offboxISQ...)
	}
	return dst
}

func appendMessageDone(dst []byte, ev event.Event) []byte {
	e := ev.(event.MessageDone)
	dst = appendUint(dst, "Message done DCID ", e.DCID)
	dst = appendUint(dst, " MID ", e.MID)
	dst = append(dst, " to RID "...)
	dst = appendRIDs(dst, e.RIDs)
	if e.Extra != "" {
		dst = appendText(dst, " ", e.Extra)
	}
	return dst
}

func appendResponse(dst []byte, ev event.Event) []byte {
	e := ev.(event.Response)
	dst = appendUint(dst, "MID ", e.MID)
	dst = append(dst, " RID "...)
	dst = appendRIDs(dst, e.RIDs)
	dst = append(dst, " Response"...)
	if e.Text != "" || e.Quote == '\'' || e.Quote == '"' {
		dst = append(dst, ' ')
		dst = appendQuoted(dst, e.Text, e.Quote)
	}
	return dst
}

func appendDCIDClose(dst []byte, ev event.Event) []byte {
	e := ev.(event.DCIDClose)
	dst = appendUint(dst, "DCID ", e.DCID)
	dst = append(dst, " close"...)
	return dst
}

func appendBounceGenerated(dst []byte, ev event.Event) []byte {
	e := ev.(event.BounceGenerated)
	dst = appendUint(dst, "MID ", e.MID)
	dst = appendUint(dst, " generated for bounce of MID ", e.OrigMID)
	return dst
}

func appendDoubleBounce(dst []byte, ev event.Event) []byte {
	e := ev.(event.DoubleBounce)
	dst = appendUint(dst, "Double bounce: Message ", e.MID)
	dst = appendInt(dst, " to ", int64(e.RID))
	dst = appendText(dst, " - ", e.Status)
	dst = appendText(dst, " - ", e.Reason)
	return dst
}

func appendPossibleDelivery(dst []byte, ev event.Event) []byte {
	e := ev.(event.PossibleDelivery)
	dst = appendUint(dst, "Possible Delivery: DCID: ", e.DCID)
	dst = appendUint(dst, " MID ", e.MID)
	dst = append(dst, " to "...)
	dst = appendRIDs(dst, e.RIDs)
	return dst
}

func appendDeleted(dst []byte, ev event.Event) []byte {
	e := ev.(event.Deleted)
	dst = appendUint(dst, "Deleted: MID ", e.MID)
	dst = append(dst, " to "...)
	dst = appendRIDs(dst, e.RIDs)
	return dst
}

func appendPending(dst []byte, ev event.Event, loc *time.Location) []byte {
	e := ev.(event.Pending)
	switch e.Form {
	case PendingMessageRID, PendingMessageBare:
		dst = appendUint(dst, "Message ", e.MID)
	default:
		dst = appendUint(dst, "MID ", e.MID)
	}
	switch e.Form {
	case PendingMIDBare, PendingMessageBare:
		dst = append(dst, " to "...)
	default:
		dst = append(dst, " to RID "...)
	}
	dst = appendRIDs(dst, e.RIDs)
	dst = append(dst, " pending till "...)
	until := e.Until
	if loc != nil {
		until = until.In(loc)
	}
	dst = appendAsctime(dst, until)
	if e.Profile != "" {
		dst = appendText(dst, " [", e.Profile)
		dst = append(dst, ']')
	}
	return dst
}

func appendBeginLogfile(dst []byte, ev event.Event) []byte {
	dst = append(dst, "Begin Logfile"...)
	return dst
}

func appendLogfileVersion(dst []byte, ev event.Event) []byte {
	e := ev.(event.LogfileVersion)
	dst = appendText(dst, "Version: ", e.Version)
	dst = appendText(dst, " SN: ", e.Serial)
	return dst
}

func appendTimeOffset(dst []byte, ev event.Event) []byte {
	e := ev.(event.TimeOffset)
	dst = appendInt(dst, "Time offset from UTC: ", int64(e.Seconds))
	dst = append(dst, " seconds"...)
	return dst
}

func appendInjectionDebug(dst []byte, ev event.Event) []byte {
	e := ev.(event.InjectionDebug)
	dst = strconv.AppendUint(dst, e.ICID, 10)
	if e.Sent {
		dst = append(dst, " Sent: '"...)
	} else {
		dst = append(dst, " Rcvd: '"...)
	}
	dst = appendEscaped(dst, e.Data)
	dst = append(dst, '\'')
	return dst
}

func appendResourceConservation(dst []byte, ev event.Event) []byte {
	e := ev.(event.ResourceConservation)
	dst = appendToken(dst, "mailgate: resource conservation level=", e.Level)
	dst = appendToken(dst, " cause=", e.Cause)
	dst = appendInt(dst, " messages=", e.Messages)
	dst = appendInt(dst, " bytes=", e.Bytes)
	dst = appendInt(dst, " memory=", e.Memory)
	return dst
}

func appendUnknown(dst []byte, ev event.Event) []byte {
	e := ev.(event.Unknown)
	dst = appendEscaped(dst, e.Text)
	return dst
}

func appendAlertSent(dst []byte, ev event.Event) []byte {
	e := ev.(event.AlertSent)
	dst = appendText(dst, "A ", e.Class)
	dst = appendText(dst, "/", e.Severity)
	dst = appendWord(dst, " alert was sent to ", e.To)
	dst = appendText(dst, ` with subject "`, e.Subject)
	dst = append(dst, `".`...)
	return dst
}

func appendStatus(dst []byte, ev event.Event) []byte {
	e := ev.(event.Status)
	dst = append(dst, "Status:"...)
	for _, f := range e.Fields {
		dst = append(dst, ' ')
		dst = appendToken(dst, "", f.Name)
		dst = append(dst, ' ')
		dst = appendToken(dst, "", f.Value)
	}
	return dst
}

func appendOutcome(dst []byte, ev event.Event) []byte {
	e := ev.(event.Outcome)
	if e.Hard {
		dst = append(dst, "Bounced: "...)
	} else {
		dst = append(dst, "Delayed: "...)
	}
	switch e.Form {
	case OutcomeBounceLog:
		return appendBounceLog(dst, e)
	case OutcomeFromToTight:
		dst = appendUint(dst, "DCID ", e.DCID)
		dst = appendUint(dst, " MID ", e.MID)
		dst = appendAddr(dst, " From:", e.From)
		dst = appendAddr(dst, " To:", e.To)
		dst = appendInt(dst, " RID ", int64(e.RID))
	case OutcomeMessage, OutcomeMessageHeaders:
		dst = appendUint(dst, "DCID: ", e.DCID)
		dst = appendUint(dst, " Message ", e.MID)
		dst = appendInt(dst, " to ", int64(e.RID))
	case OutcomeToRID, OutcomeToRIDHeaders:
		dst = appendUint(dst, "DCID ", e.DCID)
		dst = appendUint(dst, " MID ", e.MID)
		dst = appendInt(dst, " to RID ", int64(e.RID))
	default:
		dst = appendUint(dst, "DCID ", e.DCID)
		dst = appendUint(dst, " MID ", e.MID)
		dst = appendAddr(dst, " From: ", e.From)
		dst = appendAddr(dst, " To: ", e.To)
		dst = appendInt(dst, " RID ", int64(e.RID))
	}
	dst = appendText(dst, " - ", e.Status)
	dst = appendText(dst, " - ", e.Reason)
	dst = append(dst, ' ')
	dst = appendReply(dst, e)
	if e.Form == OutcomeToRIDHeaders || e.Form == OutcomeMessageHeaders {
		dst = append(dst, " []"...)
	}
	return dst
}

// appendReply appends "('550', ['line', ...])".
func appendReply(dst []byte, e event.Outcome) []byte {
	dst = append(dst, '(')
	dst = appendPyStr(dst, e.Code)
	dst = append(dst, ", ["...)
	for i, l := range e.Response {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendPyStr(dst, l)
	}
	return append(dst, "])"...)
}

// appendBounceLog appends a line of the ESA's bounce log, after "Bounced: ".
func appendBounceLog(dst []byte, e event.Outcome) []byte {
	dst = strconv.AppendUint(dst, e.MID, 10)
	dst = appendInt(dst, ":", int64(e.RID))
	dst = appendAddr(dst, " From:", e.From)
	dst = appendAddr(dst, " To:", e.To)
	dst = appendText(dst, ` Reason: "`, e.Status)
	dst = appendText(dst, " - ", e.Reason)
	dst = append(dst, `" Response: "`...)
	dst = appendReply(dst, e)
	return append(dst, '"')
}

func appendConnError(dst []byte, ev event.Event) []byte {
	e := ev.(event.ConnectionError)
	dst = append(dst, "Connection Error: "...)
	switch e.Form {
	case ConnErrorDCIDColon, ConnErrorLeadingReason:
		if e.Form == ConnErrorLeadingReason {
			dst = appendEscaped(dst, e.Reason)
			dst = append(dst, ' ')
		}
		dst = appendUint(dst, "DCID: ", e.DCID)
		dst = appendText(dst, " IP: ", e.IP)
	default:
		dst = appendUint(dst, "DCID ", e.DCID)
		dst = appendText(dst, " domain: ", e.Domain)
		dst = appendText(dst, " IP: ", e.IP)
		dst = appendInt(dst, " port: ", int64(e.Port))
	}
	dst = appendText(dst, " details: ", e.Details)
	dst = appendText(dst, " interface: ", e.InterfaceIP)
	if e.Form != ConnErrorLeadingReason {
		dst = appendText(dst, " reason: ", e.Reason)
	}
	return dst
}

// appendConnectionEnd writes mailgate's own line:
//
//	mailgate: ICID 10293 ended cause=peer-reset state=rcpt last=RCPT data_bytes=0 duration=36.012s ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4 detail='...'
//
// Values are single tokens (space and '=' escaped as \xNN); last=- when
// there was no command; the duration is in seconds, rounded to the
// millisecond; each verb with Total > 0 is written as verb=OK when all were
// accepted, else verb=OK/Total, and commands= sums them the same way;
// detail='...' comes last, only when Detail is not empty.
func appendConnectionEnd(dst []byte, ev event.Event) []byte {
	e := ev.(event.ConnectionEnd)
	dst = appendUint(dst, "mailgate: ICID ", e.ICID)
	dst = appendToken(dst, " ended cause=", e.Cause.String())
	dst = appendToken(dst, " state=", e.State)
	switch e.LastCommand {
	case "":
		dst = append(dst, " last=-"...)
	case "-":
		dst = append(dst, ` last=\x2d`...)
	default:
		dst = appendToken(dst, " last=", e.LastCommand)
	}
	dst = appendInt(dst, " data_bytes=", e.DataBytes)
	dst = append(dst, " duration="...)
	dst = appendSeconds(dst, e.Duration)
	var ok, total int
	for _, c := range e.Commands {
		if c.Total == 0 {
			continue
		}
		ok += c.OK
		total += c.Total
		dst = appendToken(dst, " ", c.Verb)
		dst = appendCount(dst, "=", c.OK, c.Total)
	}
	dst = appendCount(dst, " commands=", ok, total)
	if e.Detail != "" {
		dst = appendText(dst, " detail='", e.Detail)
		dst = append(dst, '\'')
	}
	return dst
}

func appendCount(dst []byte, prefix string, ok, total int) []byte {
	dst = appendInt(dst, prefix, int64(ok))
	if ok != total {
		dst = appendInt(dst, "/", int64(total))
	}
	return dst
}

// appendSeconds writes d as seconds with three decimals: "36.012s".
func appendSeconds(dst []byte, d time.Duration) []byte {
	ms := d.Round(time.Millisecond).Milliseconds()
	if ms < 0 {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	f := ms % 1000
	return append(dst, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10), 's')
}
