// Package rspamd is a client of rspamd's HTTP protocol: POST /checkv2 with
// the message as the body and its envelope in headers (IP, Helo, From, one
// Rcpt per recipient, User, Queue-Id), answered by a JSON verdict whose
// action and score become a scan.SpamVerdict. Connections are kept alive
// and bounded in number.
package rspamd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/scan"
)

// Name is the engine's name in the mail log.
const Name = "rspamd"

// Defaults.
const (
	DefaultURL         = "http://127.0.0.1:11333"
	DefaultTimeout     = 15 * time.Second // rspamd's own task_timeout is 8 s
	DefaultConcurrency = 8
	DefaultMaxSize     = 2 << 20 // spam is small; large messages cost rspamd the most
)

// Options configure a Client. A zero field takes its default.
type Options struct {
	URL         string        // the normal worker's base URL: http://127.0.0.1:11333
	Timeout     time.Duration // for each request, including the wait for a connection
	Concurrency int           // requests in flight at once
	MaxSize     int64         // larger messages are not sent: *scan.TooBigError
	Thresholds  scan.Thresholds
}

// Client asks one rspamd. It is safe for concurrent use.
type Client struct {
	thresholds scan.Thresholds
	check      string // the /checkv2 URL
	ping       string
	http       *http.Client
	gate       *scan.Gate
}

// New returns a client; it does not connect.
func New(opt Options) (*Client, error) {
	if opt.URL == "" {
		opt.URL = DefaultURL
	}
	gate := scan.NewGate(Name,
		scan.Limits{Timeout: opt.Timeout, Concurrency: opt.Concurrency, MaxSize: opt.MaxSize},
		scan.Limits{Timeout: DefaultTimeout, Concurrency: DefaultConcurrency, MaxSize: DefaultMaxSize})
	u, err := url.Parse(opt.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rspamd: URL %q: want http://host:port", opt.URL)
	}
	base := strings.TrimSuffix(u.String(), "/")
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: gate.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: gate.Concurrency,
		MaxConnsPerHost:     gate.Concurrency,
		IdleConnTimeout:     50 * time.Second, // rspamd closes idle keep-alive connections after a minute
		// rspamd's replies are small JSON: compression costs more than it saves.
		DisableCompression: true,
	}
	return &Client{
		thresholds: opt.Thresholds,
		check:      base + "/checkv2",
		ping:       base + "/ping",
		http:       &http.Client{Transport: tr, CheckRedirect: noRedirect},
		gate:       gate,
	}, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Name returns "rspamd".
func (c *Client) Name() string { return Name }

// Close closes the idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// maxReply bounds a reply: it is a few KiB of JSON; a megabyte is garbage.
const maxReply = 1 << 20

// ScanSpam asks rspamd for a verdict on m.
func (c *Client) ScanSpam(ctx context.Context, m *scan.Message) (scan.SpamVerdict, error) {
	if err := c.gate.TooBig(m.Size); err != nil {
		return scan.SpamVerdict{}, err
	}
	ctx, end, err := c.gate.Begin(ctx)
	if err != nil {
		return scan.SpamVerdict{}, err
	}
	defer end()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.check, m.Reader())
	if err != nil {
		return scan.SpamVerdict{}, fmt.Errorf("rspamd: %w", err)
	}
	req.ContentLength = m.Size
	setHeaders(req.Header, m)
	resp, err := c.http.Do(req)
	if err != nil {
		return scan.SpamVerdict{}, scan.Fail(Name, ctx, err)
	}
	defer resp.Body.Close()
	body, err := scan.ReadReply(ctx, Name, resp.Body, maxReply)
	if err != nil {
		return scan.SpamVerdict{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return scan.SpamVerdict{}, statusError(resp.StatusCode, body)
	}
	return Parse(body, c.thresholds)
}

// setHeaders passes the envelope as rspamd's protocol names it.
func setHeaders(h http.Header, m *scan.Message) {
	if m.ClientIP.IsValid() {
		h.Set("IP", m.ClientIP.Unmap().String())
	}
	if m.ClientHost != "" {
		h.Set("Hostname", oneLine(m.ClientHost))
	}
	if m.Helo != "" {
		h.Set("Helo", oneLine(m.Helo))
	}
	// rspamd takes an empty From as the null sender.
	h.Set("From", oneLine(m.Sender))
	for _, r := range m.Recipients {
		h.Add("Rcpt", oneLine(r))
	}
	if len(m.Recipients) == 1 {
		// The recipient's own settings and statistics apply.
		h.Set("Deliver-To", oneLine(m.Recipients[0]))
	}
	if m.User != "" {
		// An authenticated sender: rspamd treats the message as
		// outbound (no SPF or RBL checks; DKIM signing when configured).
		h.Set("User", oneLine(m.User))
	}
	if m.MID != 0 {
		h.Set("Queue-Id", strconv.FormatUint(m.MID, 10))
	}
}

// oneLine keeps a header value on one line: a CR or LF from a client's HELO
// would otherwise end the header (Go's client refuses such a value).
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

// statusError turns an HTTP error status into an *scan.Error with rspamd's
// own explanation ({"error": "..."}) when it gives one.
func statusError(code int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := http.StatusText(code)
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if code >= 500 {
		return scan.EngineFailed(Name, "HTTP %d: %s", code, msg)
	}
	return scan.Protocol(Name, "HTTP %d: %s", code, msg)
}

// reply is what the verdict is made of in /checkv2's JSON.
type reply struct {
	Score    *float64 `json:"score"`
	Required float64  `json:"required_score"`
	Action   *string  `json:"action"`
	Symbols  map[string]struct {
		Score   float64  `json:"score"`
		Options []string `json:"options"`
	} `json:"symbols"`
}

// Actions are rspamd's, from the harshest.
var actions = []string{"reject", "soft reject", "rewrite subject", "add header", "greylist", "no action"}

// Parse maps a /checkv2 reply to a verdict: by rspamd's action (reject is
// positive; add header and rewrite subject are suspect; greylist, soft
// reject and no action are negative), each class replaced by its score
// threshold when that is set.
func Parse(body []byte, t scan.Thresholds) (scan.SpamVerdict, error) {
	var r reply
	if err := json.Unmarshal(body, &r); err != nil {
		return scan.SpamVerdict{}, scan.Protocol(Name, "the reply is not /checkv2's JSON: %v", err)
	}
	if r.Action == nil || r.Score == nil {
		return scan.SpamVerdict{}, scan.Protocol(Name, "the reply has no action or score")
	}
	action := *r.Action
	if !slices.Contains(actions, action) {
		return scan.SpamVerdict{}, scan.Protocol(Name, "unknown action %q", action)
	}
	v := scan.SpamVerdict{
		Class:    t.Classify(*r.Score, action == "reject", action == "add header" || action == "rewrite subject"),
		Score:    *r.Score,
		Required: r.Required,
		Action:   action,
	}
	for name, s := range r.Symbols {
		v.Symbols = append(v.Symbols, scan.Symbol{Name: name, Score: s.Score, Options: s.Options})
	}
	slices.SortFunc(v.Symbols, func(a, b scan.Symbol) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return v, nil
}

// Ping checks that rspamd answers GET /ping with "pong".
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.gate.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.ping, nil)
	if err != nil {
		return fmt.Errorf("rspamd: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return scan.Fail(Name, ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return scan.Fail(Name, ctx, err)
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "pong" {
		return scan.Protocol(Name, "/ping answered HTTP %d %q, not pong", resp.StatusCode, body)
	}
	return nil
}
