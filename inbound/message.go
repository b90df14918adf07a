package inbound

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"mime"
	"strings"
	"time"
)

// header is what the listener reads from a message's header: the two fields
// the mail log shows and the number of lines, which the ESA limits.
type header struct {
	lines     int
	messageID string
	subject   string
	hasSubj   bool
}

// scanHeader reads the header block of msg (lines ending in CRLF, as the
// SMTP engine delivers them) up to the empty line. Folded fields are
// unfolded; every physical line counts towards the limit.
func scanHeader(msg []byte) header {
	var h header
	var field []byte // the current field, unfolded
	flush := func() {
		name, value, ok := bytes.Cut(field, []byte{':'})
		if !ok {
			return
		}
		switch {
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Message-ID")) && h.messageID == "":
			h.messageID = string(bytes.TrimSpace(value))
		case bytes.EqualFold(bytes.TrimSpace(name), []byte("Subject")) && !h.hasSubj:
			h.subject, h.hasSubj = decodeSubject(string(bytes.TrimSpace(value))), true
		}
	}
	for len(msg) > 0 {
		i := bytes.Index(msg, []byte("\r\n"))
		if i < 0 {
			i = len(msg)
		}
		line := msg[:i]
		msg = msg[min(i+2, len(msg)):]
		if len(line) == 0 {
			break
		}
		h.lines++
		if line[0] == ' ' || line[0] == '\t' {
			field = append(field, line...)
			continue
		}
		flush()
		field = append(field[:0], line...)
	}
	flush()
	return h
}

var wordDecoder = mime.WordDecoder{}

// decodeSubject decodes RFC 2047 encoded words so the log shows what the
// recipient will read; text it cannot decode is logged as it came.
func decodeSubject(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// received builds the Received: field of RFC 5321 4.4 that the gateway
// prepends to every message it accepts.
type received struct {
	helo, host, ip, by string
	tls                *tls.ConnectionState
	utf8               bool
	ehlo               bool
	mid                uint64
	rcpt               string // "for <...>" when the message has one recipient
	at                 time.Time
}

func (r received) appendTo(b []byte) []byte {
	host := r.host
	if host == "" {
		host = "unknown"
	}
	proto := "SMTP"
	switch {
	case r.utf8:
		proto = "UTF8SMTP"
	case r.ehlo:
		proto = "ESMTP"
	}
	if r.tls != nil {
		proto += "S"
	}
	b = fmt.Appendf(b, "Received: from %s (%s [%s])\r\n", headerSafe(r.helo), host, r.ip)
	if r.tls != nil {
		b = fmt.Appendf(b, "\t(using %s with cipher %s)\r\n", tlsVersion(r.tls.Version), tls.CipherSuiteName(r.tls.CipherSuite))
	}
	b = fmt.Appendf(b, "\tby %s (mailgate) with %s id %d", r.by, proto, r.mid)
	if r.rcpt != "" {
		b = fmt.Appendf(b, "\r\n\tfor <%s>", headerSafe(r.rcpt))
	}
	b = fmt.Appendf(b, "; %s\r\n", r.at.Format(time.RFC1123Z))
	return b
}

// headerSafe keeps what a client wrote from breaking the header: anything
// but printable ASCII and UTF-8 becomes '?'.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return '?'
		}
		return r
	}, s)
}

// tlsVersion names a TLS version the way the ESA's log lines do ("TLSv1.2").
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("TLS(0x%04x)", v)
}
