package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mailgate/mailgate/quarantine"
)

// quarantineAPI serves the quarantines under /api/quarantines. get returns
// the gateway's quarantines, or nil when it has none (no mail policies, or
// not started yet): the paths then answer 404.
type quarantineAPI struct {
	get func() quarantine.Admin
}

func (a quarantineAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/quarantines", a.with(func(qs quarantine.Admin, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"quarantines": qs.Quarantines()})
	}))
	mux.HandleFunc("GET /api/quarantines/{name}/messages", a.with(func(qs quarantine.Admin, w http.ResponseWriter, r *http.Request) {
		l, err := qs.List(r.PathValue("name"))
		if err != nil {
			quarantineError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, l)
	}))
	mux.HandleFunc("GET /api/quarantines/{name}/messages/{mid}", a.withMID(func(qs quarantine.Admin, mid uint64, w http.ResponseWriter, r *http.Request) {
		d, err := qs.Show(mid)
		if err != nil {
			quarantineError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, d)
	}))
	for _, op := range []string{"release", "delete"} {
		mux.HandleFunc("POST /api/quarantines/{name}/messages/{mid}/"+op, a.withMID(func(qs quarantine.Admin, mid uint64, w http.ResponseWriter, r *http.Request) {
			if err := sameOrigin(r); err != nil {
				writeError(w, http.StatusForbidden, err.Error())
				return
			}
			q := r.PathValue("name")
			act := qs.Release
			if op == "delete" {
				act = qs.Delete
			}
			if err := act(mid, q, quarantine.WhyManual); err != nil {
				quarantineError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"mid": mid, "quarantine": q, "done": op})
		}))
	}
}

func (a quarantineAPI) with(f func(quarantine.Admin, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		qs := a.get()
		if qs == nil {
			writeError(w, http.StatusNotFound, "this gateway has no quarantines (no mail_policies in its configuration)")
			return
		}
		f(qs, w, r)
	}
}

func (a quarantineAPI) withMID(f func(quarantine.Admin, uint64, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return a.with(func(qs quarantine.Admin, w http.ResponseWriter, r *http.Request) {
		mid, err := strconv.ParseUint(r.PathValue("mid"), 10, 64)
		if err != nil || mid == 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("mid: %q is not a positive number", r.PathValue("mid")))
			return
		}
		f(qs, mid, w, r)
	})
}

func quarantineError(w http.ResponseWriter, err error) {
	if errors.Is(err, quarantine.ErrNotFound) || errors.Is(err, quarantine.ErrNoQuarantine) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

// sameOrigin refuses a request a browser sent from another site (CSRF):
// a form or script elsewhere can make the browser POST here, with its
// cookies but never with the token. Browsers say where a request comes
// from in Sec-Fetch-Site and Origin; a client that is not a browser
// sends neither, and cannot be led by another site.
func sameOrigin(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("a %s request: only this page may change the quarantines", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || o == "null" || hostName(u.Host) != hostName(r.Host) || u.Port() != portOf(r.Host) {
			return fmt.Errorf("a request from %q: only this page may change the quarantines", o)
		}
	}
	return nil
}

// portOf returns a Host header's port, "" when it has none.
func portOf(host string) string {
	u := url.URL{Host: host}
	return u.Port()
}
