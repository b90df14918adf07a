package scan

import (
	"context"
	"fmt"
	"io"
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

// ReadReply reads an engine's whole reply from r (spamd's connection,
// rspamd's HTTP body), at most limit bytes of it: more is an *Error of kind
// ErrProtocol, as no engine's reply is that long and a peer that is not the
// engine must not fill the memory; a failed read is an *Error of the kind
// its cause shows (Fail).
func ReadReply(ctx context.Context, engine string, r io.Reader, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, Fail(engine, ctx, fmt.Errorf("reading the reply: %w", err))
	}
	if len(b) > limit {
		return nil, Protocol(engine, "a reply over %d bytes", limit)
	}
	return b, nil
}
