package event

// Receiving side: one inbound SMTP connection (ICID) and the messages (MID)
// injected over it. The comment on each type gives the ESA line it stands
// for; angle brackets around addresses are added by the renderer, so an
// address field holds the bare address ("" is the null sender).

// NewICID: "New SMTP ICID 5 interface Management (10.1.1.1) address
// 10.1.1.209 reverse dns host remotehost.com verified yes".
type NewICID struct {
	ICID        uint64
	Interface   string // listener interface name; may contain spaces
	InterfaceIP string
	RemoteIP    string
	ReverseHost string // the PTR name, or "unknown"
	Verified    bool   // PTR then A/AAAA confirmed the address
}

// HAT actions, as written after the ICID.
const (
	ActionAccept    = "ACCEPT"
	ActionRelay     = "RELAY"
	ActionReject    = "REJECT"
	ActionTCPRefuse = "TCPREFUSE"
	ActionContinue  = "CONTINUE"
)

// SBRSNotEnabled is the SBRS field when SenderBase scoring is off, which it
// always is in mailgate.
const SBRSNotEnabled = "not enabled"

// HATMatch: "ICID 10293 RELAY SG RELAY_SG match 192.168.0.200 SBRS not
// enabled". Group is "None" when the listener's default policy applied; Rule
// is the sender-group entry that matched ("ALL" for the default, "" gives the
// two-space form of old releases). Country is empty unless the line has one.
type HATMatch struct {
	ICID    uint64
	Action  string
	Group   string
	Rule    string
	SBRS    string
	Country string
}

// TLS: "ICID 60140302 TLS success protocol TLSv1 cipher AES128-SHA",
// "ICID 4 TLS failed: [Errno 54] Connection reset by peer", "ICID 4 TLS
// failed", and the same with DCID for deliveries.
type TLS struct {
	Conn     ConnRef
	Success  bool
	Protocol string
	Cipher   string
	Reason   string // for failures; may be empty
}

// ConnRef names a connection: an inbound ICID or an outbound DCID.
type ConnRef struct {
	Kind ConnKind
	ID   uint64
}

type ConnKind uint8

const (
	InboundConn  ConnKind = iota + 1 // ICID
	OutboundConn                     // DCID
)

func (k ConnKind) String() string {
	if k == OutboundConn {
		return "DCID"
	}
	return "ICID"
}

// StartMID: "Start MID 6 ICID 5", on MAIL FROM.
type StartMID struct {
	MID  uint64
	ICID uint64
}

// MailFrom: "MID 6 ICID 5 From: <sender@remotehost.com>".
type MailFrom struct {
	MID  uint64
	ICID uint64
	From string
}

// RcptTo: "MID 6 ICID 5 RID 0 To: <mary@yourdomain.com>".
type RcptTo struct {
	MID  uint64
	ICID uint64
	RID  int
	To   string
}

// RcptRejected: "MID 1 ICID 2 To: <postmaster@corestaff.com> Rejected by RAT".
// By is the word after "Rejected by": "RAT", "Injection Control", ...
type RcptRejected struct {
	MID  uint64
	ICID uint64
	To   string
	By   string
}

// InvalidAddress: "ICID 3 MID 1 Invalid recipient address: Invalid character
// in address: '!'" or "ICID 4 Invalid sender address: ..." (MID 0: none).
type InvalidAddress struct {
	ICID      uint64
	MID       uint64
	Recipient bool // "recipient" rather than "sender"
	Detail    string
}

// ReceivingFailed: "ICID 440090 Receiving Failed: Message size exceeds limit".
type ReceivingFailed struct {
	ICID   uint64
	Reason string
}

// Reasons of ReceivingFailed that mailgate writes.
const (
	FailedSizeLimit       = "Message size exceeds limit"
	FailedConnectionLimit = "Connection limit exceeded"
	// FailedQueueFull: the spool's disk is below its free-space floor, or
	// the message did not fit (the ESA's wording of 452 #4.3.1).
	FailedQueueFull = "Queue full"
	// FailedResources: refused by backpressure, the queue or memory past
	// its hard mark (ResourceConservation level "refuse").
	FailedResources = "Insufficient system resources"
)

// UnknownCommand: "ICID 5 Unknown command: XYZZY".
type UnknownCommand struct {
	ICID    uint64
	Command string
}

// MessageIDHeader: "MID 64855 Message-ID '<op.zfdwolzf0ubsb2@mathew.cisco.com>'".
type MessageIDHeader struct {
	MID       uint64
	MessageID string
}

// Subject: "MID 64855 Subject 'sample'". Quote is the quoting the line used
// ('\” or '"', 0 for the unquoted form) so that a parsed line renders back
// unchanged; mailgate writes '\” (or '"' when the text holds a '\”).
type Subject struct {
	MID     uint64
	Subject string
	Quote   byte
}

// Ready: "MID 6 ready 100 bytes from <sender@remotehost.com>".
type Ready struct {
	MID   uint64
	Bytes int64
	From  string
}

// PolicyMatch: "MID 64855 matched all recipients for per-recipient policy
// DEFAULT in the inbound table".
type PolicyMatch struct {
	MID    uint64
	Policy string
	Table  string // "inbound" or "outbound"
}

// Queued: "MID 6 queued for delivery".
type Queued struct {
	MID uint64
}

// ICIDLost: "ICID 10293 lost": the peer vanished below SMTP.
type ICIDLost struct {
	ICID uint64
}

// Reasons of MessageAborted.
const (
	AbortReceiving         = "Receiving aborted"
	AbortReceivingBySender = "Receiving aborted by sender"
)

// MessageAborted: "Message aborted MID 1404 Receiving aborted". Reason is the
// text after the MID (also "Dropped by CASE" and the like in ESA logs).
type MessageAborted struct {
	MID    uint64
	Reason string
}

// BySender reports whether the client quit the SMTP session before the
// message was complete.
func (m MessageAborted) BySender() bool { return m.Reason == AbortReceivingBySender }

// Statuses of MessageFinished.
const (
	FinishedDone    = "done"
	FinishedAborted = "aborted"
)

// MessageFinished: "Message finished MID 1404 aborted" or "... done".
type MessageFinished struct {
	MID    uint64
	Status string
}

// ICIDClose: "ICID 10293 close": exactly one ends every ICID.
type ICIDClose struct {
	ICID uint64
}

// Reasons of ICIDDisconnected.
const (
	DisconnectNoMessages = "no messages injected within timeout period"
	DisconnectTotalTime  = "exceeded allowable connection time"
)

// ICIDDisconnected: "ICID 3 disconnected address 10.1.1.101, no messages
// injected within timeout period" (the timeouts of a listener).
type ICIDDisconnected struct {
	ICID    uint64
	Address string
	Reason  string
}

// Outcomes of SMTPAuth.
const (
	AuthSucceeded = "succeeded"
	AuthFailed    = "failed"
	AuthRequired  = "was required" // the listener requires AUTH and the client sent MAIL without it
)

// SMTPAuth: "SMTP Auth: (ICID 30) succeeded for user: cisco using AUTH
// mechanism: LOGIN with profile: ldap_smpt", the same with "failed", and
// "SMTP Auth (ICID 5) was required but remote host did not initiate it".
// User, Mechanism and Profile are empty for AuthRequired. The appliance's
// real line has "SMTP Auth:" with a colon, its format catalogue none:
// NoColon keeps the catalogue's form of a parsed line.
type SMTPAuth struct {
	ICID      uint64
	Outcome   string
	User      string
	Mechanism string
	Profile   string
	NoColon   bool
}
