//go:build !linux && !darwin && !dragonfly && !freebsd && !netbsd && !openbsd

package smtp

import "net"

// early is implemented on Linux, the BSDs and macOS only; elsewhere no
// client is an early talker.
func (s *Session) early() bool { return false }

// peeker has no use here.
type peeker struct{}

// discardPending is implemented on Linux, the BSDs and macOS only;
// elsewhere what awaitInput did not read of a pipelined STARTTLS tail fails
// the handshake instead.
func discardPending(net.Conn, int) int { return 0 }
