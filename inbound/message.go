package inbound

import (
	"crypto/tls"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mailgate/mailgate/smtp"
)

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
	b = append(b, "Received: from "...)
	b = appendHeaderSafe(b, r.helo)
	b = append(b, " ("...)
	b = append(b, host...)
	b = append(b, " ["...)
	b = append(b, r.ip...)
	b = append(b, "])\r\n"...)
	if r.tls != nil {
		b = append(b, "\t(using "...)
		b = append(b, smtp.TLSVersion(r.tls.Version)...)
		b = append(b, " with cipher "...)
		b = append(b, tls.CipherSuiteName(r.tls.CipherSuite)...)
		b = append(b, ")\r\n"...)
	}
	b = append(b, "\tby "...)
	b = append(b, r.by...)
	b = append(b, " (mailgate) with "...)
	b = append(b, proto...)
	if r.tls != nil {
		b = append(b, 'S')
	}
	b = append(b, " id "...)
	b = strconv.AppendUint(b, r.mid, 10)
	if r.rcpt != "" {
		b = append(b, "\r\n\tfor <"...)
		b = appendHeaderSafe(b, r.rcpt)
		b = append(b, '>')
	}
	b = append(b, "; "...)
	b = r.at.AppendFormat(b, time.RFC1123Z)
	return append(b, "\r\n"...)
}

// appendHeaderSafe appends what a client wrote without letting it break the
// header: control characters and broken UTF-8 become '?'.
func appendHeaderSafe(b []byte, s string) []byte {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		b = utf8.AppendRune(b, r)
	}
	return b
}
