package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/rfc822"
	"github.com/mailgate/mailgate/smtp"
	"github.com/mailgate/mailgate/userdb"
)

// commitTimeout bounds the wait for the spool's fsync; past it the client
// gets a 451 and will retry.
const commitTimeout = 2 * time.Minute

// session is the listener's side of one SMTP connection: the smtp.Handler
// that applies policy and writes the events.
type session struct {
	l        *Listener
	icid     uint64
	client   policy.Client
	decision policy.Decision
	refused  string // why the greeting refused the connection, if it did

	helo     string
	ehlo     bool
	tls      *tls.ConnectionState
	injected int
	notes    []string     // protocol violations that did not end the session
	user     *userdb.User // AUTH succeeded as this user

	// The open transaction; mid is 0 when there is none.
	mid    uint64
	from   string
	params smtp.MailParams
	rcpts  []queue.Recipient
}

func (h *session) emit(ev event.Event) { h.l.emit(ev) }

func (h *session) Hello(verb, domain string) smtp.Reply {
	h.helo, h.ehlo = domain, verb == "ehlo"
	return smtp.Reply{}
}

func (h *session) Mail(from smtp.Path, p smtp.MailParams) smtp.Reply {
	pol := h.decision.Policy
	if max := pol.MaxMessagesPerConnection; max > 0 && h.injected >= max {
		return smtp.Reply{Code: 421, Enhanced: "4.7.0", Text: "Too many messages for this session"}
	}
	if r := h.authMail(from.String()); !r.IsZero() {
		return r
	}
	mid, err := h.l.srv.IDs.Next(queue.MID)
	if err != nil {
		h.l.srv.Logger.Error("inbound: no MID", "icid", h.icid, "err", err)
		return smtp.Reply{Code: 451, Enhanced: "4.3.0", Text: "Server error, try again later"}
	}
	h.mid = mid
	h.from, h.params, h.rcpts = from.String(), p, h.rcpts[:0]
	h.emit(event.StartMID{MID: h.mid, ICID: h.icid})
	h.emit(event.MailFrom{MID: h.mid, ICID: h.icid, From: h.from})
	return smtp.Reply{}
}

func (h *session) Rcpt(to smtp.Path) smtp.Reply {
	addr := to.String()
	pol := h.decision.Policy
	if max := pol.MaxRecipientsPerMessage; max > 0 && len(h.rcpts) >= max {
		h.emit(event.RcptRejected{MID: h.mid, ICID: h.icid, To: addr, By: "Injection Control"})
		return smtp.Reply{Code: 452, Enhanced: "4.5.3", Text: "Too many recipients"}
	}
	deliverTo := addr
	switch {
	case to.Domain == "":
		// "RCPT TO:<postmaster>" without a domain must be accepted (RFC 5321
		// 4.5.1), whatever the RAT says; it goes to the configured
		// postmaster. The log shows what the client sent.
		deliverTo = h.l.srv.postmaster()
	case pol.Action == policy.Accept && h.l.cfg.Type == config.Public:
		// Relaying sender groups, and private listeners, skip the RAT.
		if e, ok := h.l.cfg.RAT.Decide(addr); !ok {
			h.emit(event.RcptRejected{MID: h.mid, ICID: h.icid, To: addr, By: "RAT"})
			return parseReply(e.Code, e.Text)
		}
	}
	rid := len(h.rcpts)
	h.rcpts = append(h.rcpts, queue.Recipient{RID: rid, Addr: deliverTo})
	h.emit(event.RcptTo{MID: h.mid, ICID: h.icid, RID: rid, To: addr})
	return smtp.Reply{}
}

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

func (h *session) Data(msg []byte) smtp.Reply {
	mid := h.mid
	hdr := rfc822.ReadHeader(msg)
	if max := h.l.cfg.MaxHeaderLines; max > 0 && hdr.Lines > max {
		h.failed("Message header size exceeds limit")
		return smtp.Reply{Code: 552, Enhanced: "5.3.4", Text: "message header size exceeds limit"}
	}
	now := time.Now()
	env := &queue.Envelope{
		MID: mid, ICID: h.icid, Listener: h.l.cfg.Name,
		ClientIP: h.client.IP.String(), Helo: h.helo, TLS: h.tlsString(),
		From: h.from, Rcpts: append([]queue.Recipient(nil), h.rcpts...), Received: now,
		BodyType: h.params.Body, SMTPUTF8: h.params.SMTPUTF8,
	}
	if h.client.Verified {
		env.ClientHost = h.client.Host
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	if h.l.cfg.ReceivedHeader {
		r := received{helo: h.helo, host: env.ClientHost, ip: env.ClientIP, by: h.l.srv.Hostname,
			tls: h.tls, utf8: h.params.SMTPUTF8, ehlo: h.ehlo, mid: mid, at: now}
		if len(h.rcpts) == 1 {
			r.rcpt = h.rcpts[0].Addr
		}
		b = r.appendTo(b)
	}
	b = append(b, msg...)
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	err := h.l.srv.Spool.Commit(ctx, env, b)
	cancel()
	if cap(b) <= 1<<20 {
		*bp = b
		bufPool.Put(bp)
	}
	if err != nil {
		h.l.srv.Logger.Error("inbound: spool commit failed", "icid", h.icid, "mid", mid, "err", err)
		h.failed("Queue write error")
		return smtp.Reply{Code: 451, Enhanced: "4.3.0", Text: "Server error, try again later"}
	}
	if id := hdr.MessageID(); id != "" {
		h.emit(event.MessageIDHeader{MID: mid, MessageID: id})
	}
	if subject, ok := hdr.Subject(); ok {
		h.emit(event.Subject{MID: mid, Subject: subject, Quote: maillog.QuoteFor(subject)})
	}
	h.emit(event.Ready{MID: mid, Bytes: int64(len(msg)), From: h.from})
	// Mail from relaying sender groups is outgoing: the ESA applies its
	// outbound mail policies to it.
	table := "inbound"
	if h.decision.Policy.Action == policy.Relay {
		table = "outbound"
	}
	h.emit(event.PolicyMatch{MID: mid, Policy: "DEFAULT", Table: table})
	h.emit(event.Queued{MID: mid})
	h.injected++
	h.mid = 0
	if h.l.srv.Queued != nil {
		h.l.srv.Queued(env)
	}
	return smtp.Reply{Code: 250, Enhanced: "2.0.0", Text: fmt.Sprintf("ok:  Message %d accepted", mid)}
}

// DataFailed is the engine refusing the message at its end.
func (h *session) DataFailed(err error) {
	switch {
	case errors.Is(err, smtp.ErrMessageTooBig):
		h.failed(event.FailedSizeLimit)
	case errors.Is(err, smtp.ErrBareLineEnding):
		h.failed("Bare CR or LF in message")
	case errors.Is(err, smtp.ErrLineTooLong):
		h.failed("Message line too long")
	default:
		h.failed(err.Error())
	}
}

// failed ends the open transaction without a message.
func (h *session) failed(reason string) {
	h.emit(event.ReceivingFailed{ICID: h.icid, Reason: reason})
	h.emit(event.MessageFinished{MID: h.mid, Status: event.FinishedAborted})
	h.mid = 0
}

// Reset is RSET, a new HELO/EHLO, or STARTTLS: the client gave up the open
// transaction, which for the log is the sender aborting it.
func (h *session) Reset() {
	if h.mid == 0 {
		return
	}
	h.emit(event.MessageAborted{MID: h.mid, Reason: event.AbortReceivingBySender})
	h.emit(event.MessageFinished{MID: h.mid, Status: event.FinishedAborted})
	h.mid = 0
}

func (h *session) TLS(cs tls.ConnectionState) {
	h.tls = &cs
	h.emit(event.TLS{Conn: event.ConnRef{Kind: event.InboundConn, ID: h.icid}, Success: true,
		Protocol: smtp.TLSVersion(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite)})
}

// BadCommand writes the ESA's line for the kinds it has one for: the
// appliance logs unknown commands and malformed addresses, with the reply's
// text as the reason, and nothing for the other refusals.
func (h *session) BadCommand(kind smtp.BadKind, line string, r smtp.Reply) {
	switch kind {
	case smtp.BadUnknown:
		h.emit(event.UnknownCommand{ICID: h.icid, Command: line})
	case smtp.BadSender:
		h.emit(event.InvalidAddress{ICID: h.icid, Detail: r.Text + ": '" + line + "'"})
	case smtp.BadRecipient:
		h.emit(event.InvalidAddress{ICID: h.icid, MID: h.mid, Recipient: true, Detail: r.Text + ": '" + line + "'"})
	}
}

// PlaintextDiscarded has no ESA line: it goes in the detail of mailgate's
// own line.
func (h *session) PlaintextDiscarded(n int) {
	h.notes = append(h.notes, fmt.Sprintf("(%d bytes pipelined after STARTTLS discarded)", n))
}

func (h *session) tlsString() string {
	if h.tls == nil {
		return ""
	}
	return smtp.TLSVersion(h.tls.Version) + " " + tls.CipherSuiteName(h.tls.CipherSuite)
}

// ended writes the lines that close the ICID, in the ESA's order: "lost"
// when the peer vanished, the abort of an open message, the timeout's
// "disconnected" line, "close", then mailgate's own summary.
func (h *session) ended(end smtp.End, remote netip.AddrPort) {
	cause, detail := end.Cause, end.Detail
	if h.refused != "" {
		// The greeting already refused the connection: however the client
		// then left, policy ended it.
		cause, detail = event.CausePolicy, h.refused
	}
	switch cause {
	case event.CauseTLSFailed:
		h.emit(event.TLS{Conn: event.ConnRef{Kind: event.InboundConn, ID: h.icid}, Reason: end.Detail})
		fallthrough
	case event.CausePeerClosed, event.CausePeerReset, event.CauseIOError:
		h.emit(event.ICIDLost{ICID: h.icid})
	}
	if h.mid != 0 {
		reason := event.AbortReceiving
		if cause == event.CauseQuit {
			reason = event.AbortReceivingBySender
		}
		h.emit(event.MessageAborted{MID: h.mid, Reason: reason})
		h.emit(event.MessageFinished{MID: h.mid, Status: event.FinishedAborted})
		h.mid = 0
	}
	switch cause {
	case event.CauseTimeoutUnsuccessful:
		h.emit(event.ICIDDisconnected{ICID: h.icid, Address: remote.Addr().Unmap().String(), Reason: event.DisconnectNoMessages})
	case event.CauseTimeoutTotal:
		h.emit(event.ICIDDisconnected{ICID: h.icid, Address: remote.Addr().Unmap().String(), Reason: event.DisconnectTotalTime})
	}
	h.emit(event.ICIDClose{ICID: h.icid})
	if detail == "" && len(h.notes) > 0 {
		detail = strings.Join(h.notes, "; ")
	}
	h.emit(event.ConnectionEnd{ICID: h.icid, Cause: cause, State: end.State.String(), LastCommand: end.LastVerb,
		DataBytes: end.DataBytes, Duration: end.Duration, Commands: end.Commands, Detail: detail})
}

// enhancedPrefix finds an RFC 3463 code at the start of a configured reply
// text, written either way ("#5.1.0 Address rejected." or "5.1.0 ...").
var enhancedPrefix = regexp.MustCompile(`^#?([245]\.\d{1,3}\.\d{1,3}) +`)

// parseReply makes a reply of a configured code and text, taking an
// enhanced status code off the front of the text so that the engine writes
// it in the form the client negotiated.
func parseReply(code int, text string) smtp.Reply {
	r := smtp.Reply{Code: code, Text: text}
	if m := enhancedPrefix.FindStringSubmatch(text); m != nil {
		r.Enhanced, r.Text = m[1], text[len(m[0]):]
	}
	return r
}
