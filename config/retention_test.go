package config

import (
	"strings"
	"testing"
	"time"
)

func TestTrackingRetention(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want Retention
	}{
		{"tracking: {}\n", Retention{MaxAge: 2160 * time.Hour, MaxSize: 10 << 30}},
		{"tracking: {retention: {max_age: 720h}}\n", Retention{MaxAge: 720 * time.Hour, MaxSize: 10 << 30}},
		{"tracking: {retention: {max_size: 500MB}}\n", Retention{MaxAge: 2160 * time.Hour, MaxSize: 500 << 20}},
		{"tracking: {retention: {max_age: 0, max_size: 0}}\n", Retention{}},
	} {
		if got := parseString(t, tt.yaml).Tracking.Retention; got != tt.want {
			t.Errorf("%q: retention %+v, want %+v", tt.yaml, got, tt.want)
		}
	}
	for _, tt := range []struct{ yaml, want string }{
		{"tracking: {retention: {max_age: 30m}}\n", "tracking.retention.max_age: duration 30m0s is below the minimum 1h"},
		{"tracking: {retention: {max_age: 90d}}\n", "tracking.retention.max_age: want a duration"},
		{"tracking: {retention: {max_size: 64K}}\n", "tracking.retention.max_size: size 65536 is below the minimum 1MB"},
		{"tracking: {retention: {keep: 3}}\n", "tracking.retention.keep: unknown key"},
	} {
		if ps := problemsOf(t, tt.yaml); !strings.Contains(ps.Error(), tt.want) {
			t.Errorf("%q: problems\n%v\nwant %q", tt.yaml, ps, tt.want)
		}
	}
}
