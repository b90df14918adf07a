package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
)

// Detail is what GET /api/messages/{host}/{mid} returns: the message, its
// connections, its timeline and what it all means.
type Detail struct {
	Message     *tracking.Message   `json:"message"`
	Connections []*tracking.Conn    `json:"connections"`
	Timeline    []explain.Entry     `json:"timeline"`
	Explanation explain.Explanation `json:"explanation"`
	Links       []explain.Link      `json:"links"` // the messages it was made from or made
}

type api struct {
	store tracking.Store
	log   *slog.Logger
	now   func() time.Time
	gw    explain.Gateway
}

// messages answers GET /api/messages: the messages that match the filters,
// newest first.
func (a *api) messages(w http.ResponseWriter, r *http.Request) {
	q, err := tracking.ParseQuery(r.URL.Query(), a.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ms, err := a.store.Search(r.Context(), q)
	if err != nil {
		a.storeFailed(w, r, fmt.Errorf("search: %w", err))
		return
	}
	if ms == nil {
		ms = []tracking.Message{}
	}
	writeJSON(w, http.StatusOK, ms)
}

// message answers GET /api/messages/{host}/{mid}.
func (a *api) message(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	mid, err := strconv.ParseUint(r.PathValue("mid"), 10, 64)
	if err != nil || mid == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("mid: %q is not a positive number", r.PathValue("mid")))
		return
	}
	m, conns, err := a.store.Find(r.Context(), host, mid)
	if errors.Is(err, tracking.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no message MID %d on host %q", mid, host))
		return
	}
	if err != nil {
		a.storeFailed(w, r, fmt.Errorf("find MID %d on %s: %w", mid, host, err))
		return
	}
	d := Detail{
		Message:     m,
		Connections: conns,
		Timeline:    explain.Timeline(m, conns),
		Explanation: explain.Message(m, conns, a.gw),
		Links:       explain.Links(m),
	}
	if d.Connections == nil {
		d.Connections = []*tracking.Conn{}
	}
	if d.Timeline == nil {
		d.Timeline = []explain.Entry{}
	}
	if d.Links == nil {
		d.Links = []explain.Link{}
	}
	writeJSON(w, http.StatusOK, d)
}

// Histogram ranges: without since the last day; about histogramBuckets
// bars; never more than maxBuckets (a step too fine for the range would
// make a response of millions of empty buckets).
const (
	defaultRange     = 24 * time.Hour
	histogramBuckets = 48
	maxBuckets       = 2000
)

// niceSteps are the intervals a default step is rounded up to, so that bars
// start on round times.
var niceSteps = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// histogram answers GET /api/histogram: every interval of the range, empty
// ones included, so that a chart needs nothing else to draw its axis.
func (a *api) histogram(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	stepText := v.Get("step")
	// The filters are ParseQuery's, which refuses keys it does not know.
	v = cloneWithout(v, "step", "limit")
	now := a.now()
	q, err := tracking.ParseQuery(v, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case q.Since.IsZero() && q.Until.IsZero():
		q.Since, q.Until = now.Add(-defaultRange), now
	case q.Since.IsZero():
		q.Since = q.Until.Add(-defaultRange)
	case q.Until.IsZero():
		q.Until = now
		if !q.Since.Before(q.Until) {
			writeError(w, http.StatusBadRequest, "since: "+q.Since.Format(time.RFC3339)+" is in the future")
			return
		}
	}
	step, err := histogramStep(stepText, q.Until.Sub(q.Since))
	if err != nil {
		writeError(w, http.StatusBadRequest, "step: "+err.Error())
		return
	}
	got, err := a.store.Histogram(r.Context(), q, step)
	if err != nil {
		a.storeFailed(w, r, fmt.Errorf("histogram: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, fillBuckets(got, q.Since, q.Until, step))
}

// histogramStep reads the step, or picks one for about histogramBuckets
// intervals over span.
func histogramStep(text string, span time.Duration) (time.Duration, error) {
	if text == "" {
		want := span / histogramBuckets
		for _, s := range niceSteps {
			if s >= want {
				return s, nil
			}
		}
		day := 24 * time.Hour
		return (want + day - 1) / day * day, nil
	}
	step, err := tracking.ParseDuration(text)
	if err != nil {
		return 0, err
	}
	if n := span / step; n > maxBuckets {
		return 0, fmt.Errorf("%s makes %d intervals of the range; at most %d", text, n, maxBuckets)
	}
	return step, nil
}

// fillBuckets returns one bucket per step from the one since falls in to
// the one before until, with the store's counts where it has them. Buckets
// start at multiples of step since the Unix epoch, as the store counts.
func fillBuckets(got []tracking.Bucket, since, until time.Time, step time.Duration) []tracking.Bucket {
	byStart := make(map[int64]tracking.Bucket, len(got))
	for _, b := range got {
		byStart[b.Start.UnixNano()] = b
	}
	first := since.UnixNano() / int64(step) * int64(step)
	out := []tracking.Bucket{}
	for t := first; t < until.UnixNano(); t += int64(step) {
		b, ok := byStart[t]
		if !ok {
			b = tracking.Bucket{Start: time.Unix(0, t).UTC(),
				Status: map[tracking.Status]int{}, Abort: map[tracking.Abort]int{}}
		}
		out = append(out, b)
	}
	return out
}

func cloneWithout(v url.Values, keys ...string) url.Values {
	out := make(url.Values, len(v))
	for k, vals := range v {
		out[k] = vals
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

// storeFailed answers a store error: the details go to the log, not to the
// client (they may name files and servers).
func (a *api) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away; nobody reads the answer
	}
	a.log.Error("web: tracking store", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "the tracking store failed; the gateway's log says why")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
