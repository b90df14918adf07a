// Package spamd is a client of SpamAssassin's spamd over its SPAMC
// protocol: "SYMBOLS SPAMC/1.5" with Content-length (and User) headers and
// the message, answered by "SPAMD/1.1 0 EX_OK", a "Spam: True ; 15.0 /
// 5.0" header and the names of the rules that matched. One connection per
// message, as spamd closes it after each answer; over TCP or a Unix socket.
package spamd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/scan"
)

// Name is the engine's name in the mail log.
const Name = "SpamAssassin"

// Defaults.
const (
	DefaultAddress     = "127.0.0.1:783"
	DefaultTimeout     = 30 * time.Second // SpamAssassin takes seconds on a large message
	DefaultConcurrency = 5                // spamd's --max-children
	DefaultMaxSize     = 500 << 10        // spamc's own limit (-s)
)

// Options configure a Client. A zero field takes its default.
type Options struct {
	Address     string        // host:port, or the path of a Unix socket
	Timeout     time.Duration // for each request, including the wait for a connection
	Concurrency int           // requests in flight at once
	MaxSize     int64         // larger messages are not sent: *scan.TooBigError
	User        string        // spamd's User header: whose preferences apply; "" for none
	// Thresholds: by default positive is spamd's own decision (the score
	// reaches its required_score) and there is no suspect class.
	Thresholds scan.Thresholds
}

// Client asks one spamd. It is safe for concurrent use.
type Client struct {
	address, user string
	thresholds    scan.Thresholds
	gate          *scan.Gate
}

// New returns a client; it does not connect.
func New(opt Options) *Client {
	if opt.Address == "" {
		opt.Address = DefaultAddress
	}
	return &Client{address: opt.Address, user: opt.User, thresholds: opt.Thresholds, gate: scan.NewGate(Name,
		scan.Limits{Timeout: opt.Timeout, Concurrency: opt.Concurrency, MaxSize: opt.MaxSize},
		scan.Limits{Timeout: DefaultTimeout, Concurrency: DefaultConcurrency, MaxSize: DefaultMaxSize})}
}

// Name returns "SpamAssassin".
func (c *Client) Name() string { return Name }

// maxReply bounds a reply: SYMBOLS's is a line of rule names.
const maxReply = 256 << 10

// ScanSpam asks spamd for a verdict on m.
func (c *Client) ScanSpam(ctx context.Context, m *scan.Message) (scan.SpamVerdict, error) {
	if err := c.gate.TooBig(m.Size); err != nil {
		return scan.SpamVerdict{}, err
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\n", m.Size)
	if c.user != "" {
		fmt.Fprintf(&head, "User: %s\r\n", c.user)
	}
	head.WriteString("\r\n")
	reply, err := c.exchange(ctx, head.Bytes(), m.Reader())
	if err != nil {
		return scan.SpamVerdict{}, err
	}
	return Parse(reply, c.thresholds)
}

// exchange sends a request and reads the whole reply (spamd closes the
// connection after it).
func (c *Client) exchange(ctx context.Context, head []byte, body io.Reader) ([]byte, error) {
	ctx, end, err := c.gate.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	conn, stop, err := scan.Dial(ctx, Name, c.address)
	if err != nil {
		return nil, err
	}
	defer stop()
	w := bufio.NewWriterSize(conn, 64<<10)
	w.Write(head)
	if body != nil {
		if _, err := io.Copy(w, body); err != nil {
			return nil, scan.Fail(Name, ctx, fmt.Errorf("sending the message: %w", err))
		}
	}
	if err := w.Flush(); err != nil {
		return nil, scan.Fail(Name, ctx, fmt.Errorf("sending the message: %w", err))
	}
	reply, err := scan.ReadReply(ctx, Name, conn, maxReply)
	if err != nil {
		return nil, err
	}
	if len(reply) == 0 {
		return nil, scan.Fail(Name, ctx, fmt.Errorf("the connection closed without a reply: %w", io.EOF))
	}
	return reply, nil
}

// Ping checks that spamd answers PING with PONG.
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.exchange(ctx, []byte("PING SPAMC/1.5\r\n\r\n"), nil)
	if err != nil {
		return err
	}
	code, msg, _, _, err := parseReply(reply)
	if err != nil {
		return err
	}
	if code != 0 || msg != "PONG" {
		return scan.Protocol(Name, "PING answered %d %q, not PONG", code, msg)
	}
	return nil
}

// Parse maps a reply to SYMBOLS (or CHECK, REPORT) to a verdict: positive
// when spamd says "Spam: True", each class replaced by its threshold when
// set. A reply that is not EX_OK is an *scan.Error of kind ErrEngine.
func Parse(reply []byte, t scan.Thresholds) (scan.SpamVerdict, error) {
	code, msg, headers, body, err := parseReply(reply)
	if err != nil {
		return scan.SpamVerdict{}, err
	}
	if code != 0 {
		return scan.SpamVerdict{}, scan.EngineFailed(Name, "%d %s", code, msg)
	}
	spam, ok := headers["spam"]
	if !ok {
		return scan.SpamVerdict{}, scan.Protocol(Name, "the reply has no Spam header")
	}
	isSpam, score, required, err := parseSpam(spam)
	if err != nil {
		return scan.SpamVerdict{}, err
	}
	v := scan.SpamVerdict{
		Class:    t.Classify(score, isSpam, false),
		Score:    score,
		Required: required,
		Action:   "ham",
	}
	if isSpam {
		v.Action = "spam"
	}
	// SYMBOLS's body: the rule names, comma separated. REPORT's is text;
	// its rules are not taken apart here.
	if names := strings.TrimSpace(string(body)); names != "" && !strings.ContainsAny(names, " \n") {
		for n := range strings.SplitSeq(names, ",") {
			if n != "" {
				v.Symbols = append(v.Symbols, scan.Symbol{Name: n})
			}
		}
	}
	return v, nil
}

// parseReply splits "SPAMD/1.1 0 EX_OK\r\nName: value\r\n\r\nbody". Header
// names are returned in lower case. The body is cut at Content-length when
// there is one.
func parseReply(reply []byte) (code int, msg string, headers map[string]string, body []byte, err error) {
	line, rest, _ := bytes.Cut(reply, []byte("\n"))
	status := strings.TrimSuffix(string(line), "\r")
	proto, r, _ := strings.Cut(status, " ")
	if !strings.HasPrefix(proto, "SPAMD/") {
		return 0, "", nil, nil, scan.Protocol(Name, "not a SPAMD reply: %.60q", status)
	}
	codeText, msg, _ := strings.Cut(r, " ")
	code, err = strconv.Atoi(codeText)
	if err != nil || code < 0 {
		return 0, "", nil, nil, scan.Protocol(Name, "bad status line %.60q", status)
	}
	headers = map[string]string{}
	for {
		if len(rest) == 0 {
			// A reply may end after its headers without the blank line
			// (an error reply); it has no body then.
			return code, msg, headers, nil, nil
		}
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		h := strings.TrimSuffix(string(line), "\r")
		if h == "" {
			break
		}
		name, value, ok := strings.Cut(h, ":")
		if !ok || name == "" {
			return 0, "", nil, nil, scan.Protocol(Name, "bad header line %.60q", h)
		}
		headers[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
	}
	body = rest
	if cl, ok := headers["content-length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(body) {
			return 0, "", nil, nil, scan.Protocol(Name, "Content-length %q with %d bytes of body", cl, len(body))
		}
		body = body[:n]
	}
	return code, msg, headers, body, nil
}

// parseSpam parses the Spam header's value: "True ; 15.0 / 5.0" (spamd also
// says "Yes" and "No" in old versions).
func parseSpam(s string) (spam bool, score, required float64, err error) {
	verdict, scores, ok := strings.Cut(s, ";")
	sc, req, ok2 := strings.Cut(scores, "/")
	if !ok || !ok2 {
		return false, 0, 0, scan.Protocol(Name, "bad Spam header %.60q", s)
	}
	switch strings.ToLower(strings.TrimSpace(verdict)) {
	case "true", "yes":
		spam = true
	case "false", "no":
	default:
		return false, 0, 0, scan.Protocol(Name, "bad Spam header %.60q", s)
	}
	score, err1 := strconv.ParseFloat(strings.TrimSpace(sc), 64)
	required, err2 := strconv.ParseFloat(strings.TrimSpace(req), 64)
	if err1 != nil || err2 != nil || !finite(score) || !finite(required) {
		return false, 0, 0, scan.Protocol(Name, "bad Spam header %.60q", s)
	}
	return spam, score, required, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
