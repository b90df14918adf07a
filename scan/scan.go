// Package scan holds what the scanning engines' clients share: the message
// they are given, their verdicts, their errors, and the two interfaces a
// work-queue stage calls. The clients themselves are its subpackages:
// rspamd and spamd (anti-spam), clamd (anti-virus). It knows nothing of
// policy: what a verdict or an error leads to is the mail policy's choice.
package scan

import (
	"bytes"
	"context"
	"io"
	"net/netip"
)

// Message is a message to scan: the envelope facts an engine weighs (rspamd
// passes them to its rules; spamd and clamd take only the body) and the
// body, which is read through Body, never whole into memory.
type Message struct {
	MID        uint64     // the queue id given to the engine (rspamd's Queue-Id)
	ClientIP   netip.Addr // the SMTP client; the zero Addr when unknown
	ClientHost string     // its verified reverse DNS name; "" when none
	Helo       string     // what it said in HELO/EHLO
	Sender     string     // the envelope sender; "" for the null sender <>
	Recipients []string   // the envelope recipients this scan is for
	User       string     // the SMTP AUTH user; "" when the client did not authenticate

	// Body holds the message as received (headers and body, CRLF line
	// ends); Size is its length. An io.ReaderAt can be read more than once
	// and by several engines at once (the spool file, a bytes.Reader).
	Body io.ReaderAt
	Size int64
}

// Reader returns a fresh reader of the whole message.
func (m *Message) Reader() *io.SectionReader { return io.NewSectionReader(m.Body, 0, m.Size) }

// Bytes makes a Message body from a byte slice, for small messages and
// tests: it sets Body and Size.
func (m *Message) Bytes(b []byte) *Message {
	m.Body, m.Size = bytes.NewReader(b), int64(len(b))
	return m
}

// SpamEngine is an anti-spam engine: rspamd, SpamAssassin's spamd.
type SpamEngine interface {
	// Name is the engine's one-word name in the mail log's "using
	// engine: <name> spam positive" and "for scanning by <name>".
	Name() string
	// ScanSpam scans a message. Its error is an *Error (the engine
	// could not give a verdict) or a *TooBigError (the message is over
	// the configured size; the engine was not asked).
	ScanSpam(ctx context.Context, m *Message) (SpamVerdict, error)
	// Ping checks that the engine answers.
	Ping(ctx context.Context) error
}

// VirusEngine is an anti-virus engine: ClamAV's clamd.
type VirusEngine interface {
	// Name is the engine's one-word name in "interim AV verdict using
	// <name> CLEAN".
	Name() string
	// ScanVirus scans a message; its errors are ScanSpam's.
	ScanVirus(ctx context.Context, m *Message) (VirusVerdict, error)
	// Ping checks that the engine answers.
	Ping(ctx context.Context) error
}
