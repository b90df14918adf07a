package syslog

import "strings"

// HostOf returns the HOSTNAME field of an RFC 5424 or RFC 3164 message, or
// "" when the message has none or cannot be read as either.
//
// RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME ...", where a HOSTNAME of
// "-" means none.
//
// RFC 3164: "<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: msg". The day may be padded
// with a space ("Mar  7") or not at all, the seconds may have a fraction,
// and an RFC 3339 timestamp (as rsyslog forwards) is accepted too. Senders
// often leave the HOSTNAME out, Cisco ESAs among them:
//
//	<166>Mar 17 18:24:37 mail_logs: Info: New SMTP ICID 5 interface ...
//
// so the token after the timestamp counts as a host only if it is made of
// host name characters (letters, digits, '.', '-', '_', and ':' for IPv6),
// does not end with ':' and is followed by more text; "mail_logs:" or
// "sshd[42]:" is a TAG and gives "".
//
// The PRI is optional: a line without one is read the same way, which is
// how rsyslog and syslog-ng write their files by default:
//
//	Jun 26 10:42:23 esa1.example.edu mail_logs: Info: ...
//
// A collector that rewraps lines with the year before the month (Splunk's
// "2019 Sep 28 16:13:51 ironport_server mail [info] ...") names the host
// the same way, after the timestamp.
func HostOf(line string) string {
	s := skipPRI(line)
	if rest, ok := cutVersion(s); ok {
		if host, ok := host5424(rest); ok {
			return host
		}
	}
	return host3164(s)
}

// skipPRI drops a well-formed "<0>".."<191>" prefix. A malformed one is
// left in place, so that the timestamp checks below fail on it rather than
// a guess being made past it.
func skipPRI(s string) string {
	if len(s) < 3 || s[0] != '<' {
		return s
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 || !allDigits(s[1:end]) {
		return s
	}
	return s[end+1:]
}

// cutVersion drops the RFC 5424 VERSION ("1" today; NONZERO-DIGIT 0*2DIGIT)
// and the space after it.
func cutVersion(s string) (string, bool) {
	i := 0
	for i < len(s) && i < 3 && isDigit(s[i]) {
		i++
	}
	if i == 0 || s[0] == '0' || i >= len(s) || s[i] != ' ' {
		return "", false
	}
	return s[i+1:], true
}

// host5424 reads "TIMESTAMP HOSTNAME ..." after the version. The timestamp
// must be "-" or look like a full date, so that an RFC 3164 message whose
// text happens to begin with "1 " is not taken for RFC 5424.
func host5424(s string) (string, bool) {
	ts, rest, ok := strings.Cut(s, " ")
	if !ok || (ts != "-" && !isRFC3339(ts)) {
		return "", false
	}
	host, _, _ := strings.Cut(rest, " ")
	if host == "" || host == "-" || len(host) > 255 || !printASCII(host) {
		return "", true
	}
	return host, true
}

// host3164 reads "TIMESTAMP HOSTNAME TAG...".
func host3164(s string) string {
	var rest string
	if len(s) > 5 && allDigits(s[:4]) && s[4] == ' ' {
		s = s[5:] // the collector form: the year first
	}
	if ts, r, ok := strings.Cut(s, " "); ok && isRFC3339(ts) {
		rest = r
	} else if n := bsdTimestamp(s); n > 0 && n < len(s) && s[n] == ' ' {
		rest = s[n+1:]
	} else {
		return ""
	}
	host, after, ok := strings.Cut(rest, " ")
	// A token with nothing after it is the message itself, not a host.
	if !ok || after == "" || host == "" || host[len(host)-1] == ':' {
		return ""
	}
	for i := 0; i < len(host); i++ {
		if !isHostByte(host[i]) {
			return ""
		}
	}
	return host
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// bsdTimestamp returns the length of the "Mmm dd hh:mm:ss" timestamp that
// s begins with, 0 if none. Besides the standard form it takes an unpadded
// day ("Mar 7") and a fraction of a second ("18:24:37.123").
func bsdTimestamp(s string) int {
	if len(s) < 4 || s[3] != ' ' {
		return 0
	}
	known := false
	for _, m := range months {
		if s[:3] == m {
			known = true
			break
		}
	}
	if !known {
		return 0
	}
	i := 4
	switch {
	case i+1 < len(s) && s[i] == ' ' && isDigit(s[i+1]): // "Mar  7"
		i += 2
	case i+1 < len(s) && isDigit(s[i]) && isDigit(s[i+1]): // "Mar 17", "Mar 07"
		i += 2
	case i < len(s) && isDigit(s[i]): // "Mar 7"
		i++
	default:
		return 0
	}
	if i >= len(s) || s[i] != ' ' {
		return 0
	}
	i++
	t := s[i:]
	if len(t) < 8 || !isDigit(t[0]) || !isDigit(t[1]) || t[2] != ':' ||
		!isDigit(t[3]) || !isDigit(t[4]) || t[5] != ':' || !isDigit(t[6]) || !isDigit(t[7]) {
		return 0
	}
	i += 8
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i
}

// isRFC3339 is a loose check, enough to tell a timestamp from a word:
// "YYYY-MM-DDT" followed by anything.
func isRFC3339(s string) bool {
	return len(s) > 11 && allDigits(s[:4]) && s[4] == '-' && allDigits(s[5:7]) &&
		s[7] == '-' && allDigits(s[8:10]) && (s[10] == 'T' || s[10] == 't')
}

func isHostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) ||
		c == '.' || c == '-' || c == '_' || c == ':'
}

func printASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
