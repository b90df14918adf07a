package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// /metrics takes the API's token or the metrics token, and needs one
// beyond loopback; the metrics token opens nothing else.
func TestMetricsToken(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("mailgate_up 1\n")) })
	for _, tt := range []struct {
		name, token, metricsToken string
		required                  bool
		send                      string
		metrics, api              int
	}{
		{"loopback, no token", "", "", false, "", http.StatusOK, http.StatusOK},
		{"beyond loopback, no token", "", "", true, "", http.StatusForbidden, http.StatusForbidden},
		{"the API's token", "s3cret", "", true, "s3cret", http.StatusOK, http.StatusOK},
		{"none sent", "s3cret", "scr4pe", true, "", http.StatusUnauthorized, http.StatusUnauthorized},
		{"the metrics token", "s3cret", "scr4pe", true, "scr4pe", http.StatusOK, http.StatusUnauthorized},
		{"the metrics token alone", "", "scr4pe", true, "scr4pe", http.StatusOK, http.StatusForbidden},
		{"a wrong one", "s3cret", "scr4pe", true, "guess", http.StatusUnauthorized, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(Handler(Options{Store: fixtureStore(t), Token: tt.token, MetricsToken: tt.metricsToken,
				RequireToken: tt.required, Metrics: metrics}))
			defer srv.Close()
			code, body := do(t, srv, "", "/metrics", tt.send)
			if code != tt.metrics || (code == http.StatusOK && body != "mailgate_up 1\n") {
				t.Errorf("/metrics: %d %q, want %d", code, body, tt.metrics)
			}
			if code, _ := do(t, srv, "", "/api/messages", tt.send); code != tt.api {
				t.Errorf("/api: %d, want %d", code, tt.api)
			}
			// Health needs no token.
			if code, body := do(t, srv, "", "/healthz", ""); code != http.StatusOK || body != "ok\n" {
				t.Errorf("/healthz: %d %q", code, body)
			}
		})
	}
}

// /readyz: 200 when nothing is wrong, 503 with the problems; the Host
// check applies to it as to everything.
func TestReadyz(t *testing.T) {
	var problems []string
	srv := httptest.NewServer(Handler(Options{Store: fixtureStore(t), Token: "s3cret", RequireToken: true,
		Ready: func() []string { return problems }}))
	defer srv.Close()
	if code, body := do(t, srv, "", "/readyz", ""); code != http.StatusOK || body != "ready\n" {
		t.Errorf("ready: %d %q", code, body)
	}
	problems = []string{"shutting down", "listener In: not accepting connections"}
	code, body := do(t, srv, "", "/readyz", "")
	if code != http.StatusServiceUnavailable || body != "not ready:\nshutting down\nlistener In: not accepting connections\n" {
		t.Errorf("not ready: %d %q", code, body)
	}
	if code, _ := do(t, srv, "rebind.attacker.example", "/readyz", ""); code != http.StatusMisdirectedRequest {
		t.Errorf("a foreign Host: %d", code)
	}
	if code, _ := do(t, srv, "", "/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics without metrics: %d, want 404", code)
	}
}

// Before the store opens, the API says so; health and the page answer.
func TestNoStoreYet(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{Ready: func() []string { return nil }}))
	defer srv.Close()
	if code, body := do(t, srv, "", "/api/messages", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "not open yet") {
		t.Errorf("/api: %d %s", code, body)
	}
	for _, p := range []string{"/", "/healthz", "/readyz"} {
		if code, _ := do(t, srv, "", p, ""); code != http.StatusOK {
			t.Errorf("%s: %d", p, code)
		}
	}
}
