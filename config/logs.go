package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/event"
)

// Log subscriptions: more outputs for each log, each at its own level.

// The logs a subscription can name.
const (
	LogMail           = "mail_logs"
	LogInjectionDebug = "injection_debug"
	LogDomainDebug    = "domain_debug"
	LogStatus         = "status"
	LogGateway        = "gateway" // mailgate's own diagnostics (log/slog)
)

var logNames = []string{LogMail, LogInjectionDebug, LogDomainDebug, LogStatus, LogGateway}

// DefaultStatusInterval is the ESA's default system measurement frequency.
const DefaultStatusInterval = time.Minute

// LogSchedule is a log file's rollover by time and retention by age.
type LogSchedule struct {
	RollEvery time.Duration // rollover: 24h
	RollDaily bool          // rollover: "00:00" (a time of day)
	RollAt    time.Duration // since midnight, with RollDaily
	MaxAge    time.Duration // rolled files older are deleted; 0: none by age
}

// LogSubscription is one more output of a log.
type LogSubscription struct {
	Log    string      // one of the Log* names
	Level  event.Level // lines less severe are not written here
	File   *LogFile    // exactly one of File and Syslog
	Syslog *SyslogPush
}

// LogFile is a subscription's file, rolled over as the mail log is.
type LogFile struct {
	Path     string // absolute
	MaxSize  int64
	MaxFiles int
	Schedule LogSchedule
}

// SyslogPush is a subscription's syslog server.
type SyslogPush struct {
	Address    string // host:port
	Transport  string // udp, tcp or tls
	Format     string // rfc3164 or rfc5424
	Framing    string // octet_counting or newline (tcp and tls)
	Facility   string // a name of push.Facilities: local4, mail, ...
	Tag        string // TAG / APP-NAME; default the log's name (mail_logs)
	Hostname   string // HOSTNAME; default the gateway's hostname; "" when configured "-" (left out, as the ESA does)
	MaxMessage int    // bytes; 0: the sender's default
	QueueLines int    // 0: the sender's default
	QueueBytes int64  // 0: the sender's default
	CA         string // tls: PEM file of the CAs trusted; "": the system's
	ServerName string // tls: the name the certificate must have; "": the address's host
}

// Defaults of a syslog push.
const (
	DefaultSyslogPort     = "514"
	DefaultSyslogTLSPort  = "6514"
	DefaultSyslogFacility = "local4" // <166> in the ESA's pushed lines
)

// syslogFacilities are the facility names a subscription accepts.
var syslogFacilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
	"authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// logSchedule decodes rollover and max_age of a log file.
func (d *decoder) logSchedule(f map[string]*yaml.Node, path string, s *LogSchedule) {
	if v := f["rollover"]; present(v) {
		p := join(path, "rollover")
		if at, ok := timeOfDay(v.Value); ok && v.Kind == yaml.ScalarNode {
			s.RollDaily, s.RollAt = true, at
		} else if v.Kind == yaml.ScalarNode && strings.Contains(v.Value, ":") {
			d.errorf(v, p, "%q is not a time of day (00:00 to 23:59)", v.Value)
		} else {
			s.RollEvery, _ = d.duration(v, p, time.Second)
		}
	}
	if v := f["max_age"]; present(v) {
		s.MaxAge, _ = d.duration(v, join(path, "max_age"), time.Minute)
	}
}

// timeOfDay parses "HH:MM" or "HH:MM:SS".
func timeOfDay(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	var d time.Duration
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) > 2 || n < 0 || (i == 0 && n > 23) || (i > 0 && n > 59) {
			return 0, false
		}
		d += time.Duration(n) * []time.Duration{time.Hour, time.Minute, time.Second}[i]
	}
	return d, true
}

// subscriptions decodes logs.subscriptions.
func (d *decoder) subscriptions(n *yaml.Node, path string, c *Config, use func(v *yaml.Node, key, p string) string) {
	for i, it := range d.list(n, path) {
		p := index(path, i)
		f := d.fields(it, p, "log", "level", "file", "syslog")
		s := LogSubscription{Level: event.Info}
		if v := f["log"]; present(v) {
			s.Log, _ = d.oneOf(v, join(p, "log"), logNames...)
		} else {
			d.errorf(it, join(p, "log"), "required (%s)", strings.Join(logNames, ", "))
		}
		if v := f["level"]; present(v) {
			s.Level = d.level(v, join(p, "level"))
		}
		fv, sv := f["file"], f["syslog"]
		switch {
		case present(fv) && present(sv):
			d.errorf(sv, p, "a subscription has a file or a syslog server, not both: make two")
		case present(fv):
			s.File = d.subscriptionFile(fv, join(p, "file"), s.Log, i, use)
		case present(sv):
			s.Syslog = d.syslogPush(sv, join(p, "syslog"), c, s.Log)
		default:
			d.errorf(it, p, "a subscription needs a file or a syslog server")
		}
		c.Logs.Subscriptions = append(c.Logs.Subscriptions, s)
	}
}

// level decodes a log level word.
func (d *decoder) level(v *yaml.Node, path string) event.Level {
	s, ok := d.str(v, path)
	if !ok {
		return event.Info
	}
	l, ok := event.ParseLevel(s)
	if !ok {
		d.errorf(v, path, "unknown level %q (want critical, warning, info, debug or trace)", s)
		return event.Info
	}
	return l
}

func (d *decoder) subscriptionFile(n *yaml.Node, path, log string, i int, use func(v *yaml.Node, key, p string) string) *LogFile {
	f := d.fields(n, path, "path", "max_size", "max_files", "rollover", "max_age")
	lf := &LogFile{MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles}
	if log == "" {
		log = "log"
	}
	// The ESA's layout: a directory per subscription.
	lf.Path = fmt.Sprintf("logs/%s-%d/%s.current", log, i+1, log)
	d.logFile(f, path, &lf.Path, &lf.MaxSize, &lf.MaxFiles)
	d.logSchedule(f, path, &lf.Schedule)
	lf.Path = use(f["path"], join(path, "path"), lf.Path)
	return lf
}

func (d *decoder) syslogPush(n *yaml.Node, path string, c *Config, log string) *SyslogPush {
	f := d.fields(n, path, "address", "transport", "format", "framing", "facility", "tag", "hostname",
		"max_message", "queue_lines", "queue_bytes", "ca", "server_name")
	s := &SyslogPush{Transport: "udp", Format: "rfc3164", Framing: "octet_counting", Facility: DefaultSyslogFacility,
		Tag: log, Hostname: c.Hostname}
	if s.Tag == "" {
		s.Tag = LogMail
	}
	if v := f["transport"]; present(v) {
		s.Transport, _ = d.oneOf(v, join(path, "transport"), "udp", "tcp", "tls")
	}
	if v := f["address"]; present(v) {
		if a, ok := d.str(v, join(path, "address")); ok {
			s.Address = d.syslogAddress(v, join(path, "address"), a, s.Transport)
		}
	} else {
		d.errorf(n, join(path, "address"), "required (host or host:port of the syslog server)")
	}
	if v := f["format"]; present(v) {
		s.Format, _ = d.oneOf(v, join(path, "format"), "rfc3164", "rfc5424")
	}
	if v := f["framing"]; present(v) {
		s.Framing, _ = d.oneOf(v, join(path, "framing"), "octet_counting", "newline")
		if s.Transport == "udp" {
			d.errorf(v, join(path, "framing"), "framing is for tcp and tls; over udp each line is a datagram")
		}
	}
	if v := f["facility"]; present(v) {
		s.Facility, _ = d.oneOf(v, join(path, "facility"), syslogFacilities...)
	}
	if v := f["tag"]; present(v) {
		if t, ok := d.str(v, join(path, "tag")); ok {
			if t == "" || len(t) > 48 || strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) {
				d.errorf(v, join(path, "tag"), "%q is not a tag: 1 to 48 printable ASCII characters, no space or ':'", t)
			}
			s.Tag = t
		}
	}
	if v := f["hostname"]; present(v) {
		if h, ok := d.str(v, join(path, "hostname")); ok {
			switch {
			case h == "-":
				s.Hostname = ""
			case h == "" || len(h) > 255 || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r > '~' }):
				d.errorf(v, join(path, "hostname"), "%q is not a host name (\"-\" leaves it out)", h)
			default:
				s.Hostname = h
			}
		}
	}
	if v := f["max_message"]; present(v) {
		s.MaxMessage, _ = d.integer(v, join(path, "max_message"), 480) // RFC 5426's safe IPv4 size
	}
	if v := f["queue_lines"]; present(v) {
		s.QueueLines, _ = d.integer(v, join(path, "queue_lines"), 1)
	}
	if v := f["queue_bytes"]; present(v) {
		s.QueueBytes, _ = d.size(v, join(path, "queue_bytes"))
	}
	for _, k := range []string{"ca", "server_name"} {
		if v := f[k]; present(v) && s.Transport != "tls" {
			d.errorf(v, join(path, k), "%s is for transport tls", k)
		}
	}
	if v := f["server_name"]; present(v) {
		s.ServerName, _ = d.str(v, join(path, "server_name"))
	}
	if v := f["ca"]; present(v) {
		if p, ok := d.str(v, join(path, "ca")); ok {
			s.CA = dataPath(c.DataDir, p)
			if _, err := LoadCAs(s.CA); err != nil {
				d.errorf(v, join(path, "ca"), "%v", err)
			}
		}
	}
	return s
}

// syslogAddress checks host[:port], adding the transport's default port.
func (d *decoder) syslogAddress(n *yaml.Node, path, a, transport string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		if !strings.Contains(unwrapAddrErr(err), "missing port") {
			d.errorf(n, path, "%q is not host or host:port: %v", a, unwrapAddrErr(err))
			return ""
		}
		host, port = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]"), DefaultSyslogPort
		if transport == "tls" {
			port = DefaultSyslogTLSPort
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		d.errorf(n, path, "port %q is not a number from 1 to 65535", port)
		return ""
	}
	if host == "" {
		d.errorf(n, path, "%q has no host", a)
		return ""
	}
	return net.JoinHostPort(host, port)
}

// LoadCAs reads a PEM file of CA certificates.
func LoadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}
