package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/policy"
)

// defaultDelivery is the delivery configuration of a file without
// "delivery:", for a gateway called host.
func defaultDelivery(host string) Delivery {
	return Delivery{
		Hostname:            host,
		Port:                25,
		MaxConcurrency:      500,
		MaxActiveMessages:   10000,
		ConnectionCacheTime: 2 * time.Second,
		Default:             Destination{Domain: "default", MaxConnections: 20, MaxMessagesPerConnection: 50, TLS: TLSPreferred},
		Bounce: Bounce{
			MaxRetries: 100, MaxTimeInQueue: 72 * time.Hour, InitialRetry: time.Minute, MaxRetry: time.Hour,
			SendBounces: true, From: "MAILER-DAEMON@" + host,
		},
		Timeouts: DeliveryTimeouts{
			Connect: 30 * time.Second, Greeting: 5 * time.Minute, Command: 5 * time.Minute,
			DataInit: 2 * time.Minute, DataBlock: 3 * time.Minute, DataDone: 10 * time.Minute,
		},
	}
}

func TestDeliveryDefaults(t *testing.T) {
	for _, yaml := range []string{
		"hostname: mx.example.org\n",
		"hostname: mx.example.org\ndelivery:\n",
		"hostname: mx.example.org\ndelivery: {}\n",
		"hostname: mx.example.org\ndelivery: {hostname: '', source_address: '', tls_ca_file: '', bounce: {from: ''}}\n",
		"hostname: mx.example.org\ndelivery: {destinations: [{domain: default}]}\n",
	} {
		c := parseString(t, yaml)
		if want := defaultDelivery("mx.example.org"); !reflect.DeepEqual(c.Delivery, want) {
			t.Errorf("%s gives\n%+v\nwant\n%+v", yaml, c.Delivery, want)
		}
		if len(c.Logs.DomainDebug) != 0 {
			t.Errorf("%s gives domain debug logs %+v", yaml, c.Logs.DomainDebug)
		}
	}
	// The embedded default says the same (TestDefault checks that it is
	// what an empty file gives).
	def := Default()
	if want := defaultDelivery(def.Hostname); !reflect.DeepEqual(def.Delivery, want) {
		t.Errorf("default.yaml gives\n%+v\nwant\n%+v", def.Delivery, want)
	}
	if pool, err := def.Delivery.RootCAs(); pool != nil || err != nil {
		t.Errorf("RootCAs() without a CA file = %v, %v; want nil (the system's)", pool, err)
	}
}

// loadFull parses testdata/full.yaml in a temporary working directory
// whose data_dir holds the files it names: a CA certificate (the CA is
// returned) and the listener's certificate and key.
func loadFull(t *testing.T) (c *Config, dataDir string, ca *smtptest.CA) {
	t.Helper()
	file, err := filepath.Abs("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	dataDir = filepath.Join(dir, "mailgate-data")
	ca = smtptest.NewCA(t)
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := writeCertificate(t, t.TempDir(), "full", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	certPEM, _ := os.ReadFile(cert)
	keyPEM, _ := os.ReadFile(key)
	for f, content := range map[string][]byte{"tls/cert.pem": certPEM, "tls/key.pem": keyPEM, "tls/ca.pem": pem} {
		p := filepath.Join(dataDir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return parseFile(t, file), dataDir, ca
}

// TestFullDelivery checks the delivery keys of testdata/full.yaml, the file
// that sets every key.
func TestFullDelivery(t *testing.T) {
	c, data, ca := loadFull(t)
	want := Delivery{
		Suspended:           true,
		Hostname:            "out.example.com",
		SourceAddress:       netip.MustParseAddr("127.0.0.1"),
		Port:                2526,
		MaxConcurrency:      100,
		MaxActiveMessages:   5000,
		ConnectionCacheTime: 500 * time.Millisecond,
		Default:             Destination{Domain: "default", MaxConnections: 10, MaxMessagesPerConnection: 50, TLS: TLSPreferred},
		Destinations: []Destination{
			{Domain: "partner.example", MaxConnections: 5, MaxMessagesPerConnection: 50, TLS: TLSRequiredVerify},
			{Domain: ".bulk.example", MaxConnections: 10, MaxMessagesPerConnection: 200, TLS: TLSOff},
		},
		TLSCAFile: filepath.Join(data, "tls/ca.pem"),
		Bounce: Bounce{
			MaxRetries: 50, MaxTimeInQueue: 48 * time.Hour, InitialRetry: 30 * time.Second, MaxRetry: 2 * time.Hour,
			SendBounces: false, From: "Mail Delivery System <postmaster@example.com>",
		},
		Timeouts: DeliveryTimeouts{
			Connect: 10 * time.Second, Greeting: 2 * time.Minute, Command: time.Minute,
			DataInit: time.Minute, DataBlock: 2 * time.Minute, DataDone: 5 * time.Minute,
		},
	}
	if !reflect.DeepEqual(c.Delivery, want) {
		t.Errorf("delivery =\n%+v\nwant\n%+v", c.Delivery, want)
	}
	wantDebug := []DomainDebug{{
		Domains: []string{"partner.example", ".bulk.example"}, DebugLog: DebugLog{Sessions: 100,
			Path: filepath.Join(data, "logs/domain_debug/domain.current"), MaxSize: 10 << 20, MaxFiles: 10},
	}}
	if !reflect.DeepEqual(c.Logs.DomainDebug, wantDebug) {
		t.Errorf("domain debug logs = %+v, want %+v", c.Logs.DomainDebug, wantDebug)
	}
	if d := c.Delivery.Destination("mx.bulk.example"); d.TLS != TLSOff || d.MaxMessagesPerConnection != 200 {
		t.Errorf("mx.bulk.example gets %+v", d)
	}

	// The CA file verifies a next hop whose certificate the CA signed, over
	// a real TLS connection; the system's roots alone do not.
	addr := tlsServer(t, ca.Server(t, "mx.partner.example"))
	roots, err := c.Delivery.RootCAs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		cfg    *tls.Config
		errMsg string
	}{
		{"configured CA", &tls.Config{ServerName: "mx.partner.example", RootCAs: roots}, ""},
		{"wrong name", &tls.Config{ServerName: "mx.other.example", RootCAs: roots}, "not mx.other.example"},
		{"system roots", &tls.Config{ServerName: "mx.partner.example"}, "unknown authority"},
	} {
		err := tlsDial(addr, tt.cfg)
		switch {
		case tt.errMsg == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.errMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.errMsg)):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.errMsg)
		}
	}
}

// tlsServer accepts TLS connections on loopback and completes their
// handshakes until the test ends.
func tlsServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.(*tls.Conn).Handshake() // the client's verdict is what the test checks
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func tlsDial(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	return c.Close()
}

func TestDestination(t *testing.T) {
	c := parseString(t, `
delivery:
  destinations:
    - {domain: example.com, max_connections: 2}
    - {domain: .example.com, max_connections: 3, tls: required}
    - {domain: .eu.example.com, max_connections: 4}
    - {domain: Partner.Example., tls: required-verify}
    - {domain: default, max_messages_per_connection: 7, tls: "off"}
`)
	d := &c.Delivery
	if want := (Destination{Domain: "default", MaxConnections: 20, MaxMessagesPerConnection: 7, TLS: TLSOff}); d.Default != want {
		t.Errorf("default = %+v, want %+v (built-in values for what it leaves out)", d.Default, want)
	}
	for _, tt := range []struct {
		domain string
		want   Destination
	}{
		{"example.com", Destination{"example.com", 2, 7, TLSOff}},
		{"EXAMPLE.com.", Destination{"example.com", 2, 7, TLSOff}},
		{"mail.example.com", Destination{".example.com", 3, 7, TLSRequired}},
		{"eu.example.com", Destination{".example.com", 3, 7, TLSRequired}},
		{"paris.eu.example.com", Destination{".eu.example.com", 4, 7, TLSOff}},
		{"partner.example", Destination{"partner.example", 20, 7, TLSRequiredVerify}},
		{"mx.partner.example", Destination{"default", 20, 7, TLSOff}},
		{"badexample.com", Destination{"default", 20, 7, TLSOff}},
		{"[192.0.2.1]", Destination{"default", 20, 7, TLSOff}},
		{"", Destination{"default", 20, 7, TLSOff}},
	} {
		if got := d.Destination(tt.domain); got != tt.want {
			t.Errorf("Destination(%q) = %+v, want %+v", tt.domain, got, tt.want)
		}
	}

	// A Delivery made by hand, as tests of other packages do, gets the
	// built-in values for what it leaves out.
	hand := &Delivery{Destinations: []Destination{{Domain: "slow.example", MaxConnections: 1}}}
	if got, want := hand.Destination("slow.example"), (Destination{"slow.example", 1, 50, TLSPreferred}); got != want {
		t.Errorf("hand-made Destination(slow.example) = %+v, want %+v", got, want)
	}
	if got, want := hand.Destination("other.example"), (Destination{"default", 20, 50, TLSPreferred}); got != want {
		t.Errorf("hand-made Destination(other.example) = %+v, want %+v", got, want)
	}
}

func TestDomainDebugMatch(t *testing.T) {
	c := parseString(t, `
logs:
  domain_debug:
    - {domains: [Partner.Example, .bulk.example]}
    - {domains: solo.example, sessions: 5, max_size: 1MB, max_files: 3}
`)
	if len(c.Logs.DomainDebug) != 2 {
		t.Fatalf("%d domain debug logs", len(c.Logs.DomainDebug))
	}
	dd := &c.Logs.DomainDebug[0]
	for domain, want := range map[string]bool{
		"partner.example": true, "PARTNER.example.": true, "mx.partner.example": false,
		"a.bulk.example": true, "bulk.example": false, "xbulk.example": false, "other.example": false,
	} {
		if got := dd.Match(domain); got != want {
			t.Errorf("Match(%q) = %v, want %v", domain, got, want)
		}
	}
	second := c.Logs.DomainDebug[1]
	if second.Sessions != 5 || !strings.HasSuffix(second.Path, "logs/domain_debug/domain-2.current") || !second.Match("solo.example") ||
		second.MaxSize != 1<<20 || second.MaxFiles != 3 {
		t.Errorf("second log = %+v", second)
	}
}

// TestInjectionDebugMatch: an injection debug log records the clients any
// of its hosts matches, as a sender group's rules would.
func TestInjectionDebugMatch(t *testing.T) {
	c := parseString(t, `
logs:
  injection_debug:
    - {hosts: [10.1.0.0/16, .partner.example]}
`)
	j := &c.Logs.InjectionDebug[0]
	for _, tt := range []struct {
		c    policy.Client
		want bool
	}{
		{policy.Client{IP: netip.MustParseAddr("10.1.200.3")}, true},
		{policy.Client{IP: netip.MustParseAddr("192.0.2.9"), Host: "mx.partner.example", Verified: true}, true},
		{policy.Client{IP: netip.MustParseAddr("192.0.2.9"), Host: "mx.partner.example"}, false}, // not verified
		{policy.Client{IP: netip.MustParseAddr("10.2.0.1")}, false},
	} {
		if got := j.Match(tt.c); got != tt.want {
			t.Errorf("Match(%+v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}

// TestDeliveryMistakes covers mistakes in the delivery keys that the big
// mistakes file cannot hold together, each with its line.
func TestDeliveryMistakes(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"not a mapping", "delivery: [a]\n", `test.yaml:1: delivery: want a mapping (key: value), got a list`},
		{"port too large", "delivery:\n  port: 65536\n", `test.yaml:2: delivery.port: port 65536 is above 65535`},
		{"unspecified source", "delivery: {source_address: '0.0.0.0'}\n", `delivery.source_address: 0.0.0.0 is not an address of this host`},
		{"zoned source", "delivery: {source_address: 'fe80::1%eth0'}\n", `delivery.source_address: zoned address`},
		{"hostname with dot", "delivery: {hostname: 'mx.example.com.'}\n", `delivery.hostname: "mx.example.com.": empty label`},
		{"two defaults", "delivery:\n  destinations:\n    - {domain: default}\n    - {domain: DEFAULT}\n", `test.yaml:4: delivery.destinations[1].domain: domain "DEFAULT" has destination controls already, in delivery.destinations[0]`},
		{"destination as a string", "delivery:\n  destinations: [example.com]\n", `test.yaml:2: delivery.destinations[0]: want a mapping`},
		{"bounce from not ASCII", "delivery: {bounce: {from: 'bö@example.com'}}\n", `delivery.bounce.from: the address must be ASCII`},
		{"bounce from with a line break", "delivery: {bounce: {from: \"a@b.example\\r\\nBcc: x@y\"}}\n", `delivery.bounce.from: control character '\r' is not allowed`},
		{"two bounce addresses", "delivery: {bounce: {from: 'a@b.example, c@d.example'}}\n", `delivery.bounce.from: "a@b.example, c@d.example" is not an address`},
		{"postmaster without domain", "postmaster: hostmaster\n", `test.yaml:1: postmaster: "hostmaster" is not an address with a domain`},
		{"postmaster with a name", "postmaster: 'Host Master <hm@example.com>'\n", `postmaster: "Host Master <hm@example.com>" is not an address with a domain`},
		{"postmaster not ASCII", "postmaster: 'pö@example.com'\n", `postmaster: the address must be ASCII`},
		{"tab indentation", "delivery:\n\tport: 25\n", `test.yaml:2: a tab character indents this line; YAML indents with spaces only`},
		{"max_retry below the default initial", "delivery: {bounce: {max_retry: 30s}}\n", `test.yaml:1: delivery.bounce.max_retry: 30s is below initial_retry 1m0s`},
		{"initial above the default max", "delivery:\n  bounce:\n    initial_retry: 2h\n", `test.yaml:3: delivery.bounce.max_retry: 1h0m0s is below initial_retry 2h0m0s`},
		{"cache time negative", "delivery:\n  connection_cache_time: -1s\n", `test.yaml:2: delivery.connection_cache_time: duration -1s is below the minimum 0s`},
		{"timeout without unit", "delivery: {timeouts: {data_done: 600}}\n", `delivery.timeouts.data_done: duration 600 has no unit`},
		{"CA file without certificates", "delivery: {tls_ca_file: " + writeTemp(t, "not a certificate\n") + "}\n", `delivery.tls_ca_file: no PEM certificate in`},
		{"domain debug without domains", "logs:\n  domain_debug:\n    - {sessions: 3}\n", `test.yaml:3: logs.domain_debug[0].domains: required`},
		{"domain debug path taken", "logs:\n  injection_debug: [{hosts: 10.0.0.1, path: x.log}]\n  domain_debug: [{domains: a.example, path: x.log}]\n", `test.yaml:3: logs.domain_debug[0].path: log file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant one containing %q", ps, tt.want)
			}
		})
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file.pem")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRouteHosts checks which route hosts validate: addresses and host
// names, not mistyped addresses, USEDNS or /dev/null.
func TestRouteHosts(t *testing.T) {
	tests := []struct {
		host string
		want RouteHost // zero: a problem
		err  string
	}{
		{"mx.example.com", RouteHost{Host: "mx.example.com", Port: 25}, ""},
		{"MX.Example.COM.:2525", RouteHost{Host: "mx.example.com", Port: 2525}, ""},
		{"mx_1.example.com", RouteHost{Host: "mx_1.example.com", Port: 25}, ""},
		{"localhost", RouteHost{Host: "localhost", Port: 25}, ""},
		{"192.0.2.1", RouteHost{Host: "192.0.2.1", Port: 25}, ""},
		{"[2001:db8::1]:587", RouteHost{Host: "2001:db8::1", Port: 587}, ""},
		{"2001:db8::1", RouteHost{Host: "2001:db8::1", Port: 25}, ""},
		{"[::ffff:192.0.2.1]", RouteHost{Host: "192.0.2.1", Port: 25}, ""},
		{"192.0.2.300", RouteHost{}, `host "192.0.2.300": last label "300" is a number`},
		{"10.1.1:25", RouteHost{}, `host "10.1.1": last label "1" is a number`},
		{"mx..example.com", RouteHost{}, "empty label"},
		{"*.example.com", RouteHost{}, "wildcards are not supported"},
		{"mx.example.com:smtp", RouteHost{}, `port "smtp" is not a number`},
		{"fe80::1%eth0", RouteHost{}, "zoned address"},
		{"/dev/null", RouteHost{}, "/dev/null routes are not supported"},
		{"usedns", RouteHost{}, "USEDNS is not supported"},
		{"", RouteHost{}, `host "": empty host name`},
	}
	for _, tt := range tests {
		yaml := "routes:\n  - {domain: example.com, hosts: ['" + tt.host + "']}\n"
		c, err := Parse([]byte(yaml), "test.yaml")
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.host, err)
		case tt.err == "" && !reflect.DeepEqual(c.Routes[0].Hosts, []RouteHost{tt.want}):
			t.Errorf("%q gives %+v, want %+v", tt.host, c.Routes[0].Hosts, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %q", tt.host, err, tt.err)
		}
	}
	// The mapping form checks its host the same way.
	ps := problemsOf(t, "routes:\n  - {domain: example.com, hosts: [{host: 10.0.0.256, port: 25}]}\n")
	if !strings.Contains(ps.Error(), `routes[0].hosts[0].host: host "10.0.0.256": last label "256" is a number`) {
		t.Errorf("mapping form: %v", ps)
	}
}

// BenchmarkDestination looks up the controls of a recipient domain among
// 100 entries, as the queue manager does for each new destination.
func BenchmarkDestination(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("delivery:\n  destinations:\n")
	for i := range 50 {
		fmt.Fprintf(&sb, "    - {domain: d%d.example, max_connections: 5}\n    - {domain: .s%d.example, tls: required}\n", i, i)
	}
	c, err := Parse([]byte(sb.String()), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := c.Delivery.Destination("mx.eu.s49.example"); d.Domain != ".s49.example" {
			b.Fatal(d)
		}
	}
}
