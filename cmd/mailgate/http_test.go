package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// httpGW is a gateway whose tracking page listens on web with the given
// http settings (YAML flow mapping entries after the address).
func httpGW(t *testing.T, web, extra string) *gw {
	t.Helper()
	g := newGW(t, "5s")
	cfg := fmt.Sprintf(`hostname: mx.test
data_dir: %s
listeners:
  - {name: InboundMail, interface: Management, address: %s}
http: {address: "%s"%s}
`, g.dir, g.addr, web, extra)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

// fetch sends GET url with the Host header host ("" for the URL's) and
// returns the status and body. The page's certificate is the gateway's
// self-signed one: the test trusts it blindly.
func fetch(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	c := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	// The port is bound before serve says it listens: a request waits
	// in its backlog until the page is served.
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The page over HTTPS with the listener's certificate, answering only to
// the gateway's names, with bounded filters.
func TestHTTPSafeByDefault(t *testing.T) {
	web := freePort(t)
	g := httpGW(t, web, ", hosts: [track.mx.test], tls: {listener: InboundMail}")
	g.start()
	base := "https://" + web
	for _, tt := range []struct {
		path, host string
		want       int
	}{
		{"/api/messages", "", http.StatusOK}, // loopback: no token needed
		{"/api/messages", "track.mx.test", http.StatusOK},
		{"/api/messages", "rebind.attacker.example", http.StatusMisdirectedRequest},
		{"/", "rebind.attacker.example:" + strings.Split(web, ":")[1], http.StatusMisdirectedRequest},
		{"/api/messages?subject=" + strings.Repeat("x", 50000), "", http.StatusBadRequest},
	} {
		if code, body := fetch(t, base+tt.path, tt.host); code != tt.want {
			t.Errorf("GET %.40s Host %q: %d, want %d: %s", tt.path, tt.host, code, tt.want, body)
		}
	}
	if c, err := net.Dial("tcp", web); err == nil {
		// Plain HTTP to the HTTPS port gets no page.
		fmt.Fprintf(c, "GET /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		c.Close()
		if strings.Contains(string(b), "200 OK") {
			t.Errorf("plain HTTP answered: %q", b)
		}
	}
}

// Bound beyond loopback without a token: check-config fails, serve warns
// and runs, and the API answers nothing.
func TestHTTPBeyondLoopbackWithoutToken(t *testing.T) {
	port := strings.Split(freePort(t), ":")[1]
	g := httpGW(t, "0.0.0.0:"+port, "")
	out, err := exec.Command(binary, "check-config", g.config).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 ||
		!strings.Contains(string(out), "warning: "+g.config+":5: http.address: 0.0.0.0:"+port+" is reachable beyond loopback and http.token is not set") {
		t.Errorf("check-config: %v\n%s", err, out)
	}
	g.start()
	if !strings.Contains(g.stderr.String(), "reachable beyond loopback and http.token is not set") {
		t.Errorf("serve does not warn:\n%s", g.stderr)
	}
	code, body := fetch(t, "http://127.0.0.1:"+port+"/api/messages", "")
	if code != http.StatusForbidden || !strings.Contains(body, "http.token") {
		t.Errorf("GET /api/messages: %d %s, want 403", code, body)
	}
	if code, _ := fetch(t, "http://127.0.0.1:"+port+"/", ""); code != http.StatusOK {
		t.Errorf("the page: %d", code)
	}
}
