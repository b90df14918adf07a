// Package explain presents tracking records to people: the plain-words
// explanation of a message, the report of aborts, and the merged timeline
// of a message and its connections, which the CLI, the API and the web
// page all take from here.
package explain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"

	"github.com/mailgate/mailgate/tracking"
)

// Explanation says in plain words what happened to a message and why.
type Explanation struct {
	Summary string   `json:"summary"` // one sentence: what happened
	Why     []string `json:"why"`     // what the log shows, and what it means
	Next    []string `json:"next"`    // what to do about it
}

// Message explains a message from its record and its connections. The
// words follow Cisco's own guidance (TechNote 118295: "Receiving aborted"
// against "Receiving aborted by sender"; 117801 on SMTP inspection).
func Message(m *tracking.Message, conns []*tracking.Conn) Explanation {
	var in *tracking.Conn
	for _, c := range conns {
		if c.Kind == event.InboundConn && c.ID == m.ICID {
			in = c
		}
	}
	from := remote(m, in)
	var x Explanation
	switch m.Status {
	case tracking.Aborted:
		x = explainAbort(m, in, from)
	case tracking.Rejected:
		x.Summary = "The message was refused while it was being received, so it never entered the queue."
		if m.AbortReason != "" {
			x.Why = append(x.Why, fmt.Sprintf("The gateway logged \"Receiving Failed: %s\".", m.AbortReason))
			if m.AbortReason == event.FailedSizeLimit {
				x.Next = append(x.Next, "The message was larger than the mail flow policy's max_message_size; raise it for this sender group if the mail is wanted.")
			}
		}
		for _, r := range m.Recipients {
			if r.Status == tracking.Rejected {
				x.Why = append(x.Why, fmt.Sprintf("Recipient <%s>: %s.", r.Address, r.Response))
			}
		}
		if m.Accepted() == 0 {
			x.Next = append(x.Next, "No recipient was accepted: check the Recipient Access Table (RAT) of the listener for these domains.")
		}
	case tracking.Dropped:
		x = explainDropped(m)
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
			"See the destination's state with \"mailgate workqueue\" and retry at once with \"mailgate queue deliver-now DOMAIN\" once the cause is fixed.",
			"A 4xx reply is the next hop asking us to come back later (greylisting, rate limits, a full disk); \"Connection Error\" lines mean it could not be reached at all: check DNS, routing and its firewall.")
	case tracking.Queued:
		x.Summary = "Queued for delivery: accepted, and no delivery attempt has finished yet."
		x.Next = append(x.Next, "If it stays queued, look at \"mailgate workqueue\": the destination may be down or delivery suspended.")
	case tracking.Receiving:
		x.Summary = "The message is being received, or the log ends before its injection ended."
	}
	if len(from) > 0 && m.Status != tracking.Aborted {
		x.Why = append([]string{"It came from " + from + "."}, x.Why...)
	}
	if m.BounceOf != 0 {
		x.Why = append(x.Why, fmt.Sprintf("This message is the delivery status notification (bounce) the gateway generated for MID %d.", m.BounceOf))
	}
	return x
}

func explainAbort(m *tracking.Message, in *tracking.Conn, from string) Explanation {
	var x Explanation
	state := m.AbortState
	where := ""
	if state != "" {
		where = " during the " + strings.ToUpper(state) + " stage"
	}
	if m.AbortBytes > 0 {
		where += fmt.Sprintf(", after %d bytes of DATA", m.AbortBytes)
	}
	switch m.Abort {
	case tracking.AbortSenderQuit:
		x.Summary = "Aborted by the sender: the sending client gave up. It sent QUIT before the message was complete" + where + "."
		x.Why = append(x.Why,
			"The log says \"Receiving aborted by sender\": the client closed the session at the SMTP level (QUIT, or a RSET or new EHLO that threw the message away). The gateway did not refuse anything.",
			"Look at the client: its own log says why it stopped (a timeout on its side, a crash, a user cancelling, a message it decided not to send).")
		x.Next = append(x.Next, "Ask the sender's administrator to check the client's log for this time; record the conversation with an injection debug log for "+hostRule(m, in)+".")
	case tracking.AbortLost:
		x.Summary = "Aborted: the connection was lost" + where + ". The client vanished without QUIT (a reset or a close below SMTP)."
		x.Why = append(x.Why,
			"\"ICID "+itoa(m.ICID)+" lost\" precedes \"Receiving aborted\": the TCP connection ended under the SMTP session.",
			"This is a network fault, or a firewall or SMTP-inspecting device between the sender and us cutting the traffic (a Cisco ASA's ESMTP inspection drops connections with more than 100 recipients or long lines, and hides STARTTLS).")
		if in != nil && in.Cause != "" {
			x.Why = append(x.Why, "mailgate saw the connection end with cause "+in.Cause+describeCause(in.Cause)+".")
		}
		x.Next = append(x.Next,
			"Run an injection debug log for "+hostRule(m, in)+" (logs.injection_debug) to see what the client sends next time.",
			"Capture packets on the gateway during the next attempt (tcpdump -i any -w smtp.pcap host "+ipOr(m, "THE-CLIENT")+" and port 25) to see who sends the FIN or RST.",
			"If a firewall inspects SMTP (ASA \"inspect esmtp\"), disable ESMTP inspection for the gateway's address.")
	default: // AbortTimeout
		x.Summary = "Aborted: the client sent nothing for the listener's unsuccessful-connection timeout" + where + ", so the gateway disconnected it."
		x.Why = append(x.Why, "\"Receiving aborted\" with no \"lost\" line before it: the connection was still up, but the client stopped sending (the timeout is 5 minutes by default: timeouts.unsuccessful of the listener).")
		if last := lastBefore(m.Lines, "Message aborted"); !last.Time.IsZero() {
			if ab := find(m.Lines, "Message aborted"); !ab.Time.IsZero() {
				x.Why = append(x.Why, fmt.Sprintf("The last line before the abort (%q) was logged %s earlier.", last.Text, ab.Time.Sub(last.Time).Round(time.Second)))
			}
		}
		x.Next = append(x.Next,
			"Look at the client and the path: a stuck client, a very slow link, or a device holding the connection open.",
			"Record the conversation with an injection debug log for "+hostRule(m, in)+".")
	}
	if from != "" {
		x.Why = append([]string{"It came from " + from + "."}, x.Why...)
	}
	return x
}

func explainDropped(m *tracking.Message) Explanation {
	var x Explanation
	switch {
	case strings.HasPrefix(m.AbortReason, "Dropped by"):
		x.Summary = "Dropped: " + m.AbortReason + ". A filter on the gateway discarded the message; nobody was told."
		x.Next = append(x.Next, "Check the verdict lines in the timeline to see which scanner or filter decided, and its policy.")
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

func describeCause(word string) string {
	switch c, _ := event.ParseCause(word); c {
	case event.CausePeerReset:
		return " (the client's side sent a TCP reset)"
	case event.CausePeerClosed:
		return " (the client's side closed the connection without QUIT)"
	case event.CauseTLSFailed:
		return " (the TLS handshake failed)"
	case event.CauseIOError:
		return " (a read or write error)"
	case event.CauseTimeoutIdle:
		return " (the client sent no command for the listener's timeouts.idle)"
	case event.CauseJunkCommands:
		return " (more NOOP, RSET, VRFY, HELP and transactions without a recipient than the listener's junk_command_limit)"
	case event.CauseErrors:
		return " (more refused commands than the listener's hard_error_limit)"
	case event.CausePipelining:
		return " (the client sent a command or the message before the reply it had to wait for)"
	}
	return ""
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
	return fmt.Sprintf(", reply %q", s)
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

func find(lines []tracking.Line, prefix string) tracking.Line {
	for _, l := range lines {
		if strings.HasPrefix(l.Text, prefix) {
			return l
		}
	}
	return tracking.Line{}
}

// lastBefore returns the last line before the first one with prefix.
func lastBefore(lines []tracking.Line, prefix string) tracking.Line {
	for i, l := range lines {
		if strings.HasPrefix(l.Text, prefix) {
			if i > 0 {
				return lines[i-1]
			}
			break
		}
	}
	return tracking.Line{}
}
