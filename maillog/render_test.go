package maillog

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// cst is the zone of the Cribl sample's appliance (UTC-6, no DST rules, so
// the test does not depend on the system's zone database).
var cst = time.FixedZone("CST", -6*3600)

var when = time.Date(2023, time.September, 6, 13, 13, 16, 0, cst)

// eventCases holds one or more realistic events of every type, in every
// form. Their rendering is in testdata/events.golden.
var eventCases = []struct {
	name string
	ev   event.Event
}{
	{"NewICID", event.NewICID{ICID: 10293, Interface: "Management", InterfaceIP: "192.168.0.199", RemoteIP: "192.168.0.200", ReverseHost: "ns.example.com", Verified: false}},
	{"NewICID/spaces-verified", event.NewICID{ICID: 60140292, Interface: "Data 1", InterfaceIP: "68.232.141.109", RemoteIP: "216.16.222.69", ReverseHost: "216.16.222.69.dyn-cm-pool50.pool.hargray.net", Verified: true}},
	{"NewICID/unknown-host", event.NewICID{ICID: 4, Interface: "Management", InterfaceIP: "172.19.0.81", RemoteIP: "10.1.1.140", ReverseHost: "unknown"}},
	{"NewICID/pre-3.8", event.NewICID{ICID: 10292815, Interface: "private", RemoteIP: "81.137.223.69"}},
	{"NewICID/ipv6", event.NewICID{ICID: 7, Interface: "InboundMail", InterfaceIP: "::1", RemoteIP: "2001:db8::25", ReverseHost: "mx.example.net", Verified: true}},
	{"HATMatch/relay", event.HATMatch{ICID: 10293, Action: event.ActionRelay, Group: "RELAY_SG", Rule: "192.168.0.200", SBRS: event.SBRSNotEnabled}},
	{"HATMatch/default-country", event.HATMatch{ICID: 3160, Action: event.ActionAccept, Group: "None", Rule: "ALL", SBRS: event.SBRSNotEnabled, Country: "not enabled"}},
	{"HATMatch/reject-sbrs", event.HATMatch{ICID: 60140291, Action: event.ActionReject, Group: "BLACKLIST", Rule: "sbrs[-10.0:-2.5]", SBRS: "-9.5"}},
	{"HATMatch/empty-rule", event.HATMatch{ICID: 3, Action: event.ActionAccept, Group: "None", SBRS: "rfc1918"}},
	{"HATMatch/etf", event.HATMatch{ICID: 8, Action: event.ActionReject, Group: "BLOCKED_LIST", Rule: "etf-source: hailataxii", SBRS: "unable to retrieve"}},
	{"HATMatch/3.7", event.HATMatch{ICID: 9461571, SBRS: "None"}},
	{"TLS/icid-success", event.TLS{Conn: event.ConnRef{Kind: event.InboundConn, ID: 60140302}, Success: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256"}},
	{"TLS/dcid-success", event.TLS{Conn: event.ConnRef{Kind: event.OutboundConn, ID: 30}, Success: true, Protocol: "TLSv1.2", Cipher: "ECDHE-RSA-AES256-SHA384"}},
	{"TLS/success-bare", event.TLS{Conn: event.ConnRef{Kind: event.InboundConn, ID: 10304570}, Success: true}},
	{"TLS/failed-reason", event.TLS{Conn: event.ConnRef{Kind: event.InboundConn, ID: 4}, Reason: "[Errno 54] Connection reset by peer"}},
	{"TLS/failed", event.TLS{Conn: event.ConnRef{Kind: event.OutboundConn, ID: 80167}}},
	{"StartMID", event.StartMID{MID: 6, ICID: 5}},
	{"MailFrom", event.MailFrom{MID: 6, ICID: 5, From: "sender@remotehost.com"}},
	{"MailFrom/null", event.MailFrom{MID: 15216898, ICID: 0, From: ""}},
	{"RcptTo", event.RcptTo{MID: 6, ICID: 5, RID: 0, To: "mary@yourdomain.com"}},
	{"RcptTo/quoted-local", event.RcptTo{MID: 11916996, ICID: 7416170, RID: 99, To: `"john doe"@example.com`}},
	{"RcptRejected", event.RcptRejected{MID: 1, ICID: 2, To: "postmaster@corestaff.com", By: "RAT"}},
	{"RcptRejected/injection", event.RcptRejected{MID: 2, ICID: 7, To: "ggarner@kentelec.com", By: "Injection Control"}},
	{"InvalidAddress/recipient", event.InvalidAddress{ICID: 3, MID: 1, Recipient: true, Detail: "Invalid character in address: '!'"}},
	{"InvalidAddress/sender", event.InvalidAddress{ICID: 493829828, Detail: "Unsupported domain literal: '[]'"}},
	{"ReceivingFailed", event.ReceivingFailed{ICID: 440090, Reason: event.FailedSizeLimit}},
	{"UnknownCommand", event.UnknownCommand{ICID: 5, Command: "XYZZY"}},
	{"MessageIDHeader", event.MessageIDHeader{MID: 64855, MessageID: "<op.zfdwolzf0ubsb2@mathew.cisco.com>"}},
	{"MessageIDHeader/apostrophe", event.MessageIDHeader{MID: 24611516, MessageID: "<Lands'End.6cl2sv--1f.tlmd@email.landsend.com>"}},
	{"Subject", event.Subject{MID: 64855, Subject: "sample", Quote: '\''}},
	{"Subject/apostrophe", event.Subject{MID: 8, Subject: "Don't forget the meeting", Quote: '"'}},
	{"Subject/double-quoted", event.Subject{MID: 14, Subject: "Testing", Quote: '"'}},
	{"Subject/unquoted", event.Subject{MID: 204841507, Subject: `Re: [example: #129226] FW: example\r\n (PTY) LTD`}},
	{"Subject/folded", event.Subject{MID: 24611537, Subject: `=?iso-8859-1?B?WmllIGdpbmRz?=\r\n\t=?iso-8859-1?B?ZXIgT3BsZWlkaW5nZW4=?=`, Quote: '\''}},
	{"Ready", event.Ready{MID: 6, Bytes: 100, From: "sender@remotehost.com"}},
	{"Ready/null", event.Ready{MID: 15216898, Bytes: 2069, From: ""}},
	{"PolicyMatch", event.PolicyMatch{MID: 64855, Policy: "mail_policy_one", Table: "inbound"}},
	{"Queued", event.Queued{MID: 6}},
	{"ICIDLost", event.ICIDLost{ICID: 10293}},
	{"MessageAborted", event.MessageAborted{MID: 1404, Reason: event.AbortReceiving}},
	{"MessageAborted/by-sender", event.MessageAborted{MID: 1405, Reason: event.AbortReceivingBySender}},
	{"MessageAborted/case", event.MessageAborted{MID: 24611411, Reason: "Dropped by CASE"}},
	{"MessageFinished/aborted", event.MessageFinished{MID: 1404, Status: event.FinishedAborted}},
	{"MessageFinished/done", event.MessageFinished{MID: 6, Status: event.FinishedDone}},
	{"ICIDClose", event.ICIDClose{ICID: 10293}},
	{"ICIDDisconnected/unsuccessful", event.ICIDDisconnected{ICID: 3, Address: "10.1.1.101", Reason: event.DisconnectNoMessages}},
	{"ICIDDisconnected/total", event.ICIDDisconnected{ICID: 9595873, Address: "203.0.113.9", Reason: event.DisconnectTotalTime}},
	{"SMTPAuth/succeeded", event.SMTPAuth{ICID: 30, Outcome: event.AuthSucceeded, User: "cisco", Mechanism: "LOGIN", Profile: "ldap_smpt"}},
	{"SMTPAuth/failed", event.SMTPAuth{ICID: 31, Outcome: event.AuthFailed, User: "a user: using AUTH mechanism: X", Mechanism: "PLAIN", Profile: "users"}},
	{"SMTPAuth/catalogue", event.SMTPAuth{ICID: 32, Outcome: event.AuthFailed, User: "bob@example.com", Mechanism: "SCRAM-SHA-256", Profile: "users", NoColon: true}},
	{"SMTPAuth/required", event.SMTPAuth{ICID: 33, Outcome: event.AuthRequired}},
	{"NewDCID", event.NewDCID{DCID: 7436, InterfaceIP: "10.10.1.12", RemoteIP: "10.10.1.25", Port: 25}},
	{"NewDCID/pre-4.6", event.NewDCID{DCID: 8, InterfaceIP: "192.168.42.42", RemoteIP: "10.5.3.25"}},
	{"DeliveryStart", event.DeliveryStart{DCID: 3, MID: 4, RIDs: []int{0, 1}}},
	{"DeliveryStart/bare", event.DeliveryStart{DCID: 4901127, MID: 10288263, RIDs: []int{0}, Form: DeliveryStartBare}},
	{"DeliveryStart/offbox", event.DeliveryStart{DCID: 6565554, MID: 24611251, RIDs: []int{0}, Form: DeliveryStartOffbox}},
	{"MessageDone", event.MessageDone{DCID: 30, MID: 14, RIDs: []int{0}}},
	{"MessageDone/headers", event.MessageDone{DCID: 2386069, MID: 200257070, RIDs: []int{0}, Extra: "[('X-SBRS', 'None')]"}},
	{"MessageDone/quarantine", event.MessageDone{DCID: 6565554, MID: 24611414, RIDs: []int{0, 2}, Extra: "(external quarantine)"}},
	{"Response", event.Response{MID: 24611465, RIDs: []int{0}, Text: "2.0.0 Ok: queued as 3jjSKc6HnKz4GTHJ", Quote: '\''}},
	{"Response/unquoted", event.Response{MID: 200257070, RIDs: []int{0}, Text: "2.6.0 <37gva9$5uvbhe@mail.example.com> Queued mail for delivery"}},
	{"Outcome/bounced", event.Outcome{Hard: true, DCID: 8413617, MID: 19338947, From: "MariaDubois@example.com", To: "zecora@buttercupgames.com", RID: 0, Status: "5.4.7", Reason: "Delivery expired (message too old)", Code: "000", Response: []string{"timeout"}}},
	{"Outcome/delayed", event.Outcome{DCID: 8414309, MID: 19410908, From: "WeiZhang@example.com", To: "mcintosh@buttercupgames.com", RID: 1, Status: "4.3.2", Reason: "Not accepting messages at this time", Code: "421", Response: []string{"4.3.2 try again later"}}},
	{"Outcome/multiline-reply", event.Outcome{Hard: true, DCID: 12, MID: 40, From: "", To: "nobody@example.org", RID: 2, Status: "5.1.1", Reason: "Bad destination email address", Code: "550", Response: []string{"5.1.1 <nobody@example.org>: Recipient address rejected:", "User unknown in virtual mailbox table", `it's "quoted" \ here`}}},
	{"Outcome/to-rid", event.Outcome{Hard: true, DCID: 0, MID: 8, RID: 0, Status: "5.1.2", Reason: "Bad destination host", Code: "000", Response: []string{"DNS Hard Error looking up BMQ-WIN.RUN (MX):  NXDomain"}, Form: OutcomeToRID}},
	{"Outcome/to-rid-headers", event.Outcome{Hard: true, DCID: 3, MID: 4, RID: 0, Status: "5.1.0", Reason: "Unknown address error", Code: "550", Response: []string{"<george@yourdomain.com>... Relaying denied"}, Form: OutcomeToRIDHeaders}},
	{"Outcome/message", event.Outcome{DCID: 4370, MID: 10800, RID: 0, Status: "4.4.0", Reason: "Other network problem", Code: "000", Response: []string{"[Errno 54] Connection reset by peer"}, Form: OutcomeMessage}},
	{"Outcome/message-headers", event.Outcome{Hard: true, DCID: 1911, MID: 3993, RID: 0, Status: "5.1.0", Reason: "Unknown address error", Code: "554", Response: []string{"Too long line."}, Form: OutcomeMessageHeaders}},
	{"ConnectionError", event.ConnectionError{DCID: 63, Domain: "domainsample2.com", IP: "10.13.101.31", Port: 25, Details: "[Errno 0] Error", InterfaceIP: "10.10.192.50", Reason: "network error"}},
	{"ConnectionError/smtp", event.ConnectionError{DCID: 299, Domain: "example.com", IP: "192.168.1.10", Port: 25, Details: `431-?example.com ESMTP\nMail system full'`, InterfaceIP: "192.168.1.10", Reason: "unexpected SMTP response"}},
	{"ConnectionError/dcid-colon", event.ConnectionError{DCID: 263, IP: "128.242.110.90", Details: "EOF", InterfaceIP: "128.197.12.246", Reason: "network error", Form: ConnErrorDCIDColon}},
	{"ConnectionError/leading-reason", event.ConnectionError{DCID: 2804, IP: "69.59.158.5", Details: "timeout", InterfaceIP: "10.20.1.49", Reason: "connection timed out", Form: ConnErrorLeadingReason}},
	{"DCIDClose", event.DCIDClose{DCID: 8}},
	{"BounceGenerated", event.BounceGenerated{MID: 15216898, OrigMID: 8785588}},
	{"DoubleBounce", event.DoubleBounce{MID: 8963393, RID: 0, Status: "5.1.1", Reason: "Bad destination email address"}},
	{"PossibleDelivery", event.PossibleDelivery{DCID: 4641294, MID: 8956463, RIDs: []int{0}}},
	{"PossibleDelivery/rids", event.PossibleDelivery{DCID: 52, MID: 311, RIDs: []int{0, 2}}},
	{"Deleted", event.Deleted{MID: 3, RIDs: []int{0}}},
	{"Pending", event.Pending{MID: 154, RIDs: []int{0}, Until: time.Date(2005, 7, 20, 10, 15, 41, 0, cst), Profile: "Default"}},
	{"Pending/mid-bare", event.Pending{MID: 4195162, RIDs: []int{0, 1}, Until: time.Date(2004, 4, 27, 13, 5, 17, 0, cst), Profile: "Default", Form: PendingMIDBare}},
	{"Pending/message-rid", event.Pending{MID: 1232089, RIDs: []int{0}, Until: time.Date(2004, 5, 26, 14, 58, 26, 0, cst), Form: PendingMessageRID}},
	{"Pending/message-bare", event.Pending{MID: 4195162, RIDs: []int{0}, Until: time.Date(2004, 4, 7, 3, 5, 7, 0, cst), Profile: "Default", Form: PendingMessageBare}},
	{"BeginLogfile", event.BeginLogfile{}},
	{"LogfileVersion", event.LogfileVersion{Version: "mailgate 0.1.0", Serial: "mail.example.com"}},
	{"TimeOffset", event.TimeOffset{Seconds: -21600}},
	{"InjectionDebug/rcvd", event.InjectionDebug{ICID: 102503993, Data: "MAIL FROM:<daily@example.net>"}},
	{"InjectionDebug/sent", event.InjectionDebug{ICID: 102503993, Sent: true, Data: `354 START MAIL INPUT, END WITH "." ON A LINE BY ITSELF`}},
	{"ConnectionEnd", event.ConnectionEnd{ICID: 10293, Cause: event.CausePeerReset, State: "rcpt", LastCommand: "RCPT", DataBytes: 0, Duration: 36012 * time.Millisecond,
		Commands: []event.CommandCount{{Verb: "ehlo", OK: 1, Total: 1}, {Verb: "mail", OK: 1, Total: 1}, {Verb: "rcpt", OK: 1, Total: 1}, {Verb: "data", OK: 0, Total: 1}}}},
	{"ConnectionEnd/detail", event.ConnectionEnd{ICID: 77, Cause: event.CauseTimeoutUnsuccessful, State: "data", LastCommand: "DATA", DataBytes: 48213, Duration: 5*time.Minute + 1500*time.Millisecond,
		Commands: []event.CommandCount{{Verb: "ehlo", OK: 1, Total: 1}, {Verb: "mail", OK: 1, Total: 1}, {Verb: "rcpt", OK: 2, Total: 3}, {Verb: "data", OK: 1, Total: 1}},
		Detail:   "read tcp 127.0.0.1:2525->127.0.0.1:53034: i/o timeout"}},
	{"Status", event.Status{Fields: []event.StatusField{{Name: "CPULd", Value: "0"}, {Name: "QKUsd", Value: "12"}, {Name: "QKFre", Value: "8388608"}, {Name: "CrtMID", Value: "7"}, {Name: "InjMsg", Value: "3"}, {Name: "LogAvail", Value: "148G"}}}},
	{"AlertSent", event.AlertSent{Class: "System", Severity: "Warning", To: "admin@example.com", Subject: `Warning-mx.example.com: (System) The destination "example.net" has been down for 31m`}},
	{"AlertSent/esa", event.AlertSent{Class: "Anti-Virus", Severity: "Critical", To: "ironportalerts@interpublic.com", Subject: "Critical <Anti-Virus> nycmgw01.interpublic.com: MID 198463616 antivirus timeout error"}},
	{"ResourceConservation/delay", event.ResourceConservation{Level: "delay", Cause: "messages", Messages: 20001, Bytes: 21004288, Memory: 73400320}},
	{"ResourceConservation/off", event.ResourceConservation{Level: "off", Cause: "-", Messages: 17999, Bytes: 18874368, Memory: 71303168}},
	{"ConnectionEnd/no-commands", event.ConnectionEnd{ICID: 9, Cause: event.CausePeerClosed, State: "connect", Duration: 2 * time.Millisecond}},
	{"Outcome/from-to-tight", event.Outcome{Hard: true, DCID: 2, MID: 15232, From: "a@example.com", To: "b@example.net", RID: 0, Status: "5.1.0", Reason: "Unknown address error", Code: "550", Response: []string{"5.1.1 user unknown"}, Form: OutcomeFromToTight}},
	{"Outcome/bounce-log", event.Outcome{Hard: true, MID: 45346670, From: "campaign1@yourdomain.com", To: "user2@sampledomain.com", RID: 0, Status: "5.1.0", Reason: "Unknown address error", Code: "550", Response: []string{"There is no such active account."}, Form: OutcomeBounceLog}},
	{"Outcome/bounce-log-delayed", event.Outcome{MID: 44451135, From: "campaign1@yourdomain.com", To: "user@sampledomain.com", RID: 3, Status: "4.1.0", Reason: "Unknown address error", Code: "451", Response: []string{"<user@sampledomain.com> Automated block"}, Form: OutcomeBounceLog}},
	{"SpamQuarantineTag", event.SpamQuarantineTag{MID: 24611424, Prefix: "ISQ"}},
	{"SpamQuarantineTag/euq", event.SpamQuarantineTag{MID: 4433, Prefix: "EUQ"}},
	{"SpamQuarantined", event.SpamQuarantined{MID: 4433}},
	{"SpamReinjected", event.SpamReinjected{MID: 4433, NewMID: 4449}},
	{"Quarantined", event.Quarantined{MID: 482, Quarantine: "Policy", Reason: "message filter:policy_violation"}},
	{"Quarantined/no-reason", event.Quarantined{MID: 43, Quarantine: "Policy"}},
	{"QuarantineReason", event.QuarantineReason{MID: 5, Quarantine: "Outbreak", Reason: "VOF rule:OUTBREAK_0000231"}},
	{"QuarantineReleased", event.QuarantineReleased{MID: 483, Quarantine: "Policy", Reason: "queue full"}},
	{"QuarantineReleased/all", event.QuarantineReleased{MID: 484}},
	{"QuarantineReleased/note-extra", event.QuarantineReleased{MID: 7, Quarantine: "Outbreak", Reason: "queue full", Note: "attachments stripped", Extra: "t=190"}},
	{"QuarantineDeleted", event.QuarantineDeleted{MID: 484, Quarantine: "Anti-Virus", Reason: "expired"}},
	{"QuarantineDeleted/all", event.QuarantineDeleted{MID: 9}},
	{"Rewritten", event.Rewritten{MID: 1, NewMID: 2, By: "antispam (alt-rcpt-to) filter 'unknown'"}},
	{"Rewritten/bare", event.Rewritten{MID: 483, NewMID: 513, By: "Policy Quarantine", Form: RewrittenBare}},
	{"Split", event.Split{MID: 58, NewMID: 60, Reason: "a per-recipient policy tcamp"}},
	{"Generated", event.Generated{MID: 24611495, OrigMID: 24611421, By: "bcc filter 'FireEye_BCC'"}},
	{"Generated/bare", event.Generated{MID: 14, OrigMID: 13, By: "bcc filter 'nonetest'", Form: GeneratedBare}},
	{"PolicyDisposal/dropped", event.PolicyDisposal{MID: 1960958, By: "content filter 'dontsend'", Table: "inbound"}},
	{"PolicyDisposal/bounced", event.PolicyDisposal{MID: 1960959, Bounced: true, By: "content filter 'bounceme'", Table: "outbound"}},
	{"EngineVerdict", event.EngineVerdict{MID: 201434, Engine: "CASE", Verdict: "spam negative"}},
	{"EngineVerdict/interim", event.EngineVerdict{MID: 68119155, Interim: true, Engine: "CASE", Verdict: "bulk"}},
	{"EngineVerdict/graymail", event.EngineVerdict{MID: 64855, Engine: "GRAYMAIL", Verdict: "negative"}},
	{"AVVerdict/interim", event.AVVerdict{MID: 408721, Interim: true, Engine: "Sophos", Verdict: "CLEAN"}},
	{"AVVerdict", event.AVVerdict{MID: 201434, Verdict: "negative"}},
	{"AVVerdict/detail", event.AVVerdict{MID: 18313686, Verdict: "positive", Detail: "'W32/Sober-P' (released from Outbreak)"}},
	{"OutbreakVerdict", event.OutbreakVerdict{MID: 68119155, Verdict: "negative"}},
	{"AMPVerdict", event.AMPVerdict{MID: 68119155, Verdict: "SKIPPED (no attachment in message)"}},
	{"TooBig", event.TooBig{MID: 821, Size: 455520, Limit: 262144, Engine: "Outbreak Filters"}},
	{"SPFVerdict", event.SPFVerdict{MID: 6153849, Identity: "mailfrom", Address: "user@example.com", Result: "Fail", Detail: "(v=spf1)"}},
	{"SPFVerdict/helo", event.SPFVerdict{MID: 6153849, Identity: "helo", Address: "postmaster@example", Result: "None"}},
	{"DKIMVerdict", event.DKIMVerdict{MID: 204841507, Result: "permfail", Detail: "body hash did not verify [final] (d=example.com s=example2 i=@example.com)"}},
	{"DKIMVerdict/malformed", event.DKIMVerdict{MID: 204841507, Result: "malformed", Detail: "signature - signature missing required tag"}},
	{"DMARCVerdict", event.DMARCVerdict{MID: 68119155, Text: "Message from domain example.com, DMARC pass (SPF aligned True, DKIM aligned True)"}},
	{"DMARCVerdict/short", event.DMARCVerdict{MID: 68119155, Text: "Verification passed"}},
	{"DMARCVerdict/action", event.DMARCActionVerdict(7, event.DMARCAction{Domain: "example.org", Policy: "reject", Applied: "quarantine", Action: event.DMARCActionQuarantine})},
	{"Signing", event.Signing{MID: 24611495, Method: "DKIM", Text: "cannot sign - no profile matches user2@hotmail.com"}},
	{"Signing/domainkeys", event.Signing{MID: 5, Method: "DomainKeys", Text: "cannot sign - already signed"}},
	{"Attachment", event.Attachment{MID: 24611417, Name: "CFO_INV_1400691819.pdf"}},
	{"CustomLog", event.CustomLog{MID: 204841507, Text: "Mail Not DKIM Signed"}},
	{"ScanSummary", event.ScanSummary{MID: 5, Policy: "DEFAULT", Table: "inbound", Verdicts: []event.ScanResult{
		{Kind: "antispam", Engine: "RSPAMD", Verdict: "positive"},
		{Kind: "antivirus", Engine: "ClamAV", Verdict: "positive", Detail: "Eicar-Test-Signature.UNOFFICIAL"}}, Action: "drop"}},
	{"ScanSummary/reject", event.ScanSummary{MID: 6, Policy: "strict", Table: "inbound", Verdicts: []event.ScanResult{
		{Kind: "antispam", Engine: "SPAMASSASSIN", Verdict: "positive"}}, Action: "reject"}},
	{"Unknown", event.Unknown{Text: "MID 14 SDR: Message was not scanned for Sender Domain Reputation. Reason: Unknown error."}},
}

// TestEventRoundTrip renders every case as a line (golden), parses the line
// back and expects the same entry.
func TestEventRoundTrip(t *testing.T) {
	var golden bytes.Buffer
	for _, c := range eventCases {
		e := event.Entry{Time: when, Level: event.Info, Event: c.ev}
		line := AppendLine(nil, e, cst)
		golden.WriteString(c.name + "\n\t" + string(line) + "\n")
		got, err := ParseLine(string(line), cst)
		if err != nil {
			t.Errorf("%s: ParseLine(%q): %v", c.name, line, err)
			continue
		}
		if !got.Time.Equal(e.Time) || got.Level != e.Level || !reflect.DeepEqual(got.Event, e.Event) {
			t.Errorf("%s: %q\nparsed %#v\nwant   %#v", c.name, line, got, e)
		}
	}
	compareGolden(t, "testdata/events.golden", golden.Bytes())
}

// TestEveryTypeHasACase keeps eventCases complete as event/ grows.
func TestEveryTypeHasACase(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range eventCases {
		seen[reflect.TypeOf(c.ev).Name()] = true
	}
	// The set of event types, from the isEvent methods in event/kinds.go.
	src, err := os.ReadFile("../event/kinds.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(src), "\n") {
		name, ok := strings.CutPrefix(l, "func (")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, ")")
		if !seen[name] {
			t.Errorf("no test case renders event.%s", name)
		}
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\ngot  %q\nwant %q", path, i+1, g, w)
			}
		}
	}
}

func TestPendingUntilLocation(t *testing.T) {
	// AppendMessage writes times in their own location; AppendLine in loc.
	p := event.Pending{MID: 1, RIDs: []int{0}, Until: time.Date(2005, 7, 20, 16, 15, 41, 0, time.UTC)}
	if got, want := string(AppendMessage(nil, p)), "MID 1 to RID [0] pending till Wed Jul 20 16:15:41 2005"; got != want {
		t.Errorf("AppendMessage = %q, want %q", got, want)
	}
	line := AppendLine(nil, event.Entry{Time: p.Until, Level: event.Info, Event: p}, cst)
	if got, want := string(line), "Wed Jul 20 10:15:41 2005 Info: MID 1 to RID [0] pending till Wed Jul 20 10:15:41 2005"; got != want {
		t.Errorf("AppendLine = %q, want %q", got, want)
	}
}

func TestAppendLineTimestamp(t *testing.T) {
	tests := []struct {
		t     time.Time
		level event.Level
		want  string
	}{
		{time.Date(2023, 9, 6, 13, 13, 16, 0, cst), event.Info, "Wed Sep  6 13:13:16 2023 Info: MID 1 queued for delivery"},
		{time.Date(2014, 11, 19, 9, 16, 38, 999999999, cst), event.Warning, "Wed Nov 19 09:16:38 2014 Warning: MID 1 queued for delivery"},
		{time.Date(2014, 11, 19, 15, 16, 38, 0, time.UTC), event.Critical, "Wed Nov 19 09:16:38 2014 Critical: MID 1 queued for delivery"},
		{time.Date(2005, 5, 4, 0, 24, 31, 0, cst), event.Debug, "Wed May  4 00:24:31 2005 Debug: MID 1 queued for delivery"},
		{time.Date(2005, 5, 4, 0, 24, 31, 0, cst), event.Trace, "Wed May  4 00:24:31 2005 Trace: MID 1 queued for delivery"},
		{time.Time{}, event.Info, "Info: MID 1 queued for delivery"},
		{time.Time{}, 0, "MID 1 queued for delivery"},
		{time.Date(2005, 5, 4, 0, 24, 31, 0, cst), 0, "Wed May  4 00:24:31 2005 MID 1 queued for delivery"},
	}
	for _, tt := range tests {
		got := string(AppendLine(nil, event.Entry{Time: tt.t, Level: tt.level, Event: event.Queued{MID: 1}}, cst))
		if got != tt.want {
			t.Errorf("AppendLine(%v, %v) = %q, want %q", tt.t, tt.level, got, tt.want)
		}
	}
}

func TestQuoteFor(t *testing.T) {
	for s, want := range map[string]byte{"sample": '\'', "Don't": '"', `say "hi"`: '\'', "": '\''} {
		if got := QuoteFor(s); got != want {
			t.Errorf("QuoteFor(%q) = %q, want %q", s, got, want)
		}
	}
}
