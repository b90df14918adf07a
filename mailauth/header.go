package mailauth

import (
	"bytes"
	"errors"
	"net/mail"
	"strings"
)

// field is one header field of a message.
type field struct {
	name  string
	value string // unfolded, without the line ends
	start int    // where the field starts in the header
	end   int    // past its last line end
}

// fields splits the header of msg (up to the empty line, or as much of it
// as msg holds) into fields. A field cut off at the end of msg is left out;
// lines that are not fields end the header, as the DKIM library reads it.
func fields(msg []byte) []field {
	var out []field
	i := 0
	for i < len(msg) {
		if msg[i] == '\r' || msg[i] == '\n' {
			break // the empty line
		}
		end := i
		for {
			nl := bytes.IndexByte(msg[end:], '\n')
			if nl < 0 {
				return out // cut off
			}
			end += nl + 1
			if end >= len(msg) || (msg[end] != ' ' && msg[end] != '\t') {
				break
			}
		}
		line := msg[i:end]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return out
		}
		name := string(bytes.TrimRight(line[:colon], " \t"))
		v := string(line[colon+1:])
		v = strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(v)
		out = append(out, field{name: name, value: strings.TrimSpace(v), start: i, end: end})
		i = end
	}
	return out
}

// StripAuthResults returns head without the Authentication-Results fields
// that name authservID as their authserv-id (RFC 8601 5: a result claiming
// to be ours that came from outside is a forgery, or ours from an earlier
// pass, and must not be believed downstream). head is the start of a
// message (its header, and maybe more); what follows the header is kept.
// The second result is the number of fields removed; when it is 0, head
// itself is returned.
func StripAuthResults(head []byte, authservID string) ([]byte, int) {
	var drop []field
	for _, f := range fields(head) {
		if strings.EqualFold(f.name, "Authentication-Results") && strings.EqualFold(AuthServID(f.value), authservID) {
			drop = append(drop, f)
		}
	}
	if len(drop) == 0 {
		return head, 0
	}
	out := make([]byte, 0, len(head))
	at := 0
	for _, f := range drop {
		out = append(out, head[at:f.start]...)
		at = f.end
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
	for _, f := range fields(head) {
		if !strings.EqualFold(f.name, "From") {
			continue
		}
		n++
		if n > 1 {
			return "", ErrMultipleFrom
		}
		var ds []string
		if list, err := mail.ParseAddressList(f.value); err == nil {
			for _, a := range list {
				ds = append(ds, a.Address[strings.LastIndexByte(a.Address, '@')+1:])
			}
		} else if d := crudeDomain(f.value); d != "" {
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
