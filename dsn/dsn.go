// Package dsn builds delivery status notifications, the bounces a mail
// system sends to a sender whose message it could not deliver: an RFC 3464
// report inside an RFC 6522 multipart/report of three parts (a text for the
// sender, the machine-readable message/delivery-status, and the header of
// the original message), with the RFC 6533 "global" types when the
// addresses are UTF-8.
//
// Nothing a sender or a remote server wrote can change the structure of a
// report: field values are cleaned of control characters (CR and LF among
// them) and folded, the original header is re-encoded when it is not plain
// short-lined ASCII, and the multipart boundary is chosen so that it occurs
// in no part.
package dsn

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailgate/mailgate/rfc822"
	"github.com/mailgate/mailgate/smtp/status"
)

// Actions of a recipient.
const (
	Failed  = "failed"  // permanent: the mail system gave up (5.x.x)
	Delayed = "delayed" // temporary: it keeps trying (4.x.x)
)

// Recipient is what became of one recipient of the original message.
type Recipient struct {
	Original       string    // the address as received (RCPT TO), for Original-Recipient and Final-Recipient
	Action         string    // Failed or Delayed
	Status         string    // enhanced status code, "5.1.1": class 5 for Failed, 4 for Delayed
	RemoteMTA      string    // host name or IP address that answered; "" if none (DNS failure, expiry)
	Diagnostic     string    // the remote reply as one line, "550 5.1.1 <x>: user unknown"; "" when none
	LastAttempt    time.Time // zero: not reported
	WillRetryUntil time.Time // for Delayed; zero: not reported
}

// Report is a delivery status notification about one message.
type Report struct {
	ReportingMTA string      // our host name, "mx.example.com" (or already typed, "dns; mx.example.com")
	From         string      // the From: header, "MAILER-DAEMON@mx.example.com" or "Name <addr>"; "" gives MAILER-DAEMON@<ReportingMTA>
	To           string      // the original envelope sender: the report's recipient; never "" (no reports to the null sender)
	MID          uint64      // the original message's MID, in the text and the X-Mailgate-Original-MID header
	ArrivalDate  time.Time   // when the original was received; zero: not reported
	Recipients   []Recipient // at least one
	Original     []byte      // the original message; only its header is attached
	Date         time.Time   // of the report; zero: now
	SMTPUTF8     bool        // the original was an SMTPUTF8 transaction: UTF-8 addresses and the RFC 6533 types
}

// MaxOriginalHeader caps the original header attached to a report. Longer
// headers are cut before the first field that does not fit, as the ESA cuts
// them (it keeps 10k; mailgate's cap is larger because a header with a few
// DKIM, ARC and Received fields already comes near 10k).
const MaxOriginalHeader = 64 << 10

// Lines of a report stay within RFC 5322's limit of 998 octets; folded
// fields aim at 78.
const (
	foldWidth = 78
	maxLine   = 998
)

// Build returns the report as a whole message with CRLF line endings, ready
// to be spooled and sent with the null sender to r.To. Without r.SMTPUTF8 the
// message is 7-bit ASCII; with it, it may hold UTF-8 anywhere (header fields
// included), so it must go out with SMTPUTF8 and BODY=8BITMIME.
//
// The Message-ID is derived from the report's content, so building the same
// report twice gives the same message.
func Build(r Report) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	if r.Date.IsZero() {
		r.Date = time.Now()
	}
	host := mtaHost(r.ReportingMTA)
	from := r.From
	if strings.TrimSpace(from) == "" {
		from = "MAILER-DAEMON@" + host
	}
	fromAddr, err := mail.ParseAddress(clean(from, true))
	if err != nil {
		return nil, fmt.Errorf("dsn: From %q: %w", r.From, err)
	}
	if fromAddr.Name == "" {
		fromAddr.Name = "Mail Delivery System"
	}
	if !r.SMTPUTF8 && !isASCII(fromAddr.Address) {
		return nil, fmt.Errorf("dsn: From %q is not ASCII and the report is not SMTPUTF8", r.From)
	}

	header := originalHeader(r.Original)
	hdr := rfc822.ReadHeader(header)
	text := r.text(hdr)
	status := r.deliveryStatus()
	headersPart, headersCTE := r.encodeHeader(header)
	textPart, textCharset, textCTE := r.encodeText(text)

	statusType, headersType, reportType := "message/delivery-status", "text/rfc822-headers", "delivery-status"
	if r.SMTPUTF8 {
		statusType, headersType, reportType = "message/global-delivery-status", "message/global-headers", "global-delivery-status"
	}
	statusCTE := "7bit"
	if !isASCII(string(status)) {
		statusCTE = "8bit"
	}

	digest := r.digest(textPart, status, headersPart)
	boundary, err := chooseBoundary(digest, textPart, status, headersPart)
	if err != nil {
		return nil, err
	}

	var b bytes.Buffer
	b.Grow(len(textPart) + len(status) + len(headersPart) + 1024)
	writeField(&b, "From", fromAddr.String())
	writeField(&b, "To", "<"+clean(r.To, r.SMTPUTF8)+">")
	writeField(&b, "Subject", r.subject())
	writeField(&b, "Date", r.Date.Format(time.RFC1123Z))
	writeField(&b, "Message-ID", "<"+messageID(digest)+"."+fmt.Sprint(r.MID)+"@"+host+">")
	if id := originalMessageID(hdr, r.SMTPUTF8); id != "" {
		writeField(&b, "In-Reply-To", id)
		writeField(&b, "References", id)
	}
	writeField(&b, "Auto-Submitted", "auto-replied")
	writeField(&b, "X-Mailgate-Original-MID", fmt.Sprint(r.MID))
	writeField(&b, "MIME-Version", "1.0")
	writeField(&b, "Content-Type", "multipart/report; report-type="+reportType+"; boundary=\""+boundary+"\"")
	b.WriteString("\r\nThis is a MIME-encapsulated message.\r\n")

	part := func(desc, ctype, cte string, body []byte) {
		b.WriteString("\r\n--" + boundary + "\r\n")
		writeField(&b, "Content-Description", desc)
		writeField(&b, "Content-Type", ctype)
		writeField(&b, "Content-Transfer-Encoding", cte)
		b.WriteString("\r\n")
		b.Write(body)
	}
	part("Notification", "text/plain; charset="+textCharset, textCTE, textPart)
	part("Delivery report", statusType, statusCTE, status)
	part("Undelivered message headers", headersType, headersCTE, headersPart)
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

func (r *Report) check() error {
	if strings.TrimSpace(r.To) == "" {
		return errors.New("dsn: no recipient for the report (the null sender gets none)")
	}
	if !r.SMTPUTF8 && !isASCII(r.To) {
		return fmt.Errorf("dsn: report recipient %q is not ASCII and the report is not SMTPUTF8", r.To)
	}
	if mtaHost(r.ReportingMTA) == "" {
		return errors.New("dsn: no reporting MTA")
	}
	if len(r.Recipients) == 0 {
		return errors.New("dsn: a report needs at least one recipient")
	}
	for i, rc := range r.Recipients {
		if strings.TrimSpace(rc.Original) == "" {
			return fmt.Errorf("dsn: recipient %d has no address", i)
		}
		var class byte
		switch rc.Action {
		case Failed:
			class = '5'
		case Delayed:
			class = '4'
		default:
			return fmt.Errorf("dsn: recipient %d (%s): action %q is not %q or %q", i, rc.Original, rc.Action, Failed, Delayed)
		}
		if !status.Valid(rc.Status) {
			return fmt.Errorf("dsn: recipient %d (%s): status %q is not an enhanced status code (5.1.1)", i, rc.Original, rc.Status)
		}
		if rc.Status[0] != class {
			return fmt.Errorf("dsn: recipient %d (%s): status %s does not fit action %s (want %c.x.x)", i, rc.Original, rc.Status, rc.Action, class)
		}
	}
	return nil
}

func (r *Report) failed() bool {
	for _, rc := range r.Recipients {
		if rc.Action == Failed {
			return true
		}
	}
	return false
}

func (r *Report) subject() string {
	if r.failed() {
		return "Delivery Status Notification (Failure)"
	}
	return "Delivery Status Notification (Delay)"
}

// mtaHost returns the host name of ReportingMTA, without a "dns;" type.
func mtaHost(s string) string {
	if _, name, ok := strings.Cut(s, ";"); ok {
		s = name
	}
	// The name goes into the Message-ID and the default From address, where
	// only a host name's characters belong.
	var b strings.Builder
	for _, c := range []byte(strings.TrimSpace(s)) {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mtaName returns ReportingMTA as an RFC 3464 mta-name with its type.
func mtaName(s string) string {
	if typ, name, ok := strings.Cut(s, ";"); ok && strings.TrimSpace(typ) != "" {
		return clean(typ, false) + "; " + clean(name, false)
	}
	return "dns; " + clean(s, false)
}

// deliveryStatus returns the message/delivery-status body (RFC 3464 section
// 2): the per-message fields, then a block per recipient.
func (r *Report) deliveryStatus() []byte {
	utf := r.SMTPUTF8
	var b bytes.Buffer
	writeField(&b, "Reporting-MTA", mtaName(r.ReportingMTA))
	writeField(&b, "X-Mailgate-MID", fmt.Sprint(r.MID))
	if !r.ArrivalDate.IsZero() {
		writeField(&b, "Arrival-Date", r.ArrivalDate.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		addr := address(rc.Original, utf)
		writeField(&b, "Original-Recipient", addr)
		writeField(&b, "Final-Recipient", addr)
		writeField(&b, "Action", rc.Action)
		writeField(&b, "Status", rc.Status)
		if m := remoteMTA(rc.RemoteMTA); m != "" {
			writeField(&b, "Remote-MTA", "dns; "+m)
		}
		if d := clean(rc.Diagnostic, utf); d != "" {
			writeField(&b, "Diagnostic-Code", diagnosticType(d)+"; "+d)
		}
		if !rc.LastAttempt.IsZero() {
			writeField(&b, "Last-Attempt-Date", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			writeField(&b, "Will-Retry-Until", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	return b.Bytes()
}

// remoteMTA returns the host for a Remote-MTA field: a name as it is, an IP
// address in brackets (a domain literal, as RFC 3464's "dns" type allows).
func remoteMTA(s string) string {
	s = clean(s, false)
	if s == "" || strings.HasPrefix(s, "[") {
		return s
	}
	if strings.Count(s, ":") >= 2 {
		return "[IPv6:" + s + "]"
	}
	if isIPv4(s) {
		return "[" + s + "]"
	}
	return s
}

func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// encodeHeader returns the attached header and its transfer encoding: 7bit
// when it is short-lined ASCII; 8bit for a UTF-8 header of an SMTPUTF8
// report; quoted-printable otherwise, which also breaks overlong lines.
func (r *Report) encodeHeader(h []byte) ([]byte, string) {
	long := false
	for line := range bytes.SplitSeq(h, []byte("\r\n")) {
		if len(line) > maxLine {
			long = true
			break
		}
	}
	switch {
	case !long && isASCII(string(h)) && bytes.IndexByte(h, 0) < 0:
		return h, "7bit"
	case !long && r.SMTPUTF8 && utf8.Valid(h) && bytes.IndexByte(h, 0) < 0:
		return h, "8bit"
	}
	return qp(h), "quoted-printable"
}

// encodeText returns the text part, its charset and transfer encoding.
func (r *Report) encodeText(text string) ([]byte, string, string) {
	switch {
	case isASCII(text):
		return []byte(text), "us-ascii", "7bit"
	case r.SMTPUTF8:
		return []byte(text), "utf-8", "8bit"
	}
	return qp([]byte(text)), "utf-8", "quoted-printable"
}

func qp(p []byte) []byte {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write(p) // a bytes.Buffer does not fail
	w.Close()
	return b.Bytes()
}

// digest hashes everything the report says; it names the report in its
// Message-ID and seeds its boundary.
func (r *Report) digest(parts ...[]byte) []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], r.MID)
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(r.Date.UnixNano()))
	h.Write(n[:])
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", r.ReportingMTA, r.From, r.To)
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func messageID(digest []byte) string {
	return strings.ToLower(b32.EncodeToString(digest[:15]))
}

// chooseBoundary returns a boundary that occurs in none of the parts. It
// starts with "=_", which quoted-printable text cannot contain, and goes on
// with a hash of the content, which the content cannot contain unless it
// was made for it; the check settles even that.
func chooseBoundary(digest []byte, parts ...[]byte) (string, error) {
	for i := range 16 {
		h := sha256.Sum256(append(digest[:len(digest):len(digest)], byte(i)))
		boundary := "=_mailgate_" + strings.ToLower(b32.EncodeToString(h[:15]))
		clash := false
		for _, p := range parts {
			if bytes.Contains(p, []byte(boundary)) {
				clash = true
				break
			}
		}
		if !clash {
			return boundary, nil
		}
	}
	return "", errors.New("dsn: no boundary found that the content does not contain")
}

// originalHeader returns the header section of msg (as rfc822 reads it)
// with CRLF line endings, cut at MaxOriginalHeader before the first field
// that does not fit whole. Bare CRs are dropped: some readers end a line at
// one and others do not.
func originalHeader(msg []byte) []byte {
	raw := rfc822.ReadHeader(msg).Limit(MaxOriginalHeader).Raw()
	var b bytes.Buffer
	b.Grow(len(raw) + len(raw)/32)
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, []byte("\n"))
		raw = rest
		if bytes.IndexByte(line, '\r') >= 0 {
			line = bytes.ReplaceAll(line, []byte("\r"), nil)
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	// LF endings made CRLF can take the copy past the cap.
	return rfc822.ReadHeader(b.Bytes()).Limit(MaxOriginalHeader).Raw()
}

// originalMessageID returns the Message-ID of the original header when it
// is one well-formed msg-id, for In-Reply-To and References; otherwise "".
// UTF-8 is allowed in a global report (RFC 6532).
func originalMessageID(h rfc822.Header, global bool) string {
	id := h.MessageID()
	if len(id) < 5 || len(id) > 250 || id[0] != '<' || id[len(id)-1] != '>' {
		return ""
	}
	inner := id[1 : len(id)-1]
	if !strings.Contains(inner, "@") || (global && !utf8.ValidString(inner)) {
		return ""
	}
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || (c >= 0x80 && !global) {
			return ""
		}
	}
	return id
}

// clean makes s one line of header-field text: control characters (CR, LF
// and TAB among them) become spaces, runs of spaces one space, and the ends
// are trimmed. With utf8ok, invalid UTF-8 becomes U+FFFD; without, every
// byte beyond ASCII becomes '?'.
func clean(s string, utf8ok bool) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // drops leading spaces
	for i := 0; i < len(s); {
		c := rune(s[i])
		size := 1
		if c >= utf8.RuneSelf {
			c, size = utf8.DecodeRuneInString(s[i:])
			if !utf8ok {
				c, size = '?', 1
			}
		}
		i += size
		if c < ' ' || c == 0x7f || (0x80 <= c && c < 0xa0) || c == ' ' {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteRune(c)
		space = false
	}
	return strings.TrimRight(b.String(), " ")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// writeField writes "Name: value" CRLF, folding the value at its spaces to
// keep lines near foldWidth. A run without spaces that would pass maxLine is
// broken where it must be; unfolding then reads a space there, which only
// text made to be hostile contains.
func writeField(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	n := len(name) + 1
	for i, word := range strings.Split(value, " ") {
		if i > 0 && n+1+len(word) > foldWidth {
			b.WriteString("\r\n")
			n = 0
		}
		for n+1+len(word) > maxLine {
			cut := runeCut(word, maxLine-n-1)
			b.WriteByte(' ')
			b.WriteString(word[:cut])
			b.WriteString("\r\n")
			word = word[cut:]
			n = 0
		}
		b.WriteByte(' ')
		b.WriteString(word)
		n += 1 + len(word)
	}
	b.WriteString("\r\n")
}

// runeCut returns the largest index not beyond limit at which s can be cut
// without splitting a UTF-8 sequence (at least 1, so that cutting advances).
func runeCut(s string, limit int) int {
	if limit >= len(s) {
		return len(s)
	}
	i := limit
	for i > 1 && !utf8.RuneStart(s[i]) {
		i--
	}
	return max(i, 1)
}

// address returns a recipient for Original-Recipient and Final-Recipient:
// "rfc822; addr" for an ASCII address, else RFC 6533's "utf-8" type, its
// text raw in a global report (utf-8-addr-unitext) and escaped to ASCII in
// a plain one (utf-8-addr-xtext). Either way '+', '=', '\' and spaces are
// escaped as \x{HEX}, and control characters are dropped.
func address(addr string, global bool) string {
	addr = clean(addr, true)
	if isASCII(addr) {
		return "rfc822; " + addr
	}
	var b strings.Builder
	b.WriteString("utf-8; ")
	for _, c := range addr {
		switch {
		case c == '+' || c == '=' || c == '\\' || c == ' ' || c == utf8.RuneError:
			fmt.Fprintf(&b, `\x{%02X}`, c)
		case c < utf8.RuneSelf || global:
			b.WriteRune(c)
		default:
			fmt.Fprintf(&b, `\x{%02X}`, c)
		}
	}
	return b.String()
}

// diagnosticType is "smtp" for a remote SMTP reply ("550 5.1.1 ...") and
// mailgate's own type for text of its own ("DNS Hard Error looking up ...",
// "timeout"), which RFC 3464 reserves "smtp" against.
func diagnosticType(d string) string {
	if len(d) >= 3 && '2' <= d[0] && d[0] <= '5' && isDigit(d[1]) && isDigit(d[2]) &&
		(len(d) == 3 || d[3] == ' ' || d[3] == '-') {
		return "smtp"
	}
	return "X-Mailgate"
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
