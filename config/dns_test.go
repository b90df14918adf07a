package config

import (
	"strings"
	"testing"
)

// TestDNSCacheSize: dns.cache_size, its default, 0 (no cache), and its
// mistakes at their lines.
func TestDNSCacheSize(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want int
	}{
		{"hostname: mx.test\n", DefaultDNSCacheSize},
		{"dns: {cache_size: 0}\n", 0},
		{"dns:\n  servers: [127.0.0.1]\n  cache_size: 100\n", 100},
	} {
		if c := parseString(t, tt.yaml); c.DNS.CacheSize != tt.want {
			t.Errorf("%q: cache_size %d, want %d", tt.yaml, c.DNS.CacheSize, tt.want)
		}
	}
	for _, tt := range []struct{ yaml, want string }{
		{"dns:\n  timeout: 1s\n  cache_size: -1\n", "test.yaml:3: dns.cache_size: -1 is below the minimum 0"},
		{"dns:\n  cache_size: 1k\n", "test.yaml:2: dns.cache_size: want a whole number"},
		{"dns:\n  cache: 10\n", "test.yaml:2: dns.cache: unknown key"},
	} {
		if got := problemsOf(t, tt.yaml).Error(); !strings.Contains(got, tt.want) {
			t.Errorf("problems\n%s\nwant %s", got, tt.want)
		}
	}
}
