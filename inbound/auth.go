package inbound

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/xdg-go/scram"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/smtp"
	"github.com/mailgate/mailgate/userdb"
)

// SMTP AUTH of a listener (config.Auth): the session is the engine's
// smtp.Authenticator; the users come from a userdb.DB; failed attempts are
// counted per client address by authFailures.

var (
	replyAuthUnknownMech = smtp.Reply{Code: 504, Enhanced: "5.5.4", Text: "Unrecognized authentication type"}
	replyAuthNeedTLS     = smtp.Reply{Code: 538, Enhanced: "5.7.11", Text: "Encryption required for requested authentication mechanism"}
	replyAuthTooMany     = smtp.Reply{Code: 421, Enhanced: "4.7.0", Text: "Too many failed authentication attempts, try again later"}
	replyAuthRequired    = smtp.Reply{Code: 530, Enhanced: "5.7.0", Text: "Authentication required"}
	replyAuthInvalid     = smtp.Reply{Code: 535, Enhanced: "5.7.8", Text: "Authentication credentials invalid"}
)

// needsTLS tells the mechanisms that send the password itself.
func needsTLS(mech string) bool { return mech == "PLAIN" || mech == "LOGIN" }

// AuthMechanisms offers the configured mechanisms; PLAIN and LOGIN only
// under TLS (RFC 4954 4, Postfix's smtpd_tls_auth_only). SCRAM-SHA-256
// never shows the password and is offered in clear too.
func (h *session) AuthMechanisms(tls bool) []string {
	a := h.l.cfg.Auth
	if a == nil || h.l.users == nil {
		return nil
	}
	var ms []string
	for _, m := range a.Mechanisms {
		if tls || !needsTLS(m) {
			ms = append(ms, m)
		}
	}
	return ms
}

func (h *session) Auth(mech string) (smtp.SASL, smtp.Reply) {
	a := h.l.cfg.Auth
	switch {
	case !slices.Contains(a.Mechanisms, mech):
		return nil, replyAuthUnknownMech
	case needsTLS(mech) && h.tls == nil:
		return nil, replyAuthNeedTLS
	case h.l.authFails.blocked(h.key, a.MaxFailures, a.FailureWindow, time.Now()):
		return nil, replyAuthTooMany
	}
	x := exchange{h: h, mech: mech}
	switch mech {
	case "PLAIN":
		return &plainSASL{exchange: x}, smtp.Reply{}
	case "LOGIN":
		return &loginSASL{exchange: x}, smtp.Reply{}
	}
	srv, err := scram.SHA256.NewServer(h.l.users.SCRAM)
	if err != nil {
		h.l.srv.Logger.Error("inbound: SCRAM server", "icid", h.icid, "err", err)
		return nil, smtp.Reply{Code: 454, Enhanced: "4.7.0", Text: "Temporary authentication failure"}
	}
	return &scramSASL{exchange: x, conv: srv.NewConversation()}, smtp.Reply{}
}

var errBadCredentials = errors.New("invalid credentials")

// exchange is what every mechanism shares: the user it named and the end.
type exchange struct {
	h    *session
	mech string
	user string // as the client gave it
}

// End logs the outcome in the ESA's form and applies it: the user's
// session takes the configured relay policy; a failure is delayed, and past
// the limit of the client's address ends the session. A cancel ("*") is
// neither.
func (x *exchange) End(err error) smtp.Reply {
	h, a := x.h, x.h.l.cfg.Auth
	if errors.Is(err, smtp.ErrAuthCanceled) {
		return smtp.Reply{}
	}
	if err == nil {
		if u, ok := h.l.users.Lookup(x.user); ok {
			h.user = u
			if p := h.l.cfg.HAT.Policies[a.Policy]; p != nil {
				h.decision.Policy = p
			}
			h.emit(event.SMTPAuth{ICID: h.icid, Outcome: event.AuthSucceeded, User: x.user, Mechanism: x.mech, Profile: a.Profile})
			return smtp.Reply{}
		}
	}
	h.emit(event.SMTPAuth{ICID: h.icid, Outcome: event.AuthFailed, User: x.user, Mechanism: x.mech, Profile: a.Profile})
	n := h.l.authFails.add(h.key, a.FailureWindow, time.Now())
	if n >= a.MaxFailures {
		return replyAuthTooMany
	}
	// A tarpit: each failure costs the guesser more time, up to 5 delays.
	time.Sleep(min(time.Duration(n), 5) * a.FailureDelay)
	if err == nil {
		// The exchange succeeded for a user a reload removed meanwhile:
		// the engine would take the default reply for a success.
		return replyAuthInvalid
	}
	return smtp.Reply{}
}

// plainSASL is RFC 4616: authzid NUL authcid NUL password.
type plainSASL struct{ exchange }

func (p *plainSASL) Next(resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte{}, false, nil
	}
	f := bytes.Split(resp, []byte{0})
	if len(f) != 3 {
		return nil, false, smtp.ErrAuthSyntax
	}
	p.user = string(f[1])
	if len(f[0]) > 0 && !bytes.Equal(f[0], f[1]) {
		return nil, false, errBadCredentials // acting as another user is not offered
	}
	if !p.h.l.users.Check(p.user, string(f[2])) {
		return nil, false, errBadCredentials
	}
	return nil, true, nil
}

// loginSASL is the LOGIN mechanism of Outlook and older clients
// (draft-murchison-sasl-login): the user name, then the password.
type loginSASL struct {
	exchange
	gotUser bool
}

func (l *loginSASL) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case !l.gotUser && resp == nil:
		return []byte("Username:"), false, nil
	case !l.gotUser:
		l.user, l.gotUser = string(resp), true
		return []byte("Password:"), false, nil
	}
	if !l.h.l.users.Check(l.user, string(resp)) {
		return nil, false, errBadCredentials
	}
	return nil, true, nil
}

// scramSASL is RFC 7677 through xdg-go/scram, with the keys the users
// file stores; users without them fail.
type scramSASL struct {
	exchange
	conv     *scram.ServerConversation
	verified bool // the server-final message went out; the client owes an empty line
}

func (s *scramSASL) Next(resp []byte) ([]byte, bool, error) {
	switch {
	case s.verified:
		if len(resp) != 0 {
			return nil, false, smtp.ErrAuthSyntax
		}
		return nil, true, nil
	case resp == nil:
		return []byte{}, false, nil
	}
	out, err := s.conv.Step(string(resp))
	if s.user == "" {
		s.user = s.conv.Username()
	}
	if err != nil {
		return nil, false, errBadCredentials
	}
	if !s.conv.Done() {
		return []byte(out), false, nil
	}
	if !s.conv.Valid() || (s.conv.AuthzID() != "" && s.conv.AuthzID() != s.user) {
		return nil, false, errBadCredentials
	}
	s.verified = true
	return []byte(out), false, nil
}

// authMail applies AUTH to MAIL FROM: a listener that requires it refuses
// MAIL before it, and with authorize_sender the sender must be the user's.
func (h *session) authMail(from string) smtp.Reply {
	a := h.l.cfg.Auth
	switch {
	case a == nil:
	case h.user == nil && a.Required:
		h.emit(event.SMTPAuth{ICID: h.icid, Outcome: event.AuthRequired})
		return replyAuthRequired
	case h.user != nil && a.AuthorizeSender && !h.user.AuthorizedSender(from):
		return smtp.Reply{Code: 553, Enhanced: "5.7.1", Text: "<" + from + ">: Sender address rejected: not owned by user " + h.user.Name}
	}
	return smtp.Reply{}
}

// authFailures counts failed AUTHs per client (policy.ClientKey: an IPv6
// client by the listener's prefix, /64 by default), over a window.
type authFailures struct {
	mu sync.Mutex
	m  map[netip.Prefix]*failures
}

type failures struct {
	n     int
	first time.Time
}

// add counts a failure and returns the count in the window.
func (f *authFailures) add(k netip.Prefix, window time.Duration, now time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[netip.Prefix]*failures{}
	}
	if len(f.m) >= 4096 { // bound the memory a spread-out attack can take
		for k, e := range f.m {
			if now.Sub(e.first) >= window {
				delete(f.m, k)
			}
		}
	}
	e := f.m[k]
	if e == nil || now.Sub(e.first) >= window {
		e = &failures{first: now}
		f.m[k] = e
	}
	e.n++
	return e.n
}

// blocked reports whether the address used up its failures in the window.
func (f *authFailures) blocked(k netip.Prefix, max int, window time.Duration, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.m[k]
	return e != nil && e.n >= max && now.Sub(e.first) < window
}

// Users is the listener's users file, nil without AUTH: `mailgate serve`
// reloads it on SIGHUP.
func (l *Listener) Users() *userdb.DB { return l.users }
