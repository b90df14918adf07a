package event

import "time"

// Delivery side: outbound SMTP connections (DCID) and what became of each
// recipient (RID) of a message.
//
// Several ESA lines changed shape across AsyncOS releases. Types whose line
// has older variants carry a Form field: 0 is the form mailgate writes, other
// values record the variant a parsed line used so that it renders back
// unchanged. The maillog package defines the values.

// NewDCID: "New SMTP DCID 7436 interface 10.10.1.12 address 10.10.1.25 port 25".
// Port 0 renders the pre-4.6 form without " port N".
type NewDCID struct {
	DCID        uint64
	InterfaceIP string
	RemoteIP    string
	Port        int
}

// DeliveryStart: "Delivery start DCID 3 MID 4 to RID [0, 1]", logged when
// MAIL FROM is sent.
type DeliveryStart struct {
	DCID uint64
	MID  uint64
	RIDs []int
	Form uint8
}

// MessageDone: "Message done DCID 30 MID 14 to RID [0]", logged when the next
// hop accepted the message for those RIDs. Extra is whatever followed the RID
// list in a parsed line (logged headers, "(external quarantine)"), verbatim.
type MessageDone struct {
	DCID  uint64
	MID   uint64
	RIDs  []int
	Extra string
}

// Response: "MID 24611465 RID [0] Response '2.0.0 Ok: queued as 3jjSKc6HnKz4GTHJ'".
// Quote is the quoting used ('\”, '"' or 0 for the unquoted 2004 form).
type Response struct {
	MID   uint64
	RIDs  []int
	Text  string
	Quote byte
}

// Outcome is a recipient's soft (Delayed) or hard (Bounced) failure:
// "Bounced: DCID 8413617 MID 19338947 From: <a@example.com> To: <b@example.net>
// RID 0 - 5.4.7 - Delivery expired (message too old) ('000', ['timeout'])".
// Code is the remote reply code, "000" when there was no SMTP reply.
type Outcome struct {
	Hard     bool // Bounced; otherwise Delayed
	DCID     uint64
	MID      uint64
	From     string
	To       string
	RID      int
	Status   string // enhanced status code, "5.4.7"
	Reason   string // "Delivery expired (message too old)"
	Code     string // "550", or "000"
	Response []string
	Form     uint8
}

// ConnectionError: "Connection Error: DCID 63 domain: example.com IP:
// 10.13.101.31 port: 25 details: [Errno 0] Error interface: 10.10.192.50
// reason: network error". The message stays queued.
type ConnectionError struct {
	DCID        uint64
	Domain      string
	IP          string
	Port        int
	Details     string
	InterfaceIP string
	Reason      string
	Form        uint8
}

// DCIDClose: "DCID 8 close".
type DCIDClose struct {
	DCID uint64
}

// BounceGenerated: "MID 15216898 generated for bounce of MID 8785588".
type BounceGenerated struct {
	MID     uint64
	OrigMID uint64
}

// DoubleBounce: "Double bounce: Message 8963393 to 0 - 5.1.1 - Bad destination
// email address": a bounce that bounced, dropped.
type DoubleBounce struct {
	MID    uint64
	RID    int
	Status string
	Reason string
}

// Pending: "MID 154 to RID [0] pending till Wed Jul 20 10:15:41 2005 [Default]":
// the next attempt after a soft failure. Profile is the bounce profile name.
type Pending struct {
	MID     uint64
	RIDs    []int
	Until   time.Time
	Profile string
	Form    uint8
}

// PossibleDelivery: "Possible Delivery: DCID: 4641294 MID 8956463 to [0]":
// the connection was lost after the whole message was sent and before the
// final reply came, so the next hop may have accepted it for those RIDs.
// They are retried; the retry may deliver a duplicate.
type PossibleDelivery struct {
	DCID uint64
	MID  uint64
	RIDs []int
}

// Deleted: "Deleted: MID 3 to [0]": the administrator removed those
// recipients from the queue (deleterecipients, mailgate queue delete); no
// delivery and no bounce follow.
type Deleted struct {
	MID  uint64
	RIDs []int
}
