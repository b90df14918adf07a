// Package clamd is a client of ClamAV's clamd: the message streamed with
// zINSTREAM in chunks, each after its 4-byte big-endian length, ended by a
// zero-length chunk, answered "stream: OK", "stream: <name> FOUND" or
// "<text> ERROR". Over TCP or a Unix socket. A message larger than clamd's
// StreamMaxLength is never sent in part: its verdict would be about its
// first part only.
package clamd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/mailgate/mailgate/scan"
)

// Name is the engine's name in the mail log.
const Name = "ClamAV"

// Defaults.
const (
	DefaultAddress     = "/var/run/clamav/clamd.ctl" // Debian's clamav-daemon
	DefaultTimeout     = 60 * time.Second
	DefaultConcurrency = 10       // clamd's MaxThreads is 12 in Debian's clamd.conf
	DefaultMaxSize     = 25 << 20 // Debian's clamd.conf: StreamMaxLength 25M
)

// Options configure a Client. A zero field takes its default.
type Options struct {
	Address     string        // host:port, or the path of a Unix socket
	Timeout     time.Duration // for each request, including the wait for a connection
	Concurrency int           // requests in flight at once
	// MaxSize is clamd's StreamMaxLength: larger messages are not sent
	// (*scan.TooBigError). It must not be above clamd's, which refuses
	// the stream then (also a *scan.TooBigError, after the bytes are sent).
	MaxSize int64
}

// Client asks one clamd. It is safe for concurrent use.
type Client struct {
	address string
	gate    *scan.Gate
}

// New returns a client; it does not connect.
func New(opt Options) *Client {
	if opt.Address == "" {
		opt.Address = DefaultAddress
	}
	return &Client{address: opt.Address, gate: scan.NewGate(Name,
		scan.Limits{Timeout: opt.Timeout, Concurrency: opt.Concurrency, MaxSize: opt.MaxSize},
		scan.Limits{Timeout: DefaultTimeout, Concurrency: DefaultConcurrency, MaxSize: DefaultMaxSize})}
}

// Name returns "ClamAV".
func (c *Client) Name() string { return Name }

// chunk is the size of each INSTREAM chunk.
const chunk = 64 << 10

// maxReply bounds a reply: one line.
const maxReply = 4 << 10

// ScanVirus streams m to clamd and returns its verdict.
func (c *Client) ScanVirus(ctx context.Context, m *scan.Message) (scan.VirusVerdict, error) {
	if err := c.gate.TooBig(m.Size); err != nil {
		return scan.VirusVerdict{}, err
	}
	ctx, end, err := c.gate.Begin(ctx)
	if err != nil {
		return scan.VirusVerdict{}, err
	}
	defer end()
	conn, stop, err := scan.Dial(ctx, Name, c.address)
	if err != nil {
		return scan.VirusVerdict{}, err
	}
	defer stop()
	sendErr := stream(conn, m.Reader())
	// clamd may stop reading and answer before the end (over its
	// StreamMaxLength): its answer says more than the failed write.
	reply, readErr := readReply(conn)
	if readErr != nil {
		if sendErr != nil {
			return scan.VirusVerdict{}, scan.Fail(Name, ctx, fmt.Errorf("sending the message: %w", sendErr))
		}
		return scan.VirusVerdict{}, scan.Fail(Name, ctx, fmt.Errorf("reading the reply: %w", readErr))
	}
	v, err := Parse(reply)
	var tb *scan.TooBigError
	if errors.As(err, &tb) {
		tb.Size, tb.Limit = m.Size, c.gate.MaxSize
	}
	return v, err
}

// stream sends zINSTREAM and the message in chunks.
func stream(conn net.Conn, r io.Reader) error {
	w := bufio.NewWriterSize(conn, chunk+4)
	w.WriteString("zINSTREAM\x00")
	buf := make([]byte, 4+chunk)
	for {
		n, err := io.ReadFull(r, buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf, uint32(n))
			if _, werr := w.Write(buf[:4+n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the message: %w", err)
		}
	}
	w.Write([]byte{0, 0, 0, 0})
	return w.Flush()
}

// readReply reads one NUL-terminated reply (or what there is before the
// connection closes).
func readReply(conn net.Conn) ([]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(conn, maxReply), maxReply)
	line, err := br.ReadSlice(0)
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, scan.Protocol(Name, "a reply over %d bytes without its end", maxReply)
		}
		return nil, err
	}
	return line, nil
}

// Parse maps a reply to INSTREAM to a verdict: "stream: OK" is clean;
// "stream: <name> FOUND" is viral, or encrypted for ClamAV's
// Heuristics.Encrypted.* (AlertEncrypted), or unscannable for
// Heuristics.Limits.Exceeded.* (AlertExceedsMax) and Heuristics.Broken.*;
// "INSTREAM size limit exceeded. ERROR" is a *scan.TooBigError (without
// sizes); another "... ERROR" is an *scan.Error of kind ErrEngine.
func Parse(reply []byte) (scan.VirusVerdict, error) {
	s := strings.TrimRight(string(bytes.TrimRight(reply, "\x00")), "\r\n")
	if strings.ContainsAny(s, "\x00\r\n") || s == "" {
		return scan.VirusVerdict{}, scan.Protocol(Name, "not a reply: %.80q", s)
	}
	if text, ok := strings.CutSuffix(s, " ERROR"); ok {
		if strings.Contains(text, "size limit exceeded") {
			return scan.VirusVerdict{}, &scan.TooBigError{Engine: Name}
		}
		return scan.VirusVerdict{}, scan.EngineFailed(Name, "%s", text)
	}
	rest, ok := strings.CutPrefix(s, "stream: ")
	if !ok {
		return scan.VirusVerdict{}, scan.Protocol(Name, "not a reply to INSTREAM: %.80q", s)
	}
	if rest == "OK" {
		return scan.VirusVerdict{Class: scan.Clean}, nil
	}
	name, ok := strings.CutSuffix(rest, " FOUND")
	if !ok || name == "" || strings.TrimSpace(name) != name {
		return scan.VirusVerdict{}, scan.Protocol(Name, "not a reply to INSTREAM: %.80q", s)
	}
	v := scan.VirusVerdict{Class: scan.Viral, Name: name}
	switch {
	case strings.HasPrefix(name, "Heuristics.Encrypted."):
		v.Class = scan.Encrypted
	case strings.HasPrefix(name, "Heuristics.Limits.Exceeded"), strings.HasPrefix(name, "Heuristics.Broken."):
		v.Class = scan.Unscannable
	}
	return v, nil
}

// Ping checks that clamd answers zPING with PONG.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.gate.Timeout)
	defer cancel()
	conn, stop, err := scan.Dial(ctx, Name, c.address)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return scan.Fail(Name, ctx, err)
	}
	reply, err := readReply(conn)
	if err != nil {
		return scan.Fail(Name, ctx, err)
	}
	if s := string(bytes.TrimRight(reply, "\x00\n")); s != "PONG" {
		return scan.Protocol(Name, "PING answered %.80q, not PONG", s)
	}
	return nil
}
