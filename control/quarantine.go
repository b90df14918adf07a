package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mailgate/mailgate/quarantine"
)

// Quarantines is what the API asks of the quarantines: *quarantine.Store
// in the gateway. The administrator's commands are the web page's
// (quarantine.Admin); Holds also refuses queue bounce and delete of a
// quarantined message (ErrQuarantined).
type Quarantines interface {
	quarantine.Admin
	Holds(mid uint64) bool
}

// ErrQuarantined refuses queue bounce and delete of a quarantined message:
// the queue manager does not hold it, and removing it behind the
// quarantines' back would leave them listing a message that is gone.
var ErrQuarantined = errors.New("the message is in quarantine: use mailgate quarantine release or delete")

func (s *Server) quarantined(mid uint64) error {
	if qs := s.quar.Load(); qs != nil && (*qs).Holds(mid) {
		return fmt.Errorf("MID %d: %w", mid, ErrQuarantined)
	}
	return nil
}

// QuarantineList is the answer to GET /v1/quarantines and to the list of
// one quarantine.
type QuarantineList struct {
	Quarantines []quarantine.Info    `json:"quarantines"`
	Messages    []quarantine.Summary `json:"messages"`
}

// QuarantineAction is the answer to a release or a delete.
type QuarantineAction struct {
	MID        uint64 `json:"mid"`
	Quarantine string `json:"quarantine,omitempty"` // "" for every one it was in
}

// ServeQuarantines adds the quarantine commands to the API:
//
//	GET  /v1/quarantines                       every quarantine, and every message in one
//	GET  /v1/quarantines/{name}                one quarantine's messages
//	GET  /v1/quarantine/messages/{mid}         one message: header and text, escaped
//	POST /v1/quarantine/messages/{mid}/release [?quarantine=Q]
//	POST /v1/quarantine/messages/{mid}/delete  [?quarantine=Q]
//
// A gateway without mail policies has no quarantines: the paths answer
// 404.
func (s *Server) ServeQuarantines(qs Quarantines) {
	s.quar.Store(&qs)
	list := func(w http.ResponseWriter, name string) {
		msgs, err := qs.List(name)
		quarantineReply(w, QuarantineList{Quarantines: qs.Quarantines(), Messages: msgs}, err)
	}
	s.mux.HandleFunc("GET /v1/quarantines", func(w http.ResponseWriter, r *http.Request) { list(w, "") })
	s.mux.HandleFunc("GET /v1/quarantines/{name}", func(w http.ResponseWriter, r *http.Request) { list(w, r.PathValue("name")) })
	s.mux.HandleFunc("GET /v1/quarantine/messages/{mid}", quarantineMID(func(mid uint64, _ *http.Request) (any, error) {
		return qs.Show(mid)
	}))
	s.mux.HandleFunc("POST /v1/quarantine/messages/{mid}/release", quarantineMID(func(mid uint64, r *http.Request) (any, error) {
		q := r.URL.Query().Get("quarantine")
		return QuarantineAction{MID: mid, Quarantine: q}, qs.Release(mid, q, quarantine.WhyManual)
	}))
	s.mux.HandleFunc("POST /v1/quarantine/messages/{mid}/delete", quarantineMID(func(mid uint64, r *http.Request) (any, error) {
		q := r.URL.Query().Get("quarantine")
		return QuarantineAction{MID: mid, Quarantine: q}, qs.Delete(mid, q, quarantine.WhyManual)
	}))
}

func quarantineMID(f func(mid uint64, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mid, err := strconv.ParseUint(r.PathValue("mid"), 10, 64)
		if err != nil {
			replyError(w, http.StatusBadRequest, fmt.Errorf("MID %q: not a number", r.PathValue("mid")))
			return
		}
		v, err := f(mid, r)
		quarantineReply(w, v, err)
	}
}

// quarantineReply: 404 for a message not in quarantine or an unknown
// quarantine.
func quarantineReply(w http.ResponseWriter, v any, err error) {
	if errors.Is(err, quarantine.ErrNotFound) || errors.Is(err, quarantine.ErrNoQuarantine) {
		replyError(w, http.StatusNotFound, err)
		return
	}
	reply(w, v, err)
}

// Quarantines lists the quarantines and the messages in quarantine q
// (every one when ""); an *Error with Status 404 when the gateway has no
// quarantines or no quarantine q.
func (c *Client) Quarantines(ctx context.Context, q string) (QuarantineList, error) {
	var l QuarantineList
	path := "/v1/quarantines"
	if q != "" {
		path += "/" + q // escaped by the client
	}
	err := c.do(ctx, http.MethodGet, path, nil, &l)
	return l, err
}

// QuarantineShow returns a quarantined message to read.
func (c *Client) QuarantineShow(ctx context.Context, mid uint64) (quarantine.Detail, error) {
	var d quarantine.Detail
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/quarantine/messages/%d", mid), nil, &d)
	return d, err
}

// QuarantineRelease releases a message from quarantine q (every one it is
// in when "").
func (c *Client) QuarantineRelease(ctx context.Context, mid uint64, q string) error {
	return c.quarantineAction(ctx, mid, q, "release")
}

// QuarantineDelete deletes a message from quarantine q (every one it is
// in when "").
func (c *Client) QuarantineDelete(ctx context.Context, mid uint64, q string) error {
	return c.quarantineAction(ctx, mid, q, "delete")
}

func (c *Client) quarantineAction(ctx context.Context, mid uint64, q, op string) error {
	var v url.Values
	if q != "" {
		v = url.Values{"quarantine": {q}}
	}
	var a QuarantineAction
	return c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/quarantine/messages/%d/%s", mid, op), v, &a)
}
