package config

import (
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// http decodes the http section. The API holds every address and subject
// the gateway has seen: reachable beyond loopback without a token it
// answers nothing, and check-config says so.
func (d *decoder) http(n *yaml.Node, c *Config, b *binds) {
	if !present(n) {
		d.bind(nil, "http.address", c.HTTP.Address, b)
		return
	}
	f := d.fields(n, "http", "address", "token", "metrics_token", "hosts", "tls")
	if v := f["address"]; present(v) {
		if s, ok := d.str(v, "http.address"); ok {
			c.HTTP.Address = s
		}
	}
	if v := f["token"]; present(v) {
		if s, ok := d.str(v, "http.token"); ok {
			c.HTTP.Token = s
		}
	}
	if v := f["metrics_token"]; present(v) {
		if s, ok := d.str(v, "http.metrics_token"); ok {
			c.HTTP.MetricsToken = s
		}
	}
	if v := f["hosts"]; present(v) {
		for i, it := range d.list(v, "http.hosts") {
			p := index("http.hosts", i)
			s, ok := d.str(it, p)
			if !ok {
				continue
			}
			name := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "."))
			if a, err := netip.ParseAddr(name); err == nil {
				name = a.Unmap().String()
			} else if err := checkHostName(name); err != nil {
				d.errorf(it, p, "%q is neither a host name nor an IP address: %v", s, err)
				continue
			}
			c.HTTP.Hosts = append(c.HTTP.Hosts, name)
		}
	}
	if v := f["tls"]; present(v) {
		c.HTTP.TLS = d.httpTLS(v, "http.tls", c)
	}
	if c.HTTP.Address == "" {
		return
	}
	d.bind(f["address"], "http.address", c.HTTP.Address, b)
	if c.HTTP.Token == "" && !Loopback(c.HTTP.Address) {
		at := f["address"]
		if at == nil {
			at = n
		}
		d.warnf(at, "http.address", "%s is reachable beyond loopback and http.token is not set: "+
			"the API answers nothing until a token is set (or bind it to 127.0.0.1)", c.HTTP.Address)
	}
}

// httpTLS decodes http.tls: {cert, key}, or {listener: NAME} for the
// certificate of a listener (its self-signed one when it names none).
func (d *decoder) httpTLS(n *yaml.Node, path string, c *Config) *TLSFiles {
	if m := resolve(n); m.Kind == yaml.MappingNode && len(m.Content) == 2 && m.Content[0].Value == "listener" {
		name, ok := d.str(m.Content[1], join(path, "listener"))
		if !ok {
			return nil
		}
		for _, l := range c.Listeners {
			if l.Name == name {
				t := l.TLS
				return &t
			}
		}
		d.errorf(m.Content[1], join(path, "listener"), "no listener is named %q", name)
		return nil
	}
	t := d.tlsFiles(n, path, c.DataDir)
	return &t
}
