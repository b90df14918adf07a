package scan

import (
	"context"
	"net"
	"strings"
	"time"
)

// Network returns the network of an engine's address: "unix" for a path
// (it starts with "/" or "."), "tcp" for host:port.
func Network(address string) string {
	if strings.HasPrefix(address, "/") || strings.HasPrefix(address, ".") {
		return "unix"
	}
	return "tcp"
}

// Dial connects to an engine's address for one request: the connection's
// deadline is ctx's, and it is closed when ctx ends, so that no read or
// write outlives the request. stop must be called when the request ends.
func Dial(ctx context.Context, engine, address string) (conn net.Conn, stop func(), err error) {
	var d net.Dialer
	conn, err = d.DialContext(ctx, Network(address), address)
	if err != nil {
		return nil, nil, Fail(engine, ctx, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Time{})
	}
	// A cancellation without a deadline must end the blocked read too.
	unhook := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return conn, func() { unhook(); conn.Close() }, nil
}
