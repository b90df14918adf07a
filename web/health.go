package web

import (
	"io"
	"net/http"
	"strings"
)

// healthz answers that the process serves: a load balancer's liveness.
func healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// readyz answers 200 when ready reports nothing, else 503 with what is
// wrong, a line each: whether the gateway should get new connections.
func readyz(ready func() []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		problems := ready()
		if len(problems) == 0 {
			io.WriteString(w, "ready\n")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready:\n"+strings.Join(problems, "\n")+"\n")
	})
}
