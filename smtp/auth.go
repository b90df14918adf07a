package smtp

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
)

// Authenticator is implemented by a Handler that offers SMTP AUTH (RFC
// 4954). The engine runs the dialogue (the AUTH command, its 334
// challenges, the client's base64 lines, "*" to cancel); the Handler and
// its SASL decide.
type Authenticator interface {
	// AuthMechanisms lists the SASL mechanisms EHLO advertises; tls tells
	// whether the connection is encrypted. When it lists none even under
	// TLS, AUTH is an unknown command, as on a server without it.
	AuthMechanisms(tls bool) []string
	// Auth starts an exchange of the mechanism named (upper case). A
	// non-zero Reply refuses it: 504 for an unknown mechanism, 538 for
	// one that needs TLS, 421 to end the session.
	Auth(mechanism string) (SASL, Reply)
}

// SASL is the server side of one SASL exchange.
type SASL interface {
	// Next takes the client's next response, first the initial response
	// of the AUTH command (nil when it had none, empty for "="), and
	// returns the challenge to send, or done when the exchange is over.
	// An error fails the exchange.
	Next(response []byte) (challenge []byte, done bool, err error)
	// End is told how the exchange ended: nil when the client is
	// authenticated, ErrAuthCanceled, ErrAuthSyntax, ErrAuthLineTooLong,
	// or the error of Next. A zero Reply sends the default: 235, 501,
	// 501, 500, or 535 for Next's error. A 421 ends the session.
	End(err error) Reply
}

// Errors given to SASL.End.
var (
	ErrAuthCanceled    = errors.New("authentication canceled by the client")
	ErrAuthSyntax      = errors.New("authentication response is not base64")
	ErrAuthLineTooLong = errors.New("authentication line too long")
)

var (
	replyAuthOK          = Reply{235, "2.7.0", "Authentication successful"}
	replyAuthFailed      = Reply{535, "5.7.8", "Authentication credentials invalid"}
	replyAuthCanceled    = Reply{501, "5.0.0", "Authentication canceled"}
	replyAuthSyntax      = Reply{501, "5.5.2", "Cannot decode response"}
	replyAuthLineTooLong = Reply{500, "5.5.6", "Authentication Exchange line is too long"}
	replyAuthTwice       = Reply{503, "5.5.1", "Already authenticated"}
	replyAuthInMail      = Reply{503, "5.5.1", "AUTH not permitted during a mail transaction"}
)

// authenticator is the Handler's Authenticator when it offers AUTH at all.
func (s *Session) authenticator() (Authenticator, bool) {
	a, ok := s.h.(Authenticator)
	if !ok || len(a.AuthMechanisms(true)) == 0 {
		return nil, false
	}
	return a, true
}

// authExt is the EHLO line of AUTH, with its leading newline, or "".
func (s *Session) authExt() string {
	a, ok := s.authenticator()
	if !ok {
		return ""
	}
	mechs := a.AuthMechanisms(s.tlsOn)
	if len(mechs) == 0 {
		return ""
	}
	return "\nAUTH " + strings.Join(mechs, " ")
}

// auth runs the AUTH command and its exchange.
func (s *Session) auth(arg string, line []byte) (End, bool) {
	a, ok := s.authenticator()
	switch {
	case !ok:
		s.lastVerb = "AUTH"
		return s.badCommand("unknown", BadUnknown, string(maskAuth(line)), replyUnrecognized)
	case !s.ehlo:
		return s.badCommand("auth", BadSequence, "AUTH", replyNeedHelo)
	case s.authed:
		return s.badCommand("auth", BadSequence, "AUTH", replyAuthTwice)
	case s.state.InTransaction():
		return s.badCommand("auth", BadSequence, "AUTH", replyAuthInMail)
	}
	mech, initial, hasInitial := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	if mech == "" || strings.ContainsAny(initial, " ") {
		return s.badCommand("auth", BadSyntax, "AUTH", replyBadSyntax)
	}
	sasl, r := a.Auth(mech)
	if !r.IsZero() {
		if isBadReply(r) {
			return s.badCommand("auth", 0, "AUTH "+mech, r)
		}
		return s.respond("auth", r)
	}
	var resp []byte
	if hasInitial {
		var err error
		if resp, err = decodeResponse(initial); err != nil {
			return s.authEnd(sasl, ErrAuthSyntax)
		}
	}
	for {
		challenge, done, err := sasl.Next(resp)
		if err != nil {
			return s.authEnd(sasl, err)
		}
		if done {
			return s.authEnd(sasl, nil)
		}
		s.reply(Reply{334, "", base64.StdEncoding.EncodeToString(challenge)})
		if err := s.flush(); err != nil {
			return s.ioEnd(err), true
		}
		line, tooLong, err := s.readAuthLine()
		switch {
		case err != nil:
			return s.ioEnd(err), true
		case tooLong:
			return s.authEnd(sasl, ErrAuthLineTooLong)
		case string(line) == "*":
			return s.authEnd(sasl, ErrAuthCanceled)
		}
		if resp, err = decodeResponse(string(line)); err != nil {
			return s.authEnd(sasl, ErrAuthSyntax)
		}
	}
}

// decodeResponse decodes a client's base64 line; "=" is the empty response
// (RFC 4954 4).
func decodeResponse(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

func (s *Session) authEnd(sasl SASL, err error) (End, bool) {
	r := sasl.End(err)
	if r.IsZero() {
		switch {
		case err == nil:
			r = replyAuthOK
		case errors.Is(err, ErrAuthCanceled):
			r = replyAuthCanceled
		case errors.Is(err, ErrAuthSyntax):
			r = replyAuthSyntax
		case errors.Is(err, ErrAuthLineTooLong):
			r = replyAuthLineTooLong
		default:
			r = replyAuthFailed
		}
	}
	if err == nil && r.Positive() {
		s.authed = true
	}
	return s.respond("auth", r)
}

// readAuthLine reads one line of the client's side of the exchange, which
// is never shown to the transcript: it holds credentials. tooLong is a
// line longer than the read buffer (4 KiB; RFC 4954 4 asks for 12,288
// octets, but no mechanism offered here comes near 4 KiB).
func (s *Session) readAuthLine() (line []byte, tooLong bool, err error) {
	s.conn.SetReadDeadline(s.readDeadline(false))
	if s.killed.Load() || s.draining.Load() {
		s.conn.SetReadDeadline(longAgo)
	}
	if s.r.Buffered() == 0 && s.r.Size() <= 4096 {
		if err := s.awaitInput(); err != nil {
			return nil, false, err
		}
	}
	for {
		chunk, err := s.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			tooLong = true
			continue
		}
		if err != nil {
			return nil, false, err
		}
		s.transcript(false, masked)
		if tooLong {
			return nil, true, nil
		}
		return trimEOL(chunk), false, nil
	}
}

// masked stands for credentials in the transcript.
var masked = []byte("*****")

// maskAuth hides the initial response of an AUTH command line from the
// transcript: "AUTH PLAIN AGFsaWNl..." becomes "AUTH PLAIN *****".
func maskAuth(line []byte) []byte {
	if len(line) < 5 || !equalFoldASCII(line[:5], "AUTH ") {
		return line
	}
	rest := bytes.TrimLeft(line[5:], " ")
	i := bytes.IndexByte(rest, ' ')
	if i < 0 {
		return line
	}
	out := make([]byte, 0, 5+i+1+len(masked))
	out = append(out, line[:5]...)
	out = append(out, rest[:i+1]...)
	return append(out, masked...)
}

// decodeXtext decodes the value of MAIL's AUTH= parameter (RFC 3461 4:
// "+XX" escapes a byte).
func decodeXtext(s string) (string, bool) {
	if !strings.Contains(s, "+") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '+' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
