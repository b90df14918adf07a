package inbound

import (
	"context"
	"io"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/mailauth"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/smtp"
)

// The sender-authentication checks of a session: SPF at MAIL FROM, DKIM
// and DMARC at the end of DATA, before the reply, so that a policy's
// reject is an SMTP reply and not a bounce to a forged sender.

// checksSPF reports whether the session's policy needs the MAIL FROM
// identity's SPF result: for SPF itself or for DMARC.
func (h *session) checksSPF() bool {
	pol := h.decision.Policy
	return h.l.srv.Auth != nil && (pol.SPF.Verify || pol.DMARC.Verify)
}

func (h *session) checksBody() bool {
	pol := h.decision.Policy
	return h.l.srv.Auth != nil && (pol.DKIM || pol.DMARC.Verify)
}

// checkSPF checks the HELO (once per HELO) and MAIL FROM identities of the
// open transaction, writes their lines, and returns the policy's reply to
// the MAIL FROM result: zero to go on.
func (h *session) checkSPF() smtp.Reply {
	h.auth = mailauth.Results{}
	if !h.checksSPF() {
		return smtp.Reply{}
	}
	pol := h.decision.Policy
	c := h.l.srv.Auth
	ctx := context.Background() // the checker bounds its own time
	if pol.SPF.Verify && pol.SPF.HELO {
		if h.heloSPF == nil {
			s := c.CheckHELO(ctx, h.client.IP, h.helo)
			h.heloSPF = &s
		}
		h.auth.SPF = append(h.auth.SPF, *h.heloSPF)
	}
	var mf mailauth.SPF
	if h.from == "" && h.heloSPF != nil {
		// The null sender's identity is the HELO's (RFC 7208 2.4): the
		// same evaluation.
		mf = *h.heloSPF
		mf.Identity = mailauth.IdentityMailFrom
	} else {
		mf = c.CheckMailFrom(ctx, h.client.IP, h.helo, h.from)
	}
	h.auth.SPF = append(h.auth.SPF, mf)
	for _, s := range h.auth.SPF {
		h.emit(s.Event(h.mid))
	}
	var r smtp.Reply
	switch pol.SPF.Action(mf.Result) {
	case policy.AuthReject:
		r = parseReply(policy.SPFRejectCode, policy.SPFRejectText)
	case policy.AuthDefer:
		r = parseReply(policy.SPFDeferCode, policy.SPFDeferText)
	default:
		return smtp.Reply{}
	}
	// The Receiving Failed line gives the reply's text without its
	// enhanced code, as for DMARC.
	h.failed(r.Text)
	return r
}

// stripForged removes from the head of a message (b from start) the
// Authentication-Results fields that claim the gateway's authserv-id, in
// place, and returns b.
func (h *session) stripForged(b []byte, start int) []byte {
	if h.l.srv.Auth == nil {
		return b
	}
	out, n := mailauth.StripAuthResults(b[start:], h.l.srv.authServID())
	if n == 0 {
		return b
	}
	return append(b[:start], out...)
}

// authVerdict is what the end-of-DATA checks decided.
type authVerdict struct {
	reply  smtp.Reply // non-zero: refuse the message with it
	reason string     // for the Receiving Failed line, with reply
	prefix []byte     // header fields to put above the Received field
	events []event.Event
}

// checkBody verifies the DKIM signatures of the message read from msg and
// evaluates DMARC for fromDomain, and returns the verdict with the header
// fields to prepend.
func (h *session) checkBody(msg io.Reader, fromDomain string, fromErr error) authVerdict {
	var v authVerdict
	if h.l.srv.Auth == nil {
		return v
	}
	pol := h.decision.Policy
	c := h.l.srv.Auth
	ctx := context.Background()
	if h.checksBody() {
		dk, err := c.VerifyDKIM(ctx, msg)
		if err != nil {
			// The message as stored could not be read back, or its header
			// not parsed: no DKIM result, which DMARC sees as no
			// signature.
			h.l.srv.Logger.Warn("inbound: DKIM verification", "icid", h.icid, "mid", h.mid, "err", err)
		}
		h.auth.DKIM = dk
	}
	if pol.DMARC.Verify {
		mf, _ := h.auth.MailFromSPF()
		d := c.CheckDMARC(ctx, fromDomain, fromErr, mf, h.auth.DKIM)
		h.auth.DMARC = &d
	}
	v.events = append(v.events, h.auth.DKIMEvents(h.mid)...)
	var action policy.AuthAction = policy.AuthAccept
	if d := h.auth.DMARC; d != nil {
		v.events = append(v.events, d.Event(h.mid))
		action = pol.DMARC.Action(d.Result, d.Applied)
	}
	switch action {
	case policy.AuthReject:
		code, text := policy.DMARCRejectCode, policy.DMARCRejectText
		switch h.auth.DMARC.Result {
		case mailauth.DMARCTempError:
			code, text = policy.DMARCTempFailCode, policy.DMARCTempFailText
		case mailauth.DMARCPermError:
			code, text = policy.DMARCPermFailureCode, policy.DMARCPermFailureText
		}
		v.reply = parseReply(code, text)
		v.reason = v.reply.Text
		return v
	case policy.AuthQuarantine:
		h.dmarcQuarantine(&v) // dmarcq.go
	}
	if len(h.auth.SPF) == 0 && len(h.auth.DKIM) == 0 && h.auth.DMARC == nil {
		return v
	}
	if mf, ok := h.auth.MailFromSPF(); ok {
		v.prefix = append(v.prefix, mailauth.ReceivedSPF(mf, h.ip, h.helo, h.l.srv.Hostname)...)
	}
	v.prefix = append(v.prefix, h.auth.AuthenticationResults(h.l.srv.authServID())...)
	return v
}

func (s *Server) authServID() string {
	if s.AuthServID != "" {
		return s.AuthServID
	}
	return s.Hostname
}

// prepend returns prefix then b, in a new buffer.
func prepend(prefix, b []byte) []byte {
	if len(prefix) == 0 {
		return b
	}
	return append(append(make([]byte, 0, len(prefix)+len(b)), prefix...), b...)
}
