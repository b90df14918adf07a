package config

import (
	"fmt"
	"net"
	"net/mail"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mailgate/mailgate/policy"
)

// ContentFilter is one entry of content_filters: a named filter that mail
// policies list (mail_policies ... content_filters) in the order they run.
// Its conditions are compiled here, once, so that a bad regular expression
// is a configuration error with its line.
type ContentFilter struct {
	Name       string
	Any        bool // combine: any (one condition matching is enough); all by default
	Conditions []FilterCondition
	Actions    []FilterAction
}

// Condition kinds of a content filter, as the configuration names them.
const (
	CondHeader         = "header"          // a header field (a named one, or any) matches a regexp; or is present
	CondBody           = "body"            // the decoded text of the body matches a regexp
	CondAttachmentName = "attachment_name" // a part's file name matches (a glob, or attachment_name_regex)
	CondDeclaredType   = "declared_type"   // a part's Content-Type matches a glob
	CondDetectedType   = "detected_type"   // a part's content, sniffed, is of a type that matches a glob
	CondSizeOver       = "size_over"       // the message is larger than this
	CondSizeUnder      = "size_under"      // the message is smaller than this
	CondRecipientsOver = "recipients_over" // the message (this policy's part of it) has more recipients than this
	CondSPF            = "spf"             // the MAIL FROM identity's SPF result is one of these
	CondDKIM           = "dkim"            // a DKIM signature's result is one of these ("none": no signature)
	CondDMARC          = "dmarc"           // the DMARC result is one of these
	CondDNSList        = "dnslist"         // a dnslist HAT rule placed the client, on one of these zones ("*": any)
	CondSender         = "sender"          // the envelope sender matches an address pattern
	CondRecipient      = "recipient"       // a recipient matches an address pattern
)

// FilterCondition is one condition of a content filter.
type FilterCondition struct {
	Kind string
	Not  bool // the condition holds when the test does not
	// Header is the field a header condition reads, lower case; "" is
	// any field (the regexp sees "Name: value").
	Header string
	// Regexp is the test of header (nil: the field is present), body,
	// attachment_name, declared_type and detected_type (globs become one
	// case-insensitive regexp).
	Regexp *regexp.Regexp
	// Words are the results of spf, dkim and dmarc, and the zones of
	// dnslist, lower case.
	Words []string
	// Addrs are the patterns of sender and recipient.
	Addrs []policy.AddrPattern
	// Number is the bytes of size_over and size_under, the count of
	// recipients_over.
	Number int64
}

// Action kinds of a content filter.
const (
	ActDrop          = "drop"
	ActBounce        = "bounce"
	ActDeliver       = "deliver"
	ActQuarantine    = "quarantine"
	ActAddHeader     = "add_header"
	ActStripHeader   = "strip_header"
	ActTagSubject    = "tag_subject"
	ActAltRecipient  = "alternate_recipient"
	ActAltHost       = "alternate_host"
	ActNotify        = "notify"
	ActLogEntry      = "log_entry"
	ActSkipRemaining = "skip_remaining"
)

// FilterAction is one action of a content filter, with its argument (the
// quarantine's name, the header field, the tag, the address, the host,
// the text).
type FilterAction struct {
	Kind string
	Arg  string
}

var (
	condKinds = []string{CondHeader, CondBody, CondAttachmentName, "attachment_name_regex", CondDeclaredType, CondDetectedType,
		CondSizeOver, CondSizeUnder, CondRecipientsOver, CondSPF, CondDKIM, CondDMARC, CondDNSList, CondSender, CondRecipient}
	argActions  = []string{ActQuarantine, ActAddHeader, ActStripHeader, ActTagSubject, ActAltRecipient, ActAltHost, ActNotify, ActLogEntry}
	bareActions = []string{ActDrop, ActBounce, ActDeliver, ActSkipRemaining}
	authWords   = map[string][]string{
		CondSPF:   {"none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"},
		CondDKIM:  {"none", "pass", "fail", "temperror", "permerror"},
		CondDMARC: {"none", "pass", "fail", "temperror", "permerror"},
	}
	fieldName = regexp.MustCompile(`^[!-9;-~]+$`) // RFC 5322 ftext
)

// isEngine reports whether name is a scanning engine's (scanners).
func isEngine(name string) bool {
	switch name {
	case "rspamd", "spamassassin", "clamav":
		return true
	}
	return false
}

// contentFilters decodes the top-level content_filters list.
func (d *decoder) contentFilters(n *yaml.Node, path string) []ContentFilter {
	var out []ContentFilter
	names := map[string]bool{}
	for i, it := range d.list(n, path) {
		p := index(path, i)
		f := d.fields(it, p, "name", "combine", "conditions", "actions")
		cf := ContentFilter{}
		if v := f["name"]; present(v) {
			if s, ok := d.str(v, join(p, "name")); ok {
				switch {
				case !engineName.MatchString(s):
					d.errorf(v, join(p, "name"), "%q: a name is letters, digits, '_', '.' and '-', at most 64", s)
				case names[s]:
					d.errorf(v, join(p, "name"), "content filter %q is defined already", s)
				case isEngine(s):
					// A policy names its engines and its filters in one
					// namespace: the filter would run in the engine's place.
					d.errorf(v, join(p, "name"), "%q is a scanning engine's name: a content filter needs a name of its own", s)
				}
				names[s] = true
				cf.Name = s
			}
		} else {
			d.errorf(it, join(p, "name"), "required")
		}
		if v := f["combine"]; present(v) {
			s, _ := d.oneOf(v, join(p, "combine"), "all", "any")
			cf.Any = s == "any"
		}
		if v := f["conditions"]; present(v) {
			cp := join(p, "conditions")
			for k, c := range d.list(v, cp) {
				if fc, ok := d.filterCondition(c, index(cp, k)); ok {
					cf.Conditions = append(cf.Conditions, fc)
				}
			}
		}
		if v := f["actions"]; present(v) {
			cf.Actions = d.filterActions(v, join(p, "actions"))
		} else {
			d.errorf(it, join(p, "actions"), "required: what the filter does to a message it matches")
		}
		out = append(out, cf)
	}
	return out
}

// filterCondition decodes one condition: a mapping of one kind (and, for
// header, its matches), with not: true to negate it.
func (d *decoder) filterCondition(n *yaml.Node, path string) (FilterCondition, bool) {
	f := d.fields(n, path, append(slices.Clone(condKinds), "matches", "not")...)
	c := FilterCondition{}
	var kind string
	for _, k := range condKinds {
		if present(f[k]) {
			if kind != "" {
				d.errorf(n, path, "one test per condition: %s and %s (list them as two conditions)", kind, k)
				return c, false
			}
			kind = k
		}
	}
	if kind == "" {
		d.errorf(n, path, "a condition needs one of %s", strings.Join(condKinds, ", "))
		return c, false
	}
	if v := f["not"]; present(v) {
		c.Not, _ = d.boolean(v, join(path, "not"))
	}
	if present(f["matches"]) && kind != CondHeader {
		d.errorf(f["matches"], join(path, "matches"), "matches goes with header only")
	}
	v, p := f[kind], join(path, kind)
	c.Kind = kind
	switch kind {
	case CondHeader:
		s, ok := d.str(v, p)
		if !ok {
			return c, false
		}
		if s != "*" {
			if !fieldName.MatchString(s) {
				d.errorf(v, p, "%q is not a header field name (or * for any)", s)
				return c, false
			}
			c.Header = strings.ToLower(s)
		}
		if m := f["matches"]; present(m) {
			c.Regexp = d.regexp(m, join(path, "matches"))
			if c.Regexp == nil {
				return c, false
			}
		}
	case CondBody:
		if c.Regexp = d.regexp(v, p); c.Regexp == nil {
			return c, false
		}
	case "attachment_name_regex":
		c.Kind = CondAttachmentName
		if c.Regexp = d.regexp(v, p); c.Regexp == nil {
			return c, false
		}
	case CondAttachmentName, CondDeclaredType, CondDetectedType:
		if c.Regexp = d.globs(v, p); c.Regexp == nil {
			return c, false
		}
	case CondSizeOver, CondSizeUnder:
		var ok bool
		if c.Number, ok = d.size(v, p); !ok {
			return c, false
		}
	case CondRecipientsOver:
		k, ok := d.integer(v, p, 0)
		if !ok {
			return c, false
		}
		c.Number = int64(k)
	case CondSPF, CondDKIM, CondDMARC, CondDNSList:
		for i, it := range d.strOrList(v, p) {
			w := strings.ToLower(strings.TrimSuffix(it.Value, "."))
			if words := authWords[kind]; words != nil && !slices.Contains(words, w) {
				d.errorf(it.Node, index(p, i), "%q: want one of %s", it.Value, strings.Join(words, ", "))
				continue
			}
			c.Words = append(c.Words, w)
		}
		if len(c.Words) == 0 {
			return c, false
		}
	case CondSender, CondRecipient:
		for i, it := range d.strOrList(v, p) {
			a, err := policy.ParseAddrPattern(it.Value)
			if err != nil {
				d.errorf(it.Node, index(p, i), "%v", err)
				continue
			}
			c.Addrs = append(c.Addrs, a)
		}
		if len(c.Addrs) == 0 {
			return c, false
		}
	}
	return c, true
}

type strItem struct {
	Value string
	Node  *yaml.Node
}

// strOrList decodes a string or a list of strings.
func (d *decoder) strOrList(n *yaml.Node, path string) []strItem {
	var out []strItem
	if n.Kind == yaml.ScalarNode {
		if s, ok := d.str(n, path); ok {
			out = append(out, strItem{s, n})
		}
		return out
	}
	for i, it := range d.list(n, path) {
		if s, ok := d.str(it, index(path, i)); ok {
			out = append(out, strItem{s, it})
		}
	}
	return out
}

// regexp compiles a Go (RE2) regular expression.
func (d *decoder) regexp(n *yaml.Node, path string) *regexp.Regexp {
	s, ok := d.str(n, path)
	if !ok {
		return nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return nil
	}
	return re
}

// globs compiles shell patterns ("*.exe", "application/*"), one or a
// list, into one case-insensitive regexp that matches a whole name.
func (d *decoder) globs(n *yaml.Node, path string) *regexp.Regexp {
	var alts []string
	for i, it := range d.strOrList(n, path) {
		if _, err := pathMatch(it.Value); err != nil || it.Value == "" {
			d.errorf(it.Node, index(path, i), "%q is not a pattern (*, ?, [a-z])", it.Value)
			continue
		}
		alts = append(alts, globRegexp(it.Value))
	}
	if len(alts) == 0 {
		return nil
	}
	return regexp.MustCompile(`(?is)^(?:` + strings.Join(alts, "|") + `)$`)
}

func pathMatch(p string) (bool, error) { return path.Match(p, "") }

// globRegexp turns a pattern path.Match accepts into a regexp; * and ?
// also match '/', so that "*.exe" matches a name with a folder and
// "application/*" every subtype.
func globRegexp(g string) string {
	var b strings.Builder
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '\\':
			if i+1 < len(g) {
				_, n := utf8.DecodeRuneInString(g[i+1:])
				b.WriteString(regexp.QuoteMeta(g[i+1 : i+1+n]))
				i += n
			}
		case '[':
			n, class := globClass(g[i+1:])
			b.WriteString(class)
			i += n
		default:
			// Whole UTF-8 sequences: a name may be "résumé*".
			_, n := utf8.DecodeRuneInString(g[i:])
			b.WriteString(regexp.QuoteMeta(g[i : i+n]))
			i += n - 1
		}
	}
	return b.String()
}

// globClass turns the character class at the start of g (after its '[')
// into a regexp class, and returns the bytes it took with the ']'. Each
// range is written out with its ends quoted, so that one path.Match takes
// but a regexp would refuse ("[x-0]", which matches nothing) means the
// same.
func globClass(g string) (int, string) {
	i, negate := 0, false
	if strings.HasPrefix(g, "^") {
		i, negate = 1, true
	}
	char := func() rune {
		if g[i] == '\\' {
			i++
		}
		r, n := utf8.DecodeRuneInString(g[i:])
		i += n
		return r
	}
	var ranges []string
	for i < len(g) && g[i] != ']' {
		lo := char()
		hi := lo
		if i+1 < len(g) && g[i] == '-' {
			i++
			hi = char()
		}
		if lo <= hi {
			ranges = append(ranges, fmt.Sprintf(`\x{%x}-\x{%x}`, lo, hi))
		}
	}
	i++ // the ']'
	switch {
	case len(ranges) == 0 && negate:
		return i, `[\x{0}-\x{10ffff}]`
	case len(ranges) == 0:
		return i, `[^\x{0}-\x{10ffff}]`
	case negate:
		return i, "[^" + strings.Join(ranges, "") + "]"
	}
	return i, "[" + strings.Join(ranges, "") + "]"
}

// filterActions decodes the actions: a word (drop, bounce, deliver,
// skip_remaining) or a mapping of one action to its argument.
func (d *decoder) filterActions(n *yaml.Node, path string) []FilterAction {
	var out []FilterAction
	final := ""
	for i, it := range d.list(n, path) {
		p := index(path, i)
		var a FilterAction
		var arg *yaml.Node
		if it.Kind == yaml.ScalarNode {
			if !slices.Contains(bareActions, it.Value) {
				if slices.Contains(argActions, it.Value) {
					d.errorf(it, p, "%s takes an argument: {%s: ...}", it.Value, it.Value)
				} else {
					d.errorf(it, p, "%q: want one of %s, or {%s: ...}", it.Value, strings.Join(bareActions, ", "), strings.Join(argActions, "|"))
				}
				continue
			}
			a.Kind = it.Value
		} else {
			f := d.fields(it, p, argActions...)
			if len(f) != 1 {
				if len(f) > 1 {
					d.errorf(it, p, "one action per entry")
				}
				continue
			}
			for k, v := range f {
				a.Kind, arg = k, v
			}
		}
		switch a.Kind {
		case ActDrop, ActBounce, ActDeliver, ActQuarantine:
			if final != "" && (a.Kind != ActQuarantine || final != ActQuarantine) {
				d.errorf(it, p, "%s after %s: a filter has one final action (drop, bounce, deliver or quarantine)", a.Kind, final)
				continue
			}
			final = a.Kind
		}
		if arg != nil {
			ap := join(p, a.Kind)
			s, ok := d.text(arg, ap)
			if !ok {
				continue
			}
			if msg := checkActionArg(a.Kind, s); msg != "" {
				d.errorf(arg, ap, "%q: %s", s, msg)
				continue
			}
			if a.Kind == ActStripHeader {
				s = strings.ToLower(s)
			}
			if a.Kind == ActQuarantine {
				d.quarantineRefs = append(d.quarantineRefs, quarantineRef{arg, ap, s})
			}
			a.Arg = s
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		d.errorf(n, path, "no action: a filter needs at least one")
	}
	return out
}

// checkActionArg says what is wrong with an action's argument, "" when
// nothing.
func checkActionArg(kind, s string) string {
	switch kind {
	case ActQuarantine:
		if !quarantineName.MatchString(s) {
			return "a quarantine's name is letters, digits, spaces, '_', '.' and '-', at most 64"
		}
	case ActAddHeader:
		name, value, ok := strings.Cut(s, ":")
		if !ok || !fieldName.MatchString(name) || strings.TrimSpace(value) == "" {
			return `want "Name: value"`
		}
	case ActStripHeader:
		if !fieldName.MatchString(s) {
			return "not a header field name"
		}
	case ActTagSubject:
		if strings.TrimSpace(s) == "" {
			return "an empty tag"
		}
	case ActAltRecipient, ActNotify:
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s, "@") {
			return "want a bare address with a domain (user@example.com)"
		}
		if checkPostmaster(s) != nil {
			// The envelope of a message the gateway makes is not SMTPUTF8.
			return "the address must be ASCII"
		}
	case ActAltHost:
		host := s
		if h, p, err := net.SplitHostPort(s); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return "a port is 1 to 65535"
			}
			host = h
		}
		if host == "" || strings.ContainsAny(host, " /@[]") {
			return "want host or host:port ([v6]:port)"
		}
	case ActLogEntry:
		if strings.TrimSpace(s) == "" {
			return "an empty entry"
		}
	}
	return ""
}
