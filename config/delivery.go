package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/policy"
)

// Delivery configures the delivery side: how mail leaves the gateway.
type Delivery struct {
	Suspended         bool       // the ESA's suspenddel: receive and queue, deliver nothing
	Hostname          string     // the EHLO name
	SourceAddress     netip.Addr // local address to connect from; the zero Addr leaves it to the kernel
	Port              int        // port of MX and address deliveries (routes carry their own)
	MaxConcurrency    int        // outbound connections in all
	MaxActiveMessages int        // messages the queue manager keeps in memory; the rest wait in the spool
	// ConnectionCacheTime is how long a delivery connection with nothing
	// to carry stays open for the next message of its destination
	// (Postfix's smtp_connection_cache_time_limit); 0 closes it at once.
	ConnectionCacheTime time.Duration
	// Default holds the destination controls of domains no entry of
	// Destinations names; Destinations are the entries for domains, in the
	// order of the file, every field resolved. Use Destination to look one up.
	Default      Destination
	Destinations []Destination
	TLSCAFile    string // absolute path of CA certificates (PEM) trusted besides the system's; "" for none
	Bounce       Bounce
	Timeouts     DeliveryTimeouts
}

// Destination holds the ESA's destination controls (destconfig) for
// recipient domains.
type Destination struct {
	Domain                   string // "example.com", ".example.com" (the domains under it) or "default"
	MaxConnections           int    // concurrent connections to the destination
	MaxMessagesPerConnection int    // messages one connection carries before it is closed
	TLS                      TLSMode
}

// DefaultDestination is the Domain of the entry for domains no other entry
// names.
const DefaultDestination = "default"

// TLSMode is how a delivery uses STARTTLS.
type TLSMode string

const (
	TLSOff            TLSMode = "off"             // never
	TLSPreferred      TLSMode = "preferred"       // when offered; the certificate is not checked
	TLSRequired       TLSMode = "required"        // must succeed, or the delivery fails; not checked
	TLSRequiredVerify TLSMode = "required-verify" // must succeed with a certificate valid for the MX host name
)

// Bounce is the ESA's bounce profile ("Default"): retries of soft failures
// and the notices of hard ones.
type Bounce struct {
	MaxRetries     int           // attempts after the first before a soft failure becomes hard
	MaxTimeInQueue time.Duration // from arrival; then it becomes hard (5.4.7)
	InitialRetry   time.Duration // the first wait; each next one doubles
	MaxRetry       time.Duration // the cap on the growing wait
	SendBounces    bool          // send a DSN to the sender of a hard failure
	From           string        // the DSN's From: header, an address or "Name <address>"
}

// DeliveryTimeouts are the SMTP client's time limits (RFC 5321 section
// 4.5.3.2 gives the ones after the connection).
type DeliveryTimeouts struct {
	Connect   time.Duration // TCP connection
	Greeting  time.Duration // the 220 after connecting
	Command   time.Duration // the reply to EHLO, MAIL, RCPT, RSET, STARTTLS
	DataInit  time.Duration // the 354 after DATA
	DataBlock time.Duration // each write of the message
	DataDone  time.Duration // the reply after the final dot
}

// DomainDebug records the SMTP conversations of deliveries to chosen
// domains (the ESA's domain debug log).
type DomainDebug struct {
	Domains []string // "example.com" (that domain) or ".example.com" (the domains under it); lower case
	DebugLog
}

// Delivery defaults. The ESA's bounce profile defaults are its "Default"
// profile's; its factory destination controls are not documented, and 50
// messages per connection is the figure Cisco gives for its delivery
// connections.
const (
	DefaultDeliveryPort             = 25
	DefaultMaxConcurrency           = 500
	DefaultMaxActiveMessages        = 10000
	DefaultConnectionCacheTime      = 2 * time.Second // Postfix's
	DefaultDestMaxConnections       = 20
	DefaultMaxMessagesPerConnection = 50
	DefaultDeliveryTLS              = TLSPreferred
	DefaultMaxRetries               = 100
	DefaultMaxTimeInQueue           = 72 * time.Hour
	DefaultInitialRetry             = 60 * time.Second
	DefaultMaxRetry                 = time.Hour
	DefaultTimeoutConnect           = 30 * time.Second
	DefaultTimeoutGreeting          = 5 * time.Minute
	DefaultTimeoutCommand           = 5 * time.Minute
	DefaultTimeoutDataInit          = 2 * time.Minute
	DefaultTimeoutDataBlock         = 3 * time.Minute
	DefaultTimeoutDataDone          = 10 * time.Minute
	DefaultDomainDebugPath          = "logs/domain_debug/domain.current"
	DefaultDomainDebugSessions      = 100
)

// builtinDestination is the default entry when the file has none, and what
// its missing fields take.
var builtinDestination = Destination{
	Domain:                   DefaultDestination,
	MaxConnections:           DefaultDestMaxConnections,
	MaxMessagesPerConnection: DefaultMaxMessagesPerConnection,
	TLS:                      DefaultDeliveryTLS,
}

// Destination returns the controls for a recipient domain: the entry naming
// the domain exactly, else the entry of the nearest parent (".example.com"
// for a.b.example.com), else the default. Case and a trailing dot do not
// matter. Fields left zero in a Delivery made by hand take the built-in
// defaults.
func (d *Delivery) Destination(domain string) Destination {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	best := -1
	for i, e := range d.Destinations {
		if e.Domain == domain {
			best = i
			break
		}
		// The longest matching parent is the nearest.
		if strings.HasPrefix(e.Domain, ".") && strings.HasSuffix(domain, e.Domain) &&
			(best < 0 || len(e.Domain) > len(d.Destinations[best].Domain)) {
			best = i
		}
	}
	def := d.Default.fill(builtinDestination)
	if best < 0 {
		return def
	}
	return d.Destinations[best].fill(def)
}

// fill returns e with its zero fields taken from base.
func (e Destination) fill(base Destination) Destination {
	if e.Domain == "" {
		e.Domain = base.Domain
	}
	if e.MaxConnections == 0 {
		e.MaxConnections = base.MaxConnections
	}
	if e.MaxMessagesPerConnection == 0 {
		e.MaxMessagesPerConnection = base.MaxMessagesPerConnection
	}
	if e.TLS == "" {
		e.TLS = base.TLS
	}
	return e
}

// RootCAs returns the certificates to verify next hops with: nil (the
// system's) without TLSCAFile, else the system's and the file's.
func (d *Delivery) RootCAs() (*x509.CertPool, error) {
	if d.TLSCAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(d.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("config: delivery.tls_ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system store: the file alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("config: delivery.tls_ca_file: no PEM certificate in %s", d.TLSCAFile)
	}
	return pool, nil
}

// Match reports whether a recipient domain is one the log records.
func (dd *DomainDebug) Match(domain string) bool {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	for _, p := range dd.Domains {
		if p == domain || strings.HasPrefix(p, ".") && strings.HasSuffix(domain, p) {
			return true
		}
	}
	return false
}

var deliveryKeys = []string{"suspended", "hostname", "source_address", "port", "max_concurrency",
	"max_active_messages", "connection_cache_time", "destinations", "tls_ca_file", "bounce", "timeouts"}

func (d *decoder) delivery(n *yaml.Node, path string, c *Config) {
	dl := &c.Delivery
	*dl = Delivery{
		Hostname:          c.Hostname,
		Port:              DefaultDeliveryPort,
		MaxConcurrency:    DefaultMaxConcurrency,
		MaxActiveMessages: DefaultMaxActiveMessages,
		Default:           builtinDestination,

		ConnectionCacheTime: DefaultConnectionCacheTime,
		Bounce: Bounce{
			MaxRetries:     DefaultMaxRetries,
			MaxTimeInQueue: DefaultMaxTimeInQueue,
			InitialRetry:   DefaultInitialRetry,
			MaxRetry:       DefaultMaxRetry,
			SendBounces:    true,
			From:           "MAILER-DAEMON@" + c.Hostname,
		},
		Timeouts: DeliveryTimeouts{
			Connect:   DefaultTimeoutConnect,
			Greeting:  DefaultTimeoutGreeting,
			Command:   DefaultTimeoutCommand,
			DataInit:  DefaultTimeoutDataInit,
			DataBlock: DefaultTimeoutDataBlock,
			DataDone:  DefaultTimeoutDataDone,
		},
	}
	if !present(n) {
		return
	}
	f := d.fields(n, path, deliveryKeys...)
	if v := f["suspended"]; present(v) {
		dl.Suspended, _ = d.boolean(v, join(path, "suspended"))
	}
	if v := f["hostname"]; present(v) {
		if s, ok := d.str(v, join(path, "hostname")); ok && s != "" {
			if err := checkHostName(s); err != nil {
				d.errorf(v, join(path, "hostname"), "%q: %v", s, err)
			}
			dl.Hostname = s
		}
	}
	if v := f["source_address"]; present(v) {
		if s, ok := d.str(v, join(path, "source_address")); ok && s != "" {
			a, err := netip.ParseAddr(s)
			switch {
			case err != nil:
				d.errorf(v, join(path, "source_address"), "%q is not an IP address", s)
			case a.Zone() != "":
				d.errorf(v, join(path, "source_address"), "zoned address %q is not supported", s)
			case a.IsUnspecified() || a.IsMulticast():
				d.errorf(v, join(path, "source_address"), "%s is not an address of this host (leave it empty for the kernel's choice)", s)
			default:
				dl.SourceAddress = a.Unmap()
			}
		}
	}
	if v := f["port"]; present(v) {
		if p, ok := d.integer(v, join(path, "port"), 1); ok {
			if p > 65535 {
				d.errorf(v, join(path, "port"), "port %d is above 65535", p)
			} else {
				dl.Port = p
			}
		}
	}
	if v := f["max_concurrency"]; present(v) {
		if m, ok := d.integer(v, join(path, "max_concurrency"), 1); ok {
			dl.MaxConcurrency = m
		}
	}
	if v := f["max_active_messages"]; present(v) {
		if m, ok := d.integer(v, join(path, "max_active_messages"), 1); ok {
			dl.MaxActiveMessages = m
		}
	}
	if v := f["connection_cache_time"]; present(v) {
		if dur, ok := d.duration(v, join(path, "connection_cache_time"), 0); ok {
			dl.ConnectionCacheTime = dur
		}
	}
	if v := f["destinations"]; present(v) {
		dl.Default, dl.Destinations = d.destinations(v, join(path, "destinations"))
	}
	if v := f["tls_ca_file"]; present(v) {
		if s, ok := d.str(v, join(path, "tls_ca_file")); ok && s != "" {
			dl.TLSCAFile = dataPath(c.DataDir, s)
			d.checkCAFile(v, join(path, "tls_ca_file"), dl.TLSCAFile)
		}
	}
	if v := f["bounce"]; present(v) {
		d.bounce(v, join(path, "bounce"), &dl.Bounce)
	}
	if v := f["timeouts"]; present(v) {
		tp := join(path, "timeouts")
		tf := d.fields(v, tp, "connect", "greeting", "command", "data_init", "data_block", "data_done")
		t := &dl.Timeouts
		for _, it := range []struct {
			key string
			dst *time.Duration
		}{
			{"connect", &t.Connect}, {"greeting", &t.Greeting}, {"command", &t.Command},
			{"data_init", &t.DataInit}, {"data_block", &t.DataBlock}, {"data_done", &t.DataDone},
		} {
			if v := tf[it.key]; present(v) {
				if dur, ok := d.duration(v, join(tp, it.key), time.Millisecond); ok {
					*it.dst = dur
				}
			}
		}
	}
}

// checkHostName checks a host name the gateway connects to or calls itself
// by: a name as policy.CheckDomain has it, whose last label is not a number,
// so that a mistyped IP address is not taken for a name.
func checkHostName(s string) error {
	if err := policy.CheckDomain(s); err != nil {
		return err
	}
	last := s[strings.LastIndexByte(s, '.')+1:]
	if strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("last label %q is a number: not a host name (a mistyped IP address?)", last)
	}
	return nil
}

// destinations decodes the destination controls: the default entry takes
// the built-in values for what it leaves out, then every domain entry takes
// the default's, wherever the default entry is in the list.
func (d *decoder) destinations(n *yaml.Node, path string) (Destination, []Destination) {
	var entries []Destination
	def := builtinDestination
	seen := make(map[string]string) // domain -> path of its entry
	for i, it := range d.list(n, path) {
		p := index(path, i)
		f := d.fields(it, p, "domain", "max_connections", "max_messages_per_connection", "tls")
		var e Destination // a field left zero takes the default's
		if v := f["domain"]; present(v) {
			if s, ok := d.str(v, join(p, "domain")); ok {
				e.Domain = d.destDomain(v, join(p, "domain"), s)
				if other, dup := seen[e.Domain]; dup && e.Domain != "" {
					d.errorf(v, join(p, "domain"), "domain %q has destination controls already, in %s", s, other)
				}
				seen[e.Domain] = p
			}
		} else {
			d.errorf(it, join(p, "domain"), "required (example.com, .example.com or default)")
		}
		if v := f["max_connections"]; present(v) {
			e.MaxConnections, _ = d.integer(v, join(p, "max_connections"), 1)
		}
		if v := f["max_messages_per_connection"]; present(v) {
			e.MaxMessagesPerConnection, _ = d.integer(v, join(p, "max_messages_per_connection"), 1)
		}
		if v := f["tls"]; present(v) {
			s, _ := d.oneOf(v, join(p, "tls"), string(TLSOff), string(TLSPreferred), string(TLSRequired), string(TLSRequiredVerify))
			e.TLS = TLSMode(s)
		}
		switch e.Domain {
		case DefaultDestination:
			def = e.fill(builtinDestination)
		case "":
			// reported
		default:
			entries = append(entries, e)
		}
	}
	for i := range entries {
		entries[i] = entries[i].fill(def)
	}
	return def, entries
}

// destDomain decodes the domain of destination controls: "default", or a
// domain as routes write it.
func (d *decoder) destDomain(n *yaml.Node, path, s string) string {
	switch {
	case strings.EqualFold(s, DefaultDestination):
		return DefaultDestination
	case strings.EqualFold(s, "ALL"):
		d.errorf(n, path, `write "default" for the controls of domains without an entry (ALL is for routes)`)
		return ""
	}
	return d.routeDomain(n, path, s)
}

func (d *decoder) checkCAFile(n *yaml.Node, path, file string) {
	pem, err := os.ReadFile(file)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		d.errorf(n, path, "no PEM certificate in %s", file)
	}
}

func (d *decoder) bounce(n *yaml.Node, path string, b *Bounce) {
	f := d.fields(n, path, "max_retries", "max_time_in_queue", "initial_retry", "max_retry", "send_bounces", "from")
	if v := f["max_retries"]; present(v) {
		if m, ok := d.integer(v, join(path, "max_retries"), 0); ok {
			b.MaxRetries = m
		}
	}
	if v := f["max_time_in_queue"]; present(v) {
		if dur, ok := d.duration(v, join(path, "max_time_in_queue"), time.Millisecond); ok {
			b.MaxTimeInQueue = dur
		}
	}
	d.retry(f, path, &b.InitialRetry, &b.MaxRetry)
	if v := f["send_bounces"]; present(v) {
		b.SendBounces, _ = d.boolean(v, join(path, "send_bounces"))
	}
	if v := f["from"]; present(v) {
		if s, ok := d.text(v, join(path, "from")); ok && s != "" {
			if err := checkBounceFrom(s); err != nil {
				d.errorf(v, join(path, "from"), "%v", err)
			}
			b.From = s
		}
	}
}

// checkBounceFrom checks the From: of bounces: one address, with or without
// a display name, whose address is ASCII (bounces to ASCII senders carry
// it, and they may not have UTF-8 in their header).
func checkBounceFrom(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Errorf("%q is not an address (MAILER-DAEMON@mx.example.com or \"Name <addr>\"): %v", s, err)
	}
	for i := 0; i < len(a.Address); i++ {
		if a.Address[i] >= 0x80 {
			return errors.New("the address must be ASCII (a display name may be in any script)")
		}
	}
	return nil
}

// debugDomains decodes the domains of a domain debug log; one may be
// written without the list.
func (d *decoder) debugDomains(n *yaml.Node, path string) []string {
	items, paths := []*yaml.Node{n}, []string{path}
	if n.Kind == yaml.SequenceNode {
		items, paths = d.list(n, path), nil
		for i := range items {
			paths = append(paths, index(path, i))
		}
	}
	var out []string
	for i, it := range items {
		s, ok := d.str(it, paths[i])
		if !ok {
			continue
		}
		if strings.EqualFold(s, "ALL") || strings.EqualFold(s, DefaultDestination) {
			d.errorf(it, paths[i], "a domain debug log records chosen domains; %q is not one", s)
			continue
		}
		if dom := d.routeDomain(it, paths[i], s); dom != "" {
			out = append(out, dom)
		}
	}
	return out
}
