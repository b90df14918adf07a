package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/policy"
)

// Defaults of the log files, relative to data_dir.
const (
	DefaultMailLogPath        = "logs/mail_logs/mail_logs.current"
	DefaultInjectionDebugPath = "logs/injection_debug/injection.current"
	DefaultInjectionSessions  = 100
)

func (d *decoder) routes(n *yaml.Node, path string) []Route {
	var routes []Route
	domains := make(map[string]string)
	for i, it := range d.list(n, path) {
		p := index(path, i)
		f := d.fields(it, p, "domain", "hosts")
		var r Route
		if v := f["domain"]; present(v) {
			if s, ok := d.str(v, join(p, "domain")); ok {
				r.Domain = d.routeDomain(v, join(p, "domain"), s)
				if other, dup := domains[r.Domain]; dup && r.Domain != "" {
					d.errorf(v, join(p, "domain"), "domain %q has a route already, in %s", s, other)
				}
				domains[r.Domain] = p
			}
		} else {
			d.errorf(it, join(p, "domain"), "required (example.com, .example.com or ALL)")
		}
		if v := f["hosts"]; present(v) {
			hp := join(p, "hosts")
			items := d.list(v, hp)
			if v.Kind == yaml.SequenceNode && len(items) == 0 {
				d.errorf(v, hp, "a route needs at least one host")
			}
			for j, h := range items {
				if rh, ok := d.routeHost(h, index(hp, j)); ok {
					r.Hosts = append(r.Hosts, rh)
				}
			}
		} else {
			d.errorf(it, join(p, "hosts"), "required (a list of host:port)")
		}
		routes = append(routes, r)
	}
	return routes
}

func (d *decoder) routeDomain(n *yaml.Node, path, s string) string {
	if strings.EqualFold(s, "ALL") {
		return "ALL"
	}
	name := strings.TrimSuffix(strings.TrimPrefix(s, "."), ".")
	if err := policy.CheckDomain(name); err != nil {
		d.errorf(n, path, "%v", err)
		return ""
	}
	if strings.HasPrefix(s, ".") {
		name = "." + name
	}
	return strings.ToLower(name)
}

// routeHost decodes "host", "host:port", "[v6]:port" or {host, port, priority}.
func (d *decoder) routeHost(n *yaml.Node, path string) (RouteHost, bool) {
	h := RouteHost{Port: 25}
	ok := true
	if n.Kind == yaml.MappingNode {
		f := d.fields(n, path, "host", "port", "priority")
		if v := f["host"]; present(v) {
			var s string
			if s, ok = d.str(v, join(path, "host")); ok {
				h.Host, ok = d.checkRouteHost(v, join(path, "host"), strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
			}
		} else {
			d.errorf(n, join(path, "host"), "required")
			ok = false
		}
		if v := f["port"]; present(v) {
			var pok bool
			h.Port, pok = d.integer(v, join(path, "port"), 1)
			if pok && h.Port > 65535 {
				d.errorf(v, join(path, "port"), "port %d is above 65535", h.Port)
				pok = false
			}
			ok = ok && pok
		}
		if v := f["priority"]; present(v) {
			var pok bool
			h.Priority, pok = d.integer(v, join(path, "priority"), 0)
			ok = ok && pok
		}
		return h, ok
	}
	s, ok := d.str(n, path)
	if !ok {
		return h, false
	}
	host := s
	if _, err := netip.ParseAddr(s); err != nil { // a bare IPv6 address has colons but no port
		hp, portStr, err := net.SplitHostPort(s)
		switch {
		case err == nil:
			host = hp
			p, err := strconv.Atoi(portStr)
			if err != nil || p < 1 || p > 65535 {
				d.errorf(n, path, "port %q is not a number from 1 to 65535", portStr)
				return h, false
			}
			h.Port = p
		case strings.Contains(unwrapAddrErr(err), "missing port"):
			host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		default:
			d.errorf(n, path, "%q is not host or host:port: %v", s, unwrapAddrErr(err))
			return h, false
		}
	}
	h.Host, ok = d.checkRouteHost(n, path, host)
	return h, ok
}

func (d *decoder) checkRouteHost(n *yaml.Node, path, host string) (string, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			d.errorf(n, path, "zoned address %q is not supported", host)
			return "", false
		}
		return a.Unmap().String(), true
	}
	switch {
	case strings.EqualFold(host, "USEDNS"):
		d.errorf(n, path, "USEDNS is not supported: a domain without a route is delivered by MX")
		return "", false
	case host == "/dev/null":
		d.errorf(n, path, "/dev/null routes are not supported")
		return "", false
	}
	name := strings.TrimSuffix(host, ".")
	if err := checkHostName(name); err != nil {
		d.errorf(n, path, "host %q: %v", host, err)
		return "", false
	}
	return strings.ToLower(name), true
}

func (d *decoder) dns(n *yaml.Node, path string, c *DNS) {
	f := d.fields(n, path, "servers", "timeout", "dnslist_timeout", "dnslist_cache_size", "cache_size")
	if v := f["servers"]; present(v) {
		sp := join(path, "servers")
		for i, it := range d.list(v, sp) {
			p := index(sp, i)
			s, ok := d.str(it, p)
			if !ok {
				continue
			}
			ip, port := s, "53"
			if _, err := netip.ParseAddr(s); err != nil {
				h, pt, err := net.SplitHostPort(s)
				switch {
				case err == nil:
					ip, port = h, pt
				case !strings.Contains(unwrapAddrErr(err), "missing port"):
					d.errorf(it, p, "%q is not ip or ip:port: %v", s, unwrapAddrErr(err))
					continue
				}
			}
			a, err := netip.ParseAddr(ip)
			if err != nil {
				// A resolver named by a host name would need a resolver.
				d.errorf(it, p, "%q is not an IP address", ip)
				continue
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				d.errorf(it, p, "port %q is not a number from 1 to 65535", port)
				continue
			}
			c.Servers = append(c.Servers, net.JoinHostPort(a.Unmap().String(), port))
		}
	}
	if v := f["timeout"]; present(v) {
		c.Timeout, _ = d.duration(v, join(path, "timeout"), time.Millisecond)
	}
	if v := f["dnslist_timeout"]; present(v) {
		c.ListTimeout, _ = d.duration(v, join(path, "dnslist_timeout"), time.Millisecond)
	}
	if v := f["dnslist_cache_size"]; present(v) {
		c.ListCacheSize, _ = d.integer(v, join(path, "dnslist_cache_size"), 0)
	}
	if v := f["cache_size"]; present(v) {
		c.CacheSize, _ = d.integer(v, join(path, "cache_size"), 0)
	}
}

func (d *decoder) logs(n *yaml.Node, path string, c *Config) {
	c.Logs.Mail = MailLog{Path: DefaultMailLogPath, Level: event.Info, MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles}
	var f map[string]*yaml.Node
	if present(n) {
		f = d.fields(n, path, "mail", "injection_debug", "domain_debug", "subscriptions", "status_interval")
	}
	paths := make(map[string]string) // resolved path -> key
	use := func(v *yaml.Node, key, p string) string {
		abs := dataPath(c.DataDir, p)
		if other, dup := paths[abs]; dup {
			d.errorf(v, key, "log file %s is also written by %s", abs, other)
		}
		paths[abs] = key
		return abs
	}
	mp := join(path, "mail")
	var mf map[string]*yaml.Node
	if v := f["mail"]; present(v) {
		mf = d.fields(v, mp, "path", "level", "max_size", "max_files", "rollover", "max_age")
	}
	m := &c.Logs.Mail
	d.logFile(mf, mp, &m.Path, &m.MaxSize, &m.MaxFiles)
	d.logSchedule(mf, mp, &m.Schedule)
	if v := mf["level"]; present(v) {
		if s, ok := d.str(v, join(mp, "level")); ok {
			if l, ok := event.ParseLevel(s); ok {
				m.Level = l
			} else {
				d.errorf(v, join(mp, "level"), "unknown level %q (want critical, warning, info, debug or trace)", s)
			}
		}
	}
	m.Path = use(mf["path"], join(mp, "path"), m.Path)

	if v := f["injection_debug"]; present(v) {
		d.debugLogs(v, join(path, "injection_debug"), "hosts", "addresses, networks or host names, as in a sender group",
			DefaultInjectionDebugPath, DefaultInjectionSessions, use, func(v *yaml.Node, p string) *DebugLog {
				c.Logs.InjectionDebug = append(c.Logs.InjectionDebug, InjectionDebug{Hosts: d.ruleList(v, p, false)})
				return &c.Logs.InjectionDebug[len(c.Logs.InjectionDebug)-1].DebugLog
			})
	}
	if v := f["domain_debug"]; present(v) {
		d.debugLogs(v, join(path, "domain_debug"), "domains", "recipient domains: example.com or .example.com",
			DefaultDomainDebugPath, DefaultDomainDebugSessions, use, func(v *yaml.Node, p string) *DebugLog {
				c.Logs.DomainDebug = append(c.Logs.DomainDebug, DomainDebug{Domains: d.debugDomains(v, p)})
				return &c.Logs.DomainDebug[len(c.Logs.DomainDebug)-1].DebugLog
			})
	}
	c.Logs.StatusInterval = DefaultStatusInterval
	if v := f["status_interval"]; present(v) {
		c.Logs.StatusInterval, _ = d.duration(v, join(path, "status_interval"), time.Second)
	}
	if v := f["subscriptions"]; present(v) {
		d.subscriptions(v, join(path, "subscriptions"), c, use)
	}
}

// debugLogs decodes a list of injection or domain debug logs. In each
// entry, key (hosts, domains) is required and chooses the sessions the log
// records; add decodes it, adds the log and returns its DebugLog to fill
// in. Each log is a file of its own, as on the ESA: the first's is file,
// the Nth's name-N.current beside it.
func (d *decoder) debugLogs(n *yaml.Node, path, key, what, file string, sessions int,
	use func(v *yaml.Node, key, p string) string, add func(v *yaml.Node, p string) *DebugLog) {
	for i, it := range d.list(n, path) {
		p := index(path, i)
		f := d.fields(it, p, key, "sessions", "path", "max_size", "max_files", "rollover", "max_age")
		l := new(DebugLog) // a log without its key is a problem, not a log
		if v := f[key]; present(v) {
			l = add(v, join(p, key))
		} else {
			d.errorf(it, join(p, key), "required (%s)", what)
		}
		*l = DebugLog{Sessions: sessions, Path: file, MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles}
		if i > 0 {
			l.Path = fmt.Sprintf("%s-%d.current", strings.TrimSuffix(file, ".current"), i+1)
		}
		if v := f["sessions"]; present(v) {
			l.Sessions, _ = d.integer(v, join(p, "sessions"), 1)
		}
		d.logFile(f, p, &l.Path, &l.MaxSize, &l.MaxFiles)
		d.logSchedule(f, p, &l.Schedule)
		l.Path = use(f["path"], join(p, "path"), l.Path)
	}
}

// logFile decodes the keys every log file has.
func (d *decoder) logFile(f map[string]*yaml.Node, path string, file *string, maxSize *int64, maxFiles *int) {
	if v := f["path"]; present(v) {
		if s, ok := d.str(v, join(path, "path")); ok {
			if s == "" {
				d.errorf(v, join(path, "path"), "empty path")
			} else {
				*file = s
			}
		}
	}
	if v := f["max_size"]; present(v) {
		if n, ok := d.size(v, join(path, "max_size")); ok {
			*maxSize = n
		}
	}
	if v := f["max_files"]; present(v) {
		if n, ok := d.integer(v, join(path, "max_files"), 1); ok {
			*maxFiles = n
		}
	}
}

// tracking decodes the tracking section; it returns the syslog address's
// node for the check of its bind.
func (d *decoder) tracking(n *yaml.Node, path string, t *Tracking) *yaml.Node {
	f := d.fields(n, path, "enabled", "driver", "dsn", "syslog", "retention")
	if v := f["enabled"]; present(v) {
		t.Enabled, _ = d.boolean(v, join(path, "enabled"))
	}
	if v := f["retention"]; present(v) {
		d.retention(v, join(path, "retention"), &t.Retention)
	}
	var syslog *yaml.Node
	if v := f["syslog"]; present(v) {
		syslog = d.syslog(v, join(path, "syslog"), t)
	}
	if v := f["driver"]; present(v) {
		if s, ok := d.oneOf(v, join(path, "driver"), "sqlite", "postgres"); ok {
			t.Driver = s
		}
	}
	dsn := ""
	if v := f["dsn"]; present(v) {
		dsn, _ = d.str(v, join(path, "dsn"))
	}
	switch {
	case dsn != "":
		t.DSN = dsn
	case t.Driver == "postgres":
		d.errorf(n, join(path, "dsn"), "required with driver postgres (postgres://user@host/db or key=value form)")
	}
	return syslog
}

// retention decodes tracking.retention: {max_age, max_size}, each 0 for
// no bound.
func (d *decoder) retention(n *yaml.Node, path string, r *Retention) {
	f := d.fields(n, path, "max_age", "max_size")
	if v := f["max_age"]; present(v) {
		if v.Value == "0" {
			r.MaxAge = 0
		} else if age, ok := d.duration(v, join(path, "max_age"), time.Hour); ok {
			r.MaxAge = age
		}
	}
	if v := f["max_size"]; present(v) {
		if v.Value == "0" {
			r.MaxSize = 0
		} else if size, ok := d.size(v, join(path, "max_size")); ok {
			if size < 1<<20 {
				// Below a megabyte the store would be emptied at every round.
				d.errorf(v, join(path, "max_size"), "size %d is below the minimum 1MB (0: no bound)", size)
			} else {
				r.MaxSize = size
			}
		}
	}
}
