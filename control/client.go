package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"

	"github.com/mailgate/mailgate/outbound"
)

// Client talks to a running gateway over its control socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path. Nothing is dialed
// until the first call.
func NewClient(path string) *Client {
	var d net.Dialer
	return &Client{path: path, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// Error is an answer of the gateway that is not a success.
type Error struct {
	Status  int // HTTP status: 404 no such message, 409 busy or suspended
	Message string
	// Unserved marks an answer no handler of the API wrote (the router's
	// 404 or 405): the gateway does not serve the path at all.
	Unserved bool
}

func (e *Error) Error() string { return e.Message }

// IsUnserved reports whether err says that the gateway does not serve the
// path: a part it has not started (the work queue and quarantines of a
// gateway without mail policies, the status commands of one without
// stats), as opposed to a 404 of a served path (no such message).
func IsUnserved(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound && e.Unserved
}

// ErrNotRunning is returned when no gateway answers on the socket.
var ErrNotRunning = errors.New("no gateway is running on this data directory")

func (c *Client) do(ctx context.Context, method, path string, q url.Values, v any) error {
	u := url.URL{Scheme: "http", Host: "mailgate", Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("control: %w (no answer on %s)", ErrNotRunning, c.path)
		}
		return fmt.Errorf("control: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		unserved := json.Unmarshal(body, &e) != nil || e.Error == ""
		if unserved {
			e.Error = resp.Status
		}
		return &Error{Status: resp.StatusCode, Message: e.Error, Unserved: unserved}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("control: %s %s: %w", method, path, err)
	}
	return nil
}

// WorkQueue returns the state of the queue.
func (c *Client) WorkQueue(ctx context.Context) (outbound.WorkQueue, error) {
	var w outbound.WorkQueue
	err := c.do(ctx, http.MethodGet, "/v1/workqueue", nil, &w)
	return w, err
}

// Messages lists queued messages, of one destination if domain is set, at
// most limit (0: all).
func (c *Client) Messages(ctx context.Context, domain string, limit int) (MessageList, error) {
	q := url.Values{}
	if domain != "" {
		q.Set("domain", domain)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var l MessageList
	err := c.do(ctx, http.MethodGet, "/v1/messages", q, &l)
	return l, err
}

// Message describes one queued message.
func (c *Client) Message(ctx context.Context, mid uint64) (outbound.QueuedMessage, error) {
	var m outbound.QueuedMessage
	err := c.do(ctx, http.MethodGet, "/v1/messages/"+strconv.FormatUint(mid, 10), nil, &m)
	return m, err
}

// DeliverNow retries now what waits for a retry, for one destination or
// all ("").
func (c *Client) DeliverNow(ctx context.Context, domain string) (DeliverNowResult, error) {
	q := url.Values{}
	if domain != "" {
		q.Set("domain", domain)
	}
	var r DeliverNowResult
	err := c.do(ctx, http.MethodPost, "/v1/deliver-now", q, &r)
	return r, err
}

// Bounce bounces the recipients of a message not final yet.
func (c *Client) Bounce(ctx context.Context, mid uint64) (Removed, error) {
	var r Removed
	err := c.do(ctx, http.MethodPost, "/v1/messages/"+strconv.FormatUint(mid, 10)+"/bounce", nil, &r)
	return r, err
}

// Delete removes the recipients of a message not final yet, without a
// bounce.
func (c *Client) Delete(ctx context.Context, mid uint64) (Removed, error) {
	var r Removed
	err := c.do(ctx, http.MethodPost, "/v1/messages/"+strconv.FormatUint(mid, 10)+"/delete", nil, &r)
	return r, err
}
