package control

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mailgate/mailgate/stats"
)

// Stats is what the status commands ask of the gateway: *stats.Collector
// in the gateway. Its errors are told apart with stats.ErrNoHost and
// stats.ErrUnknownSort.
type Stats interface {
	Status(detail bool) stats.Status
	TopHosts(sort string, limit int) ([]stats.Host, error)
	HostStatus(ctx context.Context, domain string) (stats.HostStatus, error)
	Reset()
}

// Option adds to what a Server serves.
type Option func(*Server)

// WithStats serves the status commands (status, tophosts, hoststatus,
// resetcounters) from st.
func WithStats(st Stats) Option { return func(s *Server) { s.stats = st } }

// ResetResult is the answer to POST /v1/resetcounters.
type ResetResult struct {
	Reset bool `json:"reset"`
}

func (s *Server) statsRoutes(mux *http.ServeMux) {
	if s.stats == nil {
		return
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.stats.Status(r.URL.Query().Get("detail") == "1"), nil)
	})
	mux.HandleFunc("GET /v1/tophosts", func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryLimit(r)
		if err != nil {
			replyError(w, http.StatusBadRequest, err)
			return
		}
		hosts, err := s.stats.TopHosts(r.URL.Query().Get("sort"), limit)
		if errors.Is(err, stats.ErrUnknownSort) {
			replyError(w, http.StatusBadRequest, err)
			return
		}
		reply(w, hosts, err)
	})
	mux.HandleFunc("GET /v1/hoststatus/{domain}", func(w http.ResponseWriter, r *http.Request) {
		hs, err := s.stats.HostStatus(r.Context(), r.PathValue("domain"))
		if errors.Is(err, stats.ErrNoHost) {
			replyError(w, http.StatusNotFound, err)
			return
		}
		reply(w, hs, err)
	})
	mux.HandleFunc("POST /v1/resetcounters", func(w http.ResponseWriter, r *http.Request) {
		s.stats.Reset()
		reply(w, ResetResult{Reset: true}, nil)
	})
}

// Status reads the counters and gauges; with detail, the rates too.
func (c *Client) Status(ctx context.Context, detail bool) (stats.Status, error) {
	q := url.Values{}
	if detail {
		q.Set("detail", "1")
	}
	var st stats.Status
	err := c.do(ctx, http.MethodGet, "/v1/status", q, &st)
	return st, err
}

// TopHosts lists the destinations sorted by one of stats.SortKeys, at
// most limit (0: all).
func (c *Client) TopHosts(ctx context.Context, sort string, limit int) ([]stats.Host, error) {
	q := url.Values{}
	if sort != "" {
		q.Set("sort", sort)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var hosts []stats.Host
	err := c.do(ctx, http.MethodGet, "/v1/tophosts", q, &hosts)
	return hosts, err
}

// HostStatus reads one recipient domain's destination; an unknown one is
// an *Error with Status 404.
func (c *Client) HostStatus(ctx context.Context, domain string) (stats.HostStatus, error) {
	var hs stats.HostStatus
	err := c.do(ctx, http.MethodGet, "/v1/hoststatus/"+url.PathEscape(domain), nil, &hs)
	return hs, err
}

// ResetCounters zeroes the Reset column of status.
func (c *Client) ResetCounters(ctx context.Context) error {
	var r ResetResult
	return c.do(ctx, http.MethodPost, "/v1/resetcounters", nil, &r)
}
