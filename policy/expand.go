package policy

import (
	"strings"
)

// Expand replaces the ESA's HAT variables in a banner text:
//
//	$Group     the sender group of the decision, "None" for the default policy
//	$HATEntry  the rule that matched ("ALL" for the default)
//	$RemoteIP  the client's address (IPv4-mapped addresses as IPv4)
//	$Hostname  the client's host name if verified; "None" when it has no
//	           name; "Unknown" when it has one that did not verify
//	$OrgID     "None" (mailgate has no SenderBase)
//
// Names are case-insensitive, as on the ESA. A variable name is the longest
// run of letters after the '$'; an unknown one ("$Foo", "$Hostnames") is left
// as it is.
//
// The ESA's $Hostname is "Unknown" when the lookup failed; a Client does not
// say whether it failed or found nothing, so a failed lookup gives "None".
//
// The values come from the network (a verified PTR name is still chosen by
// the owner of the address), so any byte that is not printable ASCII becomes
// '?': an expanded banner can never hold CR or LF.
func Expand(text string, d Decision, c Client) string {
	if !strings.Contains(text, "$") {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 32)
	for {
		i := strings.IndexByte(text, '$')
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:i])
		text = text[i+1:]
		n := 0
		for n < len(text) && isLetter(text[n]) {
			n++
		}
		v, ok := variable(text[:n], d, c)
		if !ok {
			b.WriteByte('$')
			continue
		}
		for j := 0; j < len(v); j++ {
			if ch := v[j]; ch >= ' ' && ch < 0x7f {
				b.WriteByte(ch)
			} else {
				b.WriteByte('?')
			}
		}
		text = text[n:]
	}
}

func variable(name string, d Decision, c Client) (string, bool) {
	switch strings.ToLower(name) {
	case "group":
		return d.Group, true
	case "hatentry":
		return d.Rule, true
	case "remoteip":
		return c.IP.Unmap().String(), true
	case "orgid":
		return "None", true
	case "hostname":
		switch {
		case c.Verified && c.Host != "":
			return strings.TrimSuffix(c.Host, "."), true
		case c.Host == "":
			return "None", true
		}
		return "Unknown", true
	}
	return "", false
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// usesVar reports whether text refers to the variable name (lower case).
func usesVar(text, name string) bool {
	for {
		i := strings.IndexByte(text, '$')
		if i < 0 {
			return false
		}
		text = text[i+1:]
		n := 0
		for n < len(text) && isLetter(text[n]) {
			n++
		}
		if strings.EqualFold(text[:n], name) {
			return true
		}
	}
}
