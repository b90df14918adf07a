package smtp

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Command is one parsed command line.
type Command struct {
	Verb string // upper case: "MAIL", "RCPT", ...; "" for an empty line
	Arg  string // the rest of the line after the verb and one space
}

// ParseCommand splits a command line (without its CRLF) into verb and
// argument. It does not validate the argument: that depends on the verb.
func ParseCommand(line []byte) Command {
	line = bytes.TrimRight(line, " \t")
	verb, arg, _ := bytes.Cut(line, []byte{' '})
	return Command{Verb: verbString(verb), Arg: string(bytes.TrimLeft(arg, " "))}
}

// knownVerbs are the verbs the engine recognises, upper case; a verb found
// here costs no allocation.
var knownVerbs = []string{"HELO", "EHLO", "STARTTLS", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "QUIT", "AUTH"}

// verbString returns the verb in upper case.
func verbString(b []byte) string {
	for _, v := range knownVerbs {
		if equalFoldASCII(b, v) {
			return v
		}
	}
	return string(bytes.ToUpper(b))
}

// equalFoldASCII compares b with the upper-case ASCII word v, ignoring case.
func equalFoldASCII(b []byte, v string) bool {
	if len(b) != len(v) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != v[i] {
			return false
		}
	}
	return true
}

// Path is a mailbox from MAIL FROM or RCPT TO, without the angle brackets.
// The zero Path is the null reverse-path "<>".
type Path struct {
	Local  string // as written, quotes included when the local part is quoted
	Domain string // a domain name or an address literal "[192.0.2.1]"; "" only for <> and <postmaster>
	// SourceRoute is whether the path began with an RFC 5321 source route
	// ("@a,@b:user@c"), which is dropped: a receiver may ignore it (RFC
	// 5321 C), but one that relays for nobody must refuse it.
	SourceRoute bool
}

// IsNull reports whether p is the null reverse-path.
func (p Path) IsNull() bool { return p.Local == "" && p.Domain == "" }

func (p Path) String() string {
	if p.Domain == "" {
		return p.Local
	}
	return p.Local + "@" + p.Domain
}

// Errors of address syntax, each with the reply it deserves.
var (
	errPathSyntax   = errors.New("bad address syntax")
	errPathTooLong  = errors.New("address too long")
	errNeedSMTPUTF8 = errors.New("non-ASCII address without SMTPUTF8")
)

// Length limits of RFC 5321 4.5.3.1.
const (
	maxLocalPart = 64
	maxDomain    = 255
	maxPath      = 256
)

// parsePathArg parses the argument of MAIL ("FROM:<...> params") or RCPT
// ("TO:<...> params"), given the keyword ("FROM:" or "TO:"). It tolerates a
// space after the colon, as most servers do, but not a missing bracket.
func parsePathArg(arg, keyword string) (path string, params string, err error) {
	if len(arg) < len(keyword) || !strings.EqualFold(arg[:len(keyword)], keyword) {
		return "", "", errPathSyntax
	}
	rest := strings.TrimLeft(arg[len(keyword):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", "", errPathSyntax
	}
	end := closingBracket(rest)
	if end < 0 {
		return "", "", errPathSyntax
	}
	path, params = rest[1:end], rest[end+1:]
	if params != "" && params[0] != ' ' {
		return "", "", errPathSyntax
	}
	return path, strings.TrimLeft(params, " "), nil
}

// closingBracket finds the '>' that ends the path, skipping quoted strings
// of the local part, where '>' may appear.
func closingBracket(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '>':
			return i
		}
	}
	return -1
}

// ParsePath parses the text between the angle brackets of a path. The
// source route of RFC 5321 ("@a,@b:user@c") is accepted and dropped. A
// local part alone is accepted only for "postmaster" (RCPT TO:<postmaster>).
// utf8 allows non-ASCII local parts and domains (RFC 6531).
func ParsePath(s string, utf8ok bool) (Path, error) {
	if s == "" {
		return Path{}, nil
	}
	if len(s) > maxPath {
		return Path{}, errPathTooLong
	}
	routed := s[0] == '@'
	if routed { // source route
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return Path{}, errPathSyntax
		}
		for _, hop := range strings.Split(s[1:i], ",") {
			if !validDomain(strings.TrimPrefix(hop, "@"), false) {
				return Path{}, errPathSyntax
			}
		}
		s = s[i+1:]
		if s == "" {
			return Path{}, errPathSyntax
		}
	}
	local, domain, err := splitMailbox(s)
	if err != nil {
		return Path{}, err
	}
	ascii := isASCII(s)
	if !ascii && !utf8ok {
		return Path{}, errNeedSMTPUTF8
	}
	if !ascii && !utf8.ValidString(s) {
		return Path{}, errPathSyntax
	}
	if domain == "" {
		if !strings.EqualFold(local, "postmaster") {
			return Path{}, errPathSyntax
		}
		return Path{Local: local, SourceRoute: routed}, nil
	}
	if len(local) > maxLocalPart || len(domain) > maxDomain {
		return Path{}, errPathTooLong
	}
	if !validLocal(local) {
		return Path{}, errPathSyntax
	}
	if domain[0] == '[' {
		if !validAddressLiteral(domain) {
			return Path{}, errPathSyntax
		}
	} else if !validDomain(domain, utf8ok) {
		return Path{}, errPathSyntax
	}
	return Path{Local: local, Domain: domain, SourceRoute: routed}, nil
}

// splitMailbox splits at the '@' that is not inside the quoted local part.
func splitMailbox(s string) (local, domain string, err error) {
	if s[0] == '"' {
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == '"' {
				break
			}
		}
		if i >= len(s) {
			return "", "", errPathSyntax
		}
		local, rest := s[:i+1], s[i+1:]
		if rest == "" {
			return local, "", nil
		}
		if rest[0] != '@' {
			return "", "", errPathSyntax
		}
		return local, rest[1:], nil
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s, "", nil
	}
	if at == len(s)-1 {
		return "", "", errPathSyntax
	}
	return s[:at], s[at+1:], nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// atext of RFC 5322, plus any non-ASCII byte (RFC 6531 UTF8-non-ascii;
// validity of the UTF-8 is checked on the whole path).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func validLocal(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '"' {
		if len(s) < 2 || s[len(s)-1] != '"' {
			return false
		}
		for i := 1; i < len(s)-1; i++ {
			c := s[i]
			if c == '\\' {
				i++
				if i >= len(s)-1 || s[i] < 32 || s[i] == 127 {
					return false
				}
				continue
			}
			// qtextSMTP: printable ASCII except '"' and '\', and space.
			if c == '"' || (c < 32) || c == 127 {
				return false
			}
		}
		return true
	}
	for atom := range strings.SplitSeq(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				return false
			}
		}
	}
	return true
}

// validDomain checks a domain name: dot-separated labels of letters, digits
// and hyphens, not starting or ending with a hyphen. Underscores are
// tolerated because real host names carry them; a trailing dot is not.
func validDomain(s string, utf8ok bool) bool {
	if s == "" || len(s) > maxDomain {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			case c >= 0x80 && utf8ok:
			default:
				return false
			}
		}
	}
	return true
}

// validAddressLiteral checks "[192.0.2.1]", "[IPv6:2001:db8::1]" and the
// general form "[tag:content]".
func validAddressLiteral(s string) bool {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	in := s[1 : len(s)-1]
	if tag, rest, ok := strings.Cut(in, ":"); ok {
		if strings.EqualFold(tag, "IPv6") {
			a, err := netip.ParseAddr(rest)
			return err == nil && a.Is6() && a.Zone() == ""
		}
		if !validDomain(tag, false) || rest == "" {
			return false
		}
		for i := 0; i < len(rest); i++ {
			if c := rest[i]; c < 33 || c > 126 || c == '[' || c == ']' || c == '\\' {
				return false
			}
		}
		return true
	}
	a, err := netip.ParseAddr(in)
	return err == nil && a.Is4()
}

// MailParams are the ESMTP parameters of MAIL FROM that mailgate supports.
type MailParams struct {
	Size     int64  // SIZE=, 0 when absent
	Body     string // "7BIT" or "8BITMIME", "" when absent
	SMTPUTF8 bool
	// Auth is the AUTH= parameter (RFC 4954 5), xtext-decoded: the
	// mailbox that submitted the message, "<>" for unknown, "" when absent.
	Auth string
}

var errParam = errors.New("unsupported parameter")

// parseMailParams parses "SIZE=1234 BODY=8BITMIME SMTPUTF8". Keywords are
// case-insensitive; each may appear once. The AUTH parameter (RFC 4954 5)
// is accepted from any client, as RFC 4954 wants; whether to believe it is
// the Handler's business.
func parseMailParams(s string) (MailParams, error) {
	var p MailParams
	seen := map[string]bool{}
	for _, f := range strings.Fields(s) {
		k, v, hasValue := strings.Cut(f, "=")
		k = strings.ToUpper(k)
		if seen[k] {
			return p, errParam
		}
		seen[k] = true
		switch k {
		case "SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			if !hasValue || err != nil || n < 0 {
				return p, errParam
			}
			p.Size = n
		case "BODY":
			v = strings.ToUpper(v)
			if v != "7BIT" && v != "8BITMIME" {
				return p, errParam
			}
			p.Body = v
		case "SMTPUTF8":
			if hasValue {
				return p, errParam
			}
			p.SMTPUTF8 = true
		case "AUTH":
			a, ok := decodeXtext(v)
			if !hasValue || !ok || a == "" {
				return p, errParam
			}
			p.Auth = a
		default:
			return p, errParam
		}
	}
	return p, nil
}
