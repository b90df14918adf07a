package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"512k", 512 << 10, ""},
		{"512K", 512 << 10, ""},
		{"512KB", 512 << 10, ""},
		{"512KiB", 512 << 10, ""},
		{"10M", 10 << 20, ""},
		{"10MB", 10 << 20, ""},
		{"10mb", 10 << 20, ""},
		{"10MiB", 10 << 20, ""},
		{"10 MB", 10 << 20, ""},
		{" 10MB ", 10 << 20, ""},
		{"2G", 2 << 30, ""},
		{"2GB", 2 << 30, ""},
		{"100B", 100, ""},
		{"8589934591G", 8589934591 << 30, ""},
		{"", 0, "empty size"},
		{"MB", 0, `size "MB" does not start with a number`},
		{"-1MB", 0, `size "-1MB" is negative`},
		{"1.5MB", 0, `size "1.5MB" is not a whole number; use a smaller unit (1536K, not 1.5M)`},
		{"10XB", 0, `size "10XB" has an unknown unit "XB"`},
		{"10T", 0, `unknown unit "T"`},
		{"10 M B", 0, `unknown unit " M B"`},
		{"8589934592G", 0, `size "8589934592G" is too large`},
		{"99999999999999999999", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.err)
		}
	}
}

func TestSizeKeys(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  string
	}{
		{"10485760", 10 << 20, ""},
		{"10MB", 10 << 20, ""},
		{`"512k"`, 512 << 10, ""},
		{"0", 0, "size must be at least 1 byte"},
		{"1.5", 0, `size "1.5" is not a whole number`},
		{"[1]", 0, "want a size (10MB, 512K, 1048576), got a list"},
		{"true", 0, `want a size (10MB, 512K, 1048576), got "true"`},
	} {
		yaml := "logs: {mail: {max_size: " + tt.in + "}}\n"
		if tt.err == "" {
			if c := parseString(t, yaml); c.Logs.Mail.MaxSize != tt.want {
				t.Errorf("max_size: %s = %d, want %d", tt.in, c.Logs.Mail.MaxSize, tt.want)
			}
			continue
		}
		if ps := problemsOf(t, yaml); !strings.Contains(ps.Error(), tt.err) {
			t.Errorf("max_size: %s: %v, want %q", tt.in, ps, tt.err)
		}
	}
}

// FuzzParseSize checks that any text either fails or gives a non-negative
// size that does not depend on the case of its unit and that its plain
// byte count parses back to.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"10MB", "10M", "10MiB", "512k", "1048576", "-1", "1.5G", "10 kb", "", "99999999999G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if up, err := ParseSize(strings.ToUpper(s)); err != nil || up != n {
			t.Fatalf("ParseSize(%q) = %d but ParseSize(upper) = %d, %v", s, n, up, err)
		}
		if back, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || back != n {
			t.Fatalf("ParseSize(%q) = %d, which parses back as %d, %v", s, n, back, err)
		}
	})
}
