package event

import (
	"fmt"
	"time"
)

// Lines that are not about one connection or message, and lines of our own.

// BeginLogfile: "Begin Logfile", the first line of every log file.
type BeginLogfile struct{}

// LogfileVersion: "Version: 7.6.3-019 SN: 420D4FEA709365BFB3E3-0AF2EE5E700E".
type LogfileVersion struct {
	Version string
	Serial  string
}

// TimeOffset: "Time offset from UTC: -21600 seconds".
type TimeOffset struct {
	Seconds int
}

// Unknown is a line we have no type for. Text is the message after the level
// word (or the whole line when it has no timestamp and level); it is kept
// verbatim and renders back unchanged.
type Unknown struct {
	Text string
}

// InjectionDebug is a line of an injection debug log:
// "102503993 Rcvd: 'MAIL FROM:<daily@example.net>'". mailgate labels from
// its own side: Rcvd is what the client sent, Sent is what mailgate replied.
type InjectionDebug struct {
	ICID uint64
	Sent bool
	Data string
}

// Cause is why an inbound connection ended; every connection has exactly
// one. It is a number, as NATS's ClosedState is, so that the gateway and
// tracking switch on it and a misspelt cause does not compile; String gives
// the word of mailgate's "ended" line. The zero Cause is no cause: a
// session that has not ended.
type Cause uint8

const (
	CauseQuit                Cause = iota + 1 // the client sent QUIT
	CausePeerClosed                           // FIN without QUIT
	CausePeerReset                            // RST
	CauseIOError                              // any other read or write error
	CauseTLSFailed                            // STARTTLS handshake failed
	CauseTimeoutUnsuccessful                  // no message injected in time
	CauseTimeoutTotal                         // total connection time limit
	CauseBadCommands                          // too many bad SMTP commands
	CausePolicy                               // HAT reject, connection and message limits
	CauseProtocol                             // a protocol violation that ends the session (data before the greeting)
	CauseShutdown                             // the gateway is stopping
	CauseTimeoutIdle                          // no command within the idle timeout
	CauseJunkCommands                         // too many junk commands (NOOP, RSET, VRFY, HELP) and empty transactions
	CauseErrors                               // too many commands refused (the hard error limit)
	CausePipelining                           // a command or the message sent before the reply it must wait for
	CauseHealthCheck                          // a configured health checker connected and left without a command
)

// causeWords are the words of the log; they never change, because logs
// written by one version are read by the next.
var causeWords = [...]string{
	CauseQuit:                "quit",
	CausePeerClosed:          "peer-closed",
	CausePeerReset:           "peer-reset",
	CauseIOError:             "io-error",
	CauseTLSFailed:           "tls-failed",
	CauseTimeoutUnsuccessful: "timeout-unsuccessful",
	CauseTimeoutTotal:        "timeout-total",
	CauseBadCommands:         "bad-commands",
	CausePolicy:              "policy",
	CauseProtocol:            "protocol",
	CauseShutdown:            "shutdown",
	CauseTimeoutIdle:         "timeout-idle",
	CauseJunkCommands:        "junk-commands",
	CauseErrors:              "errors",
	CausePipelining:          "pipelining",
	CauseHealthCheck:         "health-check",
}

func (c Cause) String() string {
	if c >= CauseQuit && int(c) < len(causeWords) {
		return causeWords[c]
	}
	return fmt.Sprintf("Cause(%d)", uint8(c))
}

// ParseCause returns the Cause whose String is word. A word it does not
// know (from a newer mailgate's log) is no Cause: the log parser then keeps
// the whole line as an Unknown, which renders back byte for byte, rather
// than a ConnectionEnd that would write another word.
func ParseCause(word string) (Cause, bool) {
	for c := CauseQuit; int(c) < len(causeWords); c++ {
		if causeWords[c] == word {
			return c, true
		}
	}
	return 0, false
}

// CommandCount counts one SMTP verb in a session: how many were sent and how
// many of those were accepted (2xx or 3xx), like Postfix's "rcpt=1/2".
type CommandCount struct {
	Verb  string // lower case: "ehlo", "mail", ...
	OK    int
	Total int
}

// ConnectionEnd is mailgate's own line, written after "ICID n close", with
// what the ESA lines leave out:
//
//	mailgate: ICID 10293 ended cause=peer-reset state=rcpt last=RCPT data_bytes=0 duration=36.012s ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4
//
// It begins with "mailgate:" so that no ESA parser takes it for one of the
// appliance's lines.
type ConnectionEnd struct {
	ICID        uint64
	Cause       Cause
	State       string // SMTP state when it ended: connect, helo, mail, rcpt, data, quit
	LastCommand string // verb of the last command, "" if none
	DataBytes   int64  // bytes of DATA received for the open transaction
	Duration    time.Duration
	Commands    []CommandCount // in the order first seen
	Detail      string         // the error or the limit, when the cause has one
}

// Status is the status log's line, one per measurement interval:
// "Status: CPULd 0 DskIO 0 RAMUtil 1 QKUsd 0 QKFre 8388608 CrtMID 0 ...".
// Fields are name/value pairs in the order written; a value is one token
// (a number, or "148G" for LogAvail).
type Status struct {
	Fields []StatusField
}

// StatusField is one gauge or counter of a Status line.
type StatusField struct {
	Name  string
	Value string
}

// AlertSent: `A System/Warning alert was sent to admin@example.com with
// subject "Warning-mx.example.com: (System) ..."`, one line per recipient
// of an alert (ESA-PIPELINE 1.17, 5.11). The line names no MID, as the
// ESA's; mailgate's alert is a generated message whose own lines (ICID 0,
// its Subject line) follow it through delivery.
type AlertSent struct {
	Class    string // "System", "Hardware", "Anti-Virus", ...
	Severity string // "Critical", "Warning" or "Information"
	To       string
	Subject  string
}
