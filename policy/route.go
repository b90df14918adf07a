package policy

import "strings"

// SenderRouted reports whether a recipient names its own route beyond the
// domain it is addressed to, which a gateway that relays only for its own
// domains must refuse from clients it does not relay for (Postfix's
// allow_untrusted_routing = no): a host that passes "user%other.example"
// or "other.example!user" on to a mail store which still honours the old
// percent hack or UUCP bang paths relays for anyone. local is the local
// part as written, quotes included; sourceRoute is whether the path had an
// RFC 5321 source route ("@a,@b:user@c"), which says the same thing.
//
// The forms: '%' or '!' in the local part, and, in a quoted local part
// ("user@other.example"@ours), '@' as well.
func SenderRouted(local string, sourceRoute bool) bool {
	if sourceRoute {
		return true
	}
	if strings.HasPrefix(local, `"`) {
		return strings.ContainsAny(unquote(local), "@%!")
	}
	return strings.ContainsAny(local, "%!")
}

// unquote returns the content of a quoted string without its quotes and
// backslashes.
func unquote(s string) string {
	s = strings.TrimPrefix(s, `"`)
	s = strings.TrimSuffix(s, `"`)
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
