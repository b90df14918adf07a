package config

import (
	"strings"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	c := parseString(t, "limits:\n  queue_high_water: 100\n  queue_hard_water: 300\n  spool_high_water: 10MB\n  spool_hard_water: 20MB\n"+
		"  memory_high_water: 1GB\n  memory_hard_water: 2GB\n  in_flow_delay: 250ms\n")
	want := Limits{QueueHighWater: 100, QueueHardWater: 300, SpoolHighWater: 10 << 20, SpoolHardWater: 20 << 20,
		MemoryHighWater: 1 << 30, MemoryHardWater: 2 << 30, InFlowDelay: 250 * time.Millisecond}
	if c.Limits != want {
		t.Errorf("limits = %+v, want %+v", c.Limits, want)
	}
	if c := parseString(t, "limits: {queue_high_water: 0, queue_hard_water: 0}\n"); c.Limits.QueueHighWater != 0 || c.Limits.QueueHardWater != 0 {
		t.Errorf("marks of 0 (none) gave %+v", c.Limits)
	}
	if c := parseString(t, "hostname: a.example\n"); c.Limits != defaultLimits() {
		t.Errorf("no limits: %+v, want the defaults %+v", c.Limits, defaultLimits())
	}
}

func TestLimitsMistakes(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"hard below high", "limits:\n  queue_high_water: 100\n  queue_hard_water: 50\n", `test.yaml:3: limits.queue_hard_water: 50 is not above queue_high_water 100`},
		{"high above the default hard", "limits:\n  queue_high_water: 300000\n", `test.yaml:2: limits.queue_hard_water: 200000 is not above queue_high_water 300000`},
		{"negative", "limits:\n  queue_high_water: -1\n", `test.yaml:2: limits.queue_high_water:`},
		{"size without unit sense", "limits:\n  memory_hard_water: lots\n", `test.yaml:2: limits.memory_hard_water:`},
		{"delay without unit", "limits:\n  in_flow_delay: 1\n", `limits.in_flow_delay: duration 1 has no unit`},
		{"unknown key", "limits:\n  queue_high_mark: 1\n", `test.yaml:2: limits.queue_high_mark`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml)
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant one containing %q", ps, tt.want)
			}
		})
	}
}
