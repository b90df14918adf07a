package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestUsage: a command given the wrong arguments prints its usage once,
// beginning with one "usage:", and exits 2.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"findevent"},
		{"explain"},
		{"track", "extra"},
		{"import"},
		{"queue", "show"},
		{"queue", "list", "extra"},
		{"queue", "bounce"},
		{"queue", "deliver-now", "a", "b"},
		{"status", "extra"},
		{"status", "detail", "extra"},
		{"tophosts", "extra"},
		{"tophosts", "--sort", "size"},
		{"hoststatus"},
		{"hoststatus", "a.test", "b.test"},
		{"rate", "0"},
		{"rate", "1", "2"},
		{"rate", "--count", "-1"},
		{"resetcounters", "extra"},
		{"dkim"},
		{"dkim", "keygen", "example.com"},
		{"quarantine"},
		{"quarantine", "show"},
		{"quarantine", "list", "a", "b"},
		{"quarantine", "release"},
		{"quarantine", "delete", "1", "Policy", "x"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, &stderr)
			}
			out := stderr.String()
			if !strings.HasPrefix(out, "usage: mailgate "+args[0]) || strings.Count(out, "usage:") != 1 {
				t.Errorf("stderr:\n%s\nwant one usage beginning %q", out, "usage: mailgate "+args[0])
			}
		})
	}
}
