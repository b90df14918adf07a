package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// Kind is why an engine gave no verdict. The kinds are errors, so that
// errors.Is(err, scan.ErrTimeout) tells them apart whatever wraps them.
type Kind string

func (k Kind) Error() string { return string(k) }

// The kinds of *Error.
const (
	// ErrUnavailable: the engine is not there (connection refused, no
	// socket file, the connection dropped before an answer).
	ErrUnavailable Kind = "unavailable"
	// ErrTimeout: no answer within the timeout.
	ErrTimeout Kind = "timeout"
	// ErrProtocol: an answer that is not the protocol's (garbage, a
	// truncated reply, an unknown verdict).
	ErrProtocol Kind = "protocol error"
	// ErrEngine: the engine answered that it failed (clamd's "... ERROR",
	// spamd's EX_ codes, rspamd's HTTP 5xx).
	ErrEngine Kind = "engine error"
)

// Error is an engine's failure to give a verdict.
type Error struct {
	Engine string // "rspamd", "SpamAssassin", "ClamAV"
	Kind   Kind
	Err    error // the cause
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Engine + ": " + string(e.Kind)
	}
	return e.Engine + ": " + string(e.Kind) + ": " + e.Err.Error()
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// TooBigError is a message over an engine's configured scan size: the engine
// was not asked (or, for clamd, refused it as over its StreamMaxLength). The
// ESA logs it "MID 824 was too big (455698/120000) for scanning by
// BRIGHTMAIL", and the policy decides what follows.
type TooBigError struct {
	Engine string
	Size   int64 // the message's
	Limit  int64 // the engine's scan size limit
}

func (e *TooBigError) Error() string {
	return fmt.Sprintf("%s: message too big (%d/%d) for scanning", e.Engine, e.Size, e.Limit)
}

// Fail wraps a failure of a request to an engine as an *Error of the kind
// its cause shows. A context that ended early by cancellation (the gateway
// stopping), not by its deadline, is no fault of the engine: that error is
// returned wrapped, without a kind.
func Fail(engine string, ctx context.Context, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(ctx.Err(), context.Canceled) && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", engine, err)
	}
	return &Error{Engine: engine, Kind: kindOf(ctx, err), Err: err}
}

func kindOf(ctx context.Context, err error) Kind {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout(), ctx.Err() != nil:
		return ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ErrUnavailable
	}
	var dns *net.DNSError
	var op *net.OpError
	if errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial") {
		return ErrUnavailable
	}
	return ErrProtocol
}

// Protocol returns an *Error of kind ErrProtocol.
func Protocol(engine string, format string, args ...any) error {
	return &Error{Engine: engine, Kind: ErrProtocol, Err: fmt.Errorf(format, args...)}
}

// EngineFailed returns an *Error of kind ErrEngine.
func EngineFailed(engine string, format string, args ...any) error {
	return &Error{Engine: engine, Kind: ErrEngine, Err: fmt.Errorf(format, args...)}
}
