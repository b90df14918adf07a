// Package event holds the vocabulary shared by every part of mailgate: one
// Go type for each kind of line of the ESA text mail log, plus the few lines
// of our own. The receiving and delivery sides emit these values; the maillog
// package renders them as ESA text and parses ESA text back into them; the
// tracking store builds timelines from them.
//
// The package does no I/O and imports nothing outside the standard library,
// so every other package may depend on it.
package event

import (
	"fmt"
	"time"
)

// Level is the severity word that follows the timestamp of an ESA log line.
// Each level includes the ones above it, as in AsyncOS.
type Level uint8

const (
	Critical Level = iota + 1
	Warning
	Info
	Debug
	Trace
)

var levelNames = [...]string{Critical: "Critical", Warning: "Warning", Info: "Info", Debug: "Debug", Trace: "Trace"}

func (l Level) String() string {
	if l >= Critical && l <= Trace {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// ParseLevel accepts the level words of the ESA log and of mailgate's
// configuration ("info", "Information" and "Info" are the same level).
func ParseLevel(s string) (Level, bool) {
	switch s {
	case "Critical", "critical":
		return Critical, true
	case "Warning", "warning":
		return Warning, true
	case "Info", "info", "Information", "information":
		return Info, true
	case "Debug", "debug":
		return Debug, true
	case "Trace", "trace":
		return Trace, true
	}
	return 0, false
}

// Entry is one line of the mail log: when, how severe, what.
type Entry struct {
	Time  time.Time
	Level Level
	Event Event
	// Text is the message as a log line held it (escaped), when the entry
	// was read from one; empty when the gateway made the entry. Tracking
	// keeps it as the line's text rather than rendering Event again: that
	// costs nothing, and shows a foreign line as its writer wrote it.
	Text string
	// Prefix is what came before Text in such a line (escaped too): its
	// timestamp as written, a syslog server's host and tag, the level
	// word ("Jun 26 10:42:23 esa1.example.edu mail_logs: Info: "), without
	// a syslog <PRI>. Prefix+Text is the line as it was logged.
	Prefix string
}

// Event is any of the types in this package. The method is unexported so
// that the set of events is closed: a line we do not know is an Unknown.
type Event interface{ isEvent() }

// Sink receives events as they happen. The mail-log writer, the tracking
// store and the metrics are its implementations; Emit must not block for
// long because it runs on the SMTP sessions' goroutines.
type Sink interface {
	Emit(Entry)
}

// Multi fans one stream out to several sinks, in order.
type Multi []Sink

func (m Multi) Emit(e Entry) {
	for _, s := range m {
		s.Emit(e)
	}
}

// Discard drops every event.
var Discard Sink = discard{}

type discard struct{}

func (discard) Emit(Entry) {}
