package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/scan"
	"github.com/mailgate/mailgate/scan/clamd"
	"github.com/mailgate/mailgate/scan/rspamd"
	"github.com/mailgate/mailgate/scan/spamd"
)

func score(f float64) *float64 { return &f }

func TestScanners(t *testing.T) {
	defRspamd := rspamd.Options{URL: "http://127.0.0.1:11333", Timeout: 15 * time.Second, Concurrency: 8, MaxSize: 2 << 20}
	defSpamd := spamd.Options{Address: "127.0.0.1:783", Timeout: 30 * time.Second, Concurrency: 5, MaxSize: 500 << 10}
	defClamd := clamd.Options{Address: "/var/run/clamav/clamd.ctl", Timeout: time.Minute, Concurrency: 10, MaxSize: 25 << 20}
	with := func(o rspamd.Options, f func(*rspamd.Options)) *rspamd.Options { f(&o); return &o }
	for _, tt := range []struct {
		name, yaml string
		want       Scanners
	}{
		{"none", "", Scanners{}},
		{"empty section", "scanners:", Scanners{}},
		{"defaults", "scanners: {rspamd: {}, spamassassin: {}, clamav: {}}", Scanners{&defRspamd, &defSpamd, &defClamd}},
		{"an engine named alone", "scanners:\n  clamav:\n", Scanners{ClamAV: &defClamd}},
		{"rspamd", "scanners:\n  rspamd:\n    url: http://[::1]:11333/\n    timeout: 5s\n    concurrency: 32\n    max_size: 1M\n    thresholds: {suspect: 6, positive: 12.5}\n",
			Scanners{Rspamd: with(defRspamd, func(o *rspamd.Options) {
				o.URL, o.Timeout, o.Concurrency, o.MaxSize = "http://[::1]:11333/", 5*time.Second, 32, 1<<20
				o.Thresholds = scan.Thresholds{Suspect: score(6), Positive: score(12.5)}
			})}},
		{"rspamd, one threshold", "scanners: {rspamd: {thresholds: {positive: -1}}}",
			Scanners{Rspamd: with(defRspamd, func(o *rspamd.Options) { o.Thresholds.Positive = score(-1) })}},
		{"spamassassin on a Unix socket", "scanners: {spamassassin: {address: /run/spamd.sock, suspect_score: 3, positive_score: 8, user: mail, max_size: 1MB}}",
			Scanners{SpamAssassin: &spamd.Options{Address: "/run/spamd.sock", Timeout: 30 * time.Second, Concurrency: 5, MaxSize: 1 << 20,
				User: "mail", Thresholds: scan.Thresholds{Suspect: score(3), Positive: score(8)}}}},
		{"clamav over TCP", "scanners: {clamav: {address: 127.0.0.1:3310, timeout: 2m, concurrency: 4, max_size: 100M}}",
			Scanners{ClamAV: &clamd.Options{Address: "127.0.0.1:3310", Timeout: 2 * time.Minute, Concurrency: 4, MaxSize: 100 << 20}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := parseString(t, tt.yaml+"\n")
			if !reflect.DeepEqual(c.Scanners, tt.want) {
				t.Errorf("scanners\n%s\nwant\n%s", show(c.Scanners), show(tt.want))
			}
		})
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"unknown engine", "scanners:\n  sophos: {}\n", `test.yaml:2: scanners.sophos: unknown key`},
		{"misspelt key", "scanners:\n  rspamd:\n    concurency: 4\n", `test.yaml:3: scanners.rspamd.concurency: unknown key; did you mean "concurrency"?`},
		{"not a URL", "scanners:\n  rspamd: {url: 127.0.0.1:11333}\n", `test.yaml:2: scanners.rspamd.url: "127.0.0.1:11333" is not rspamd's address`},
		{"a path", "scanners:\n  rspamd: {url: \"http://127.0.0.1:11333/checkv2\"}\n", `scanners.rspamd.url: "http://127.0.0.1:11333/checkv2" has a path`},
		{"short timeout", "scanners:\n  rspamd: {timeout: 10ms}\n", `scanners.rspamd.timeout: duration 10ms is below the minimum 100ms`},
		{"no concurrency", "scanners:\n  clamav: {concurrency: 0}\n", `scanners.clamav.concurrency: 0 is below the minimum 1`},
		{"bad size", "scanners:\n  clamav: {max_size: 25 apples}\n", `scanners.clamav.max_size: size "25 apples" has an unknown unit`},
		{"bad threshold", "scanners:\n  rspamd: {thresholds: {suspect: high}}\n", `scanners.rspamd.thresholds.suspect: want a score (6, 7.5, -1), got "high"`},
		{"unknown threshold", "scanners:\n  rspamd: {thresholds: {marketing: 3}}\n", `scanners.rspamd.thresholds.marketing: unknown key`},
		{"suspect above positive", "scanners:\n  spamassassin:\n    suspect_score: 9\n    positive_score: 5\n",
			`test.yaml:3: scanners.spamassassin.suspect_score: 9 is above the positive threshold 5`},
		{"relative socket", "scanners:\n  clamav: {address: ./clamd.ctl}\n", `scanners.clamav.address: "./clamd.ctl": a Unix socket's path must be absolute`},
		{"no port", "scanners:\n  spamassassin: {address: localhost}\n", `scanners.spamassassin.address: "localhost" is neither host:port nor`},
		{"bad port", "scanners:\n  clamav: {address: \"127.0.0.1:99999\"}\n", `scanners.clamav.address: "127.0.0.1:99999" is neither`},
		{"bad user", "scanners:\n  spamassassin: {user: \"a b\"}\n", `scanners.spamassassin.user: "a b": a user name has no space`},
		{"not a mapping", "scanners:\n  clamav: yes\n", `test.yaml:2: scanners.clamav: want a mapping`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant %q", ps, tt.want)
			}
		})
	}
}

// show prints Scanners with the thresholds' values, not their pointers.
func show(s Scanners) string {
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	var b strings.Builder
	if o := s.Rspamd; o != nil {
		fmt.Fprintf(&b, "rspamd %+v suspect %s positive %s\n", *o, f(o.Thresholds.Suspect), f(o.Thresholds.Positive))
	}
	if o := s.SpamAssassin; o != nil {
		fmt.Fprintf(&b, "spamassassin %+v suspect %s positive %s\n", *o, f(o.Thresholds.Suspect), f(o.Thresholds.Positive))
	}
	if o := s.ClamAV; o != nil {
		fmt.Fprintf(&b, "clamav %+v\n", *o)
	}
	return b.String()
}
