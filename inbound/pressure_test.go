package inbound

import (
	"testing"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
)

// TestPressureLevels walks the measures up and down past the marks: the
// level rises as soon as a mark is passed, falls only below 90 % of the
// mark that set it, and each change is one line.
func TestPressureLevels(t *testing.T) {
	type step struct {
		msgs, bytes, mem int64
		want             PressureLevel
		line             string // the line logged at this step, "" for none
	}
	limits := config.Limits{QueueHighWater: 100, QueueHardWater: 200, SpoolHighWater: 10000, SpoolHardWater: 20000,
		MemoryHighWater: 1000, MemoryHardWater: 2000}
	cases := []struct {
		name  string
		steps []step
	}{
		{"messages", []step{
			{100, 0, 0, PressureOff, ""},
			{101, 0, 0, PressureDelay, "Warning: mailgate: resource conservation level=delay cause=messages messages=101 bytes=0 memory=0"},
			{95, 0, 0, PressureDelay, ""}, // above 90
			{201, 0, 0, PressureRefuse, "Warning: mailgate: resource conservation level=refuse cause=messages messages=201 bytes=0 memory=0"},
			{190, 0, 0, PressureRefuse, ""}, // above 180
			{180, 0, 0, PressureDelay, "Info: mailgate: resource conservation level=delay cause=messages messages=180 bytes=0 memory=0"},
			{91, 0, 0, PressureDelay, ""},
			{90, 0, 0, PressureOff, "Info: mailgate: resource conservation level=off cause=- messages=90 bytes=0 memory=0"},
		}},
		{"bytes and memory", []step{
			{0, 10001, 0, PressureDelay, "Warning: mailgate: resource conservation level=delay cause=bytes messages=0 bytes=10001 memory=0"},
			{0, 10001, 2001, PressureRefuse, "Warning: mailgate: resource conservation level=refuse cause=memory messages=0 bytes=10001 memory=2001"},
			{0, 0, 1900, PressureRefuse, ""},
			{0, 0, 1000, PressureDelay, "Info: mailgate: resource conservation level=delay cause=memory messages=0 bytes=0 memory=1000"},
			{0, 0, 0, PressureOff, "Info: mailgate: resource conservation level=off cause=- messages=0 bytes=0 memory=0"},
		}},
		{"straight down", []step{
			{300, 0, 0, PressureRefuse, "Warning: mailgate: resource conservation level=refuse cause=messages messages=300 bytes=0 memory=0"},
			{10, 0, 0, PressureOff, "Info: mailgate: resource conservation level=off cause=- messages=10 bytes=0 memory=0"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := &levelLines{}
			var cur step
			p := NewPressure(limits, func() (int64, int64) { return cur.msgs, cur.bytes }, lines)
			p.memory = func() int64 { return cur.mem }
			for i, s := range c.steps {
				cur = s
				p.memAt = p.memAt.AddDate(-1, 0, 0) // read memory at every step
				before := len(lines.Snapshot())
				if got := p.Level(); got != s.want {
					t.Errorf("step %d (%d messages, %d bytes, %d memory): %v, want %v", i, s.msgs, s.bytes, s.mem, got, s.want)
				}
				var got string
				if all := lines.Snapshot(); len(all) > before {
					got = all[len(all)-1]
					if len(all) > before+1 {
						t.Errorf("step %d: %d lines", i, len(all)-before)
					}
				}
				if got != s.line {
					t.Errorf("step %d: line %q, want %q", i, got, s.line)
				}
			}
		})
	}
}

// levelLines keeps each line with its level word.
type levelLines struct{ all []string }

func (l *levelLines) Emit(e event.Entry) {
	l.all = append(l.all, e.Level.String()+": "+string(maillog.AppendMessage(nil, e.Event)))
}

func (l *levelLines) Snapshot() []string { return l.all }
