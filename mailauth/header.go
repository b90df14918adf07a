package mailauth

import (
	"bytes"
	"errors"
	"net/mail"
	"strings"
)

// fieldScanner splits the header of a message (up to the empty line, or as
// much of it as the message holds) into fields, one at a time. A field cut
// off at the end is left out; a line that is not a field ends the header,
// as the DKIM library reads it. It copies nothing: every message's header
// is walked (StripAuthResults), and the callers want a field or two of it
// by name. (Splitting it into strings, with a new strings.Replacer for
// each field, was a sixth of a relayed message's allocations.)
type fieldScanner struct {
	msg        []byte
	name, raw  []byte // the field's name, and its value as it is in msg
	start, end int    // the field's bounds in msg
}

// next moves to the next field and reports whether there is one.
func (s *fieldScanner) next() bool {
	msg, i := s.msg, s.end
	if i >= len(msg) || msg[i] == '\r' || msg[i] == '\n' {
		return false // the end, or the empty line
	}
	end := i
	for {
		nl := bytes.IndexByte(msg[end:], '\n')
		if nl < 0 {
			return false // cut off
		}
		end += nl + 1
		if end >= len(msg) || (msg[end] != ' ' && msg[end] != '\t') {
			break
		}
	}
	line := msg[i:end]
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	s.name, s.raw = bytes.TrimRight(line[:colon], " \t"), line[colon+1:]
	s.start, s.end = i, end
	return true
}

// is reports whether the field's name is name, without regard to case.
func (s *fieldScanner) is(name string) bool {
	return len(s.name) == len(name) && strings.EqualFold(string(s.name), name)
}

// unfold is a field's value without its line ends and its surrounding
// white space. (Trimming first changes nothing: CR and LF are white
// space, and removing those inside leaves the first and the last byte.)
func unfold(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if !bytes.ContainsAny(raw, "\r\n") {
		return string(raw)
	}
	v := make([]byte, 0, len(raw))
	for _, c := range raw {
		if c != '\r' && c != '\n' {
			v = append(v, c)
		}
	}
	return string(v)
}

// StripAuthResults returns head without the Authentication-Results fields
// that name authservID as their authserv-id (RFC 8601 5: a result claiming
// to be ours that came from outside is a forgery, or ours from an earlier
// pass, and must not be believed downstream). head is the start of a
// message (its header, and maybe more); what follows the header is kept.
// The second result is the number of fields removed; when it is 0, head
// itself is returned, and nothing was allocated.
func StripAuthResults(head []byte, authservID string) ([]byte, int) {
	var drop [][2]int // the fields' bounds
	for sc := (fieldScanner{msg: head}); sc.next(); {
		if sc.is("Authentication-Results") && strings.EqualFold(AuthServID(unfold(sc.raw)), authservID) {
			drop = append(drop, [2]int{sc.start, sc.end})
		}
	}
	if len(drop) == 0 {
		return head, 0
	}
	out := make([]byte, 0, len(head))
	at := 0
	for _, f := range drop {
		out = append(out, head[at:f[0]]...)
		at = f[1]
	}
	return append(out, head[at:]...), len(drop)
}

// AuthServID returns the authserv-id of an Authentication-Results value
// (RFC 8601 2.2): its first token, after comments, unquoted.
func AuthServID(v string) string {
	v = skipCFWS(v)
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			switch v[i] {
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			case '"':
				return b.String()
			default:
				b.WriteByte(v[i])
			}
		}
		return b.String()
	}
	end := strings.IndexAny(v, "; \t(")
	if end < 0 {
		end = len(v)
	}
	return v[:end]
}

// skipCFWS skips spaces and (nested) comments.
func skipCFWS(v string) string {
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case c == '\\' && depth > 0:
			i++
		case depth == 0 && c != ' ' && c != '\t':
			return v[i:]
		}
	}
	return ""
}

// Errors of FromDomain.
var (
	ErrNoFrom       = errors.New("no From header field")
	ErrMultipleFrom = errors.New("more than one author domain")
)

// FromDomain returns the domain of the RFC5322.From address of a header,
// lower case, which DMARC authenticates (RFC 7489 6.6.1). A message
// without one, or with authors in more than one domain, cannot be
// evaluated.
func FromDomain(head []byte) (string, error) {
	var domain string
	n := 0
	for sc := (fieldScanner{msg: head}); sc.next(); {
		if !sc.is("From") {
			continue
		}
		n++
		if n > 1 {
			return "", ErrMultipleFrom
		}
		value := unfold(sc.raw)
		var ds []string
		if list, err := mail.ParseAddressList(value); err == nil {
			for _, a := range list {
				ds = append(ds, a.Address[strings.LastIndexByte(a.Address, '@')+1:])
			}
		} else if d := crudeDomain(value); d != "" {
			// What the strict parser refuses (a bad display name) still
			// names its author's domain, and DMARC must not be skipped by
			// a malformed From.
			ds = append(ds, d)
		}
		for _, d := range ds {
			d = strings.ToLower(strings.TrimSuffix(d, "."))
			if domain != "" && d != domain {
				return "", ErrMultipleFrom
			}
			domain = d
		}
	}
	if domain == "" {
		return "", ErrNoFrom
	}
	return domain, nil
}

// crudeDomain takes the domain of the last address in v: after its last @,
// up to '>' or the end.
func crudeDomain(v string) string {
	i := strings.LastIndexByte(v, '@')
	if i < 0 {
		return ""
	}
	d := v[i+1:]
	if j := strings.IndexAny(d, "> \t;,()"); j >= 0 {
		d = d[:j]
	}
	if !isDomain(d) {
		return ""
	}
	return d
}
