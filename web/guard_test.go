package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// do sends GET path to srv with the Host header host ("" leaves the
// server's address) and returns the status and JSON error.
func do(t *testing.T, srv *httptest.Server, host, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// DNS rebinding: a page on an attacker's name whose address is then
// pointed at the gateway reaches it from the victim's browser, with the
// attacker's name in Host. Only the gateway's own names are answered.
func TestHostHeader(t *testing.T) {
	h := Handler(Options{Store: fixtureStore(t), Hosts: []string{"track.example.com", "192.0.2.10", "2001:DB8::1"},
		Now: func() time.Time { return fixtureNow }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		host string
		want int
	}{
		{"", http.StatusOK}, // 127.0.0.1:port
		{"localhost:8025", http.StatusOK},
		{"LOCALHOST.", http.StatusOK},
		{"127.0.0.2:8025", http.StatusOK},
		{"[::1]:8025", http.StatusOK},
		{"track.example.com", http.StatusOK},
		{"Track.Example.Com:8025", http.StatusOK},
		{"192.0.2.10:8025", http.StatusOK},
		{"[2001:db8::1]:8025", http.StatusOK},
		{"rebind.attacker.example", http.StatusMisdirectedRequest},
		{"rebind.attacker.example:8025", http.StatusMisdirectedRequest},
		{"track.example.com.attacker.example", http.StatusMisdirectedRequest},
		{"192.0.2.11", http.StatusMisdirectedRequest},
		{"localhost.attacker.example", http.StatusMisdirectedRequest},
	} {
		for _, path := range []string{"/api/messages", "/"} {
			code, body := do(t, srv, tt.host, path, "")
			if code != tt.want {
				t.Errorf("GET %s with Host %q: %d, want %d %s", path, tt.host, code, tt.want, body)
			}
			if code == http.StatusMisdirectedRequest && !strings.Contains(body, "http.hosts") {
				t.Errorf("GET %s with Host %q: %s, want the reason", path, tt.host, body)
			}
		}
	}
}

// Beyond loopback the API needs a token: without one configured it
// answers nothing, the page still loads (and shows why).
func TestRequireToken(t *testing.T) {
	for _, tt := range []struct {
		token, send string
		want        int
	}{
		{"", "", http.StatusForbidden},
		{"", "guess", http.StatusForbidden},
		{"s3cret", "", http.StatusUnauthorized},
		{"s3cret", "s3cret", http.StatusOK},
	} {
		srv := httptest.NewServer(Handler(Options{Store: fixtureStore(t), Token: tt.token, RequireToken: true,
			Now: func() time.Time { return fixtureNow }}))
		code, body := do(t, srv, "", "/api/messages", tt.send)
		if code != tt.want {
			t.Errorf("token %q, sent %q: %d, want %d %s", tt.token, tt.send, code, tt.want, body)
		}
		if code == http.StatusForbidden && !strings.Contains(body, "http.token") {
			t.Errorf("403 without the reason: %s", body)
		}
		if code, _ := do(t, srv, "", "/", ""); code != http.StatusOK {
			t.Errorf("the page: %d", code)
		}
		srv.Close()
	}
}

// Over-long filters are refused before they reach the store (a 50,000
// character subject was SQLite's "LIKE pattern too complex", a 500).
func TestQueryBounds(t *testing.T) {
	srv := newTestServer(t, "")
	long := strings.Repeat("a", 50000)
	for _, tt := range []struct {
		path string
		want int
		msg  string
	}{
		{"/api/messages?subject=" + long, http.StatusBadRequest, "subject: 50000 bytes; at most 1000"},
		{"/api/messages?sender=" + long, http.StatusBadRequest, "sender: 50000 bytes"},
		{"/api/histogram?subject=" + long, http.StatusBadRequest, "subject: 50000 bytes"},
		{"/api/messages?" + long + "=1", http.StatusBadRequest, "a parameter name of 50000 bytes"},
		{"/api/messages?" + strings.Repeat("subject=a&", 33), http.StatusBadRequest, "33 parameters; at most 32"},
		{"/api/messages?subject=" + strings.Repeat("a", 1000), http.StatusOK, ""},
	} {
		code, body := do(t, srv, "", tt.path, "")
		if code != tt.want || !strings.Contains(body, tt.msg) {
			t.Errorf("GET %.60s...: %d %.200s, want %d %q", tt.path, code, body, tt.want, tt.msg)
		}
	}
}
