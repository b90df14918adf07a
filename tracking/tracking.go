// Package tracking keeps what the mail log says about every message, so that
// an administrator can find one in seconds and read its whole life: the
// message-tracking of the Cisco SMA, for mailgate's own logs and for those of
// real ESAs.
//
// A Tracker folds log entries (event.Entry, from the running gateway or from
// the maillog parser: one code path) into records: one Message per (host,
// MID) with its envelope, per-recipient outcome, status and its own log
// lines, and one Conn per inbound (ICID) or outbound (DCID) connection with
// the lines that name no message. A message's timeline is its lines merged
// with those of its connections (Timeline), as the ESA's findevent pulls in
// the ICID and DCID lines.
//
// A Store keeps the records: SQLite (the embedded default) or PostgreSQL
// (shared by many gateways; every record carries the gateway's host name).
// Writes are whole records, merged in the Tracker, so that feeding the same
// lines twice changes nothing: a line already in a record is not added again.
package tracking

import (
	"time"

	"github.com/mailgate/mailgate/event"
)

// Status is what became of a message, or of one of its recipients.
type Status string

const (
	Receiving Status = "receiving" // injection under way
	Queued    Status = "queued"    // accepted, not yet delivered
	Delivered Status = "delivered" // the next hop accepted every recipient
	Bounced   Status = "bounced"   // a recipient failed for good (the others may be delivered)
	Delayed   Status = "delayed"   // a recipient failed for now and waits for a retry
	Aborted   Status = "aborted"   // injection did not complete: see Abort
	Rejected  Status = "rejected"  // refused during injection: no recipient accepted, or too large
	Dropped   Status = "dropped"   // discarded by the gateway (a filter, a double bounce, a deletion)
	// Quarantined: held in a quarantine of the gateway (a policy, virus or
	// outbreak quarantine, the spam quarantine); a release goes on to
	// delivery, a deletion drops it.
	Quarantined Status = "quarantined"
	// Split: the recipient went on as another message, which a split made
	// (a per-recipient mail policy, the ESA's safelist/blocklist) and which
	// holds its end; a message all of whose recipients went on so has it
	// too. Nothing more is expected for it in this message.
	Split Status = "split"
)

// Statuses lists every Status, in the order a message goes through them.
var Statuses = []Status{Receiving, Queued, Split, Quarantined, Delayed, Delivered, Bounced, Aborted, Rejected, Dropped}

// Final reports whether nothing more is expected for a recipient in s.
func (s Status) Final() bool {
	switch s {
	case Delivered, Bounced, Rejected, Dropped, Aborted, Split:
		return true
	}
	return false
}

// Abort is why an injection did not complete. mailgate's own "ended"
// line names the cause exactly, and each cause has its kind; an ESA's log
// has only its own lines, which prove less, and those kinds say so
// (AbortLost, AbortSender, AbortUnknown).
type Abort string

const (
	AbortSenderQuit  Abort = "sender_quit"   // the client sent QUIT with the message open
	AbortSenderReset Abort = "sender_reset"  // the client sent RSET or a new HELO/EHLO and went on
	AbortSender      Abort = "sender"        // "Receiving aborted by sender" alone: QUIT, RSET or a new HELO/EHLO
	AbortPeerClosed  Abort = "peer_closed"   // the client closed the connection (FIN) without QUIT
	AbortPeerReset   Abort = "peer_reset"    // the connection was reset (RST)
	AbortIOError     Abort = "io_error"      // another read or write error (a write timeout)
	AbortTLSFailed   Abort = "tls_failed"    // the STARTTLS handshake failed
	AbortLost        Abort = "lost"          // "ICID n lost" alone: FIN, RST or another I/O error
	AbortTimeout     Abort = "timeout"       // the listener's unsuccessful-connection timeout
	AbortTimeLimit   Abort = "time_limit"    // the listener's total connection time limit
	AbortBadCommands Abort = "bad_commands"  // the bad-command limit
	AbortPolicy      Abort = "policy"        // a mail flow policy's limit (messages per connection, ...)
	AbortProtocol    Abort = "protocol"      // a protocol violation that ends the session
	AbortShutdown    Abort = "shutdown"      // the gateway was stopping
	AbortIdle        Abort = "idle_timeout"  // no command within the listener's idle timeout
	AbortJunk        Abort = "junk_commands" // the junk-command limit (NOOP, RSET, VRFY, HELP, empty transactions)
	AbortErrors      Abort = "error_limit"   // the hard error limit (too many refused commands)
	AbortPipelining  Abort = "pipelining"    // a command or the message sent before the reply it had to wait for
	AbortInjection   Abort = "injection"     // the ESA's "Injection aborted": the appliance ended the injection
	AbortUnknown     Abort = "unknown"       // "Receiving aborted" alone: lost, timed out or limited; the log does not say
)

// Aborts lists every Abort kind.
var Aborts = []Abort{AbortSenderQuit, AbortSenderReset, AbortSender, AbortPeerClosed, AbortPeerReset,
	AbortIOError, AbortTLSFailed, AbortLost, AbortTimeout, AbortTimeLimit, AbortIdle, AbortBadCommands, AbortJunk,
	AbortErrors, AbortPipelining, AbortPolicy, AbortProtocol, AbortShutdown, AbortInjection, AbortUnknown}

// AbortOf is the kind of abort a cause of mailgate's "ended" line makes of
// the message that was open when the connection ended.
func AbortOf(cause event.Cause) Abort {
	switch cause {
	case event.CauseQuit:
		return AbortSenderQuit
	case event.CausePeerClosed:
		return AbortPeerClosed
	case event.CausePeerReset:
		return AbortPeerReset
	case event.CauseIOError:
		return AbortIOError
	case event.CauseTLSFailed:
		return AbortTLSFailed
	case event.CauseTimeoutUnsuccessful:
		return AbortTimeout
	case event.CauseTimeoutTotal:
		return AbortTimeLimit
	case event.CauseBadCommands:
		return AbortBadCommands
	case event.CausePolicy:
		return AbortPolicy
	case event.CauseProtocol:
		return AbortProtocol
	case event.CauseShutdown:
		return AbortShutdown
	case event.CauseTimeoutIdle:
		return AbortIdle
	case event.CauseJunkCommands:
		return AbortJunk
	case event.CauseErrors:
		return AbortErrors
	case event.CausePipelining:
		return AbortPipelining
	}
	return AbortUnknown
}

// Message is one message (MID) of one gateway.
type Message struct {
	Host        string      `json:"host"`
	MID         uint64      `json:"mid"`
	ICID        uint64      `json:"icid"`
	DCIDs       []uint64    `json:"dcids"`
	RemoteIP    string      `json:"remote_ip"`
	RemoteHost  string      `json:"remote_host"`  // the verified PTR name, "unknown" or ""
	SenderGroup string      `json:"sender_group"` // the HAT sender group
	Sender      string      `json:"sender"`
	Recipients  []Recipient `json:"recipients"`
	Subject     string      `json:"subject"`
	MessageID   string      `json:"message_id"`
	Size        int64       `json:"size"`
	Started     time.Time   `json:"started"`
	Finished    time.Time   `json:"finished"` // zero while the message is in the gateway
	Status      Status      `json:"status"`
	Abort       Abort       `json:"abort"`        // when Status is Aborted
	AbortReason string      `json:"abort_reason"` // the ESA's words: "Receiving aborted", "Dropped by CASE"; a quarantine's line
	AbortState  string      `json:"abort_state"`  // SMTP state when the injection ended: "rcpt", "data", ...
	AbortBytes  int64       `json:"abort_bytes"`  // bytes of DATA received before the abort (mailgate's logs only)
	BounceOf    uint64      `json:"bounce_of"`    // for a DSN the gateway generated: the MID that bounced
	Updated     time.Time   `json:"updated"`      // time of the newest line
	// Verdicts are the scanning engines' final verdicts (verdicts.go),
	// from its lines; the stores keep the lines and rebuild them.
	Verdicts []Verdict `json:"verdicts"`

	// The sender-authentication results its lines give (auth.go).
	SPF     []SPFCheck  `json:"spf"`     // one per identity checked: helo, mailfrom (pra on old ESAs)
	DKIM    []DKIMCheck `json:"dkim"`    // one per signature verified, in the log's order
	DMARC   *DMARCCheck `json:"dmarc"`   // nil when no DMARC line was logged
	DNSList string      `json:"dnslist"` // the DNS list zone whose HAT rule placed the client; "" for another rule

	Lines []Line `json:"-"` // the message's own lines, in order
}

// Recipient is one envelope recipient (RID) and what became of it.
type Recipient struct {
	RID       int       `json:"rid"`
	Address   string    `json:"address"`
	Status    Status    `json:"status"`
	DCID      uint64    `json:"dcid"`       // the delivery that settled it (or the last attempt)
	Code      string    `json:"code"`       // enhanced status of a failure, "5.1.1"
	Response  string    `json:"response"`   // the next hop's reply, or the failure's reason
	NextRetry time.Time `json:"next_retry"` // for Delayed: "pending till"
	Time      time.Time `json:"time"`       // of the line that set Status
}

// Conn is one connection: inbound (ICID) or outbound (DCID).
type Conn struct {
	Host        string         `json:"host"`
	Kind        event.ConnKind `json:"-"`
	ID          uint64         `json:"id"`
	RemoteIP    string         `json:"remote_ip"`
	RemoteHost  string         `json:"remote_host"`
	SenderGroup string         `json:"sender_group"`
	Started     time.Time      `json:"started"`
	Finished    time.Time      `json:"finished"`
	Lost        bool           `json:"lost"`  // "ICID n lost" was logged
	Cause       string         `json:"cause"` // mailgate's "ended cause=", or "" for other logs
	State       string         `json:"state"` // SMTP state when it ended
	LastCommand string         `json:"last_command"`
	DataBytes   int64          `json:"data_bytes"`
	MIDs        []uint64       `json:"mids"`    // messages begun on it (ICID), in order
	DNSList     string         `json:"dnslist"` // the DNS list zone of the HAT rule that matched ("match dnslist[zone]")
	Lines       []Line         `json:"-"`
}

// Line is one log line of a timeline: its time, level and the message text
// as the ESA writes it after the level word ("MID 5 queued for delivery").
// A line read from a log (an import, a syslog receiver) keeps what came
// before the message too, as it was written: its timestamp with the
// writer's offset, a syslog server's host and tag, the level word.
type Line struct {
	Time   time.Time   `json:"time"`
	Level  event.Level `json:"-"`
	Text   string      `json:"text"`
	Prefix string      `json:"prefix,omitempty"` // "Jun 26 10:42:23 esa1.example.edu mail_logs: Info: "
}

// Logged returns the line as it was logged, or "" when it was not read
// from a log (the gateway's own events, which are rendered).
func (l Line) Logged() string {
	if l.Prefix == "" {
		return ""
	}
	return l.Prefix + l.Text
}

// Query selects messages; zero fields do not filter. Address filters match
// the whole address without regard to case, or, with a '*', as a pattern
// ("*@example.com"); Subject matches a substring without regard to case.
type Query struct {
	Host      string
	MID       uint64
	ICID      uint64
	DCID      uint64
	Sender    string
	Recipient string
	Subject   string
	MessageID string
	RemoteIP  string
	Status    Status
	Abort     Abort
	SPF       string    // the MAIL FROM identity's SPF result (SPFResults)
	DKIM      string    // a DKIM signature's result (DKIMResults)
	DMARC     string    // the DMARC result (DMARCResults)
	DNSList   string    // the DNS list zone that placed the client
	Since     time.Time // Started at or after
	Until     time.Time // Started before
	Limit     int       // 0: DefaultLimit
}

// NullSender in Query.Sender finds the messages with the null
// reverse-path, MAIL FROM:<> (bounces and other notifications), which the
// records hold as an empty Sender.
const NullSender = "<>"

// DefaultLimit is the number of messages a Query returns when it sets none.
const DefaultLimit = 100

// Bucket counts the messages started in one interval of a Histogram.
type Bucket struct {
	Start  time.Time      `json:"start"`
	Status map[Status]int `json:"status"` // messages by status
	Abort  map[Abort]int  `json:"abort"`  // aborted messages by kind
}
