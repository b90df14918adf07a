package config

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHTTPSection(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cert, key := writeCertificate(t, dir, "web", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	listener := "listeners:\n  - {name: In, address: 127.0.0.1:2525}\n"
	for _, tt := range []struct {
		name, yaml string
		want       HTTP
		warning    string
	}{
		{"default", "", HTTP{Address: DefaultHTTPAddress}, ""},
		{"loopback without a token", `http: {address: "[::1]:8025"}`, HTTP{Address: "[::1]:8025"}, ""},
		{"beyond loopback with a token", `http: {address: ":8025", token: t0k}`, HTTP{Address: ":8025", Token: "t0k"}, ""},
		{"a metrics token", `http: {address: ":8025", token: t0k, metrics_token: scr4pe}`, HTTP{Address: ":8025", Token: "t0k", MetricsToken: "scr4pe"}, ""},
		{"all addresses without a token", `http: {address: ":8025"}`, HTTP{Address: ":8025"},
			"test.yaml:4: http.address: :8025 is reachable beyond loopback and http.token is not set"},
		{"0.0.0.0 without a token", `http: {address: "0.0.0.0:8025"}`, HTTP{Address: "0.0.0.0:8025"}, "http.address: 0.0.0.0:8025 is reachable beyond loopback"},
		{"a public address without a token", `http: {address: "192.0.2.1:8025"}`, HTTP{Address: "192.0.2.1:8025"}, "beyond loopback"},
		{"hosts", `http: {hosts: [Track.Example.COM., "[2001:DB8::1]", 192.0.2.1]}`,
			HTTP{Address: DefaultHTTPAddress, Hosts: []string{"track.example.com", "2001:db8::1", "192.0.2.1"}}, ""},
		{"tls files", "http: {tls: {cert: " + cert + ", key: " + key + "}}",
			HTTP{Address: DefaultHTTPAddress, TLS: &TLSFiles{Cert: cert, Key: key}}, ""},
		{"a listener's certificate", "http: {tls: {listener: In}}",
			HTTP{Address: DefaultHTTPAddress, TLS: &TLSFiles{Cert: filepath.Join(dir, "tls/self-signed-cert.pem"),
				Key: filepath.Join(dir, "tls/self-signed-key.pem"), SelfSigned: true}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := parseString(t, "data_dir: "+dir+"\n"+listener+tt.yaml+"\n")
			if !reflect.DeepEqual(c.HTTP, tt.want) {
				t.Errorf("http = %+v, want %+v", c.HTTP, tt.want)
			}
			switch {
			case tt.warning == "" && len(c.Warnings) > 0:
				t.Errorf("warnings %v, want none", c.Warnings)
			case tt.warning != "" && (len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), tt.warning)):
				t.Errorf("warnings %v, want %q", c.Warnings, tt.warning)
			}
		})
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"not a name", `http: {hosts: ["a b"]}`, `test.yaml:4: http.hosts[0]: "a b" is neither a host name nor an IP address`},
		{"no such listener", `http: {tls: {listener: Out}}`, `http.tls.listener: no listener is named "Out"`},
		{"cert without key", "http: {tls: {cert: " + cert + "}}", `http.tls.key: required with cert`},
		{"key of another certificate", "http: {tls: {cert: " + cert + ", key: " + filepath.Join(dir, "nope.pem") + "}}", `http.tls.key: stat`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, "data_dir: "+dir+"\n"+listener+tt.yaml+"\n")
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant %q", ps, tt.want)
			}
		})
	}
}

// listeners[].health_checks: addresses and networks, an IPv4-mapped one
// taken as IPv4, anything else an error with its line.
func TestHealthChecks(t *testing.T) {
	c := parseString(t, "listeners:\n  - {name: In, address: 127.0.0.1:2525, health_checks: [192.0.2.7, 10.1.0.0/16, \"2001:db8::/32\", \"::ffff:198.51.100.0/120\", 10.2.3.4/8]}\n")
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("10.0.0.0/8")}
	if got := c.Listeners[0].HealthChecks; !reflect.DeepEqual(got, want) {
		t.Errorf("health_checks = %v, want %v", got, want)
	}
	ps := problemsOf(t, "listeners:\n  - name: In\n    address: 127.0.0.1:2525\n    health_checks: [192.0.2.7, lb.example]\n")
	if want := `test.yaml:4: listeners[0].health_checks[1]: "lb.example" is neither an IP address nor a network`; !strings.Contains(ps.Error(), want) {
		t.Errorf("problems:\n%v\nwant %q", ps, want)
	}
}
