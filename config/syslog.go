package config

import (
	"net"
	"net/netip"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/syslog"
)

// Loopback reports whether a listen address (host:port) takes connections
// from this machine only. An empty host, 0.0.0.0 or :: listen on every
// address.
func Loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// syslog decodes tracking.syslog: a listen address, or {address, allow}.
// Syslog has no authentication and a line names its own host, so a
// receiver that listens beyond loopback must say whom it hears. It returns
// the address's node, for the check of the bind.
func (d *decoder) syslog(n *yaml.Node, path string, t *Tracking) *yaml.Node {
	addr, apath := n, path
	if resolve(n).Kind == yaml.MappingNode {
		f := d.fields(n, path, "address", "allow")
		addr, apath = f["address"], join(path, "address")
		if !present(addr) {
			d.errorf(n, apath, "required (host:port: 0.0.0.0:514, 127.0.0.1:5514)")
		}
		if v := f["allow"]; present(v) {
			t.SyslogAllow = d.syslogSenders(v, join(path, "allow"))
		}
	}
	if !present(addr) {
		return nil
	}
	if s, ok := d.str(addr, apath); ok {
		t.Syslog = s
	}
	if t.Syslog != "" && t.SyslogAllow == nil && !Loopback(t.Syslog) {
		d.errorf(addr, apath, "%s listens beyond loopback: list the senders allowed in %s.allow ({address, host}); "+
			"syslog has no authentication, and any host could file lines under any gateway's name", t.Syslog, path)
	}
	return addr
}

// syslogSenders decodes the allow list: each entry an address, or
// {address, host} to file the sender's lines under host.
func (d *decoder) syslogSenders(n *yaml.Node, path string) []syslog.Sender {
	items := d.list(n, path)
	if resolve(n).Kind == yaml.SequenceNode && len(items) == 0 {
		d.errorf(n, path, "an empty list allows no sender; give at least one, or leave the key out on loopback")
	}
	out := []syslog.Sender{}
	seen := map[netip.Addr]string{}
	for i, it := range items {
		p := index(path, i)
		addr, apath := it, p
		var s syslog.Sender
		if resolve(it).Kind == yaml.MappingNode {
			f := d.fields(it, p, "address", "host")
			addr, apath = f["address"], join(p, "address")
			if !present(addr) {
				d.errorf(it, apath, "required (an IP address)")
				continue
			}
			if v := f["host"]; present(v) {
				if h, ok := d.str(v, join(p, "host")); ok {
					if err := checkHostName(h); err != nil {
						d.errorf(v, join(p, "host"), "%v", err)
					}
					s.Host = h
				}
			}
		}
		text, ok := d.str(addr, apath)
		if !ok {
			continue
		}
		a, err := netip.ParseAddr(text)
		if err != nil || a.Zone() != "" {
			d.errorf(addr, apath, "%q is not an IP address", text)
			continue
		}
		s.Addr = a.Unmap()
		if other, dup := seen[s.Addr]; dup {
			d.errorf(addr, apath, "%s is allowed already, in %s", s.Addr, other)
			continue
		}
		seen[s.Addr] = p
		out = append(out, s)
	}
	return out
}
