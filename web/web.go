// Package web serves message tracking over HTTP: a JSON API over a
// tracking.Store and the page administrators use to search it, in the
// manner of the Cisco SMA's Message Tracking.
//
// The page is static (embedded, no build step) and talks to the API like
// any other client. Log text comes from the network (subjects, addresses,
// remote replies), so the page only ever puts it in the document as text,
// and the Content-Security-Policy forbids inline script in case it one day
// does not.
//
// The API holds every address and subject the gateway has seen, so it is
// guarded before anything else runs: the Host header must be one of the
// gateway's names (a DNS-rebound name is refused), a token is required
// beyond loopback, and query strings are bounded.
package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mailgate/mailgate/quarantine"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
)

//go:embed static
var static embed.FS

// Options configure Handler.
type Options struct {
	Store tracking.Store

	// Token, when not empty, is required of every API request as
	// "Authorization: Bearer <token>". The page itself is served without
	// it: it holds no data, and asks for the token when the API refuses.
	Token string

	// Gateway is the gateway the page runs on, so that an explanation
	// names its listeners' real ports.
	Gateway explain.Gateway

	// RequireToken makes the API refuse every request while Token is
	// empty: set when the page is reachable beyond loopback, where
	// whoever reaches the port would otherwise read every address and
	// subject.
	RequireToken bool

	// Hosts are the names (or addresses) the page and API answer to in
	// the Host header, besides localhost and loopback addresses, which
	// always do. Any other name gets 421: a browser led to the page by a
	// DNS name rebound to it sends that name, and must not read the API.
	Hosts []string

	Logger *slog.Logger     // nil: slog.Default()
	Now    func() time.Time // nil: time.Now; relative filters ("24h") count back from it

	// Metrics, if set, is served at /metrics under the API's token rule;
	// MetricsToken is also taken there (and nowhere else), so that a
	// scraper's credential reads no message.
	Metrics      http.Handler
	MetricsToken string

	// Ready, if set, answers /readyz: what keeps the gateway from taking
	// mail, nothing when it is ready. /healthz answers whenever the
	// process serves. Neither needs a token (load balancers ask them).
	Ready func() []string

	// Quarantines, if set, returns the gateway's quarantines for the
	// quarantine view (quarantine.go); nil when it has none.
	Quarantines func() quarantine.Admin
}

// Handler returns the page (at /) and the API (under /api/).
func Handler(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &api{store: o.Store, log: o.Logger, now: o.Now, gw: o.Gateway}

	var apiMux http.Handler = a.routes(o.Quarantines)
	if o.Store == nil {
		// The store opens in the background (it may be a PostgreSQL server
		// that is down): the rest is served meanwhile.
		apiMux = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusServiceUnavailable, "the tracking store is not open yet; the gateway's log says why")
		})
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary: cannot happen
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", noStore(requireToken([]string{o.Token}, o.RequireToken, boundQuery(apiMux))))
	if o.Metrics != nil {
		mux.Handle("GET /metrics", noStore(requireToken([]string{o.Token, o.MetricsToken}, o.RequireToken, o.Metrics)))
	}
	mux.Handle("GET /healthz", noStore(http.HandlerFunc(healthz)))
	if o.Ready != nil {
		mux.Handle("GET /readyz", noStore(readyz(o.Ready)))
	}
	mux.Handle("/", page(http.FileServerFS(sub)))
	return securityHeaders(checkHost(o.Hosts, mux))
}

// routes is the API.
func (a *api) routes(quarantines func() quarantine.Admin) http.Handler {
	apiMux := http.NewServeMux()
	apiMux.HandleFunc("GET /api/messages", a.messages)
	apiMux.HandleFunc("GET /api/messages/{host}/{mid}", a.message)
	apiMux.HandleFunc("GET /api/histogram", a.histogram)
	apiMux.HandleFunc("GET /api/gaps", a.gaps)
	if quarantines != nil {
		quarantineAPI{get: quarantines}.routes(apiMux)
	}
	apiMux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return apiMux
}

// csp allows the page's own files and nothing else: no inline script or
// style, no other origin, no framing. SVG drawn through the DOM needs no
// exception.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// noStore keeps tracking data (addresses, subjects) out of browser and
// proxy caches.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// page serves the page's files, which are only ever read. The browser
// revalidates them so that a new gateway version's page is not mixed with
// an old cached script.
func page(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// requireToken refuses requests without one of the bearer tokens (those
// not empty), and every request when there is no token but one is
// required. Both sides are hashed before the constant-time compare so that
// not even the token's length leaks through timing.
func requireToken(tokens []string, required bool, h http.Handler) http.Handler {
	var wants [][sha256.Size]byte
	for _, t := range tokens {
		if t != "" {
			wants = append(wants, sha256.Sum256([]byte(t)))
		}
	}
	if len(wants) == 0 && required {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusForbidden, "this API is reachable beyond loopback and the gateway has no access token "+
				"(http.token): it answers nothing until one is set")
		})
	}
	if len(wants) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		match := 0
		for _, want := range wants {
			match |= subtle.ConstantTimeCompare(sum[:], want[:])
		}
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailgate"`)
			msg := "this API needs the access token: Authorization: Bearer <token>"
			if ok {
				msg = "the access token is not the right one"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
