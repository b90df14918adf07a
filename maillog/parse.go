package maillog

import (
	"errors"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
)

// ErrNotLogLine is returned by ParseLine for input that holds nothing but
// white space.
var ErrNotLogLine = errors.New("maillog: not a log line")

// trimEnd drops trailing white space: the ESA ends some lines with a space
// (77 of 1000 in the Cribl sample) and files may have CRLF line ends. It
// carries no meaning, and mailgate never writes it.
func trimEnd(s string) string {
	return strings.TrimRight(s, " \t\r\n")
}

// ParseMessage parses the message part of a line (what follows "Info: ").
// It never fails: a message it does not know is an event.Unknown holding
// it. Trailing white space is dropped, and text that holds characters the
// renderer escapes is escaped first, so that the event renders back to the
// same text. Times inside the message (Pending) are read as UTC; ParseLine
// reads them in the location of the line.
func ParseMessage(msg string) event.Event {
	return parseEscaped(escapeString(trimEnd(msg)), time.UTC)
}

// ParseLine parses one log line:
//
//	Wed Sep  6 13:13:16 2023 Info: MID 5 queued for delivery  (local file)
//	Mon Mar 5 14:21:04 2018 Info: ...                           (day not padded)
//	<166>Mar 17 18:24:37 mail_logs: Info: ...                   (syslog push)
//	<94>Nov 24 14:22:57 host.example.net mail_logs: Info: ...   (syslog, with host)
//	2019 Sep 28 16:13:51 esa mail [info] x:nopid Info: ...      (collector)
//	Info: MID 5 queued for delivery                             (no timestamp: zero Time)
//	DCID 12 TLS success CN: <x>                                 (no level: Level 0, Unknown)
//
// Local-file times are read in loc (nil: time.Local). A BSD syslog
// timestamp has no year: the current year is assumed, or the one before
// when that would put the line more than a day in the future (a Reader
// takes it from SetYear or SetNow instead). After a syslog or collector
// timestamp the first " Info: " (or another level word) starts the
// message; what came between (host, tag) is not part of the event, so such
// a line renders back as a local-file line, but the entry's Prefix keeps
// it: Prefix+Text is the line as logged, a syslog <PRI> aside.
//
// A line with no level word keeps Level 0 so that AppendLine writes it back
// without one. The error is ErrNotLogLine for an empty line; the returned
// entry then still holds the line as an event.Unknown.
func ParseLine(line string, loc *time.Location) (event.Entry, error) {
	return parseLine(line, loc, &years{now: time.Now()})
}

var levels = [...]event.Level{event.Info, event.Warning, event.Critical, event.Debug, event.Trace}

// cutLevel splits "Info: message" (or a bare "Info:") into level and message.
func cutLevel(s string) (event.Level, string, bool) {
	for _, l := range levels {
		name := l.String()
		if len(s) > len(name) && s[len(name)] == ':' && s[:len(name)] == name {
			rest := s[len(name)+1:]
			if rest == "" {
				return l, "", true
			}
			if rest[0] == ' ' {
				return l, rest[1:], true
			}
		}
	}
	return 0, s, false
}

// findLevel finds the first " Level: " (or a final " Level:") in s.
func findLevel(s string) (event.Level, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			continue
		}
		if l, msg, ok := cutLevel(s[i+1:]); ok {
			return l, msg, true
		}
	}
	return 0, s, false
}

func parseLine(line string, loc *time.Location, y *years) (event.Entry, error) {
	if loc == nil {
		loc = time.Local
	}
	s := trimEnd(line)
	if s == "" {
		return event.Entry{Event: event.Unknown{Text: escapeString(line)}}, ErrNotLogLine
	}
	t, rest, kind := cutStamp(s, loc, y)
	e := event.Entry{Time: t}
	if kind == stampNone {
		rest = s
	} else {
		rest = strings.TrimPrefix(rest, " ")
	}
	l, msg, ok := cutLevel(rest)
	if !ok && kind == stampForeign {
		// A syslog host and tag, or a collector's fields, come first.
		l, msg, ok = findLevel(rest)
	}
	if !ok {
		e.Event = event.Unknown{Text: escapeString(rest)}
		return e, nil
	}
	e.Level = l
	e.Text = escapeString(msg)
	e.Prefix = escapeString(cutPRI(s[:len(s)-len(msg)]))
	e.Event = parseEscaped(e.Text, loc)
	return e, nil
}

// cutPRI drops a syslog "<PRI>" (and an RFC 5424 version after it) from the
// start of a line: framing of the transport, which a syslog server does
// not write to its files.
func cutPRI(s string) string {
	if len(s) < 3 || s[0] != '<' {
		return s
	}
	i := strings.IndexByte(s, '>')
	if i < 2 || i > 4 {
		return s
	}
	if n, rest, ok := cutUint(s[1:i]); !ok || rest != "" || n > 191 {
		return s
	}
	s = s[i+1:]
	if r, ok := strings.CutPrefix(s, "1 "); ok && r != "" && r[0] >= '0' && r[0] <= '9' {
		return r
	}
	return s
}

func parseEscaped(msg string, loc *time.Location) event.Event {
	if ev := parseKnown(msg, loc); ev != nil {
		return ev
	}
	return event.Unknown{Text: msg}
}

// Scanning helpers. Each returns ok=false when the text does not match,
// and the parsers return nil then: the message stays an Unknown.

// cutUint parses a decimal number at the start of s. A leading zero (other
// than "0" itself) is refused, since it would not render back the same.
func cutUint(s string) (uint64, string, bool) {
	i := 0
	var n uint64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, s, false
		}
		n = n*10 + d
		i++
	}
	if i == 0 || (i > 1 && s[0] == '0') {
		return 0, s, false
	}
	return n, s[i:], true
}

// cutNat parses a non-negative int that fits in 32 bits (RIDs, ports, counts).
func cutNat(s string) (int, string, bool) {
	n, rest, ok := cutUint(s)
	if !ok || n > 1<<31-1 {
		return 0, s, false
	}
	return int(n), rest, true
}

// cutInt parses an optionally negative int64.
func cutInt(s string) (int64, string, bool) {
	neg := strings.HasPrefix(s, "-")
	n, rest, ok := cutUint(strings.TrimPrefix(s, "-"))
	if !ok || n > 1<<63-1 || (neg && n == 0) {
		return 0, s, false
	}
	if neg {
		return -int64(n), rest, true
	}
	return int64(n), rest, true
}

// cutIDAfter expects prefix then a number.
func cutIDAfter(s, prefix string) (uint64, string, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return 0, s, false
	}
	return cutUint(rest)
}

// cutRIDs parses "[0, 1]".
func cutRIDs(s string) ([]int, string, bool) {
	rest, ok := strings.CutPrefix(s, "[")
	if !ok {
		return nil, s, false
	}
	rids := []int{}
	if r, ok := strings.CutPrefix(rest, "]"); ok {
		return rids, r, true
	}
	for {
		var n int
		n, rest, ok = cutNat(rest)
		if !ok {
			return nil, s, false
		}
		rids = append(rids, n)
		if r, ok := strings.CutPrefix(rest, "]"); ok {
			return rids, r, true
		}
		if rest, ok = strings.CutPrefix(rest, ", "); !ok {
			return nil, s, false
		}
	}
}

// cutLabel matches label (ending in ':') followed by the end of s or by a
// space and the value, the inverse of appendLabel.
func cutLabel(s, label string) (string, bool) {
	rest, ok := strings.CutPrefix(s, label)
	if !ok {
		return "", false
	}
	if rest == "" {
		return "", true
	}
	if rest[0] != ' ' || rest == " " {
		return "", false
	}
	return rest[1:], true
}

// cutAddr parses "<addr>" at the start of s; the address may not hold
// '<' or '>' (the renderer escapes them).
func cutAddr(s string) (string, string, bool) {
	if s == "" || s[0] != '<' {
		return "", s, false
	}
	i := strings.IndexAny(s[1:], "<>")
	if i < 0 || s[1+i] != '>' {
		return "", s, false
	}
	return s[1 : 1+i], s[2+i:], true
}

// lastAddr parses an address that ends the message: "<addr>", or a bare
// address as some releases write it ("******@domainsample1.com"), which
// renders back with brackets.
func lastAddr(s string) (string, bool) {
	if a, rest, ok := cutAddr(s); ok {
		return a, rest == ""
	}
	if s == "" || strings.ContainsAny(s, "<> ") {
		return "", false
	}
	return s, true
}

// cutQuoted parses text in ' or " quotes that ends the message.
func cutQuoted(s string) (string, byte, bool) {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1], s[0], true
	}
	return "", 0, false
}

// isToken reports whether s is a non-empty run without spaces.
func isToken(s string) bool {
	return s != "" && strings.IndexByte(s, ' ') < 0
}

func parseKnown(s string, loc *time.Location) event.Event {
	switch {
	case strings.HasPrefix(s, "MID "):
		return parseMID(s, loc)
	case strings.HasPrefix(s, "ICID "):
		return parseICID(s)
	case strings.HasPrefix(s, "DCID "):
		return parseDCID(s)
	case strings.HasPrefix(s, "SMTP Auth: (ICID "), strings.HasPrefix(s, "SMTP Auth (ICID "):
		return parseSMTPAuth(s)
	case strings.HasPrefix(s, "Start MID "):
		mid, rest, ok := cutIDAfter(s, "Start MID ")
		if !ok {
			return nil
		}
		icid, rest, ok := cutIDAfter(rest, " ICID ")
		if !ok || rest != "" {
			return nil
		}
		return event.StartMID{MID: mid, ICID: icid}
	case strings.HasPrefix(s, "Message "):
		return parseMessageWord(s, loc)
	case strings.HasPrefix(s, "New SMTP ICID "):
		return parseNewICID(s)
	case strings.HasPrefix(s, "New SMTP DCID "):
		return parseNewDCID(s)
	case strings.HasPrefix(s, "Delivery start DCID "):
		return parseDeliveryStart(s)
	case strings.HasPrefix(s, "Bounced: "):
		return parseOutcome(s[len("Bounced: "):], true)
	case strings.HasPrefix(s, "Delayed: "):
		return parseOutcome(s[len("Delayed: "):], false)
	case strings.HasPrefix(s, "Connection Error: "):
		return parseConnError(s[len("Connection Error: "):])
	case strings.HasPrefix(s, "Double bounce: Message "):
		return parseDoubleBounce(s)
	case strings.HasPrefix(s, "Possible Delivery: DCID: "):
		return parsePossibleDelivery(s)
	case strings.HasPrefix(s, "Deleted: MID "):
		return parseDeleted(s)
	case s == "Begin Logfile":
		return event.BeginLogfile{}
	case strings.HasPrefix(s, "Version: "):
		rest := s[len("Version: "):]
		i := strings.LastIndex(rest, " SN: ")
		if i < 0 {
			return nil
		}
		return event.LogfileVersion{Version: rest[:i], Serial: rest[i+len(" SN: "):]}
	case strings.HasPrefix(s, "Time offset from UTC: "):
		n, rest, ok := cutInt(s[len("Time offset from UTC: "):])
		if !ok || rest != " seconds" || n > 1<<31-1 || n < -(1<<31) {
			return nil
		}
		return event.TimeOffset{Seconds: int(n)}
	case strings.HasPrefix(s, "mailgate: ICID "):
		return parseConnectionEnd(s)
	case strings.HasPrefix(s, "mailgate: MID "):
		return parseScanSummary(s)
	case strings.HasPrefix(s, "Status: "):
		return parseStatus(s[len("Status: "):])
	case strings.HasPrefix(s, "A ") && strings.Contains(s, " alert was sent to "):
		return parseAlertSent(s)
	case strings.HasPrefix(s, "mailgate: resource conservation "):
		return parseResourceConservation(s)
	case strings.HasPrefix(s, "ISQ: "), strings.HasPrefix(s, "EUQ: "):
		return parseSpamQuarantine(s)
	case s != "" && s[0] >= '0' && s[0] <= '9':
		return parseInjectionDebug(s)
	}
	return nil
}

// parseMID parses the lines that begin with "MID n ".
func parseMID(s string, loc *time.Location) event.Event {
	mid, rest, ok := cutIDAfter(s, "MID ")
	if !ok {
		return nil
	}
	switch {
	case strings.HasPrefix(rest, " ICID "):
		icid, rest, ok := cutIDAfter(rest, " ICID ")
		if !ok {
			return nil
		}
		if from, ok := strings.CutPrefix(rest, " From: "); ok {
			a, ok := lastAddr(from)
			if !ok {
				return nil
			}
			return event.MailFrom{MID: mid, ICID: icid, From: a}
		}
		if r, ok := strings.CutPrefix(rest, " RID "); ok {
			rid, r, ok := cutNat(r)
			if !ok {
				return nil
			}
			to, ok := strings.CutPrefix(r, " To: ")
			if !ok {
				return nil
			}
			a, ok := lastAddr(to)
			if !ok {
				return nil
			}
			return event.RcptTo{MID: mid, ICID: icid, RID: rid, To: a}
		}
		if to, ok := strings.CutPrefix(rest, " To: "); ok {
			a, r, ok := cutAddr(to)
			if !ok {
				return nil
			}
			by, ok := strings.CutPrefix(r, " Rejected by ")
			if !ok {
				return nil
			}
			return event.RcptRejected{MID: mid, ICID: icid, To: a, By: by}
		}
	case strings.HasPrefix(rest, " Message-ID "):
		id, _, ok := cutQuoted(rest[len(" Message-ID "):])
		if !ok {
			return nil
		}
		return event.MessageIDHeader{MID: mid, MessageID: id}
	case rest == " Subject":
		return event.Subject{MID: mid}
	case strings.HasPrefix(rest, " Subject "):
		text := rest[len(" Subject "):]
		if t, q, ok := cutQuoted(text); ok {
			return event.Subject{MID: mid, Subject: t, Quote: q}
		}
		return event.Subject{MID: mid, Subject: text}
	case strings.HasPrefix(rest, " ready "):
		n, r, ok := cutInt(rest[len(" ready "):])
		if !ok {
			return nil
		}
		from, ok := strings.CutPrefix(r, " bytes from ")
		if !ok {
			return nil
		}
		a, ok := lastAddr(from)
		if !ok {
			return nil
		}
		return event.Ready{MID: mid, Bytes: n, From: a}
	case strings.HasPrefix(rest, " matched all recipients for per-recipient policy "):
		r := rest[len(" matched all recipients for per-recipient policy "):]
		r, ok := strings.CutSuffix(r, " table")
		if !ok {
			return nil
		}
		i := strings.LastIndex(r, " in the ")
		if i < 0 {
			return nil
		}
		return event.PolicyMatch{MID: mid, Policy: r[:i], Table: r[i+len(" in the "):]}
	case rest == " queued for delivery":
		return event.Queued{MID: mid}
	case strings.HasPrefix(rest, " generated for bounce of MID "), strings.HasPrefix(rest, " was generated for bounce of MID "):
		// "was generated" (seen once, in IronPort's comments) renders
		// without "was": event.BounceGenerated has no Form.
		r := strings.TrimPrefix(rest, " was")
		orig, r, ok := cutIDAfter(r, " generated for bounce of MID ")
		if !ok || r != "" {
			return nil
		}
		return event.BounceGenerated{MID: mid, OrigMID: orig}
	case strings.HasPrefix(rest, " RID ["):
		rids, r, ok := cutRIDs(rest[len(" RID "):])
		if !ok {
			return nil
		}
		if r == " Response" {
			return event.Response{MID: mid, RIDs: rids}
		}
		text, ok := strings.CutPrefix(r, " Response ")
		if !ok {
			return nil
		}
		if t, q, ok := cutQuoted(text); ok {
			return event.Response{MID: mid, RIDs: rids, Text: t, Quote: q}
		}
		return event.Response{MID: mid, RIDs: rids, Text: text}
	case strings.HasPrefix(rest, " to "):
		return parsePending(mid, rest, PendingMIDRID, PendingMIDBare, loc)
	}
	return parsePipelineMID(mid, rest)
}

// parsePending parses " to [RID ][0] pending till <asctime>[ [profile]]".
func parsePending(mid uint64, s string, formRID, formBare uint8, loc *time.Location) event.Event {
	form := formBare
	r := s[len(" to "):]
	if rr, ok := strings.CutPrefix(r, "RID "); ok {
		form, r = formRID, rr
	}
	rids, r, ok := cutRIDs(r)
	if !ok {
		return nil
	}
	r, ok = strings.CutPrefix(r, " pending till ")
	if !ok {
		return nil
	}
	until, r, ok := cutAsctime(r, loc)
	if !ok {
		return nil
	}
	p := event.Pending{MID: mid, RIDs: rids, Until: until, Form: form}
	if r == "" {
		return p
	}
	prof, ok := strings.CutPrefix(r, " [")
	if !ok || !strings.HasSuffix(prof, "]") || len(prof) < 2 {
		return nil
	}
	p.Profile = prof[:len(prof)-1]
	return p
}

// parseMessageWord parses the lines that begin with "Message ".
func parseMessageWord(s string, loc *time.Location) event.Event {
	switch {
	case strings.HasPrefix(s, "Message aborted MID "):
		mid, rest, ok := cutIDAfter(s, "Message aborted MID ")
		if !ok {
			return nil
		}
		if rest == "" {
			return event.MessageAborted{MID: mid}
		}
		reason, ok := strings.CutPrefix(rest, " ")
		if !ok || reason == "" {
			return nil
		}
		return event.MessageAborted{MID: mid, Reason: reason}
	case strings.HasPrefix(s, "Message finished MID "):
		mid, rest, ok := cutIDAfter(s, "Message finished MID ")
		if !ok {
			return nil
		}
		if rest == "" {
			return event.MessageFinished{MID: mid}
		}
		status, ok := strings.CutPrefix(rest, " ")
		if !ok || status == "" {
			return nil
		}
		return event.MessageFinished{MID: mid, Status: status}
	case strings.HasPrefix(s, "Message done DCID "):
		dcid, rest, ok := cutIDAfter(s, "Message done DCID ")
		if !ok {
			return nil
		}
		mid, rest, ok := cutIDAfter(rest, " MID ")
		if !ok {
			return nil
		}
		// "to [0]" (before 4.x) renders as "to RID [0]": event.MessageDone
		// has no Form.
		r, ok := strings.CutPrefix(rest, " to RID ")
		if !ok {
			if r, ok = strings.CutPrefix(rest, " to "); !ok {
				return nil
			}
		}
		rids, r, ok := cutRIDs(r)
		if !ok {
			return nil
		}
		md := event.MessageDone{DCID: dcid, MID: mid, RIDs: rids}
		if r == "" {
			return md
		}
		extra, ok := strings.CutPrefix(r, " ")
		if !ok || extra == "" {
			return nil
		}
		md.Extra = extra
		return md
	}
	// "Message 4195162 to [0] pending till ...", the oldest Pending form.
	mid, rest, ok := cutIDAfter(s, "Message ")
	if !ok || !strings.HasPrefix(rest, " to ") {
		return nil
	}
	return parsePending(mid, rest, PendingMessageRID, PendingMessageBare, loc)
}

// parseICID parses the lines that begin with "ICID n ".
func parseICID(s string) event.Event {
	icid, rest, ok := cutIDAfter(s, "ICID ")
	if !ok || rest == "" || rest[0] != ' ' {
		return nil
	}
	rest = rest[1:]
	switch {
	case rest == "close":
		return event.ICIDClose{ICID: icid}
	case rest == "lost":
		return event.ICIDLost{ICID: icid}
	case strings.HasPrefix(rest, "TLS "):
		return parseTLS(event.ConnRef{Kind: event.InboundConn, ID: icid}, rest)
	case strings.HasPrefix(rest, "disconnected address "):
		addr, reason, ok := strings.Cut(rest[len("disconnected address "):], ", ")
		if !ok {
			return nil
		}
		return event.ICIDDisconnected{ICID: icid, Address: addr, Reason: reason}
	case strings.HasPrefix(rest, "Receiving Failed:"):
		reason, ok := cutLabel(rest, "Receiving Failed:")
		if !ok {
			return nil
		}
		return event.ReceivingFailed{ICID: icid, Reason: reason}
	case strings.HasPrefix(rest, "Unknown command:"):
		cmd, ok := cutLabel(rest, "Unknown command:")
		if !ok {
			return nil
		}
		return event.UnknownCommand{ICID: icid, Command: cmd}
	case strings.HasPrefix(rest, "MID "), strings.HasPrefix(rest, "Invalid "):
		var mid uint64
		if strings.HasPrefix(rest, "MID ") {
			mid, rest, ok = cutIDAfter(rest, "MID ")
			if !ok || mid == 0 || !strings.HasPrefix(rest, " ") {
				return nil
			}
			rest = rest[1:]
		}
		if d, ok := cutLabel(rest, "Invalid recipient address:"); ok {
			return event.InvalidAddress{ICID: icid, MID: mid, Recipient: true, Detail: d}
		}
		if d, ok := cutLabel(rest, "Invalid sender address:"); ok {
			return event.InvalidAddress{ICID: icid, MID: mid, Detail: d}
		}
		return nil
	case strings.HasPrefix(rest, "SBRS "):
		// The 3.7 form: the score alone, no sender group.
		h := event.HATMatch{ICID: icid}
		h.SBRS, h.Country = cutCountry(rest[len("SBRS "):])
		return h
	}
	return parseHAT(icid, rest)
}

// cutCountry splits "5.6 country US" into score and country.
func cutCountry(s string) (sbrs, country string) {
	if i := strings.LastIndex(s, " country "); i >= 0 && i+len(" country ") < len(s) {
		return s[:i], s[i+len(" country "):]
	}
	return s, ""
}

// parseHAT parses "ACCEPT SG UNKNOWNLIST match sbrs[-0.5:10.0] SBRS 5.6".
func parseHAT(icid uint64, s string) event.Event {
	action, rest, ok := strings.Cut(s, " SG ")
	if !ok || action == "" {
		return nil
	}
	for i := 0; i < len(action); i++ {
		if action[i] < 'A' || action[i] > 'Z' {
			return nil
		}
	}
	h := event.HATMatch{ICID: icid, Action: action}
	var tail string
	if i := strings.Index(rest, " match "); i >= 0 {
		h.Group = rest[:i]
		r := rest[i+len(" match "):]
		j := strings.Index(r, " SBRS ")
		if j < 0 {
			return nil
		}
		h.Rule = r[:j]
		tail = r[j+len(" SBRS "):]
	} else {
		// "SG None SBRS rfc1918" without "match" (once, in IronPort's
		// comments) is read as the empty rule and renders with "match  SBRS".
		j := strings.Index(rest, " SBRS ")
		if j < 0 {
			return nil
		}
		h.Group = rest[:j]
		tail = rest[j+len(" SBRS "):]
	}
	h.SBRS, h.Country = cutCountry(tail)
	return h
}

// parseSMTPAuth parses the SMTP AUTH lines. The user name is escaped like
// any text, so the mechanism and profile are found from the end.
func parseSMTPAuth(s string) event.Event {
	var e event.SMTPAuth
	rest, colon := strings.CutPrefix(s, "SMTP Auth: (ICID ")
	if !colon {
		rest = s[len("SMTP Auth (ICID "):]
		e.NoColon = true
	}
	icid, rest, ok := cutIDAfter("("+rest, "(")
	if !ok || !strings.HasPrefix(rest, ") ") {
		return nil
	}
	e.ICID, rest = icid, rest[2:]
	if rest == "was required but remote host did not initiate it" {
		e.Outcome = event.AuthRequired
		return e
	}
	outcome, rest, ok := strings.Cut(rest, " for user: ")
	if !ok || (outcome != event.AuthSucceeded && outcome != event.AuthFailed) {
		return nil
	}
	i := strings.LastIndex(rest, " with profile: ")
	if i < 0 {
		return nil
	}
	profile := rest[i+len(" with profile: "):]
	rest = rest[:i]
	j := strings.LastIndex(rest, " using AUTH mechanism: ")
	if j < 0 {
		return nil
	}
	mech := rest[j+len(" using AUTH mechanism: "):]
	if !isToken(mech) || !isToken(profile) {
		return nil
	}
	e.Outcome, e.User, e.Mechanism, e.Profile = outcome, rest[:j], mech, profile
	return e
}

// parseTLS parses what follows "ICID n " or "DCID n ".
func parseTLS(c event.ConnRef, s string) event.Event {
	switch {
	case s == "TLS success":
		return event.TLS{Conn: c, Success: true}
	case strings.HasPrefix(s, "TLS success protocol "):
		proto, cipher, ok := strings.Cut(s[len("TLS success protocol "):], " cipher ")
		if !ok || !isToken(proto) || !isToken(cipher) {
			return nil
		}
		return event.TLS{Conn: c, Success: true, Protocol: proto, Cipher: cipher}
	case s == "TLS failed":
		return event.TLS{Conn: c}
	case strings.HasPrefix(s, "TLS failed: "):
		reason := s[len("TLS failed: "):]
		if reason == "" {
			return nil
		}
		return event.TLS{Conn: c, Reason: reason}
	}
	return nil
}

func parseDCID(s string) event.Event {
	dcid, rest, ok := cutIDAfter(s, "DCID ")
	if !ok || rest == "" || rest[0] != ' ' {
		return nil
	}
	rest = rest[1:]
	if rest == "close" {
		return event.DCIDClose{DCID: dcid}
	}
	if strings.HasPrefix(rest, "TLS ") {
		return parseTLS(event.ConnRef{Kind: event.OutboundConn, ID: dcid}, rest)
	}
	return nil
}

// parseNewICID parses "New SMTP ICID 5 interface Management (10.1.1.1)
// address 10.1.1.209 reverse dns host remotehost.com verified yes" and the
// pre-3.8 form without the interface address and DNS part. The fields are
// taken from the right, since the interface name may hold spaces.
func parseNewICID(s string) event.Event {
	icid, rest, ok := cutIDAfter(s, "New SMTP ICID ")
	if !ok {
		return nil
	}
	// "Interface" (once, in course notes) renders in lower case:
	// event.NewICID has no Form.
	r, ok := strings.CutPrefix(rest, " interface ")
	if !ok {
		if r, ok = strings.CutPrefix(rest, " Interface "); !ok {
			return nil
		}
	}
	e := event.NewICID{ICID: icid}
	if i := strings.LastIndex(r, " reverse dns host "); i >= 0 {
		dns := r[i+len(" reverse dns host "):]
		r = r[:i]
		switch {
		case strings.HasSuffix(dns, " verified yes"):
			e.ReverseHost, e.Verified = dns[:len(dns)-len(" verified yes")], true
		case strings.HasSuffix(dns, " verified no"):
			e.ReverseHost = dns[:len(dns)-len(" verified no")]
		default:
			return nil
		}
		if e.ReverseHost == "" {
			return nil
		}
	}
	i := strings.LastIndex(r, " address ")
	if i < 0 {
		return nil
	}
	e.RemoteIP = r[i+len(" address "):]
	r = r[:i]
	if strings.HasSuffix(r, ")") {
		if j := strings.LastIndex(r, " ("); j >= 0 && j+2 < len(r)-1 {
			e.InterfaceIP = r[j+2 : len(r)-1]
			r = r[:j]
		}
	}
	e.Interface = r
	return e
}

// parseNewDCID parses "New SMTP DCID 8 interface 192.168.42.42 address
// 10.5.3.25[ port 25]".
func parseNewDCID(s string) event.Event {
	dcid, rest, ok := cutIDAfter(s, "New SMTP DCID ")
	if !ok {
		return nil
	}
	r, ok := strings.CutPrefix(rest, " interface ")
	if !ok {
		return nil
	}
	iface, remote, ok := strings.Cut(r, " address ")
	if !ok {
		return nil
	}
	e := event.NewDCID{DCID: dcid, InterfaceIP: iface, RemoteIP: remote}
	if i := strings.LastIndex(remote, " port "); i >= 0 {
		if p, r, ok := cutNat(remote[i+len(" port "):]); ok && r == "" && p != 0 {
			e.RemoteIP, e.Port = remote[:i], p
		}
	}
	return e
}

func parseDeliveryStart(s string) event.Event {
	dcid, rest, ok := cutIDAfter(s, "Delivery start DCID ")
	if !ok {
		return nil
	}
	mid, rest, ok := cutIDAfter(rest, " MID ")
	if !ok {
		return nil
	}
	form := uint8(DeliveryStartRID)
	r, ok := strings.CutPrefix(rest, " to RID ")
	if !ok {
		if r, ok = strings.CutPrefix(rest, " to "); !ok {
			return nil
		}
		form = DeliveryStartBare
	}
	rids, r, ok := cutRIDs(r)
	if !ok {
		return nil
	}
	switch {
	case r == "":
	case r == offboxISQ && form == DeliveryStartRID:
		form = DeliveryStartOffbox
	default:
		return nil
	}
	return event.DeliveryStart{DCID: dcid, MID: mid, RIDs: rids, Form: form}
}

// parseOutcome parses what follows "Bounced: " or "Delayed: ".
func parseOutcome(s string, hard bool) event.Event {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		return parseBounceLog(s, hard)
	}
	o := event.Outcome{Hard: hard}
	var ok bool
	var rest string
	if strings.HasPrefix(s, "DCID: ") {
		// DCID: 1911 Message 3993 to 0 - ...
		if o.DCID, rest, ok = cutIDAfter(s, "DCID: "); !ok {
			return nil
		}
		if o.MID, rest, ok = cutIDAfter(rest, " Message "); !ok {
			return nil
		}
		if rest, ok = strings.CutPrefix(rest, " to "); !ok {
			return nil
		}
		o.Form = OutcomeMessage
	} else {
		if o.DCID, rest, ok = cutIDAfter(s, "DCID "); !ok {
			return nil
		}
		if o.MID, rest, ok = cutIDAfter(rest, " MID "); !ok {
			return nil
		}
		if r, ok := strings.CutPrefix(rest, " to RID "); ok {
			rest = r
			o.Form = OutcomeToRID
		} else {
			// " From: <a> To: <b>", or without the spaces after the colons.
			o.Form = OutcomeFromTo
			r, ok := strings.CutPrefix(rest, " From: ")
			if !ok {
				if !strings.HasPrefix(rest, " From:<") {
					return nil
				}
				r = rest[len(" From:"):]
				o.Form = OutcomeFromToTight
			}
			if o.From, r, ok = cutAddr(r); !ok {
				return nil
			}
			to := " To: "
			if o.Form == OutcomeFromToTight {
				to = " To:"
			}
			if r, ok = strings.CutPrefix(r, to); !ok {
				return nil
			}
			if o.To, r, ok = cutAddr(r); !ok {
				return nil
			}
			if rest, ok = strings.CutPrefix(r, " RID "); !ok {
				return nil
			}
		}
	}
	if o.RID, rest, ok = cutNat(rest); !ok {
		return nil
	}
	if rest, ok = strings.CutPrefix(rest, " - "); !ok {
		return nil
	}
	if o.Status, rest, ok = strings.Cut(rest, " - "); !ok {
		return nil
	}
	// The reason is free text; the reply tuple is the first " ('" (or
	// " (\"") from which the rest of the line parses as one.
	for i := 0; i < len(rest); i++ {
		if rest[i] != ' ' || i+2 >= len(rest) || rest[i+1] != '(' || (rest[i+2] != '\'' && rest[i+2] != '"') {
			continue
		}
		code, lines, tail, ok := cutReply(rest[i+1:])
		if !ok {
			continue
		}
		headers := false
		switch tail {
		case "":
		case " []":
			headers = true
		default:
			continue
		}
		switch {
		case headers && o.Form == OutcomeToRID:
			o.Form = OutcomeToRIDHeaders
		case headers && o.Form == OutcomeMessage:
			o.Form = OutcomeMessageHeaders
		case headers:
			return nil
		}
		o.Reason, o.Code, o.Response = rest[:i], code, lines
		return o
	}
	return nil
}

// cutReply parses "('550', ['line', 'line'])".
func cutReply(s string) (code string, lines []string, rest string, ok bool) {
	r, ok := strings.CutPrefix(s, "(")
	if !ok {
		return
	}
	if code, r, ok = cutPyStr(r); !ok {
		return
	}
	if r, ok = strings.CutPrefix(r, ", ["); !ok {
		return
	}
	lines = []string{}
	if rr, ok2 := strings.CutPrefix(r, "])"); ok2 {
		return code, lines, rr, true
	}
	for {
		var l string
		if l, r, ok = cutPyStr(r); !ok {
			return
		}
		lines = append(lines, l)
		if rr, ok2 := strings.CutPrefix(r, "])"); ok2 {
			return code, lines, rr, true
		}
		if r, ok = strings.CutPrefix(r, ", "); !ok {
			return
		}
	}
}

// parseConnError parses what follows "Connection Error: ". The trailing
// fields are taken from the right, since details is free text.
func parseConnError(s string) event.Event {
	e := event.ConnectionError{}
	var ok bool
	var rest string
	switch {
	case strings.HasPrefix(s, "DCID: "):
		e.Form = ConnErrorDCIDColon
		rest = s
	case strings.HasPrefix(s, "DCID "):
		e.Form = ConnErrorCurrent
		if e.DCID, rest, ok = cutIDAfter(s, "DCID "); !ok {
			return nil
		}
		if rest, ok = strings.CutPrefix(rest, " domain: "); !ok {
			return nil
		}
		if e.Domain, rest, ok = strings.Cut(rest, " IP: "); !ok {
			return nil
		}
		if e.IP, rest, ok = strings.Cut(rest, " port: "); !ok {
			return nil
		}
		if e.Port, rest, ok = cutNat(rest); !ok {
			return nil
		}
	default:
		e.Form = ConnErrorLeadingReason
		i := strings.Index(s, " DCID: ")
		if i < 0 {
			return nil
		}
		e.Reason, rest = s[:i], s[i+1:]
	}
	if e.Form != ConnErrorCurrent {
		if e.DCID, rest, ok = cutIDAfter(rest, "DCID: "); !ok {
			return nil
		}
		if rest, ok = strings.CutPrefix(rest, " IP: "); !ok {
			return nil
		}
		if e.IP, rest, ok = strings.Cut(rest, " details: "); !ok {
			return nil
		}
	} else if rest, ok = strings.CutPrefix(rest, " details: "); !ok {
		return nil
	}
	// rest: details + " interface: " + ip [+ " reason: " + reason]
	if e.Form != ConnErrorLeadingReason {
		i := strings.LastIndex(rest, " reason: ")
		if i < 0 {
			return nil
		}
		e.Reason, rest = rest[i+len(" reason: "):], rest[:i]
	}
	i := strings.LastIndex(rest, " interface: ")
	if i < 0 {
		return nil
	}
	e.Details, e.InterfaceIP = rest[:i], rest[i+len(" interface: "):]
	return e
}

func parseDoubleBounce(s string) event.Event {
	mid, rest, ok := cutIDAfter(s, "Double bounce: Message ")
	if !ok {
		return nil
	}
	rest, ok = strings.CutPrefix(rest, " to ")
	if !ok {
		return nil
	}
	rid, rest, ok := cutNat(rest)
	if !ok {
		return nil
	}
	rest, ok = strings.CutPrefix(rest, " - ")
	if !ok {
		return nil
	}
	status, reason, ok := strings.Cut(rest, " - ")
	if !ok {
		return nil
	}
	return event.DoubleBounce{MID: mid, RID: rid, Status: status, Reason: reason}
}

// parsePossibleDelivery parses "Possible Delivery: DCID: 4641294 MID 8956463 to [0]".
func parsePossibleDelivery(s string) event.Event {
	dcid, rest, ok := cutIDAfter(s, "Possible Delivery: DCID: ")
	if !ok {
		return nil
	}
	mid, rest, ok := cutIDAfter(rest, " MID ")
	if !ok {
		return nil
	}
	rest, ok = strings.CutPrefix(rest, " to ")
	if !ok {
		return nil
	}
	rids, rest, ok := cutRIDs(rest)
	if !ok || rest != "" {
		return nil
	}
	return event.PossibleDelivery{DCID: dcid, MID: mid, RIDs: rids}
}

// parseDeleted parses "Deleted: MID 3 to [0]".
func parseDeleted(s string) event.Event {
	mid, rest, ok := cutIDAfter(s, "Deleted: MID ")
	if !ok {
		return nil
	}
	rest, ok = strings.CutPrefix(rest, " to ")
	if !ok {
		return nil
	}
	rids, rest, ok := cutRIDs(rest)
	if !ok || rest != "" {
		return nil
	}
	return event.Deleted{MID: mid, RIDs: rids}
}

// parseInjectionDebug parses "102503993 Sent: 'MAIL FROM:<x@y>'".
func parseInjectionDebug(s string) event.Event {
	icid, rest, ok := cutUint(s)
	if !ok {
		return nil
	}
	var sent bool
	switch {
	case strings.HasPrefix(rest, " Sent: "):
		sent = true
	case strings.HasPrefix(rest, " Rcvd: "):
	default:
		return nil
	}
	data := rest[len(" Sent: "):]
	if len(data) < 2 || data[0] != '\'' || data[len(data)-1] != '\'' {
		return nil
	}
	return event.InjectionDebug{ICID: icid, Sent: sent, Data: data[1 : len(data)-1]}
}

// parseResourceConservation parses mailgate's backpressure line (see
// event.ResourceConservation). A line in any other shape stays Unknown.
func parseResourceConservation(s string) event.Event {
	f := strings.Split(strings.TrimPrefix(s, "mailgate: resource conservation "), " ")
	if len(f) != 5 {
		return nil
	}
	var e event.ResourceConservation
	var ok bool
	if e.Level, ok = strings.CutPrefix(f[0], "level="); !ok || e.Level == "" || strings.ContainsAny(e.Level, `=\`) {
		return nil
	}
	if e.Cause, ok = strings.CutPrefix(f[1], "cause="); !ok || e.Cause == "" || strings.ContainsAny(e.Cause, `=\`) {
		return nil
	}
	for i, it := range []struct {
		key string
		dst *int64
	}{{"messages=", &e.Messages}, {"bytes=", &e.Bytes}, {"memory=", &e.Memory}} {
		v, ok := strings.CutPrefix(f[2+i], it.key)
		if !ok {
			return nil
		}
		n, rest, ok := cutInt(v)
		if !ok || rest != "" {
			return nil
		}
		*it.dst = n
	}
	return e
}

// parseConnectionEnd parses mailgate's own line (see appendConnectionEnd).
func parseConnectionEnd(s string) event.Event {
	icid, rest, ok := cutIDAfter(s, "mailgate: ICID ")
	if !ok {
		return nil
	}
	e := event.ConnectionEnd{ICID: icid}
	if rest, ok = strings.CutPrefix(rest, " ended "); !ok {
		return nil
	}
	if i := strings.Index(rest, " detail='"); i >= 0 {
		d := rest[i+len(" detail='"):]
		if d == "" || d[len(d)-1] != '\'' || d == "'" {
			return nil
		}
		e.Detail, rest = d[:len(d)-1], rest[:i]
	}
	fields := strings.Split(rest, " ")
	if len(fields) < 6 {
		return nil
	}
	var cause, last string
	if cause, ok = strings.CutPrefix(fields[0], "cause="); !ok {
		return nil
	}
	if e.Cause, ok = event.ParseCause(cause); !ok {
		return nil // a newer mailgate's cause: the line stays as it was written
	}
	if e.State, ok = strings.CutPrefix(fields[1], "state="); !ok {
		return nil
	}
	if last, ok = strings.CutPrefix(fields[2], "last="); !ok {
		return nil
	}
	if last != "-" {
		e.LastCommand = last
	}
	// The renderer escapes '=' in values; a value holding one is not ours.
	if strings.Contains(e.State, "=") || strings.Contains(last, "=") {
		return nil
	}
	b, ok := strings.CutPrefix(fields[3], "data_bytes=")
	if !ok {
		return nil
	}
	if e.DataBytes, b, ok = cutInt(b); !ok || b != "" {
		return nil
	}
	d, ok := strings.CutPrefix(fields[4], "duration=")
	if !ok {
		return nil
	}
	if e.Duration, ok = parseSeconds(d); !ok {
		return nil
	}
	var sumOK, sumTotal int
	for _, f := range fields[5 : len(fields)-1] {
		verb, count, ok := strings.Cut(f, "=")
		if !ok {
			return nil
		}
		n, total, ok := parseCount(count)
		if !ok {
			return nil
		}
		e.Commands = append(e.Commands, event.CommandCount{Verb: verb, OK: n, Total: total})
		sumOK += n
		sumTotal += total
	}
	c, ok := strings.CutPrefix(fields[len(fields)-1], "commands=")
	if !ok {
		return nil
	}
	n, total, ok := parseCount(c)
	if !ok && c == "0" {
		n, total, ok = 0, 0, true
	}
	if !ok || n != sumOK || total != sumTotal {
		return nil
	}
	return e
}

// parseCount parses "3" (3 of 3) or "0/1". A total of 0 is never written.
func parseCount(s string) (ok, total int, good bool) {
	n, rest, good := cutNat(s)
	if !good || n > 1<<30 {
		return 0, 0, false
	}
	if rest == "" {
		return n, n, n > 0
	}
	rest, good = strings.CutPrefix(rest, "/")
	if !good {
		return 0, 0, false
	}
	t, rest, good := cutNat(rest)
	if !good || rest != "" || t == n || t == 0 || t > 1<<30 {
		return 0, 0, false
	}
	return n, t, true
}

// parseSeconds parses "36.012s" as written by appendSeconds.
func parseSeconds(s string) (time.Duration, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sec, rest, ok := cutUint(s)
	if !ok || len(rest) != 5 || rest[0] != '.' || rest[4] != 's' || sec > 9e9 {
		return 0, false
	}
	ms, _, ok := cutDigits(rest[1:4], 3)
	if !ok {
		return 0, false
	}
	d := time.Duration(sec)*time.Second + time.Duration(ms)*time.Millisecond
	if neg {
		if d == 0 {
			return 0, false
		}
		d = -d
	}
	return d, true
}

// parseStatus parses the pairs of a status log line, "CPULd 0 DskIO 0 ...".
func parseStatus(s string) event.Event {
	tokens := strings.Split(s, " ")
	if len(tokens)%2 != 0 {
		return nil
	}
	st := event.Status{Fields: make([]event.StatusField, 0, len(tokens)/2)}
	for i := 0; i < len(tokens); i += 2 {
		if tokens[i] == "" || tokens[i+1] == "" {
			return nil
		}
		st.Fields = append(st.Fields, event.StatusField{Name: tokens[i], Value: tokens[i+1]})
	}
	return st
}

// parseAlertSent parses `A System/Warning alert was sent to x with subject
// "..."`. The subject is what lies between the first `"` after "with
// subject" and the line's final `".`: it may hold quotes of its own.
func parseAlertSent(s string) event.Event {
	head, rest, ok := strings.Cut(s[len("A "):], " alert was sent to ")
	if !ok {
		return nil
	}
	i := strings.LastIndexByte(head, '/')
	if i <= 0 || i == len(head)-1 {
		return nil
	}
	to, subject, ok := strings.Cut(rest, ` with subject "`)
	if !ok || to == "" || strings.ContainsRune(to, ' ') {
		return nil
	}
	subject, ok = strings.CutSuffix(subject, `".`)
	if !ok {
		return nil
	}
	return event.AlertSent{Class: head[:i], Severity: head[i+1:], To: to, Subject: subject}
}
