package explain

import (
	"slices"

	"github.com/mailgate/mailgate/tracking"
)

// Entry is one line of a message's timeline and where it came from.
type Entry struct {
	tracking.Line
	Source string `json:"source"` // "MID 5", "ICID 3", "DCID 8"
}

// Timeline merges a message's lines with those of its connections in time
// order. Lines read from a log with whole seconds were given microseconds
// in the order they came (Tracker.Add), so the merge keeps the log's order.
func Timeline(m *tracking.Message, conns []*tracking.Conn) []Entry {
	n := len(m.Lines)
	for _, c := range conns {
		n += len(c.Lines)
	}
	out := make([]Entry, 0, n)
	for _, l := range m.Lines {
		out = append(out, Entry{Line: l, Source: "MID " + itoa(m.MID)})
	}
	for _, c := range conns {
		src := c.Kind.String() + " " + itoa(c.ID)
		for _, l := range c.Lines {
			out = append(out, Entry{Line: l, Source: src})
		}
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	return out
}

func itoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
