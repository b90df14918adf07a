package config

import (
	"errors"
	"flag"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/quarantine"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func mustRules(t *testing.T, texts ...string) []policy.Rule {
	t.Helper()
	var rs []policy.Rule
	for _, s := range texts {
		r, err := policy.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

func mustRAT(t *testing.T, entries ...[2]string) policy.RAT {
	t.Helper()
	var rat policy.RAT
	for _, e := range entries {
		re, err := policy.ParseRATEntry(e[0], e[1])
		if err != nil {
			t.Fatal(err)
		}
		rat = append(rat, re)
	}
	return rat
}

// stdPolicy is a policy with every parameter at the shipped default.
func stdPolicy(name string, a policy.Action, hostname string) *policy.Policy {
	p := &policy.Policy{
		Name: name, Action: a,
		MaxMessageSize:           10 << 20,
		MaxRecipientsPerMessage:  1000,
		MaxMessagesPerConnection: 1000,
		MaxConcurrencyPerIP:      50,
		BannerCode:               220, BannerText: hostname + " ESMTP",
		RejectCode: 554, RejectText: hostname + " Access denied",
		TLS: "preferred",
		SPF: policy.DefaultSPF, DKIM: a != policy.Relay, DMARC: policy.DefaultDMARC,
	}
	if a == policy.Relay {
		p.SPF.Verify, p.DMARC.Verify = false, false
	}
	return p
}

func throttled(p *policy.Policy) *policy.Policy {
	p.MaxMessagesPerConnection, p.MaxRecipientsPerMessage, p.MaxMessageSize = 10, 20, 1<<20
	p.MaxConcurrencyPerIP, p.MaxConnectionsPerMinute, p.MaxRecipientsPerHour = 10, 10, 20
	return p
}

func parseFile(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return c
}

func parseString(t *testing.T, yaml string) *Config {
	t.Helper()
	c, err := Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%v\n--- input:\n%s", err, yaml)
	}
	return c
}

// problemsOf parses a file that must be invalid and returns its problems.
func problemsOf(t *testing.T, yaml string) Problems {
	t.Helper()
	c, err := Parse([]byte(yaml), "test.yaml")
	if err == nil {
		t.Fatalf("Parse accepted:\n%s\ngiving %+v", yaml, c)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse error is a %T, want Problems: %v", err, err)
	}
	return ps
}

// TestDesignContract parses the example of DESIGN.md's "Configuration
// contract" verbatim and checks every runtime value it gives.
func TestDesignContract(t *testing.T) {
	c := parseFile(t, "testdata/design.yaml")
	cwd, _ := os.Getwd()
	data := filepath.Join(cwd, "mailgate-data")
	const host = "mail.example.com"

	accepted := stdPolicy("ACCEPTED", policy.Accept, host)
	accepted.MaxMessagesPerConnection = 10
	accepted.MaxConcurrencyPerIP = 10
	want := &Config{
		File:            "testdata/design.yaml",
		Hostname:        host,
		Postmaster:      "postmaster@" + host,
		AuthServID:      host,
		DataDir:         data,
		ShutdownTimeout: 30 * time.Second,
		MinFreeSpace:    MinFreeAuto,
		Listeners: []Listener{{
			Name: "InboundMail", Type: Public, Interface: "Management", Address: "127.0.0.1:2525",
			MaxConnections: 1000, BadCommandLimit: 4, MaxHeaderLines: 1000, ReceivedHeader: true, IPv6ClientBits: 64,
			JunkCommandLimit: 100, SoftErrorLimit: 10, HardErrorLimit: 20, ErrorDelay: time.Second,
			TLS: TLSFiles{
				Cert:       filepath.Join(data, "tls/self-signed-cert.pem"),
				Key:        filepath.Join(data, "tls/self-signed-key.pem"),
				SelfSigned: true,
			},
			Timeouts: Timeouts{Unsuccessful: 5 * time.Minute, Total: 15 * time.Minute, Idle: 5 * time.Minute},
			HAT: &policy.HAT{
				Groups: []policy.SenderGroup{{
					Name:   "RELAY_SG",
					Rules:  mustRules(t, "127.0.0.1", "10.1.0.0/16", ".example.com", "mx.partner.net"),
					Policy: "RELAYED",
				}},
				Policies: map[string]*policy.Policy{
					"ACCEPTED":  accepted,
					"RELAYED":   stdPolicy("RELAYED", policy.Relay, host),
					"BLOCKED":   stdPolicy("BLOCKED", policy.Reject, host),
					"THROTTLED": throttled(stdPolicy("THROTTLED", policy.Accept, host)),
				},
				Default: "ACCEPTED",
			},
			RAT: mustRAT(t, [2]string{"example.com", "accept"}, [2]string{"ALL", "reject"}),
		}},
		Routes:   []Route{{Domain: "example.com", Hosts: []RouteHost{{Host: "127.0.0.1", Port: 2526}}}},
		Delivery: defaultDelivery(host),
		DNS:      DNS{Timeout: 5 * time.Second, ListTimeout: 2 * time.Second, ListCacheSize: 65536, CacheSize: DefaultDNSCacheSize},
		Logs: Logs{
			Mail: MailLog{Path: filepath.Join(data, "logs/mail_logs/mail.current"), Level: event.Info,
				MaxSize: 10 << 20, MaxFiles: 10},
			InjectionDebug: []InjectionDebug{{
				Hosts: mustRules(t, "192.168.0.200", ".partner.com"), DebugLog: DebugLog{Sessions: 100,
					Path: filepath.Join(data, "logs/injection_debug/injection.current"), MaxSize: 10 << 20, MaxFiles: 10},
			}},
			StatusInterval: time.Minute,
		},
		Tracking: Tracking{Enabled: true, Driver: "sqlite", DSN: filepath.Join(data, "tracking.db"),
			Retention: Retention{MaxAge: defaultRetentionAge, MaxSize: defaultRetentionSize}},
		HTTP:        HTTP{Address: "127.0.0.1:8025"},
		Quarantines: quarantine.Defaults(),
		Alerts: Alerts{From: "mailer-daemon@mail.example.com", CheckInterval: 30 * time.Second, RepeatInterval: time.Hour,
			QueueMaxAge: 24 * time.Hour, QueueMaxMessages: 100000, DestinationDown: 30 * time.Minute, DiskFreeBelow: DiskFreeAuto,
			CertificateExpiry: 21 * 24 * time.Hour, ProbeTimeout: 10 * time.Second},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("design.yaml gives\n%+v\nwant\n%+v", c, want)
		if !reflect.DeepEqual(c.Listeners[0].HAT, want.Listeners[0].HAT) {
			for name, p := range c.Listeners[0].HAT.Policies {
				t.Logf("policy %s: %+v", name, *p)
			}
		}
	}

	// What a listener will see from it.
	hat := c.Listeners[0].HAT
	for _, tt := range []struct {
		client policy.Client
		want   string
	}{
		{policy.Client{IP: netip.MustParseAddr("10.1.200.3")}, "RELAY SG RELAY_SG match 10.1.0.0/16"},
		{policy.Client{IP: netip.MustParseAddr("192.0.2.9"), Host: "mx.partner.net", Verified: true}, "RELAY SG RELAY_SG match mx.partner.net"},
		{policy.Client{IP: netip.MustParseAddr("192.0.2.9"), Host: "mx.partner.net"}, "ACCEPT SG None match ALL"},
		{policy.Client{IP: netip.MustParseAddr("192.0.2.9"), Host: "a.example.com", Verified: true}, "RELAY SG RELAY_SG match .example.com"},
	} {
		d := hat.Decide(tt.client)
		if got := d.ESAAction() + " SG " + d.Group + " match " + d.Rule; got != tt.want {
			t.Errorf("Decide(%+v) = %q, want %q", tt.client, got, tt.want)
		}
	}
	if _, ok := c.Listeners[0].RAT.Decide("joe@example.com"); !ok {
		t.Error("RAT rejects joe@example.com")
	}
	if e, ok := c.Listeners[0].RAT.Decide("joe@example.org"); ok || e.Code != 550 {
		t.Errorf("RAT on joe@example.org = %+v, %v; want a 550 rejection", e, ok)
	}
}

// TestFullExample parses a file that sets every key (the brief's example,
// with TLS files that exist) and checks the values that differ from the
// defaults.
func TestFullExample(t *testing.T) {
	c, data, _ := loadFull(t)

	in, out := c.Listeners[0], c.Listeners[1]
	if in.TLS != (TLSFiles{Cert: filepath.Join(data, "tls/cert.pem"), Key: filepath.Join(data, "tls/key.pem")}) {
		t.Errorf("TLS = %+v", in.TLS)
	}
	acc := in.HAT.Policies["ACCEPTED"]
	client := policy.Client{IP: netip.MustParseAddr("::ffff:192.0.2.7"), Host: "mx.sender.example", Verified: true}
	d := in.HAT.Decide(client)
	if d.Policy != acc {
		t.Fatalf("192.0.2.7 got policy %+v, want ACCEPTED", d.Policy)
	}
	if got, want := policy.Expand(acc.BannerText, d, client), "mx.sender.example: welcome to mail.example.com (None)"; got != want {
		t.Errorf("expanded banner = %q, want %q", got, want)
	}
	if got, want := policy.Expand(acc.RejectText, d, client), "mail.example.com: access from 192.0.2.7 denied"; got != want {
		t.Errorf("expanded reject text = %q, want %q", got, want)
	}
	if e, ok := in.RAT.Decide("joe@elsewhere.example"); ok || e.Code != 550 || e.Text != "#5.1.0 Address rejected: not a domain of ours" {
		t.Errorf("RAT rejection = %+v, %v", e, ok)
	}

	wantOut := Listener{
		Name: "OutboundRelay", Type: Private, Interface: "OutboundRelay", Address: "[::1]:2587",
		MaxConnections: 1000, BadCommandLimit: 4, MaxHeaderLines: 0, ReceivedHeader: false, IPv6ClientBits: 64,
		JunkCommandLimit: 100, SoftErrorLimit: 10, HardErrorLimit: 20, ErrorDelay: time.Second,
		TLS:      TLSFiles{Cert: filepath.Join(data, "tls/self-signed-cert.pem"), Key: filepath.Join(data, "tls/self-signed-key.pem"), SelfSigned: true},
		Timeouts: Timeouts{Unsuccessful: 90 * time.Second, Total: time.Hour, Idle: 5 * time.Minute},
		HAT: &policy.HAT{
			Groups: []policy.SenderGroup{{Name: "RELAYLIST", Rules: mustRules(t, "10.0.0.0/8", "::1"), Policy: "RELAYED"}},
			Policies: map[string]*policy.Policy{
				"ACCEPTED":  stdPolicy("ACCEPTED", policy.Accept, "mail.example.com"),
				"RELAYED":   stdPolicy("RELAYED", policy.Relay, "mail.example.com"),
				"BLOCKED":   stdPolicy("BLOCKED", policy.Reject, "mail.example.com"),
				"THROTTLED": throttled(stdPolicy("THROTTLED", policy.Accept, "mail.example.com")),
			},
			Default: "BLOCKED",
		},
	}
	if !reflect.DeepEqual(out, wantOut) {
		t.Errorf("private listener =\n%+v\nwant\n%+v", out, wantOut)
	}
	if d := out.HAT.Decide(policy.Client{IP: netip.MustParseAddr("192.0.2.7")}); d.ESAAction() != "REJECT" || d.Policy.RejectText != "mail.example.com Access denied" {
		t.Errorf("private listener lets an unknown host in: %+v", d)
	}

	wantRoutes := []Route{
		{Domain: "example.com", Hosts: []RouteHost{{Host: "127.0.0.1", Port: 2526}, {Host: "mx2.example.com", Port: 25, Priority: 20}}},
		{Domain: "ALL", Hosts: []RouteHost{{Host: "smarthost.example.net", Port: 587}}},
	}
	if !reflect.DeepEqual(c.Routes, wantRoutes) {
		t.Errorf("routes = %+v, want %+v", c.Routes, wantRoutes)
	}
	if !reflect.DeepEqual(c.DNS, DNS{Servers: []string{"127.0.0.1:5353"}, Timeout: 5 * time.Second, ListTimeout: 2 * time.Second, ListCacheSize: 65536, CacheSize: DefaultDNSCacheSize}) {
		t.Errorf("dns = %+v", c.DNS)
	}
	if !reflect.DeepEqual(c.Tracking, Tracking{Enabled: true, Driver: "sqlite", DSN: filepath.Join(data, "tracking.db"),
		Retention: Retention{MaxAge: defaultRetentionAge, MaxSize: defaultRetentionSize}}) {
		t.Errorf(`tracking with dsn "" = %+v, want the default database file`, c.Tracking)
	}
}

// TestDefault checks that the embedded default is valid, is what an empty
// file gives, and behaves as documented.
func TestDefault(t *testing.T) {
	def := Default()
	empty := parseString(t, "")
	empty.File = def.File
	if !reflect.DeepEqual(empty, def) {
		t.Errorf("an empty file gives\n%+v\nthe embedded default is\n%+v", empty, def)
	}
	comments := parseString(t, "# nothing but a comment\n")
	comments.File = def.File
	if !reflect.DeepEqual(comments, def) {
		t.Errorf("a file of comments differs from the default")
	}
	if text, err := os.ReadFile("default.yaml"); err != nil || string(DefaultYAML()) != string(text) {
		t.Errorf("DefaultYAML() differs from default.yaml (%v)", err)
	}
	onDisk := parseFile(t, "default.yaml")
	onDisk.File = def.File
	if !reflect.DeepEqual(onDisk, def) {
		t.Errorf("default.yaml on disk differs from the embedded one")
	}

	host, err := os.Hostname()
	if err != nil || policy.CheckDomain(host) != nil {
		host = "localhost"
	}
	if def.Hostname != host {
		t.Errorf("hostname = %q, want %q", def.Hostname, host)
	}
	if len(def.Listeners) != 1 {
		t.Fatalf("%d listeners", len(def.Listeners))
	}
	l := def.Listeners[0]
	if l.Name != "InboundMail" || l.Interface != "Management" || l.Address != "127.0.0.1:2525" || l.Type != Public {
		t.Errorf("listener = %+v", l)
	}
	for _, tt := range []struct{ ip, want string }{
		{"127.0.0.1", "RELAY SG RELAY_SG match 127.0.0.1"},
		{"127.3.4.5", "ACCEPT SG None match ALL"},
		{"::1", "RELAY SG RELAY_SG match ::1"},
		{"192.0.2.1", "ACCEPT SG None match ALL"},
	} {
		d := l.HAT.Decide(policy.Client{IP: netip.MustParseAddr(tt.ip)})
		if got := d.ESAAction() + " SG " + d.Group + " match " + d.Rule; got != tt.want {
			t.Errorf("Decide(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	if l.HAT.NeedsHostname() {
		t.Error("the default HAT needs reverse DNS")
	}
	if _, ok := l.RAT.Decide("joe@example.com"); ok {
		t.Error("the default RAT accepts mail for any domain from non-local clients")
	}
	if def.HTTP.Address != "127.0.0.1:8025" || def.Tracking.Driver != "sqlite" ||
		def.Tracking.DSN != filepath.Join(def.DataDir, "tracking.db") {
		t.Errorf("http = %+v, tracking = %+v", def.HTTP, def.Tracking)
	}
	if cwd, _ := os.Getwd(); def.DataDir != filepath.Join(cwd, "mailgate-data") {
		t.Errorf("data_dir = %s, want ./mailgate-data made absolute", def.DataDir)
	}
}

// TestMistakes parses a file full of mistakes: every one must be reported
// (golden file), and each at the line that holds the key it names.
func TestMistakes(t *testing.T) {
	data, err := os.ReadFile("testdata/mistakes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, "mistakes.yaml")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse error = %v, want Problems", err)
	}
	cwd, _ := os.Getwd()
	got := strings.ReplaceAll(ps.Error(), cwd, "$PWD") + "\n"
	golden := "testdata/mistakes.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("problems differ from %s (go test -update to rewrite it):\n--- got\n%s--- want\n%s", golden, got, want)
	}

	lines := strings.Split(string(data), "\n")
	lastKey := regexp.MustCompile(`([A-Za-z_$]+)(\[\d+\])?$`)
	for _, p := range ps {
		if p.Line < 1 || p.Line > len(lines) {
			t.Errorf("%v: line out of the file", p)
			continue
		}
		if strings.HasPrefix(p.Msg, "required") {
			continue // the key is missing; the line is its mapping's
		}
		key := lastKey.FindStringSubmatch(p.Path)
		if key == nil || !strings.Contains(lines[p.Line-1], key[1]) {
			t.Errorf("%v: line %d does not hold the key: %q", p, p.Line, lines[p.Line-1])
		}
	}
}

func TestProblemError(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{
		{Problem{"mailgate.yaml", 12, "listeners[0].address", "required"}, "mailgate.yaml:12: listeners[0].address: required"},
		{Problem{"mailgate.yaml", 0, "listeners[0].address", "required"}, "mailgate.yaml: listeners[0].address: required"},
		{Problem{"mailgate.yaml", 3, "", "did not find expected key"}, "mailgate.yaml:3: did not find expected key"},
	} {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	ps := Problems{{"a.yaml", 1, "x", "one"}, {"a.yaml", 2, "y", "two"}}
	if got := ps.Error(); got != "a.yaml:1: x: one\na.yaml:2: y: two" {
		t.Errorf("Problems.Error() = %q", got)
	}
}

// TestSmallMistakes covers problems the big file cannot hold together, each
// with its line.
func TestSmallMistakes(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"syntax", "listeners:\n  - name: a\n address: b\n", `test.yaml:2: did not find expected key`},
		{"tab", "hostname: x\n\tdata_dir: y\n", `test.yaml:2: found a tab character that violates indentation`},
		{"broken second document", "hostname: a.example\n---\n[\n", `test.yaml:3: did not find expected node content`},
		{"empty data_dir", "data_dir: ''\n", `test.yaml:1: data_dir: empty path`},
		{"two documents", "hostname: a.example\n---\nhostname: b.example\n", `test.yaml:2: a second YAML document (---); the configuration is one document`},
		{"not a mapping", "- a\n- b\n", `test.yaml:1: want a mapping (key: value), got a list`},
		{"duplicate key", "data_dir: a\ndata_dir: b\n", `test.yaml:2: data_dir: given twice`},
		{"postgres without dsn", "tracking:\n  driver: postgres\n", `test.yaml:1: tracking.dsn: required with driver postgres`},
		{"bad listeners", "listeners: {name: a}\n", `test.yaml:1: listeners: want a list, got a mapping`},
		{"string as number", "listeners:\n  - {name: a, address: ':0', max_connections: '10'}\n", `test.yaml:2: listeners[0].max_connections: want a whole number, got "10"`},
		{"bad interface", "listeners:\n  - {name: a, address: ':0', interface: 'Data (1)'}\n", `test.yaml:2: listeners[0].interface: interface name "Data (1)" must be non-empty`},
		{"control character", "listeners:\n  - name: a\n    address: ':0'\n    hat:\n      policies:\n        ACCEPTED: {banner_text: \"hi\\r\\n250 ok\"}\n", `test.yaml:6: listeners[0].hat.policies.ACCEPTED.banner_text: control character '\r' is not allowed`},
		{"group without policy", "listeners:\n  - name: a\n    address: ':0'\n    hat: {sender_groups: [{name: G, match: [10.0.0.1]}]}\n", `test.yaml:4: listeners[0].hat.sender_groups[0].policy: required`},
		{"unknown top key", "hostnmae: mx.example.com\n", `test.yaml:1: hostnmae: unknown key; did you mean "hostname"?`},
		{"no suggestion", "colour: blue\n", `test.yaml:1: colour: unknown key`},
		{"empty policy", "listeners:\n  - name: a\n    address: ':0'\n    hat:\n      policies:\n        RELAYED:\n", `test.yaml:6: listeners[0].hat.policies.RELAYED: want a mapping (key: value), got nothing`},
		{"rat without action", "listeners:\n  - name: a\n    address: ':0'\n    rat: [{domain: example.com}]\n", `test.yaml:4: listeners[0].rat[0].action: required (accept or reject)`},
		{"accept code", "listeners:\n  - name: a\n    address: ':0'\n    rat: [{domain: example.com, action: accept, code: 550}]\n", `test.yaml:4: listeners[0].rat[0].code: 550 is not a 2xx code`},
		{"route without hosts", "routes:\n  - domain: example.com\n", `test.yaml:2: routes[0].hosts: required`},
		{"bad route host", "routes:\n  - {domain: example.com, hosts: ['mx_1.example.com:25', 'a b:25']}\n", `test.yaml:2: routes[0].hosts[1]: host "a b": invalid character ' ' in host name`},
		{"reject code", "listeners:\n  - name: a\n    address: ':0'\n    hat: {policy_defaults: {reject_code: 250}}\n", `test.yaml:4: listeners[0].hat.policy_defaults.reject_code: 250 is not a 4xx or 5xx reply code (554)`},
		{"unknown policy key", "listeners:\n  - name: a\n    address: ':0'\n    hat: {policies: {ACCEPTED: {max_msg_size: 1M}}}\n", `test.yaml:4: listeners[0].hat.policies.ACCEPTED.max_msg_size: unknown key`},
		{"empty log path", "logs: {mail: {path: ''}}\n", `test.yaml:1: logs.mail.path: empty path`},
		{"dns port", "dns: {servers: ['127.0.0.1:0']}\n", `test.yaml:1: dns.servers[0]: port "0" is not a number from 1 to 65535`},
		{"dns v6 without brackets", "dns: {servers: ['::1:53', '[::1]:x']}\n", `test.yaml:1: dns.servers[1]: port "x" is not a number`},
		{"listener timeout", "listeners:\n  - name: a\n    address: ':0'\n    timeouts: {total: 500ms}\n", `test.yaml:4: listeners[0].timeouts.total: duration 500ms is below the minimum 1s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant one starting %q", ps, tt.want)
			}
		})
	}
}

func TestDurations(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90s", 90 * time.Second, ""},
		{"5m", 5 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"0s", 0, ""},
		{"1.5s", 1500 * time.Millisecond, ""},
		{"30", 0, "duration 30 has no unit; write 30s or 30m"},
		{"-1s", 0, "duration -1s is below the minimum 0s"},
		{"5 minutes", 0, `want a duration (90s, 5m, 1h30m), got "5 minutes"`},
		{"[5m]", 0, "want a duration (90s, 5m, 1h30m), got a list"},
	} {
		yaml := "shutdown_timeout: " + tt.in + "\n"
		if tt.err == "" {
			if c := parseString(t, yaml); c.ShutdownTimeout != tt.want {
				t.Errorf("shutdown_timeout %s = %v, want %v", tt.in, c.ShutdownTimeout, tt.want)
			}
			continue
		}
		want := "test.yaml:1: shutdown_timeout: " + tt.err
		if ps := problemsOf(t, yaml); ps.Error() != want {
			t.Errorf("shutdown_timeout %s: %v, want %s", tt.in, ps, want)
		}
	}
}

// TestAddresses checks listen addresses and the addresses that cannot be
// bound together.
func TestAddresses(t *testing.T) {
	tests := []struct {
		a, b string
		err  string // "" when both are fine
	}{
		{"127.0.0.1:2525", "127.0.0.2:2525", ""},
		{"127.0.0.1:2525", "127.0.0.1:2526", ""},
		{"127.0.0.1:0", "127.0.0.1:0", ""},
		{"[::1]:25", "127.0.0.1:25", ""},
		{"127.0.0.1:2525", "127.0.0.1:2525", "127.0.0.1:2525 conflicts with listeners[0].address"},
		{":2525", "127.0.0.1:2525", "127.0.0.1:2525 conflicts with listeners[0].address"},
		{"127.0.0.1:25", "0.0.0.0:25", "0.0.0.0:25 conflicts with listeners[0].address"},
		{"[::1]:25", "0.0.0.0:25", "0.0.0.0:25 conflicts"},
		{"[::]:25", "10.0.0.1:25", "10.0.0.1:25 conflicts"},
		{"[::ffff:127.0.0.1]:25", "127.0.0.1:25", "127.0.0.1:25 conflicts"},
		{"127.0.0.1:8025", "127.0.0.2:1", "http.address: 127.0.0.1:8025 conflicts with listeners[0].address"},
		{"127.0.0.1", "127.0.0.2:25", `"127.0.0.1" is not host:port (127.0.0.1:2525, [::1]:2525, :2525): missing port in address`},
		{"localhost:25", "127.0.0.2:25", `host "localhost" is not an IP address`},
		{"[fe80::1%eth0]:25", "127.0.0.2:25", `host "fe80::1%eth0" is not an IP address`},
		{"127.0.0.1:smtp", "127.0.0.2:25", `port "smtp" is not a number from 0 to 65535`},
		{"127.0.0.1:-1", "127.0.0.2:25", `port "-1" is not a number`},
	}
	for _, tt := range tests {
		yaml := "listeners:\n  - {name: a, address: '" + tt.a + "'}\n  - {name: b, address: '" + tt.b + "'}\n"
		c, err := Parse([]byte(yaml), "test.yaml")
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s and %s: %v", tt.a, tt.b, err)
		case tt.err == "" && (c.Listeners[0].Address != tt.a || c.Listeners[1].Address != tt.b):
			t.Errorf("%s and %s: addresses %q, %q", tt.a, tt.b, c.Listeners[0].Address, c.Listeners[1].Address)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s and %s: error %v, want %q", tt.a, tt.b, err, tt.err)
		}
	}
}

func TestPolicyParameters(t *testing.T) {
	c := parseString(t, `
hostname: mx.example.org
listeners:
  - name: L
    address: 127.0.0.1:0
    hat:
      policy_defaults: {max_message_size: 20MB, tls: off, banner_text: "$Hostname, hello from mx.example.org"}
      policies:
        ACCEPTED: {max_recipients_per_message: 50}
        BLOCKED: {reject_code: 421, reject_text: "try later"}
        THROTTLED: {action: accept, max_message_size: 1MB, max_messages_per_connection: 10, tls: REQUIRED}
      sender_groups: []
`)
	h := c.Listeners[0].HAT
	if len(h.Groups) != 0 {
		t.Errorf("sender_groups: [] gave %d groups", len(h.Groups))
	}
	withDefaults := func(name string, a policy.Action) *policy.Policy {
		p := stdPolicy(name, a, "mx.example.org")
		p.MaxMessageSize, p.TLS, p.BannerText = 20<<20, "off", "$Hostname, hello from mx.example.org"
		return p
	}
	accepted := withDefaults("ACCEPTED", policy.Accept)
	accepted.MaxRecipientsPerMessage = 50
	blocked := withDefaults("BLOCKED", policy.Reject)
	blocked.RejectCode, blocked.RejectText = 421, "try later"
	throttled := withDefaults("THROTTLED", policy.Accept)
	throttled.MaxMessageSize, throttled.MaxMessagesPerConnection, throttled.TLS = 1<<20, 10, "required"
	want := map[string]*policy.Policy{
		"ACCEPTED":  accepted,
		"RELAYED":   withDefaults("RELAYED", policy.Relay),
		"BLOCKED":   blocked,
		"THROTTLED": throttled,
	}
	for name, p := range want {
		if got := h.Policies[name]; got == nil || *got != *p {
			t.Errorf("policy %s =\n%+v\nwant\n%+v", name, got, p)
		}
	}
	if len(h.Policies) != len(want) {
		t.Errorf("%d policies, want %d", len(h.Policies), len(want))
	}
	if d := h.Decide(policy.Client{IP: netip.MustParseAddr("127.0.0.1")}); d.Group != "None" || d.Policy != h.Policies["ACCEPTED"] {
		t.Errorf("with no sender groups, loopback got %+v", d)
	}
}

func TestPrivateListenerDefaults(t *testing.T) {
	c := parseString(t, "listeners:\n  - {name: Relay, type: private, address: '127.0.0.1:0'}\n")
	l := c.Listeners[0]
	if l.RAT != nil {
		t.Errorf("private listener has a RAT: %+v", l.RAT)
	}
	for _, tt := range []struct{ ip, want string }{
		{"127.0.0.1", "RELAY SG RELAYLIST match 127.0.0.1"},
		{"127.0.0.2", "REJECT SG None match ALL"},
		{"::1", "RELAY SG RELAYLIST match ::1"},
		{"10.0.0.1", "REJECT SG None match ALL"},
	} {
		d := l.HAT.Decide(policy.Client{IP: netip.MustParseAddr(tt.ip)})
		if got := d.ESAAction() + " SG " + d.Group + " match " + d.Rule; got != tt.want {
			t.Errorf("Decide(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	pub := parseString(t, "listeners:\n  - {name: In, address: '127.0.0.1:0'}\n").Listeners[0]
	if e, ok := pub.RAT.Decide("joe@example.com"); ok || e.Code != 550 {
		t.Errorf("a public listener without rat: %+v, %v; want every recipient rejected", e, ok)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	c := parseString(t, `
listeners:
  - name: L
    address: 127.0.0.1:0
    hat:
      policies:
        BASE: &base {action: accept, max_message_size: 20MB, tls: off}
        SMALL: {<<: *base, max_message_size: 1MB}
      sender_groups:
        - {name: G, match: &nets [10.0.0.0/8, 192.0.2.0/24], policy: SMALL}
        - {name: H, match: *nets, policy: BASE}
`)
	h := c.Listeners[0].HAT
	small := h.Policies["SMALL"]
	if small.Action != policy.Accept || small.MaxMessageSize != 1<<20 || small.TLS != "off" {
		t.Errorf("SMALL = %+v, want BASE with a 1MB size", small)
	}
	if !reflect.DeepEqual(h.Groups[0].Rules, h.Groups[1].Rules) || len(h.Groups[1].Rules) != 2 {
		t.Errorf("aliased match lists differ: %v, %v", h.Groups[0].Rules, h.Groups[1].Rules)
	}
}

func TestPaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	abs := filepath.Join(dir, "elsewhere", "mail.current")
	c := parseString(t, `
data_dir: var/../var/mg
logs:
  mail: {path: `+abs+`}
  injection_debug:
    - {hosts: 192.0.2.1}
    - {hosts: [.partner.example], path: debug/partner.current}
    - {hosts: [192.0.2.2]}
tracking: {dsn: "file:track.db?mode=rwc"}
`)
	data := filepath.Join(dir, "var", "mg")
	if c.DataDir != data {
		t.Errorf("data_dir = %s, want %s", c.DataDir, data)
	}
	if c.Logs.Mail.Path != abs {
		t.Errorf("absolute mail log path became %s", c.Logs.Mail.Path)
	}
	var got []string
	for _, j := range c.Logs.InjectionDebug {
		got = append(got, j.Path)
	}
	want := []string{
		filepath.Join(data, "logs/injection_debug/injection.current"),
		filepath.Join(data, "debug/partner.current"),
		filepath.Join(data, "logs/injection_debug/injection-3.current"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("injection debug paths = %q, want %q", got, want)
	}
	if c.Tracking.DSN != "file:track.db?mode=rwc" {
		t.Errorf("sqlite URI DSN changed to %q", c.Tracking.DSN)
	}
	pg := parseString(t, "tracking: {driver: postgres, dsn: 'postgres://mg@db.example/mailgate'}\n")
	if !reflect.DeepEqual(pg.Tracking, Tracking{Enabled: true, Driver: "postgres", DSN: "postgres://mg@db.example/mailgate",
		Retention: Retention{MaxAge: defaultRetentionAge, MaxSize: defaultRetentionSize}}) {
		t.Errorf("postgres tracking = %+v", pg.Tracking)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
	var ps Problems
	if errors.As(err, &ps) {
		t.Errorf("a read error is reported as Problems")
	}
}

func BenchmarkParseDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(defaultYAML, "default.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDNSServers(t *testing.T) {
	c := parseString(t, "dns: {servers: ['127.0.0.1', '[::1]:5353', '::1', '::ffff:10.0.0.53'], timeout: 250ms}\n")
	want := DNS{Servers: []string{"127.0.0.1:53", "[::1]:5353", "[::1]:53", "10.0.0.53:53"}, Timeout: 250 * time.Millisecond, ListTimeout: 2 * time.Second, ListCacheSize: 65536, CacheSize: DefaultDNSCacheSize}
	if !reflect.DeepEqual(c.DNS, want) {
		t.Errorf("dns = %+v, want %+v", c.DNS, want)
	}
}

// The per-client keys of a listener and the rate limits of a policy.
func TestClientLimits(t *testing.T) {
	c := parseString(t, `
listeners:
  - name: L
    address: 127.0.0.1:0
    ipv6_client_prefix: 48
    duplicates_ignore_local_case: true
    hat:
      policy_defaults: {max_connections_per_minute: 30, max_recipients_per_hour: 0}
      policies:
        ACCEPTED: {max_recipients_per_hour: 500, group_max_connections_per_minute: 600, group_max_recipients_per_hour: 5000}
`)
	l := c.Listeners[0]
	if l.IPv6ClientBits != 48 || !l.DuplicatesIgnoreLocalCase {
		t.Errorf("ipv6_client_prefix = %d, duplicates_ignore_local_case = %v", l.IPv6ClientBits, l.DuplicatesIgnoreLocalCase)
	}
	for name, want := range map[string][4]int{"ACCEPTED": {30, 500, 600, 5000}, "RELAYED": {30, 0, 0, 0}, "THROTTLED": {10, 20, 0, 0}} {
		p := l.HAT.Policies[name]
		if got := [4]int{p.MaxConnectionsPerMinute, p.MaxRecipientsPerHour, p.GroupMaxConnectionsPerMinute, p.GroupMaxRecipientsPerHour}; got != want {
			t.Errorf("%s: connections per minute, recipients per hour, the same per group = %v, want %v", name, got, want)
		}
	}
	for _, tc := range []struct{ value, want string }{
		{"8", "8 is below the minimum 16"},
		{"129", "129 is above the maximum 128"},
		{"sixty-four", "want a whole number"},
	} {
		ps := problemsOf(t, "listeners:\n  - {name: L, address: '127.0.0.1:0', ipv6_client_prefix: "+tc.value+"}\n")
		if len(ps) != 1 || !strings.Contains(ps[0].Error(), "listeners[0].ipv6_client_prefix: "+tc.want) {
			t.Errorf("ipv6_client_prefix %s: %v, want %q", tc.value, ps, tc.want)
		}
	}
}

func TestMinFreeSpace(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"", MinFreeAuto, ""},
		{"auto", MinFreeAuto, ""},
		{"0", 0, ""},
		{"1G", 1 << 30, ""},
		{"100 MiB", 100 << 20, ""},
		{"-1", 0, `size "-1" is negative`},
		{"lots", 0, `size "lots" does not start with a number`},
	} {
		yaml := "min_free_space: " + tt.in + "\n"
		if tt.err == "" {
			if c := parseString(t, yaml); c.MinFreeSpace != tt.want {
				t.Errorf("min_free_space %q = %d, want %d", tt.in, c.MinFreeSpace, tt.want)
			}
			continue
		}
		if ps := problemsOf(t, yaml); !strings.Contains(ps.Error(), "test.yaml:1: min_free_space: "+tt.err) {
			t.Errorf("min_free_space %q: %v, want %s", tt.in, ps, tt.err)
		}
	}
}
