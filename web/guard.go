package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Bounds of a query string: enough for any real filter (an address is at
// most 254 bytes, a Subject line 998), and small enough that no filter
// reaches the store's own limits (SQLite refuses LIKE patterns beyond
// 50,000 bytes with an error that would be a 500).
const (
	maxParamBytes = 1000
	maxParams     = 32
)

// boundQuery answers 400 to a query string with a key or value longer
// than maxParamBytes, or more than maxParams values.
func boundQuery(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkQuery(r); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		h.ServeHTTP(w, r)
	})
}

func checkQuery(r *http.Request) error {
	n := 0
	for k, vs := range r.URL.Query() {
		if len(k) > maxParamBytes {
			return fmt.Errorf("a parameter name of %d bytes; at most %d", len(k), maxParamBytes)
		}
		for _, v := range vs {
			if len(v) > maxParamBytes {
				return fmt.Errorf("%s: %d bytes; at most %d", k, len(v), maxParamBytes)
			}
		}
		n += len(vs)
	}
	if n > maxParams {
		return fmt.Errorf("%d parameters; at most %d", n, maxParams)
	}
	return nil
}

// checkHost answers 421 (Misdirected Request) to a request whose Host is
// neither localhost, a loopback address nor one of hosts.
func checkHost(hosts []string, h http.Handler) http.Handler {
	allowed := map[string]bool{"localhost": true}
	for _, n := range hosts {
		allowed[hostName(n)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := hostName(r.Host)
		if a, err := netip.ParseAddr(name); !allowed[name] && (err != nil || !a.IsLoopback()) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("this gateway does not answer to the name %q; "+
				"add it to http.hosts if it is one of the gateway's", r.Host))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// hostName returns a Host header's or a configured name's host, without
// port or brackets, in lower case and without a final dot; an address in
// its canonical form.
func hostName(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")), ".")
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return s
}
