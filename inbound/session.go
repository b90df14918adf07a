package inbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/mailauth"
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
	ip       string       // client.IP as text, made once: every message's envelope and Received field have it
	key      netip.Prefix // the client for per-client limits
	group    string       // "listener/group" for per-group limits
	decision policy.Decision
	refused  string // why the greeting refused the connection, if it did

	helo     string
	ehlo     bool
	tls      *tls.ConnectionState
	injected int
	notes    []string     // protocol violations that did not end the session
	routed   bool         // a note says sender-specified routing was refused
	user     *userdb.User // AUTH succeeded as this user

	// The open transaction; mid is 0 when there is none.
	mid    uint64
	from   string
	params smtp.MailParams
	rcpts  []queue.Recipient // distinct mailboxes, in RID order
	nrcpt  int               // RCPTs accepted, duplicates included
	rids   map[string]int    // mailbox (see mailbox) -> RID

	signLine string // the message's "DKIM: " line, when its policy signs

	// Sender authentication (mailauth.go).
	heloSPF *mailauth.SPF    // the HELO identity's result, once per HELO
	auth    mailauth.Results // the open transaction's
}

func (h *session) emit(ev event.Event) { h.l.emit(ev) }

func (h *session) Hello(verb, domain string) smtp.Reply {
	h.helo, h.ehlo = domain, verb == "ehlo"
	h.heloSPF = nil
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
	if p := h.l.srv.Pressure; p != nil {
		// Backpressure, before a MID is spent: slowed (Postfix's
		// in_flow_delay), or refused past the hard mark.
		switch p.Level() {
		case PressureRefuse:
			h.emit(event.ReceivingFailed{ICID: h.icid, Reason: event.FailedResources})
			return noResources
		case PressureDelay:
			p.wait()
			if p.Level() == PressureRefuse {
				h.emit(event.ReceivingFailed{ICID: h.icid, Reason: event.FailedResources})
				return noResources
			}
		}
	}
	// Checked before a MID is spent: a client retrying against a full
	// disk gets 452 at once, as from Postfix, and the MIDs are not used up;
	// so does one whose SIZE= would not fit.
	if err := h.l.srv.Spool.Room(p.Size); err != nil {
		h.emit(event.ReceivingFailed{ICID: h.icid, Reason: event.FailedQueueFull})
		return noStorage
	}
	mid, err := h.l.srv.IDs.Next(queue.MID)
	if err != nil {
		h.l.srv.Logger.Error("inbound: no MID", "icid", h.icid, "err", err)
		return smtp.Reply{Code: 451, Enhanced: "4.3.0", Text: "Server error, try again later"}
	}
	h.mid = mid
	h.from, h.params, h.rcpts, h.nrcpt = from.String(), p, h.rcpts[:0], 0
	clear(h.rids)
	h.emit(event.StartMID{MID: h.mid, ICID: h.icid})
	h.emit(event.MailFrom{MID: h.mid, ICID: h.icid, From: h.from})
	// SPF now, before any recipient: a policy that rejects on it does so
	// here, as the ESA and Postfix's policyd-spf do.
	return h.checkSPF()
}

func (h *session) Rcpt(to smtp.Path) smtp.Reply {
	addr := to.String()
	pol := h.decision.Policy
	if p := h.l.srv.Pressure; p != nil && p.Level() == PressureRefuse {
		// Past the hard mark since MAIL FROM.
		h.emit(event.RcptRejected{MID: h.mid, ICID: h.icid, To: addr, By: "Injection Control"})
		return noResources
	}
	if max := pol.MaxRecipientsPerMessage; max > 0 && h.nrcpt >= max {
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
		// A client that may not relay may not route either: the reply
		// and the line are those of a recipient the RAT refuses, and the
		// connection's own line says why.
		if policy.SenderRouted(to.Local, to.SourceRoute) {
			if !h.routed {
				h.routed = true
				h.notes = append(h.notes, "(sender-specified routing refused)")
			}
			h.emit(event.RcptRejected{MID: h.mid, ICID: h.icid, To: addr, By: "RAT"})
			return parseReply(policy.RATRejectCode, policy.RATRejectText)
		}
	}
	// A mailbox named twice is one recipient: the RCPT is accepted, and its
	// line carries the RID it merged into, so that every accepted RCPT
	// has its line and delivery sends one copy.
	mbox := mailbox(deliverTo, h.l.cfg.DuplicatesIgnoreLocalCase)
	if rid, dup := h.rids[mbox]; dup {
		h.nrcpt++
		h.emit(event.RcptTo{MID: h.mid, ICID: h.icid, RID: rid, To: addr})
		return smtp.Reply{}
	}
	if ok, _ := h.l.srv.rates.Take(policy.RecipientRateWindow, time.Now(), false,
		policy.RateLimit{Key: policy.RateKey{Kind: policy.RateRecipients, Client: h.key}, Max: pol.MaxRecipientsPerHour},
		policy.RateLimit{Key: policy.RateKey{Kind: policy.RateRecipients, Group: h.group}, Max: pol.GroupMaxRecipientsPerHour}); !ok {
		h.emit(event.RcptRejected{MID: h.mid, ICID: h.icid, To: addr, By: "Injection Control"})
		return smtp.Reply{Code: 452, Enhanced: "4.5.3", Text: policy.RecipientRate}
	}
	rid := len(h.rcpts)
	h.rcpts = append(h.rcpts, queue.Recipient{RID: rid, Addr: deliverTo})
	h.nrcpt++
	if h.rids == nil {
		h.rids = make(map[string]int)
	}
	h.rids[mbox] = rid
	h.emit(event.RcptTo{MID: h.mid, ICID: h.icid, RID: rid, To: addr})
	return smtp.Reply{}
}

// mailbox is what makes two recipients of one message the same: the domain
// compared without case, the local part exactly (RFC 5321 2.4: only the
// receiving host may interpret it) unless foldLocal.
func mailbox(addr string, foldLocal bool) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr
	}
	if foldLocal {
		return strings.ToLower(addr)
	}
	return addr[:i+1] + strings.ToLower(addr[i+1:])
}

// noStorage is the reply while the spool has no room (RFC 5321 4.2.2, 452;
// RFC 3463 4.3.1; Postfix's words).
var noStorage = smtp.Reply{Code: 452, Enhanced: "4.3.1", Text: "Insufficient system storage"}

// spillAt is the size beyond which a message goes to a spool stage as it
// arrives instead of into memory. Most mail is smaller and is committed
// from memory in one write; a larger message costs its session two
// buffers (the engine's DATA reader and this one, through which it is
// copied to the stage), not its size.
const spillAt = 64 << 10

// The buffers are all of one size, with room for the Received field, so
// that a session in DATA grows none and leaves no garbage: a thousand
// sessions starting large messages at once would otherwise grow a
// thousand slices to spillAt, and the collector would find the discarded
// steps only later.
const bufSize = spillAt + 2<<10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}

func (h *session) Data(r io.Reader) smtp.Reply {
	mid := h.mid
	now := time.Now()
	h.signLine = ""
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := (*bp)[:0]
	if h.l.cfg.ReceivedHeader {
		// Written first, so that the body is read in behind it and never
		// copied.
		rh := received{helo: h.helo, host: h.clientHost(), ip: h.ip, by: h.l.srv.Hostname,
			tls: h.tls, utf8: h.params.SMTPUTF8, ehlo: h.ehlo, mid: mid, at: now}
		if len(h.rcpts) == 1 {
			rh.rcpt = h.rcpts[0].Addr
		}
		b = rh.appendTo(b)
		if cap(b) > bufSize {
			// A Received field longer than the room for it (a very long
			// HELO): this buffer is not the pool's size any more.
			*bp = make([]byte, 0, bufSize)
		}
	}
	start := len(b)
	b, complete, err := readUpTo(r, b, start+spillAt)
	if err != nil {
		return smtp.Reply{} // the engine refuses the message, or the connection failed
	}
	// Before anything reads the message: results that claim to be ours
	// did not come from us.
	b = h.stripForged(b, start)
	var sig *dkimsign.Message
	if h.decision.Policy.DKIMSigning {
		sig = h.l.srv.DKIM.Sign(h.from)
		defer sig.Abort()
		_, _ = sig.Write(b[start:]) // an error is Close's
	}
	msg := b[start:]
	hdr := rfc822.ReadHeader(msg)
	if hdr.Lines > h.maxHeaderLines() {
		return h.headerTooLong()
	}
	// The header's facts are taken now: a spilled message's buffer is
	// overwritten by the rest of it.
	msgID := hdr.MessageID()
	subject, hasSubject := hdr.Subject()
	var fromDomain string
	var fromErr error
	if h.decision.Policy.DMARC.Verify {
		fromDomain, fromErr = mailauth.FromDomain(msg)
	}
	env := &queue.Envelope{
		MID: mid, ICID: h.icid, Listener: h.l.cfg.Name,
		ClientIP: h.ip, ClientHost: h.clientHost(), Helo: h.helo, TLS: h.tlsString(),
		From: h.from, Rcpts: append([]queue.Recipient(nil), h.rcpts...),
		BodyType: h.params.Body, SMTPUTF8: h.params.SMTPUTF8,
		// Mail from relaying sender groups is outgoing: the ESA applies
		// its outbound mail policies to it.
		Outgoing: h.decision.Policy.Action == policy.Relay,
	}
	size := int64(len(msg))
	var av authVerdict
	if complete {
		av = h.checkBody(bytes.NewReader(msg), fromDomain, fromErr)
		if av.reply.Code != 0 {
			return h.refuse(av)
		}
		if rep := h.checkData(env, bytes.NewReader(b), int64(len(b))); rep.Code != 0 {
			return rep
		}
		env.Received = time.Now()
		env.Auth = h.authBytes()
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		// Signed once, here, so that every delivery attempt sends the
		// same signature: it is part of the spooled message, first.
		err = h.l.srv.Spool.Commit(ctx, env, prepend(append(h.sign(mid, sig), av.prefix...), b))
		cancel()
	} else {
		var n int64
		var st *queue.Stage
		n, st, err = h.spill(r, b, start, sig)
		if errors.Is(err, errReceive) {
			return smtp.Reply{} // as above
		}
		if errors.Is(err, errHeaderTooLong) {
			return h.headerTooLong()
		}
		size += n
		if err == nil {
			av = h.checkBody(io.NewSectionReader(st, int64(start), st.Size()-int64(start)), fromDomain, fromErr)
			if av.reply.Code != 0 {
				st.Abort()
				return h.refuse(av)
			}
			if rep := h.checkData(env, st, st.Size()); rep.Code != 0 {
				st.Abort()
				return rep
			}
			// The message has arrived (the Received field has the time
			// DATA began, as Postfix's has), and the commit's time
			// starts now, however long it took.
			env.Received = time.Now()
			env.Auth = h.authBytes()
			ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			err = h.l.srv.Spool.CommitStageAfter(ctx, env, append(h.sign(mid, sig), av.prefix...), st)
			cancel()
		}
	}
	if errors.Is(err, queue.ErrNoSpace) {
		// Definite: the message is not in the spool and will not be
		// delivered, so the client's retry makes no duplicate. The spool
		// logs the floor's transitions; a session need not.
		h.failed(event.FailedQueueFull)
		return noStorage
	}
	if err != nil {
		h.l.srv.Logger.Error("inbound: spool commit failed", "icid", h.icid, "mid", mid, "err", err)
		h.failed("Queue write error")
		return smtp.Reply{Code: 451, Enhanced: "4.3.0", Text: "Server error, try again later"}
	}
	if msgID != "" {
		h.emit(event.MessageIDHeader{MID: mid, MessageID: msgID})
	}
	if hasSubject {
		h.emit(event.Subject{MID: mid, Subject: subject, Quote: maillog.QuoteFor(subject)})
	}
	h.emit(event.Ready{MID: mid, Bytes: size, From: h.from})
	for _, ev := range av.events {
		h.emit(ev)
	}
	// The signature was made with the checks, at the end of receiving;
	// the line follows theirs, before the mail policy's.
	if h.signLine != "" {
		h.emit(event.Signing{MID: mid, Method: "DKIM", Text: h.signLine})
		h.signLine = ""
	}
	h.injected++
	h.mid = 0
	if h.l.srv.Handoff != nil {
		h.l.srv.Handoff(env)
		return smtp.Reply{Code: 250, Enhanced: "2.0.0", Text: fmt.Sprintf("ok:  Message %d accepted", mid)}
	}
	table := policy.InboundTable
	if env.Outgoing {
		table = policy.OutboundTable
	}
	h.emit(event.PolicyMatch{MID: mid, Policy: policy.DefaultMailPolicy, Table: table})
	h.emit(event.Queued{MID: mid})
	if h.l.srv.Queued != nil {
		h.l.srv.Queued(env)
	}
	return smtp.Reply{Code: 250, Enhanced: "2.0.0", Text: fmt.Sprintf("ok:  Message %d accepted", mid)}
}

// sign ends the signing of a message (nil: its policy does not sign) and
// returns the DKIM-Signature field to store before it, nil when it is not
// signed. A signer that fails (the key was checked at load, so this is
// not expected) leaves the message unsigned, as the ESA sends a message it
// cannot sign, with the line that says so.
func (h *session) sign(mid uint64, sig *dkimsign.Message) []byte {
	if sig == nil {
		return nil
	}
	res, err := sig.Close()
	if err != nil {
		h.l.srv.Logger.Error("inbound: DKIM signing failed", "icid", h.icid, "mid", mid, "err", err)
	}
	h.signLine = res.Text()
	if res.Outcome != dkimsign.Signed {
		return nil
	}
	return []byte(res.Field)
}

func (h *session) maxHeaderLines() int {
	if max := h.l.cfg.MaxHeaderLines; max > 0 {
		return max
	}
	return math.MaxInt
}

func (h *session) headerTooLong() smtp.Reply {
	h.failed("Message header size exceeds limit")
	return smtp.Reply{Code: 552, Enhanced: "5.3.4", Text: "message header size exceeds limit"}
}

var errHeaderTooLong = errors.New("message header size exceeds limit")

// errReceive marks a spill that ended because reading the message did:
// the engine's refusal or a lost connection, which are not the spool's.
var errReceive = errors.New("receiving the message failed")

// spill writes what was read so far (head, the message from start) and
// the rest of the message to a spool stage as it arrives, and returns the
// stage for the caller to commit. head's buffer is then the one the rest
// is copied through. It returns the bytes read after head. On error the
// stage is already aborted.
func (h *session) spill(r io.Reader, head []byte, start int, sig *dkimsign.Message) (_ int64, _ *queue.Stage, err error) {
	// Where the header lines past the head are to be counted, if it did
	// not end in it: from its last whole line.
	cut := bytes.LastIndexByte(head[start:], '\n') + 1
	hdr := rfc822.ReadHeader(head[start : start+cut])
	lines, more := hdr.Lines, !hdr.Blank && hdr.Len == cut
	from := int64(start + cut)

	st, err := h.l.srv.Spool.NewStage()
	if err != nil {
		return 0, nil, err
	}
	defer func() {
		if err != nil {
			st.Abort()
		}
	}()
	if _, err := st.Write(head); err != nil {
		return 0, nil, err
	}
	buf := head[:cap(head)]
	var n int64
	for {
		k, rerr := r.Read(buf)
		if k > 0 {
			if _, err := st.Write(buf[:k]); err != nil {
				// The rest is the engine's to discard; the client gets a
				// 451.
				return n, nil, err
			}
			if sig != nil {
				_, _ = sig.Write(buf[:k]) // an error is Close's
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, nil, fmt.Errorf("%w: %w", errReceive, rerr)
		}
	}
	if more {
		rest, err := countHeaderLines(st, from, buf)
		if err != nil {
			return n, nil, err
		}
		if lines+rest > h.maxHeaderLines() {
			return 0, nil, errHeaderTooLong
		}
	}
	return n, st, nil
}

// refuse ends the transaction with the verdict's reply, after the lines
// of the checks that decided it.
func (h *session) refuse(av authVerdict) smtp.Reply {
	for _, ev := range av.events {
		h.emit(ev)
	}
	h.failed(av.reason)
	return av.reply
}

// authBytes is the transaction's results for the envelope; nil when
// nothing was checked.
func (h *session) authBytes() []byte {
	if l := h.decision.DNSList; l.Zone != "" && h.auth.DNSList == nil {
		h.auth.DNSList = &mailauth.DNSList{Zone: l.Zone, Code: l.Code.String()}
	}
	if len(h.auth.SPF) == 0 && len(h.auth.DKIM) == 0 && h.auth.DMARC == nil && h.auth.DNSList == nil {
		return nil
	}
	return h.auth.Marshal()
}

// readUpTo appends what r gives to b until it ends (complete) or b holds
// limit bytes; b has room for them.
func readUpTo(r io.Reader, b []byte, limit int) (_ []byte, complete bool, err error) {
	b = slices.Grow(b, limit-len(b))
	for len(b) < limit {
		n, err := r.Read(b[len(b):limit])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, true, nil
		}
		if err != nil {
			return b, false, err
		}
	}
	return b, false, nil
}

func (h *session) clientHost() string {
	if h.client.Verified {
		return h.client.Host
	}
	return ""
}

// DataFailed is the engine refusing the message at its end.
func (h *session) DataFailed(err error) {
	if h.mid == 0 {
		// Data already refused it (its header, the spool) and logged why;
		// the engine found more wrong in the rest it discarded.
		return
	}
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
	if isLost(cause) && end.LastVerb == "" && len(end.Commands) == 0 && h.l.healthCheck(h.client.IP) {
		// A load balancer's or monitor's probe: it connects, may read the
		// greeting, and leaves. Not a lost connection: no "lost" line, and
		// a cause of its own for the report and the metrics.
		cause = event.CauseHealthCheck
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

// isLost reports whether the peer vanished below SMTP.
func isLost(c event.Cause) bool {
	return c == event.CausePeerClosed || c == event.CausePeerReset || c == event.CauseIOError
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

// countHeaderLines counts the lines of the rest of a header that did not
// end in the message's first buffer, reading the stage from off through
// buf (lines are at most 1000 octets: the engine refuses longer ones).
func countHeaderLines(st *queue.Stage, off int64, buf []byte) (int, error) {
	lines := 0
	for off < st.Size() {
		n, err := st.ReadAt(buf[:min(int64(len(buf)), st.Size()-off)], off)
		if err != nil && err != io.EOF {
			return 0, err
		}
		part := buf[:n]
		cut := bytes.LastIndexByte(part, '\n') + 1
		if cut == 0 {
			cut = n // the last line, without its end
		}
		hdr := rfc822.ReadHeader(part[:cut])
		lines += hdr.Lines
		if hdr.Blank || hdr.Len < cut || cut == 0 {
			break
		}
		off += int64(cut)
	}
	return lines, nil
}
