package event

import "strings"

// The ESA's work queue, after a message is received: quarantines, the
// messages one message becomes (rewrites, splits, generated copies), and
// the verdicts of its scanning engines. mailgate does not write these
// lines; it reads them from Cisco ESA logs (ESA-PIPELINE.md sections 1.6 to
// 1.13), and only the forms seen in real lines are typed. A field that
// holds the rest of a line holds it verbatim, so that the line renders back
// unchanged.

// SpamQuarantineTag: "ISQ: Tagging MID 24611424 for quarantine" (also
// "EUQ: Tagging ..."): anti-spam sent the message to the spam quarantine.
// Its delivery there follows as "Delivery start ... to offbox IronPort Spam
// Quarantine" and "Message done ... (external quarantine)" (DeliveryStart,
// MessageDone), or as "RPC Delivery start" for an on-box quarantine.
type SpamQuarantineTag struct {
	MID    uint64
	Prefix string // "ISQ" or "EUQ"
}

// ExternalQuarantine reports whether a MessageDone is the hand-over to the
// off-box spam quarantine ("Message done DCID 6565554 MID 24611424 to RID
// [0] (external quarantine)"), not a delivery to the recipient.
func (m MessageDone) ExternalQuarantine() bool {
	return strings.HasSuffix(m.Extra, "(external quarantine)")
}

// SpamQuarantined: "EUQ: Quarantined MID 4433": the message is in the
// end-user (spam) quarantine.
type SpamQuarantined struct {
	MID uint64
}

// SpamReinjected: "EUQ: Reinjected MID 4433 as MID 4449": released from the
// spam quarantine, the message goes on as a new MID.
type SpamReinjected struct {
	MID    uint64
	NewMID uint64
}

// Quarantined: `MID 482 quarantined to "Policy" (message filter:policy_violation)`,
// `MID 43 quarantined to "Policy"`: the message waits in a policy, virus or
// outbreak quarantine. Reason is "" when the line gives none.
type Quarantined struct {
	MID        uint64
	Quarantine string
	Reason     string
}

// QuarantineReason: `MID 5 quarantine "Outbreak" new reason (VOF rule:OUTBREAK_0000231)`:
// a message in a quarantine is kept there for another reason.
type QuarantineReason struct {
	MID        uint64
	Quarantine string
	Reason     string
}

// QuarantineReleased: `MID 483 released from quarantine "Policy" (queue full)`,
// `MID 484 released from all quarantines`, `MID 7 released (attachments
// stripped) from quarantine "Outbreak" (queue full) t=190`: the message
// left a quarantine (Quarantine "": the last of them) and goes on to
// delivery, possibly as a new MID (Rewritten, "by Policy Quarantine").
type QuarantineReleased struct {
	MID        uint64
	Quarantine string // "" for "all quarantines"
	Reason     string // in parentheses after the quarantine; "" when none
	Note       string // in parentheses after "released": "attachments stripped"
	Extra      string // what follows, verbatim: "t=190"
}

// QuarantineDeleted: `MID 484 deleted from quarantine "Anti-Virus" (expired)`,
// `MID 9 deleted from all quarantines`: the message was deleted from a
// quarantine (Quarantine "": from the last of them) and is not delivered.
type QuarantineDeleted struct {
	MID        uint64
	Quarantine string // "" for "all quarantines"
	Reason     string // "expired", "manual"; "" when none
}

// Rewritten: "MID 1 rewritten to MID 2 by antispam (alt-rcpt-to) filter
// 'unknown'" (and "MID 2 rewritten to 3 by antispam" before 4.x): the
// message goes on as NewMID; By is the agent, verbatim. Form: see maillog.
type Rewritten struct {
	MID    uint64
	NewMID uint64
	By     string
	Form   uint8
}

// Split: "MID 58 was split creating MID 60 due to a per-recipient policy
// tcamp": some recipients of MID go on as NewMID (mail policies, SL/BL).
// Reason is the text after "due to ", verbatim.
type Split struct {
	MID    uint64
	NewMID uint64
	Reason string
}

// Generated: "MID 24611495 was generated based on MID 24611421 by bcc
// filter 'FireEye_BCC'" (also without "was"): MID is a new message made
// from OrigMID (a bcc or notify copy, an anti-virus notification); the
// original goes on. Form: see maillog.
type Generated struct {
	MID     uint64
	OrigMID uint64
	By      string
	Form    uint8
}

// PolicyDisposal: "MID 1960958 was dropped by content filter 'dontsend' in
// the inbound table" (and "was bounced by ..."), the form of old releases
// of what is now a MessageAborted "Dropped by content filter ...".
type PolicyDisposal struct {
	MID     uint64
	Bounced bool // "was bounced"; otherwise "was dropped"
	By      string
	Table   string // "inbound" or "outbound"
}

// EngineVerdict: "MID 201434 using engine: CASE spam negative" (the verdict
// a mail policy acts on) or "MID 5 interim verdict using engine: CASE spam
// positive" (one engine's result before it). Engine is the first word
// (CASE, SLBL, GRAYMAIL, Brightmail, ...), Verdict the rest ("spam
// positive", "spam suspect", "marketing", "using cached verdict").
type EngineVerdict struct {
	MID     uint64
	Interim bool
	Engine  string
	Verdict string
}

// AVVerdict: "MID 408721 interim AV verdict using Sophos CLEAN" (Interim,
// with the engine) or "MID 201434 antivirus negative", "MID 9 antivirus
// positive 'W32/Sober-P' (released from Outbreak)" (the final one, which
// names no engine). Verdict is one word (CLEAN, VIRAL, UNSCANNABLE;
// negative, positive, repaired, encrypted); Detail the rest, verbatim.
type AVVerdict struct {
	MID     uint64
	Interim bool
	Engine  string
	Verdict string
	Detail  string
}

// OutbreakVerdict: "MID 68119155 Outbreak Filters: verdict negative".
type OutbreakVerdict struct {
	MID     uint64
	Verdict string
}

// AMPVerdict: "MID 1653 AMP file reputation verdict : MALWARE", "... :
// SKIPPED (no attachment in message)".
type AMPVerdict struct {
	MID     uint64
	Verdict string
}

// TooBig: "MID 821 was too big (455520/262144) for scanning by Outbreak
// Filters": an engine skipped the message for its size.
type TooBig struct {
	MID    uint64
	Size   int64
	Limit  int64
	Engine string
}

// SPFVerdict: "MID 6153849 SPF: mailfrom identity user@example.com Fail
// (v=spf1)". Identity is helo, mailfrom or pra; Result one of Pass, Fail,
// SoftFail, None, Neutral, PermError, TempError; Detail the rest, verbatim.
type SPFVerdict struct {
	MID      uint64
	Identity string
	Address  string
	Result   string
	Detail   string
}

// DKIMVerdict: "MID 68119155 DKIM: pass signature verified
// (d=example.com s=s1 i=@example.com)": the check of one signature. Result
// is pass, permfail, tempfail, neutral or none; Detail the rest, verbatim.
type DKIMVerdict struct {
	MID    uint64
	Result string
	Detail string
}

// DMARCVerdict: "MID 68119155 DMARC: Message from domain example.com, DMARC
// pass (SPF aligned True, DKIM aligned True)", "MID 68119155 DMARC:
// Verification passed", "MID 7 DMARC: Message from domain example.org,
// DMARC fail (SPF aligned False, DKIM aligned False)": the DMARC check of a
// message (RFC 7489). Text follows "DMARC: ", verbatim; Verdict reads it.
type DMARCVerdict struct {
	MID  uint64
	Text string
}

// DMARCResult is what a DMARC line says, where it says it.
type DMARCResult struct {
	Domain      string // the RFC5322.From domain; "" when the line names none
	Result      string // pass, fail, temperror, permerror, none; "" when the line gives none
	SPFAligned  bool
	DKIMAligned bool
}

// Verdict reads the "Message from domain d, DMARC r (SPF aligned B, DKIM
// aligned B)" form and the "Verification passed|failed" forms.
func (d DMARCVerdict) Verdict() DMARCResult {
	switch d.Text {
	case "Verification passed":
		return DMARCResult{Result: "pass"}
	case "Verification failed":
		return DMARCResult{Result: "fail"}
	}
	rest, ok := strings.CutPrefix(d.Text, "Message from domain ")
	if !ok {
		return DMARCResult{}
	}
	domain, rest, ok := strings.Cut(rest, ", DMARC ")
	if !ok {
		return DMARCResult{}
	}
	r := DMARCResult{Domain: domain}
	r.Result, rest, _ = strings.Cut(rest, " ")
	r.SPFAligned = strings.Contains(rest, "SPF aligned True")
	r.DKIMAligned = strings.Contains(rest, "DKIM aligned True")
	return r
}

// The DMARC action line: what the listener's policy did with a message
// that failed DMARC, and the policy the domain published. The ESA's form
// is not known (ESA-PIPELINE.md 1.5 lists "DMARC: ... policy reject,
// action ..." as unconfirmed); mailgate's is that shape, after the DMARC
// line: "MID 7 DMARC: Message from domain example.org, policy quarantine,
// action quarantine", "..., policy reject, applied quarantine, action tag
// X-Mailgate-DMARC" (pct= left the domain's reject a quarantine).
const (
	// DMARCActionQuarantine: the message goes to a quarantine (its
	// "quarantined to" line follows, from the work queue).
	DMARCActionQuarantine = "quarantine"
	// DMARCActionTag: without a work queue, the message is accepted with
	// an X-Mailgate-DMARC: quarantine header field.
	DMARCActionTag = "tag X-Mailgate-DMARC"
)

// DMARCAction is what the action line says.
type DMARCAction struct {
	Domain  string // the RFC5322.From domain
	Policy  string // the domain's p= (sp= for a subdomain)
	Applied string // the policy after pct=; Policy when the line names none
	Action  string // DMARCActionQuarantine, DMARCActionTag
}

// DMARCActionVerdict is the action line of a message.
func DMARCActionVerdict(mid uint64, a DMARCAction) DMARCVerdict {
	t := "Message from domain " + a.Domain + ", policy " + a.Policy
	if a.Applied != "" && a.Applied != a.Policy {
		t += ", applied " + a.Applied
	}
	return DMARCVerdict{MID: mid, Text: t + ", action " + a.Action}
}

// Action reads an action line; ok is false for any other DMARC line.
func (d DMARCVerdict) Action() (a DMARCAction, ok bool) {
	rest, ok := strings.CutPrefix(d.Text, "Message from domain ")
	if !ok {
		return a, false
	}
	a.Domain, rest, ok = strings.Cut(rest, ", policy ")
	if !ok || strings.Contains(a.Domain, ", DMARC ") {
		return DMARCAction{}, false
	}
	var pol string
	pol, a.Action, ok = strings.Cut(rest, ", action ")
	if !ok || a.Action == "" {
		return DMARCAction{}, false
	}
	a.Policy, a.Applied, _ = strings.Cut(pol, ", applied ")
	if a.Applied == "" {
		a.Applied = a.Policy
	}
	return a, a.Policy != ""
}

// Signing: "MID 24611495 DKIM: cannot sign - no profile matches
// user2@hotmail.com", "MID 5 DomainKeys: cannot sign - already signed",
// "MID 33333333 DKIM: signing with abc_com - matches x@abc.com": what the
// gateway's own DKIM or DomainKeys signing did. Text follows "Method: ",
// verbatim.
type Signing struct {
	MID    uint64
	Method string // "DKIM" or "DomainKeys"
	Text   string
}

// Signed reports whether the message was signed.
func (s Signing) Signed() bool { return strings.HasPrefix(s.Text, "signing with ") }

// Attachment: "MID 24611417 attachment 'CFO_INV_1400691819.pdf'": the
// body scanner saw an attachment of that name.
type Attachment struct {
	MID  uint64
	Name string
}

// CustomLog: "MID 204841507 Custom Log Entry: Mail Not DKIM Signed", the
// text a message or content filter's log-entry action wrote.
type CustomLog struct {
	MID  uint64
	Text string
}

// AbortKind sorts the reasons of MessageAborted by what they mean for the
// message.
type AbortKind uint8

const (
	AbortOther     AbortKind = iota // a reason not known here
	AbortConn                       // "Receiving aborted": the connection was lost, or a timeout or limit ended it
	AbortSender                     // "Receiving aborted by sender": the client quit before the end of DATA
	AbortInjection                  // "Injection aborted": the appliance ended the injection (e.g. a message loop)
	AbortDropped                    // "Dropped by X": a filter or engine discarded it; nobody is told
	AbortBounced                    // "Bounced by X": a filter refused it after it was accepted; the sender gets a bounce
)

var abortKindNames = [...]string{AbortOther: "other", AbortConn: "receiving", AbortSender: "sender",
	AbortInjection: "injection", AbortDropped: "dropped", AbortBounced: "bounced"}

func (k AbortKind) String() string {
	if int(k) < len(abortKindNames) {
		return abortKindNames[k]
	}
	return "other"
}

// AbortCause is what a MessageAborted's reason says.
type AbortCause struct {
	Kind  AbortKind
	By    string // for Dropped and Bounced: "CASE", "amp", "antivirus", "filter 'FileType'", "content filter 'x'"
	Table string // "inbound" or "outbound" when the reason names a policy table
}

// Cause reads the reason: "Receiving aborted", "Receiving aborted by
// sender", "Injection aborted", "Dropped by CASE", "Dropped by content
// filter 'x' in the inbound table", "Bounced by content filter 'x' in the
// outbound table".
func (m MessageAborted) Cause() AbortCause {
	switch m.Reason {
	case AbortReceiving:
		return AbortCause{Kind: AbortConn}
	case AbortReceivingBySender:
		return AbortCause{Kind: AbortSender}
	case "Injection aborted":
		return AbortCause{Kind: AbortInjection}
	}
	var c AbortCause
	var by string
	var ok bool
	if by, ok = strings.CutPrefix(m.Reason, "Dropped by "); ok {
		c.Kind = AbortDropped
	} else if by, ok = strings.CutPrefix(m.Reason, "Bounced by "); ok {
		c.Kind = AbortBounced
	} else {
		return AbortCause{}
	}
	if rest, ok := strings.CutSuffix(by, " table"); ok {
		if i := strings.LastIndex(rest, " in the "); i > 0 {
			by, c.Table = rest[:i], rest[i+len(" in the "):]
		}
	}
	c.By = by
	return c
}

func (SpamQuarantineTag) isEvent()  {}
func (SpamQuarantined) isEvent()    {}
func (SpamReinjected) isEvent()     {}
func (Quarantined) isEvent()        {}
func (QuarantineReason) isEvent()   {}
func (QuarantineReleased) isEvent() {}
func (QuarantineDeleted) isEvent()  {}
func (Rewritten) isEvent()          {}
func (Split) isEvent()              {}
func (Generated) isEvent()          {}
func (PolicyDisposal) isEvent()     {}
func (EngineVerdict) isEvent()      {}
func (AVVerdict) isEvent()          {}
func (OutbreakVerdict) isEvent()    {}
func (AMPVerdict) isEvent()         {}
func (TooBig) isEvent()             {}
func (SPFVerdict) isEvent()         {}
func (DKIMVerdict) isEvent()        {}
func (DMARCVerdict) isEvent()       {}
func (Signing) isEvent()            {}
func (Attachment) isEvent()         {}
func (CustomLog) isEvent()          {}
