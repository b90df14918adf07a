package web

import (
	"net/http/httptest"
	"testing"
)

// TestSameOrigin: a POST to the quarantines from another site is refused,
// one from the page itself or from a client that is not a browser passes.
func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		host, origin, site string
		ok                 bool
	}{
		{"127.0.0.1:8025", "", "", true}, // curl
		{"127.0.0.1:8025", "http://127.0.0.1:8025", "same-origin", true},
		{"mx.example.com", "https://mx.example.com", "same-origin", true},
		{"mx.example.com", "https://MX.example.com.", "", true},
		{"127.0.0.1:8025", "", "none", true}, // typed in the address bar
		{"127.0.0.1:8025", "http://evil.example", "cross-site", false},
		{"127.0.0.1:8025", "", "cross-site", false},
		{"127.0.0.1:8025", "", "same-site", false},
		{"127.0.0.1:8025", "http://evil.example", "", false},
		{"127.0.0.1:8025", "http://127.0.0.1:9999", "", false}, // another port is another origin
		{"127.0.0.1:8025", "null", "", false},
	} {
		r := httptest.NewRequest("POST", "http://"+c.host+"/api/quarantines/Policy/messages/1/release", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if err := sameOrigin(r); (err == nil) != c.ok {
			t.Errorf("Host %s, Origin %q, Sec-Fetch-Site %q: %v, want ok=%v", c.host, c.origin, c.site, err, c.ok)
		}
	}
}
