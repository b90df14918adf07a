// Package config reads mailgate's YAML configuration into validated runtime
// values: listeners with their HAT and RAT from package policy, durations as
// time.Duration, sizes in bytes, paths made absolute.
//
// A file is checked as a whole: Parse reports every problem it finds, each
// with its line, and an unknown key is a problem (a typo must not silently
// fall back to a default). A key left out, or left empty, takes its default;
// the README lists every key with its default, and default.yaml (embedded,
// see Default) is the configuration of a gateway started without a file.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/dkimsign"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/policy"
	"github.com/mailgate/mailgate/quarantine"
	"github.com/mailgate/mailgate/syslog"
)

// Config is a validated configuration.
type Config struct {
	File            string        // the name given to Parse
	Hostname        string        // for banners and Received headers
	Postmaster      string        // where "RCPT TO:<postmaster>" (no domain) goes; RFC 5321 4.5.1
	AuthServID      string        // the authserv-id of Authentication-Results; the hostname by default
	DataDir         string        // absolute; spool/, logs/ and tracking.db live here
	ShutdownTimeout time.Duration // sessions may finish this long on SIGTERM before 421 and close
	MinFreeSpace    int64         // bytes free in data_dir below which MAIL gets 452 4.3.1; 0: none; MinFreeAuto
	Listeners       []Listener
	Routes          []Route
	Delivery        Delivery
	DNS             DNS
	Logs            Logs
	Tracking        Tracking
	HTTP            HTTP
	// MailPolicies is nil when mail_policies is left out: no work queue.
	MailPolicies *MailPolicies
	// DKIMSigning is nil when dkim_signing_profiles is left out.
	DKIMSigning *dkimsign.Profiles
	Scanners    Scanners // the scanning engines (scan.go)
	// ContentFilters are the content filters the mail policies may name.
	ContentFilters []ContentFilter
	// Quarantines are the quarantines the work queue's stages put
	// messages in (config/quarantine.go): the defaults and those given.
	Quarantines []quarantine.Spec
	Alerts      Alerts // alerts.go
	Limits      Limits // backpressure

	// Warnings are what check-config reports (and fails for) but does
	// not stop the gateway: serve logs them at start.
	Warnings Problems
}

// Listener types.
const (
	Public  = "public"  // the RAT decides recipients
	Private = "private" // relays for its sender groups; no RAT
)

// Listener is one SMTP listener.
type Listener struct {
	Name            string
	Type            string // Public or Private
	Interface       string // printed in "interface Management (10.1.1.1)"
	Address         string // host:port to listen on; the host is an IP address or empty
	MaxConnections  int    // concurrent connections (421 #4.4.5 beyond)
	BadCommandLimit int    // bad commands tolerated; the next one gets 421 and the close
	MaxHeaderLines  int    // 0: no limit (552 #5.3.4 beyond)
	ReceivedHeader  bool
	// IPv6ClientBits is the prefix length of an IPv6 client for every
	// per-client limit (policy.ClientKey).
	IPv6ClientBits int
	// DuplicatesIgnoreLocalCase makes USER@example.com and user@example.com
	// one recipient of a message; domains always compare without case.
	DuplicatesIgnoreLocalCase bool
	TLS                       TLSFiles
	Timeouts                  Timeouts
	HAT                       *policy.HAT
	RAT                       policy.RAT // nil on a private listener
	ImplicitTLS               bool       // TLS from the first byte (465), not STARTTLS
	Auth                      *Auth      // nil: no SMTP AUTH
	// HealthChecks are the load balancers' and monitors' addresses: a
	// connection from one that ends without a command is a health check,
	// not a lost connection.
	HealthChecks []netip.Prefix

	// Abuse limits (Postfix's smtpd_junk_command_limit and error limits); 0: none.
	JunkCommandLimit int           // NOOP, RSET, VRFY, HELP and transactions without a recipient tolerated
	SoftErrorLimit   int           // refused commands after which each reply waits ErrorDelay
	HardErrorLimit   int           // refused commands that end the session
	ErrorDelay       time.Duration // the tarpit's wait
}

// TLSFiles are the certificate and key of a listener's STARTTLS, absolute
// paths of PEM files. When the configuration names none, SelfSigned is set
// and the paths are where the gateway keeps the self-signed pair it
// generates on first start (shared by all such listeners).
type TLSFiles struct {
	Cert, Key  string
	SelfSigned bool
}

// Timeouts are the ESA's listener timeouts.
type Timeouts struct {
	Unsuccessful time.Duration // until a connection has injected a message
	Total        time.Duration // for the whole connection
	Idle         time.Duration // waiting for each command, for the whole connection
}

// Route sends mail for a domain to given hosts instead of its MX.
type Route struct {
	Domain string // "example.com", ".example.com" (subdomains) or "ALL"; lower case
	Hosts  []RouteHost
}

// RouteHost is one destination of a route; lower Priority is tried first,
// equal priorities in turn, like MX records.
type RouteHost struct {
	Host     string // a host name or an IP address (without brackets)
	Port     int
	Priority int
}

// DNS configures the resolver.
type DNS struct {
	Servers []string // "ip:port"; empty: the system's resolvers (/etc/resolv.conf)
	Timeout time.Duration
	// The DNS lists of sender groups (dnslist rules): one timeout for all
	// the lists a connection asks, the banner waiting at most that long;
	// and the most answers kept (0: none).
	ListTimeout   time.Duration
	ListCacheSize int
	// CacheSize is the most answers of the sender-authentication lookups
	// (SPF, DKIM, DMARC) kept for their TTLs; 0: none.
	CacheSize int
}

// Logs configures the log files.
type Logs struct {
	Mail           MailLog
	InjectionDebug []InjectionDebug
	DomainDebug    []DomainDebug

	Subscriptions  []LogSubscription // more outputs of the logs (logs.go)
	StatusInterval time.Duration     // between two status log lines
}

// MailLog is the ESA text mail log.
type MailLog struct {
	Path     string // absolute
	Level    event.Level
	MaxSize  int64 // bytes; rolled over beyond
	MaxFiles int   // rolled files kept
	Schedule LogSchedule
}

// DebugLog is what the injection and domain debug logs have alike.
type DebugLog struct {
	Sessions int    // how many sessions to record, then stop
	Path     string // absolute
	MaxSize  int64
	MaxFiles int
	Schedule LogSchedule
}

// InjectionDebug records the SMTP conversations of chosen clients.
type InjectionDebug struct {
	Hosts []policy.Rule // any match; sender-group syntax
	DebugLog
}

// Match reports whether a client is one the log records.
func (j *InjectionDebug) Match(c policy.Client) bool {
	for _, r := range j.Hosts {
		if r.Match(c) {
			return true
		}
	}
	return false
}

// Tracking configures the message-tracking store.
type Tracking struct {
	Enabled bool   // feed the store from this gateway and the syslog receiver (the ESA's Message Tracking: Enable)
	Driver  string // "sqlite" or "postgres"
	DSN     string // sqlite: absolute path of the database file; postgres: the connection string
	Syslog  string // host:port to receive ESA mail logs by syslog (UDP and TCP); "" disables

	// SyslogAllow, when not nil, are the only senders heard, each with the
	// host name its lines are filed under; required beyond loopback.
	SyslogAllow []syslog.Sender

	Retention Retention
}

// Retention bounds the tracking store: messages older than MaxAge, and the
// oldest beyond MaxSize, are deleted (every minute). Zero: no bound.
type Retention struct {
	MaxAge  time.Duration // default 90 days (2160h)
	MaxSize int64         // bytes of the store's records; default 10 GiB
}

// Default retention: the ESA's tracking keeps what its disk quota holds;
// 90 days answer most "what happened to my mail" questions, and 10 GiB
// hold about 5 million messages in SQLite.
const (
	defaultRetentionAge  = 90 * 24 * time.Hour
	defaultRetentionSize = 10 << 30
)

// HTTP configures the API and tracking page.
type HTTP struct {
	Address string // host:port; "" disables
	Token   string // when set, the API wants "Authorization: Bearer <token>"; required beyond loopback
	// MetricsToken, when set, is taken at /metrics besides Token, and
	// nowhere else: the scraper's credential reads no message.
	MetricsToken string
	Hosts        []string  // names (lower case) and addresses answered in the Host header besides loopback's and Address's
	TLS          *TLSFiles // HTTPS with this certificate; nil: plain HTTP
}

// Defaults of the keys that are not a listener's or a policy's.
const (
	DefaultDataDir         = "./mailgate-data"
	DefaultShutdownTimeout = 30 * time.Second
	DefaultDNSTimeout      = 5 * time.Second
	DefaultListTimeout     = 2 * time.Second
	DefaultListCacheSize   = 1 << 16
	DefaultDNSCacheSize    = 1 << 14
	DefaultLogMaxSize      = 10 << 20
	DefaultLogMaxFiles     = 10
	DefaultHTTPAddress     = "127.0.0.1:8025"

	// MinFreeAuto, as MinFreeSpace (min_free_space: auto, the default):
	// 5 % of the file system, at most 512 MiB. It is queue.AutoMinFree.
	MinFreeAuto = -1
)

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded default configuration (default.yaml): one
// public listener on 127.0.0.1:2525 that relays for loopback clients, a
// SQLite tracking store, and the HTTP page on 127.0.0.1:8025. Relative paths
// are resolved against the working directory at the time of the call.
func Default() *Config {
	c, err := Parse(defaultYAML, "default.yaml")
	if err != nil {
		panic("config: the embedded default.yaml is invalid: " + err.Error())
	}
	return c
}

// DefaultYAML returns the text of the embedded default configuration, a
// commented example of every key to start a file from.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Load reads and parses a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a yaml.v3 error, which has its line only in its text,
// into a Problem. The parser's word for a tab in the indentation says
// nothing of tabs, so a line that holds one gets a plain explanation.
func syntaxProblem(name string, data []byte, err error) Problem {
	p := Problem{File: name, Msg: err.Error()}
	if m := yamlErrorLine.FindStringSubmatch(p.Msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = m[2]
		if strings.Contains(p.Msg, "cannot start any token") && bytes.Contains(lineOf(data, p.Line), []byte("\t")) {
			p.Msg = "a tab character indents this line; YAML indents with spaces only (" + p.Msg + ")"
		}
	}
	return p
}

// lineOf returns line n (from 1) of data, nil when there is none.
func lineOf(data []byte, n int) []byte {
	for i := 1; len(data) > 0; i++ {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		if i == n {
			return line
		}
		data = rest
	}
	return nil
}

// Parse parses and validates a configuration; name is the file name used in
// problems. When the configuration is not valid the error is a Problems
// listing all of them. Parse looks at the file system only to make data_dir
// absolute, to check that TLS certificate and key files exist, and to read
// the delivery CA file.
func Parse(data []byte, name string) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, Problems{syntaxProblem(name, data, err)}
	}
	d := &decoder{file: name}
	root := &yaml.Node{Kind: yaml.MappingNode, Line: 1} // an empty file
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if err == nil {
		var extra yaml.Node
		switch err := dec.Decode(&extra); {
		case err == nil:
			d.errorf(&extra, "", "a second YAML document (---); the configuration is one document")
		case !errors.Is(err, io.EOF):
			d.probs = append(d.probs, syntaxProblem(name, data, err))
		}
	}
	c := d.config(root)
	if len(d.probs) > 0 {
		d.probs.sort()
		return nil, d.probs
	}
	d.warns.sort()
	c.File, c.Warnings = name, d.warns
	return c, nil
}

func (d *decoder) config(root *yaml.Node) *Config {
	f := d.fields(root, "", "hostname", "postmaster", "data_dir", "shutdown_timeout", "min_free_space", "listeners", "routes",
		"delivery", "dns", "logs", "tracking", "http", "authserv_id", "mail_policies",
		"dkim_signing_profiles", "scanners", "content_filters", "quarantines", "alerts", "limits")
	c := &Config{
		DataDir:         DefaultDataDir,
		ShutdownTimeout: DefaultShutdownTimeout,
		MinFreeSpace:    MinFreeAuto,
		DNS:             DNS{Timeout: DefaultDNSTimeout, ListTimeout: DefaultListTimeout, ListCacheSize: DefaultListCacheSize, CacheSize: DefaultDNSCacheSize},
		Tracking: Tracking{Enabled: true, Driver: "sqlite", DSN: "tracking.db",
			Retention: Retention{MaxAge: defaultRetentionAge, MaxSize: defaultRetentionSize}},
		HTTP:   HTTP{Address: DefaultHTTPAddress},
		Limits: defaultLimits(),
	}
	if n := f["hostname"]; present(n) {
		if s, ok := d.str(n, "hostname"); ok {
			if err := policy.CheckDomain(s); err != nil {
				d.errorf(n, "hostname", "%v", err)
			}
			c.Hostname = s
		}
	} else {
		c.Hostname = systemHostname()
	}
	c.Postmaster = "postmaster@" + c.Hostname
	d.authServID(f["authserv_id"], c)
	if n := f["postmaster"]; present(n) {
		if s, ok := d.str(n, "postmaster"); ok {
			if err := checkPostmaster(s); err != nil {
				d.errorf(n, "postmaster", "%v", err)
			}
			c.Postmaster = s
		}
	}
	if n := f["data_dir"]; present(n) {
		if s, ok := d.str(n, "data_dir"); ok {
			if s == "" {
				d.errorf(n, "data_dir", `empty path (write "." for the working directory)`)
			}
			c.DataDir = s
		}
	}
	if abs, err := filepath.Abs(c.DataDir); err != nil {
		d.errorf(f["data_dir"], "data_dir", "%v", err)
	} else {
		c.DataDir = abs
	}
	if n := f["shutdown_timeout"]; present(n) {
		c.ShutdownTimeout, _ = d.duration(n, "shutdown_timeout", 0)
	}
	if n := f["min_free_space"]; present(n) {
		switch n.Value {
		case "auto":
		case "0":
			c.MinFreeSpace = 0
		default:
			c.MinFreeSpace, _ = d.size(n, "min_free_space")
		}
	}

	binds := &binds{}
	if n := f["listeners"]; present(n) {
		c.Listeners = d.listeners(n, "listeners", c, binds)
	} else {
		c.Listeners = d.defaultListeners(c, binds)
	}
	if n := f["routes"]; present(n) {
		c.Routes = d.routes(n, "routes")
	}
	d.delivery(f["delivery"], "delivery", c)
	if n := f["dns"]; present(n) {
		d.dns(n, "dns", &c.DNS)
	}
	d.logs(f["logs"], "logs", c)
	if n := f["tracking"]; present(n) {
		if sn := d.tracking(n, "tracking", &c.Tracking); c.Tracking.Syslog != "" {
			d.bind(sn, "tracking.syslog", c.Tracking.Syslog, binds)
		}
	}
	if c.Tracking.Driver == "sqlite" && !strings.HasPrefix(c.Tracking.DSN, "file:") {
		c.Tracking.DSN = dataPath(c.DataDir, c.Tracking.DSN)
	}
	d.http(f["http"], c, binds)
	if n := f["mail_policies"]; present(n) {
		c.MailPolicies = d.mailPolicies(n, "mail_policies")
	}
	c.DKIMSigning = d.dkimSigning(f["dkim_signing_profiles"], "dkim_signing_profiles", c.DataDir)
	d.scanners(f["scanners"], c)
	d.checkEngineRefs(&c.Scanners)
	if n := f["content_filters"]; present(n) {
		c.ContentFilters = d.contentFilters(n, "content_filters")
	}
	c.Quarantines = d.quarantines(f["quarantines"], "quarantines")
	d.checkQuarantineRefs(c.Quarantines)
	d.alerts(f["alerts"], "alerts", c)
	if n := f["limits"]; present(n) {
		d.limits(n, "limits", &c.Limits)
	}
	return c
}

// checkPostmaster checks the postmaster address: a bare address with a
// domain (it is an envelope recipient, so no display name), in ASCII.
func checkPostmaster(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
		return fmt.Errorf("%q is not an address with a domain (postmaster@example.com)", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return errors.New("the address must be ASCII")
		}
	}
	return nil
}

// systemHostname is the default hostname; "localhost" when the system's is
// unknown or not a usable DNS name, so that a gateway without a configuration
// still starts.
func systemHostname() string {
	h, err := os.Hostname()
	if err != nil || policy.CheckDomain(h) != nil {
		return "localhost"
	}
	return h
}

// dataPath resolves a path of the configuration: relative paths are relative
// to data_dir.
func dataPath(dataDir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dataDir, p)
}
