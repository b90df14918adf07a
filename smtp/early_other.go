//go:build !linux

package smtp

import "net"

// early is implemented on Linux only; elsewhere no client is an early talker.
func early(net.Conn) bool { return false }
