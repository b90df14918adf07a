package smtp

import (
	"crypto/tls"
	"time"

	"github.com/mailgate/mailgate/event"
)

// implicitTLS runs the TLS handshake a port-465 client starts with (RFC
// 8314 3.3), before the greeting. The client speaks first here, so there
// is no early-talker check.
func (s *Session) implicitTLS() (End, bool) {
	if s.cfg.TLS == nil {
		return End{Cause: event.CauseTLSFailed, Detail: "implicit TLS without a certificate"}, true
	}
	tc := tls.Server(s.conn, s.cfg.TLS)
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	if d := s.readDeadline(false); !d.IsZero() && d.Before(deadline) {
		deadline = d
	}
	tc.SetDeadline(deadline)
	if s.killed.Load() {
		tc.SetDeadline(longAgo)
	}
	if err := tc.Handshake(); err != nil {
		end := s.ioEnd(err)
		if end.Cause == event.CauseIOError || end.Cause == event.CausePeerClosed || end.Cause == event.CausePeerReset {
			end.Cause, end.Detail = event.CauseTLSFailed, err.Error()
		}
		return end, true
	}
	tc.SetDeadline(time.Time{})
	s.conn = tc
	s.r.Reset(tc)
	s.tlsOn = true
	s.h.TLS(tc.ConnectionState())
	return End{}, false
}
