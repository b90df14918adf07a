package config

import (
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/scan"
	"github.com/mailgate/mailgate/scan/clamd"
	"github.com/mailgate/mailgate/scan/rspamd"
	"github.com/mailgate/mailgate/scan/spamd"
)

// Scanners are the scanning engines the mail policies may use. A nil
// engine is not configured. Every field of a configured one holds its
// value, the default filled in.
type Scanners struct {
	Rspamd       *rspamd.Options
	SpamAssassin *spamd.Options
	ClamAV       *clamd.Options
}

// minScanTimeout is the shortest engine timeout: below it every scan of a
// real message would time out.
const minScanTimeout = 100 * time.Millisecond

// scanners decodes the scanners section.
func (d *decoder) scanners(n *yaml.Node, c *Config) {
	if !present(n) {
		return
	}
	const path = "scanners"
	f := d.fields(n, path, "rspamd", "spamassassin", "clamav")
	if v := f["rspamd"]; v != nil {
		c.Scanners.Rspamd = d.rspamd(v, join(path, "rspamd"))
	}
	if v := f["spamassassin"]; v != nil {
		c.Scanners.SpamAssassin = d.spamassassin(v, join(path, "spamassassin"))
	}
	if v := f["clamav"]; v != nil {
		c.Scanners.ClamAV = d.clamav(v, join(path, "clamav"))
	}
}

// engineMap returns an engine's keys: "rspamd:" alone (null) configures
// it with every default, like "rspamd: {}".
func (d *decoder) engineMap(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	if !present(n) {
		return map[string]*yaml.Node{}
	}
	return d.fields(n, path, known...)
}

func (d *decoder) rspamd(n *yaml.Node, path string) *rspamd.Options {
	f := d.engineMap(n, path, "url", "timeout", "concurrency", "max_size", "thresholds")
	o := &rspamd.Options{URL: rspamd.DefaultURL, Timeout: rspamd.DefaultTimeout,
		Concurrency: rspamd.DefaultConcurrency, MaxSize: rspamd.DefaultMaxSize}
	if v := f["url"]; present(v) {
		if s, ok := d.str(v, join(path, "url")); ok {
			u, err := url.Parse(s)
			switch {
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				d.errorf(v, join(path, "url"), "%q is not rspamd's address (http://127.0.0.1:11333)", s)
			case u.Path != "" && u.Path != "/" || u.RawQuery != "":
				d.errorf(v, join(path, "url"), "%q has a path; give the normal worker's base URL (http://127.0.0.1:11333): /checkv2 is added", s)
			default:
				o.URL = s
			}
		}
	}
	d.engineCommon(f, path, &o.Timeout, &o.Concurrency, &o.MaxSize)
	if v := f["thresholds"]; present(v) {
		tf := d.fields(v, join(path, "thresholds"), "suspect", "positive")
		o.Thresholds = d.thresholds(tf["suspect"], tf["positive"], join(path, "thresholds.suspect"), join(path, "thresholds.positive"))
	}
	return o
}

func (d *decoder) spamassassin(n *yaml.Node, path string) *spamd.Options {
	f := d.engineMap(n, path, "address", "timeout", "concurrency", "max_size", "suspect_score", "positive_score", "user")
	o := &spamd.Options{Address: spamd.DefaultAddress, Timeout: spamd.DefaultTimeout,
		Concurrency: spamd.DefaultConcurrency, MaxSize: spamd.DefaultMaxSize}
	d.engineAddress(f["address"], join(path, "address"), &o.Address)
	d.engineCommon(f, path, &o.Timeout, &o.Concurrency, &o.MaxSize)
	o.Thresholds = d.thresholds(f["suspect_score"], f["positive_score"], join(path, "suspect_score"), join(path, "positive_score"))
	if v := f["user"]; present(v) {
		if s, ok := d.text(v, join(path, "user")); ok {
			if strings.ContainsAny(s, " :") {
				d.errorf(v, join(path, "user"), "%q: a user name has no space or colon", s)
			}
			o.User = s
		}
	}
	return o
}

func (d *decoder) clamav(n *yaml.Node, path string) *clamd.Options {
	f := d.engineMap(n, path, "address", "timeout", "concurrency", "max_size")
	o := &clamd.Options{Address: clamd.DefaultAddress, Timeout: clamd.DefaultTimeout,
		Concurrency: clamd.DefaultConcurrency, MaxSize: clamd.DefaultMaxSize}
	d.engineAddress(f["address"], join(path, "address"), &o.Address)
	d.engineCommon(f, path, &o.Timeout, &o.Concurrency, &o.MaxSize)
	return o
}

// engineCommon decodes timeout, concurrency and max_size.
func (d *decoder) engineCommon(f map[string]*yaml.Node, path string, timeout *time.Duration, concurrency *int, maxSize *int64) {
	if v := f["timeout"]; present(v) {
		if t, ok := d.duration(v, join(path, "timeout"), minScanTimeout); ok {
			*timeout = t
		}
	}
	if v := f["concurrency"]; present(v) {
		if n, ok := d.integer(v, join(path, "concurrency"), 1); ok {
			*concurrency = n
		}
	}
	if v := f["max_size"]; present(v) {
		if s, ok := d.size(v, join(path, "max_size")); ok {
			*maxSize = s
		}
	}
}

// engineAddress decodes a spamd or clamd address: host:port, or the
// absolute path of a Unix socket.
func (d *decoder) engineAddress(n *yaml.Node, path string, addr *string) {
	if !present(n) {
		return
	}
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	if scan.Network(s) == "unix" {
		if !strings.HasPrefix(s, "/") {
			d.errorf(n, path, "%q: a Unix socket's path must be absolute", s)
			return
		}
		*addr = s
		return
	}
	host, port, err := net.SplitHostPort(s)
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
		d.errorf(n, path, "%q is neither host:port nor the absolute path of a Unix socket", s)
		return
	}
	*addr = s
}

// thresholds decodes a pair of score thresholds; either may be absent.
func (d *decoder) thresholds(sn, pn *yaml.Node, spath, ppath string) scan.Thresholds {
	var t scan.Thresholds
	if present(sn) {
		if f, ok := d.score(sn, spath); ok {
			t.Suspect = &f
		}
	}
	if present(pn) {
		if f, ok := d.score(pn, ppath); ok {
			t.Positive = &f
		}
	}
	if t.Suspect != nil && t.Positive != nil && *t.Suspect > *t.Positive {
		d.errorf(sn, spath, "%v is above the positive threshold %v: no message would be suspect", *t.Suspect, *t.Positive)
	}
	return t
}

// score decodes a spam score: a number, maybe negative or fractional.
func (d *decoder) score(n *yaml.Node, path string) (float64, bool) {
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil ||
		math.IsNaN(f) || math.IsInf(f, 0) {
		d.errorf(n, path, "want a score (6, 7.5, -1), got %s", kindName(n))
		return 0, false
	}
	return f, true
}
