// Package explain presents tracking records to people: the plain-words
// explanation of a message, the report of aborts, and the merged timeline
// of a message and its connections, which the CLI, the API and the web
// page all take from here.
package explain

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
)

// Explanation says in plain words what happened to a message and why.
type Explanation struct {
	Summary string   `json:"summary"` // one sentence: what happened
	Why     []string `json:"why"`     // what the log shows, and what it means
	Next    []string `json:"next"`    // what to do about it
}

// Gateway is what explain knows of the gateway it runs on, to name the
// real port of a listener in the commands it suggests. The zero Gateway
// knows nothing: the suggestion then names the listener instead.
type Gateway struct {
	Host      string // the gateway's hostname: the records it logged
	Listeners []Listener
}

// Listener is one listener of the gateway.
type Listener struct {
	Interface string         // the interface name of its "New SMTP ICID" lines
	Addr      netip.AddrPort // where it listens
}

// Message explains a message from its record and its connections. The
// words follow Cisco's own guidance (TechNote 118295: "Receiving aborted"
// against "Receiving aborted by sender"; 117801 on SMTP inspection).
//
// An explanation quotes (in double quotes) only lines of the message's
// timeline, each from the record itself: what it does not hold is said in
// words, never as a line.
func Message(m *tracking.Message, conns []*tracking.Conn, gw Gateway) Explanation {
	var in *tracking.Conn
	for _, c := range conns {
		if c.Kind == event.InboundConn && c.ID == m.ICID {
			in = c
		}
	}
	e := &ex{m: m, in: in, gw: gw, tl: Timeline(m, conns)}
	from := remote(m, in)
	var x Explanation
	switch m.Status {
	case tracking.Aborted:
		x = e.abort()
	case tracking.Rejected:
		x = e.rejected()
	case tracking.Dropped:
		x = e.dropped()
	case tracking.Delivered:
		x.Summary = fmt.Sprintf("Delivered: the next hop accepted %s.", plural(len(settled(m, tracking.Delivered)), "recipient"))
		for _, r := range settled(m, tracking.Delivered) {
			x.Why = append(x.Why, fmt.Sprintf("<%s>: accepted on DCID %d at %s%s.", r.Address, r.DCID, stamp(r.Time), reply(r.Response)))
		}
		x.Next = append(x.Next, "Nothing to do here. If the recipient says it never arrived, ask the next hop's administrator about the reply above (its queue ID is usually in it).")
	case tracking.Bounced:
		x = explainBounce(m)
	case tracking.Delayed:
		x.Summary = "Delayed: delivery failed for now and will be retried."
		for _, r := range m.Recipients {
			if r.Status != tracking.Delayed {
				continue
			}
			s := fmt.Sprintf("<%s>: %s", r.Address, failure(r))
			if !r.NextRetry.IsZero() {
				s += fmt.Sprintf("; next attempt at %s", stamp(r.NextRetry))
			}
			x.Why = append(x.Why, s+".")
		}
		x.Next = append(x.Next,
			"See the destination's state with 'mailgate workqueue' and retry at once with 'mailgate queue deliver-now DOMAIN' once the cause is fixed.",
			"A 4xx reply is the next hop asking us to come back later (greylisting, rate limits, a full disk); Connection Error lines mean it could not be reached at all: check DNS, routing and its firewall.")
	case tracking.Quarantined:
		x = e.quarantined()
	case tracking.Split:
		x = e.split()
	case tracking.Queued:
		x.Summary = "Queued for delivery: accepted, and no delivery attempt has finished yet."
		if l := e.line("MID " + itoa(m.MID) + " ready "); l != "" {
			x.Why = append(x.Why, "The gateway took the message in: "+l+".")
		}
		if on := wentOn(m); on.MID != 0 {
			// Its recipients went on in another message, which holds
			// their ends.
			x.Summary = fmt.Sprintf("Accepted, and it went on as MID %d (%s): follow that message.", on.MID, on.Relation)
			if s := wentOnText[on.Relation]; s != "" {
				x.Summary = fmt.Sprintf("Accepted, and "+s+": follow that message.", on.MID, byWhom(on.Line))
			}
			if on.Line != "" {
				x.Why = append(x.Why, "The log says "+q(on.Line)+".")
			}
			break
		}
		if done := e.line("Message finished MID " + itoa(m.MID) + " done"); done != "" {
			// The gateway is done with it, but the log does not say how
			// each recipient ended.
			x.Summary = "Accepted, and the gateway finished with it; this log does not show how each recipient ended."
			x.Why = append(x.Why, "The log says "+done+", with no delivery, bounce or drop line for "+plural(len(settled(m, tracking.Queued)), "recipient")+".")
			x.Next = append(x.Next, "If the message went on as another MID (see the related messages), follow that one; otherwise the delivery lines are in another log file of the gateway: import it too.")
			break
		}
		x.Next = append(x.Next, "If it stays queued, look at 'mailgate workqueue': the destination may be down or delivery suspended.")
	case tracking.Receiving:
		x.Summary = "The message is being received, or the log ends before its injection ended."
	}
	switch m.Status {
	case tracking.Rejected, tracking.Aborted, tracking.Receiving:
	default:
		// Accepted: what its authentication showed, that the gateway let
		// through.
		why, next := e.authNotes()
		x.Why, x.Next = append(x.Why, why...), append(x.Next, next...)
	}
	if len(from) > 0 {
		x.Why = append([]string{"It came from " + from + "."}, x.Why...)
	}
	x.Why = append(x.Why, e.splitWhy()...)
	if s := verdictsText(m); s != "" {
		x.Why = append(x.Why, s)
	}
	if m.BounceOf != 0 {
		x.Why = append(x.Why, fmt.Sprintf("This message is the delivery status notification (bounce) the gateway generated for MID %d.", m.BounceOf))
	}
	if s := linksText(Links(m)); s != "" {
		x.Why = append(x.Why, s)
	}
	return x
}

// ex is one explanation being made.
type ex struct {
	m  *tracking.Message
	in *tracking.Conn
	gw Gateway
	tl []Entry
}

// line returns the first line of the timeline that begins with prefix,
// quoted, or "" when there is none.
func (e *ex) line(prefix string) string {
	for _, l := range e.tl {
		if strings.HasPrefix(l.Text, prefix) {
			return q(l.Text)
		}
	}
	return ""
}

// lineWith returns the first line that holds every one of parts, quoted.
func (e *ex) lineWith(parts ...string) string {
	for _, l := range e.tl {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l.Text, p)
		}
		if ok {
			return q(l.Text)
		}
	}
	return ""
}

func q(s string) string { return "\"" + s + "\"" }

// abortText is what each kind of abort means and what to do: the summary
// (to which the SMTP state is added), what the evidence shows, and the
// next steps. Where lines are quoted, abort() finds them in the record.
var abortText = map[tracking.Abort]struct{ summary, why, next string }{
	tracking.AbortSenderQuit: {"Aborted by the sender: the client sent QUIT before the message was complete",
		"The sending client gave up at the SMTP level with the message open; nothing broke below it.",
		"Ask the sender's administrator to check the client's log for this time: it says why it stopped (a timeout on its side, a crash, a user cancelling, a message it decided not to send)."},
	tracking.AbortSenderReset: {"Aborted by the sender: the client threw the open message away with RSET or a new HELO/EHLO, and the session went on",
		"The client gave up this transaction but not the connection. Clients that check an address and then reset (sender verification callouts, address probes) look exactly like this.",
		"If the client should have sent the message, its own log says why it reset; an injection debug log shows the commands."},
	tracking.AbortSender: {"Aborted by the sender: the client sent QUIT, RSET or a new HELO/EHLO before the message was complete; the ESA's log does not say which",
		"The ESA writes \"Receiving aborted by sender\" for all three; the gateway did not end the transaction.",
		"The client's own log, or an injection debug log, shows which command it sent."},
	tracking.AbortPeerClosed: {"Aborted: the client closed the connection (TCP FIN) without QUIT",
		"The connection was closed under the SMTP session by the client's side: a client that gave up, or a device between that closes it.",
		""},
	tracking.AbortPeerReset: {"Aborted: the connection was reset (TCP RST)",
		"A reset comes from the client's host or from a device between (a firewall, an SMTP-inspecting device, a NAT that forgot the connection).",
		""},
	tracking.AbortIOError: {"Aborted: a read or write on the connection failed",
		"The socket failed under the SMTP session (a write that timed out, an unreachable network).",
		""},
	tracking.AbortTLSFailed: {"Aborted: the STARTTLS handshake failed",
		"After STARTTLS the client and the gateway could not agree on TLS (versions, ciphers, a certificate the client refused), or the client sent plaintext into the handshake.",
		"Check the TLS versions and ciphers the client offers against the listener's certificate and settings; the client's log names the error on its side."},
	tracking.AbortLost: {"Aborted: the connection was lost (a close, a reset or an I/O error below SMTP); the ESA's log does not say which",
		"The connection ended under the SMTP session. This is a network fault, or a firewall or SMTP-inspecting device between the sender and us cutting the traffic (a Cisco ASA's ESMTP inspection drops connections with more than 100 recipients or long lines, and hides STARTTLS).",
		""},
	tracking.AbortTimeout: {"Aborted: the client injected no message within the listener's unsuccessful-connection timeout, so the gateway disconnected it",
		"The connection was still up, but no message was completed in time (timeouts.unsuccessful of the listener, 5 minutes by default): a stuck client, a very slow link, or a device holding the connection open.",
		"Look at the client and the path: its own log, the link's speed, anything between that holds connections."},
	tracking.AbortTimeLimit: {"Aborted: the connection reached the listener's total connection time limit, so the gateway disconnected it",
		"The session lasted longer than timeouts.total of the listener (15 minutes by default): a very slow link for the message's size, or a client that keeps one session open too long.",
		"If the mail is wanted, raise timeouts.total for the listener, or ask the sender to send smaller messages or fewer in one session."},
	tracking.AbortIdle: {"Aborted: the client sent no command within the listener's idle timeout, so the gateway disconnected it",
		"The connection was up, but the client stopped talking in the middle of the session (timeouts.idle of the listener, 5 minutes by default): a stuck client, a slow link, or a device holding the connection open.",
		"Look at the client and the path: its own log, anything between that holds connections."},
	tracking.AbortJunk: {"Aborted: the client sent more junk commands than the listener allows (NOOP, RSET, VRFY, HELP, transactions without a recipient), so the gateway disconnected it",
		"Past junk_command_limit the gateway replied 421 and closed the session: address harvesting and probing look like this; an accepted message resets the count.",
		"If it is a real mail client, see what it sends (an injection debug log) or raise the listener's junk_command_limit."},
	tracking.AbortErrors: {"Aborted: the client had more commands refused than the listener allows, so the gateway disconnected it",
		"Past hard_error_limit refused commands (refused recipients count) the gateway replied 421 and closed the session: dictionary attacks and clients with bad address lists look like this.",
		"The refusals in the timeline show what was refused; if the client is wanted, fix its addresses or raise the listener's hard_error_limit."},
	tracking.AbortPipelining: {"Aborted: the client sent commands or the message before the reply it had to wait for, so the gateway ended the session",
		"The gateway refused the unsynchronised talk (554 SMTP synchronization error): spam software that does not wait for replies does this; a real client pipelining only where PIPELINING allows does not.",
		"The injection debug log shows what came too early; a real mail client that does this needs fixing."},
	tracking.AbortBadCommands: {"Aborted: the client sent more bad commands than the listener allows, so the gateway disconnected it",
		"Each bad command got a 500 reply; past bad_command_limit the gateway replied 421 and closed the session. Clients that speak another protocol, scanners, and broken scripts do this.",
		"The Unknown command lines show what it sent; if it is a real mail client, fix its commands or raise the listener's bad_command_limit."},
	tracking.AbortPolicy: {"Aborted: a mail flow policy ended the session",
		"The sender group's policy refused to go on (a reject banner, a connection limit, or the limit of messages per connection) and the gateway closed the session.",
		"Check the HAT's sender group for this client and its policy's limits (max_messages_per_connection, the connection limits)."},
	tracking.AbortProtocol: {"Aborted: the client broke the SMTP protocol, so the gateway ended the session",
		"The client sent data it had no right to send (before the greeting): spam software that does not wait, or a client that pipelines without PIPELINING.",
		"A real mail client that does this needs fixing; the injection debug log shows what it sent."},
	tracking.AbortShutdown: {"Aborted: the gateway was stopping, so it ended the session with a 421",
		"The gateway was shut down or restarted with this message open; the client was told 421 (service not available) and will try again.",
		"Nothing to do: a sending server retries on 421. Look for the same message again from the same sender after the restart."},
	tracking.AbortInjection: {"Aborted by the ESA: it ended the injection itself (\"Injection aborted\")",
		"The appliance stopped receiving the message on its own (a message loop, a resource limit); the mail log does not say which.",
		"The appliance's system log around this time says why."},
	tracking.AbortUnknown: {"Receiving aborted: the connection was lost or a timeout or limit ended it; the ESA's log does not say which",
		"There is no lost line before it and no timeout's disconnected line after it, which would tell them apart: a lost connection, the listener's timeouts and its limits all end in this line alone.",
		""},
}

func (e *ex) abort() Explanation {
	m, in := e.m, e.in
	var x Explanation
	where := ""
	if state := m.AbortState; state != "" {
		where = " during the " + strings.ToUpper(state) + " stage"
	}
	if m.AbortBytes > 0 {
		where += fmt.Sprintf(", after %d bytes of DATA", m.AbortBytes)
	}
	t, ok := abortText[m.Abort]
	if !ok {
		t = abortText[tracking.AbortUnknown]
	}
	head, rest, _ := strings.Cut(t.summary, ":")
	x.Summary = head + where + ":" + rest + "."
	if l := e.line("Message aborted MID " + itoa(m.MID) + " "); l != "" {
		x.Why = append(x.Why, "The log says "+l+".")
	}
	x.Why = append(x.Why, t.why)
	icid := itoa(m.ICID)
	switch m.Abort {
	case tracking.AbortLost, tracking.AbortPeerClosed, tracking.AbortPeerReset, tracking.AbortIOError, tracking.AbortTLSFailed:
		if l := e.line("ICID " + icid + " lost"); l != "" {
			x.Why = append(x.Why, l+" precedes it: the TCP connection ended under the SMTP session.")
		}
		if l := e.line("ICID " + icid + " TLS failed"); l != "" {
			x.Why = append(x.Why, "The handshake's error: "+l+".")
		}
	case tracking.AbortTimeout, tracking.AbortTimeLimit:
		if l := e.line("ICID " + icid + " disconnected address "); l != "" {
			x.Why = append(x.Why, "The listener's timeout ended it: "+l+".")
		}
	case tracking.AbortBadCommands:
		// No count: the record keeps one of the same line in the same
		// second (that is what makes an import idempotent).
		if l := e.line("ICID " + icid + " Unknown command: "); l != "" {
			x.Why = append(x.Why, "The bad commands logged begin with "+l+".")
		}
	case tracking.AbortSenderReset:
		if next := e.nextMID(); next != 0 {
			x.Why = append(x.Why, fmt.Sprintf("A later message on the same connection (MID %d) shows that the session went on.", next))
		}
	}
	if gap := e.silence(); gap != "" {
		x.Why = append(x.Why, gap)
	}
	if l := e.line("mailgate: ICID " + icid + " ended "); l != "" {
		x.Why = append(x.Why, "mailgate's own line says how the connection ended: "+l+".")
	}
	if m.Abort == tracking.AbortSenderQuit && !hasRejected(m) {
		x.Why = append(x.Why, "The gateway did not refuse anything.")
	}
	if t.next != "" {
		x.Next = append(x.Next, t.next)
	}
	switch m.Abort {
	case tracking.AbortLost, tracking.AbortPeerClosed, tracking.AbortPeerReset, tracking.AbortIOError, tracking.AbortUnknown:
		x.Next = append(x.Next,
			"Run an injection debug log for "+hostRule(m, in)+" (logs.injection_debug) to see what the client sends next time.",
			"Capture packets on the gateway during the next attempt ("+e.capture()+") to see who ends the connection and when.")
		if m.Abort != tracking.AbortUnknown {
			x.Next = append(x.Next, "If a firewall inspects SMTP (ASA 'inspect esmtp'), disable ESMTP inspection for the gateway's address.")
		}
	case tracking.AbortSender, tracking.AbortSenderQuit, tracking.AbortTimeout, tracking.AbortIdle, tracking.AbortBadCommands,
		tracking.AbortJunk, tracking.AbortErrors, tracking.AbortPipelining, tracking.AbortProtocol, tracking.AbortSenderReset:
		x.Next = append(x.Next, "Record the conversation with an injection debug log for "+hostRule(m, in)+" (logs.injection_debug).")
	}
	return x
}

// quarantined explains a message held in a quarantine of the gateway.
func (e *ex) quarantined() Explanation {
	m := e.m
	var x Explanation
	where := "a quarantine"
	for _, l := range m.Lines { // the last quarantine the lines name
		switch ev := maillog.ParseMessage(l.Text).(type) {
		case event.Quarantined:
			where = fmt.Sprintf("the %q quarantine", ev.Quarantine)
		case event.SpamQuarantineTag, event.SpamQuarantined:
			where = "the spam quarantine"
		case event.MessageDone:
			if ev.ExternalQuarantine() {
				where = "the spam quarantine"
			}
		}
	}
	// The recipients' reply names every quarantine still holding them
	// (tracking's fold), which the last line alone does not when the
	// message was in several and left some.
	for _, r := range m.Recipients {
		if held, ok := strings.CutPrefix(r.Response, "held in "); ok && r.Status == tracking.Quarantined && r.DCID == 0 {
			where, _, _ = strings.Cut(held, "; ")
			break
		}
	}
	x.Summary = "Quarantined: the gateway accepted the message and holds it in " + where + "; it was not delivered."
	mid := itoa(m.MID)
	if s, why, ok := e.dmarcQuarantined(); ok { // dmarcq.go
		x.Summary += " " + s
		x.Why = append(x.Why, why...)
	}
	for _, prefix := range []string{"MID " + mid + " quarantined to ", "ISQ: Tagging MID " + mid + " ", "EUQ: Tagging MID " + mid + " ", "EUQ: Quarantined MID " + mid} {
		if l := e.line(prefix); l != "" {
			x.Why = append(x.Why, "The log says "+l+".")
		}
	}
	if l := e.lineWith("MID "+mid+" ", "(external quarantine)"); l != "" {
		x.Why = append(x.Why, "It was handed to the off-box spam quarantine, not to the recipient: "+l+".")
	}
	for _, r := range m.Recipients {
		if r.Status == tracking.Quarantined {
			s := fmt.Sprintf("<%s> is held there", r.Address)
			if r.DCID != 0 && r.Response != "" && !strings.HasPrefix(r.Response, "held in ") {
				s += ", the quarantine's reply " + q(r.Response)
			}
			x.Why = append(x.Why, s+".")
		}
	}
	if where == "the spam quarantine" {
		x.Next = append(x.Next, "The spam quarantine (on the appliance or the SMA) holds it: the recipient or an administrator can release it there; it then goes on as a new MID.")
	} else {
		x.Next = append(x.Next, "An administrator can release it from "+where+" (it then goes on to delivery) or delete it; the quarantine's own settings say when it expires.")
	}
	return x
}

// nextMID is the message begun on the same connection after this one.
func (e *ex) nextMID() uint64 {
	if e.in == nil {
		return 0
	}
	for i, mid := range e.in.MIDs {
		if mid == e.m.MID && i+1 < len(e.in.MIDs) {
			return e.in.MIDs[i+1]
		}
	}
	return 0
}

// silence says how long the client was silent before an abort the log
// does not explain, when that is long enough to point at a timeout.
func (e *ex) silence() string {
	if e.m.Abort != tracking.AbortUnknown && e.m.Abort != tracking.AbortTimeout && e.m.Abort != tracking.AbortIdle {
		return ""
	}
	prefix := "Message aborted MID " + itoa(e.m.MID) + " "
	for i, l := range e.tl {
		if !strings.HasPrefix(l.Text, prefix) || i == 0 {
			continue
		}
		gap := l.Time.Sub(e.tl[i-1].Time).Round(time.Second)
		if gap < 30*time.Second {
			return ""
		}
		return fmt.Sprintf("The line before the abort, %s, was logged %s earlier: a silence that long fits a timeout.", q(e.tl[i-1].Text), gap)
	}
	return ""
}

// capture is the tcpdump command for the client and the listener the
// connection came in on, with the listener's real port when the gateway
// knows it.
func (e *ex) capture() string {
	ip := ipOr(e.m, "THE-CLIENT")
	if port := e.port(); port != 0 {
		return fmt.Sprintf("tcpdump -i any -w smtp.pcap host %s and port %d", ip, port)
	}
	iface := "the listener"
	if name, addr := e.iface(); name != "" {
		iface = fmt.Sprintf("the listener on interface %s (%s)", name, addr)
	}
	return fmt.Sprintf("tcpdump -i any -w smtp.pcap host %s and port PORT, PORT being the port of %s", ip, iface)
}

// iface is the interface name and address of the connection's "New SMTP
// ICID" line.
func (e *ex) iface() (string, string) {
	if e.in == nil {
		return "", ""
	}
	for _, l := range e.in.Lines {
		if n, ok := maillog.ParseMessage(l.Text).(event.NewICID); ok {
			return n.Interface, n.InterfaceIP
		}
	}
	return "", ""
}

// port is the port of the listener the connection came in on, when the
// record is this gateway's and one listener has its interface.
func (e *ex) port() uint16 {
	if e.gw.Host == "" || e.m.Host != e.gw.Host {
		return 0
	}
	name, addr := e.iface()
	var port uint16
	for _, l := range e.gw.Listeners {
		if l.Interface != name && name != "" {
			continue
		}
		if ip, err := netip.ParseAddr(addr); err == nil && !l.Addr.Addr().IsUnspecified() && l.Addr.Addr().Unmap() != ip.Unmap() {
			continue
		}
		if port != 0 && port != l.Addr.Port() {
			return 0 // two listeners fit: do not guess
		}
		port = l.Addr.Port()
	}
	return port
}

func hasRejected(m *tracking.Message) bool {
	for _, r := range m.Recipients {
		if r.Status == tracking.Rejected {
			return true
		}
	}
	return false
}

// rejected explains a message the gateway refused while receiving it.
func (e *ex) rejected() Explanation {
	m := e.m
	if x, ok := e.authRefused(); ok {
		return x
	}
	var x Explanation
	x.Summary = "Rejected: the gateway refused the message while receiving it, so it never entered the queue."
	if m.Accepted() == 0 && hasRejected(m) {
		x.Summary = "Rejected: the gateway refused every recipient, so the message never entered the queue."
	}
	if l := e.lineWith("ICID " + itoa(m.ICID) + " Receiving Failed: "); l != "" {
		x.Why = append(x.Why, "The gateway refused it at the end of DATA: "+l+".")
		if m.AbortReason == event.FailedSizeLimit {
			x.Next = append(x.Next, "The message was larger than the mail flow policy's max_message_size; raise it for this sender group if the mail is wanted.")
		}
	}
	rat, syntax := false, false
	for _, r := range m.Recipients {
		if r.Status != tracking.Rejected {
			continue
		}
		var l string
		switch {
		case strings.HasPrefix(r.Response, "Invalid recipient address"):
			syntax = true
			l = e.lineWith("Invalid recipient address: ", r.Address)
		default:
			rat = rat || strings.Contains(r.Response, "RAT")
			l = e.lineWith("To: <" + r.Address + "> Rejected by ")
		}
		if l != "" {
			x.Why = append(x.Why, fmt.Sprintf("Recipient <%s> was refused: %s.", r.Address, l))
		} else {
			x.Why = append(x.Why, fmt.Sprintf("Recipient <%s> was refused (%s).", r.Address, r.Response))
		}
	}
	if rat {
		x.Next = append(x.Next, "The Recipient Access Table (RAT) of the listener refused these domains: add them to the RAT if the gateway should take mail for them.")
	}
	if syntax {
		x.Next = append(x.Next, "The client sent an address the gateway cannot read (a local part without a domain, such as <bob>, or bad syntax): correct the address in the client.")
	}
	return x
}

func (e *ex) dropped() Explanation {
	m := e.m
	var x Explanation
	mid := itoa(m.MID)
	switch {
	case droppedByEngine(m) != "":
		x.Summary = droppedByEngine(m)
		x.Next = append(x.Next, "The policy that matched the message decides this action: see its line in the timeline.")
	case strings.HasPrefix(m.AbortReason, "Dropped by"):
		x.Summary = "Dropped: " + m.AbortReason + ". A filter on the gateway discarded the message; nobody was told."
		x.Next = append(x.Next, "Check the verdict lines in the timeline to see which scanner or filter decided, and its policy.")
	case strings.Contains(m.AbortReason, " was dropped by "):
		x.Summary = "Dropped: a filter on the gateway discarded the message; nobody was told."
		if l := e.line("MID " + mid + " was dropped by "); l != "" {
			x.Why = append(x.Why, "The log says "+l+".")
		}
		x.Next = append(x.Next, "Check that filter's conditions and the verdict lines in the timeline.")
	case strings.Contains(m.AbortReason, " deleted from "):
		x.Summary = "Dropped: the message was deleted from a quarantine, so it was not delivered."
		if l := e.line("MID " + mid + " deleted from "); l != "" {
			x.Why = append(x.Why, "The log says "+l+".")
		}
		x.Next = append(x.Next, "A deletion marked (expired) is the quarantine's retention ending; (manual) is an administrator's.")
	default:
		x.Summary = "Dropped: the gateway discarded the message."
	}
	for _, r := range m.Recipients {
		if r.Status == tracking.Dropped && r.Response != "" && r.Response != m.AbortReason {
			x.Why = append(x.Why, fmt.Sprintf("<%s>: %s.", r.Address, r.Response))
		}
	}
	return x
}

func explainBounce(m *tracking.Message) Explanation {
	var x Explanation
	bounced := settled(m, tracking.Bounced)
	x.Summary = fmt.Sprintf("Bounced: delivery to %s failed for good.", plural(len(bounced), "recipient"))
	if by, ok := strings.CutPrefix(m.AbortReason, "Bounced by "); ok {
		// The gateway's own filter, not a next hop, refused it.
		x.Summary = "Bounced by the gateway: " + by + " refused the message after it was accepted; the sender gets a bounce."
	}
	for _, r := range bounced {
		x.Why = append(x.Why, fmt.Sprintf("<%s>: %s (%s).", r.Address, failure(r), codeMeaning(r.Code)))
	}
	if n := len(settled(m, tracking.Delivered)); n > 0 {
		if n == 1 {
			x.Why = append(x.Why, "The other recipient was delivered.")
		} else {
			x.Why = append(x.Why, fmt.Sprintf("The other %d recipients were delivered.", n))
		}
	}
	for _, r := range bounced {
		switch {
		case strings.HasPrefix(r.Code, "5.1.1"):
			x.Next = append(x.Next, "The next hop does not know <"+r.Address+">: check the address with the sender.")
		case strings.HasPrefix(r.Code, "5.1.2"), strings.HasPrefix(r.Code, "5.1.10"):
			x.Next = append(x.Next, "The recipient's domain has no working mail server in DNS: check its MX records (dig MX "+domainOf(r.Address)+").")
		case strings.HasPrefix(r.Code, "5.4.7"):
			x.Next = append(x.Next, "The message stayed in the queue longer than max_time_in_queue: earlier Delayed lines say why each attempt failed.")
		}
	}
	if m.Sender == "" {
		x.Next = append(x.Next, "The sender was empty (a bounce itself), so no notification was sent back.")
	} else {
		x.Next = append(x.Next, "A delivery status notification went back to <"+m.Sender+"> unless bounces are turned off.")
	}
	x.Next = slices.Compact(x.Next)
	return x
}

// settled returns the recipients in status s.
func settled(m *tracking.Message, s tracking.Status) []tracking.Recipient {
	var out []tracking.Recipient
	for _, r := range m.Recipients {
		if r.Status == s && r.RID >= 0 {
			out = append(out, r)
		}
	}
	return out
}

func failure(r tracking.Recipient) string {
	s := r.Response
	if s == "" {
		s = "no reason logged"
	}
	if r.Code != "" && !strings.Contains(s, r.Code) {
		s = r.Code + " " + s
	}
	if r.DCID != 0 {
		s += fmt.Sprintf(" (DCID %d)", r.DCID)
	}
	return s
}

// codeMeaning says what an enhanced status code's class and subject mean
// (RFC 3463).
func codeMeaning(code string) string {
	known := map[string]string{
		"5.1.1": "bad destination mailbox", "5.1.2": "bad destination host or domain",
		"5.1.10": "the domain accepts no mail (null MX)", "5.2.2": "mailbox full",
		"5.3.4": "message too big for the next hop", "5.4.7": "delivery time expired",
		"5.7.1": "refused by the next hop's policy", "5.4.4": "no route to the destination",
	}
	if s, ok := known[code]; ok {
		return s
	}
	switch {
	case strings.HasPrefix(code, "5."):
		return "a permanent failure"
	case strings.HasPrefix(code, "4."):
		return "a temporary failure"
	}
	return "no enhanced status code"
}

func remote(m *tracking.Message, in *tracking.Conn) string {
	ip, host := m.RemoteIP, m.RemoteHost
	if in != nil {
		ip, host = cmp.Or(ip, in.RemoteIP), cmp.Or(host, in.RemoteHost)
	}
	switch {
	case ip == "":
		return ""
	case host == "" || host == "unknown":
		return ip + fmt.Sprintf(" (ICID %d)", m.ICID)
	}
	return fmt.Sprintf("%s (%s, ICID %d)", ip, host, m.ICID)
}

func hostRule(m *tracking.Message, in *tracking.Conn) string {
	if ip := m.RemoteIP; ip != "" {
		return ip
	}
	if in != nil && in.RemoteIP != "" {
		return in.RemoteIP
	}
	return "the sending host"
}

func ipOr(m *tracking.Message, dflt string) string { return cmp.Or(m.RemoteIP, dflt) }

func reply(s string) string {
	if s == "" {
		return ""
	}
	return ", reply " + q(s)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// plural is "1 recipient", "2 recipients".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
