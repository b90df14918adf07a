package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Client is what the HAT knows about a connecting host when it decides.
type Client struct {
	IP       netip.Addr
	Host     string // reverse DNS name ("" when none)
	Verified bool   // PTR then forward lookup confirmed IP; host-name rules match only when true
	// DNSLists holds the answers of the DNS lists the HAT names (see
	// HAT.DNSListsFor), by zone in lower case without the trailing dot: the
	// A records the list returned for the client, none when it is not
	// listed. A zone missing from the map (not asked, or the list did not
	// answer in time) matches no dnslist rule: a list that cannot be reached
	// neither blocks nor allows.
	DNSLists map[string][]netip.Addr
}

type ruleKind uint8

const (
	ruleAll     ruleKind = iota + 1
	ruleIP               // an address range lo..hi (address, CIDR, range, partial subnet)
	ruleHost             // one host name
	ruleDomain           // any host strictly under a domain
	ruleDNSList          // the client is listed in a DNS list with a code in codes
)

// Rule is one sender-group entry ("sender" in the ESA): an address, a
// network, an address range, a host name, a partial host name, a DNS list or
// ALL. The zero Rule matches nothing.
type Rule struct {
	text   string
	kind   ruleKind
	lo, hi netip.Addr  // ruleIP: the inclusive range, both unmapped, same family
	name   string      // ruleHost: "mx.example.com"; ruleDomain: ".example.com"; ruleDNSList: the zone (lower case)
	codes  []codeRange // ruleDNSList: the answers that count
}

// codeRange is an inclusive range of DNS list answers (IPv4 addresses).
type codeRange struct{ lo, hi netip.Addr }

// DefaultListCodes are the answers a dnslist rule without codes counts:
// 127.0.0.0/8 but 127.255.255.0/24, where Spamhaus and others put their
// error codes (127.255.255.254: "you asked through a public resolver"),
// which would otherwise list every client. An answer outside 127.0.0.0/8
// (a resolver that rewrites NXDOMAIN to an advertising page) never counts
// either.
const DefaultListCodes = "127.0.0.0-127.255.254.255"

// DNSList returns the zone of a dnslist rule, "" for any other rule.
func (r Rule) DNSList() string {
	if r.kind != ruleDNSList {
		return ""
	}
	return r.name
}

// String returns the entry as configured; it is what the HAT line logs after
// "match".
func (r Rule) String() string { return r.text }

// NeedsHostname reports whether the rule looks at the client's host name,
// so that a listener knows whether a reverse DNS lookup can matter.
func (r Rule) NeedsHostname() bool { return r.kind == ruleHost || r.kind == ruleDomain }

// Match reports whether the client is covered by the rule.
//
// An IPv4-mapped IPv6 client address (::ffff:10.1.1.1, what a dual-stack
// socket reports) is treated as the IPv4 address. IPv6 rules match only IPv6
// clients. Host-name rules match only a verified name, as on the ESA: a PTR
// record alone is controlled by whoever owns the address block, so an
// unverified name would let any host claim to be mx.partner.net.
func (r Rule) Match(c Client) bool {
	switch r.kind {
	case ruleAll:
		return true
	case ruleIP:
		ip := c.IP.Unmap().WithZone("")
		return ip.BitLen() == r.lo.BitLen() && r.lo.Compare(ip) <= 0 && ip.Compare(r.hi) <= 0
	case ruleHost:
		if !c.Verified {
			return false
		}
		return strings.EqualFold(strings.TrimSuffix(c.Host, "."), r.name)
	case ruleDomain:
		if !c.Verified {
			return false
		}
		h := strings.TrimSuffix(c.Host, ".")
		// r.name has its leading dot, so a longer h has at least one label
		// before it: "example.com" itself is not "under" .example.com.
		return len(h) > len(r.name) && strings.EqualFold(h[len(h)-len(r.name):], r.name)
	case ruleDNSList:
		_, ok := r.listCode(c)
		return ok
	}
	return false
}

// listCode returns the first answer of the rule's DNS list for the client
// that the rule counts.
func (r Rule) listCode(c Client) (netip.Addr, bool) {
	if r.kind != ruleDNSList {
		return netip.Addr{}, false
	}
	for _, a := range c.DNSLists[r.name] {
		a = a.Unmap()
		for _, cr := range r.codes {
			if cr.lo.Compare(a) <= 0 && a.Compare(cr.hi) <= 0 {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// ParseRule parses a sender-group entry:
//
//	10.1.1.1, ::1                      one address
//	10.1.0.0/16, 2001:db8::/32         a network (host bits must be zero)
//	10.1.1.10-20                       a range of the last octet
//	10.1.1.10-10.1.2.20, ::1-::ff      a range between two addresses
//	10.2.3, 10.2.3., 10.2, 10          a partial address: 10.2.3.0/24, 10.2.0.0/16, 10.0.0.0/8
//	mx.partner.net, mx.partner.net.    one host name (case-insensitive)
//	.example.com                       any host strictly under example.com
//	ALL                                every client
//	dnslist[zen.spamhaus.org]          a client the DNS list zen.spamhaus.org lists
//	                                   with a code in DefaultListCodes
//	dnslist[zen.spamhaus.org:127.0.0.2-127.0.0.11,127.0.0.20]
//	                                   ... with one of these codes (addresses,
//	                                   ranges, networks, as IPv4 rules)
//
// Surrounding white space is ignored. SenderBase (sbrs[...]) entries of the
// ESA are rejected: mailgate has no reputation service.
func ParseRule(s string) (Rule, error) {
	text := strings.TrimSpace(s)
	r, err := parseRule(text)
	if err != nil {
		return Rule{}, fmt.Errorf("invalid rule %q: %w", text, err)
	}
	r.text = text
	return r, nil
}

func parseRule(s string) (Rule, error) {
	switch {
	case s == "":
		return Rule{}, errors.New("empty")
	case strings.EqualFold(s, "ALL"):
		return Rule{kind: ruleAll}, nil
	case strings.HasPrefix(strings.ToLower(s), "sbrs["):
		return Rule{}, errors.New("SenderBase reputation rules are not supported")
	case strings.HasPrefix(strings.ToLower(s), "dnslist["):
		return parseDNSList(s)
	case strings.Contains(s, ":"):
		return parseIPv6Rule(s)
	case strings.Contains(s, "/"), strings.Trim(s, "0123456789.-") == "" && strings.ContainsAny(s, "0123456789"):
		// "/" is never part of a host name; digits and dots alone are an
		// address (the last label of a host name is never all digits).
		return parseIPv4Rule(s)
	}
	name, err := parseHostPattern(s)
	if err != nil {
		return Rule{}, err
	}
	if strings.HasPrefix(name, ".") {
		return Rule{kind: ruleDomain, name: name}, nil
	}
	return Rule{kind: ruleHost, name: name}, nil
}

// parseDNSList parses "dnslist[zone]" and "dnslist[zone:codes]".
func parseDNSList(s string) (Rule, error) {
	inner, ok := strings.CutSuffix(s[len("dnslist["):], "]")
	if !ok {
		return Rule{}, errors.New(`a DNS list rule ends with "]"`)
	}
	zone, codes, hasCodes := strings.Cut(inner, ":")
	zone = strings.TrimSuffix(strings.TrimSpace(zone), ".")
	if err := CheckDomain(zone); err != nil {
		return Rule{}, fmt.Errorf("DNS list zone: %w", err)
	}
	if !strings.Contains(zone, ".") {
		return Rule{}, fmt.Errorf("DNS list zone %q is not a domain name", zone)
	}
	if !hasCodes {
		codes = DefaultListCodes
	}
	r := Rule{kind: ruleDNSList, name: strings.ToLower(zone)}
	for c := range strings.SplitSeq(codes, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			return Rule{}, errors.New("empty DNS list code")
		}
		if strings.Contains(c, ":") {
			return Rule{}, fmt.Errorf("DNS list code %q: the codes are IPv4 addresses (A records)", c)
		}
		cr, err := parseIPv4Rule(c)
		if err != nil {
			return Rule{}, fmt.Errorf("DNS list code %q: %w", c, err)
		}
		r.codes = append(r.codes, codeRange{cr.lo, cr.hi})
	}
	return r, nil
}

func parseIPv4Rule(s string) (Rule, error) {
	if addr, bits, ok := strings.Cut(s, "/"); ok {
		ip, err := parseIPv4(addr)
		if err != nil {
			return Rule{}, err
		}
		n, err := strconv.Atoi(bits)
		if err != nil || bits == "" || bits[0] == '+' || bits[0] == '-' {
			return Rule{}, fmt.Errorf("prefix length %q is not a number", bits)
		}
		if n > 32 {
			return Rule{}, fmt.Errorf("prefix length %d is beyond 32 for IPv4", n)
		}
		return prefixRule(netip.PrefixFrom(ip, n))
	}
	if from, to, ok := strings.Cut(s, "-"); ok {
		lo, err := parseIPv4(from)
		if err != nil {
			return Rule{}, fmt.Errorf("range start: %w", err)
		}
		var hi netip.Addr
		if strings.Contains(to, ".") {
			if hi, err = parseIPv4(to); err != nil {
				return Rule{}, fmt.Errorf("range end: %w", err)
			}
		} else {
			last, err := parseOctet(to)
			if err != nil {
				return Rule{}, fmt.Errorf("range end: %w", err)
			}
			b := lo.As4()
			b[3] = last
			hi = netip.AddrFrom4(b)
		}
		if hi.Less(lo) {
			return Rule{}, fmt.Errorf("range end %s is below its start %s", to, from)
		}
		return Rule{kind: ruleIP, lo: lo, hi: hi}, nil
	}
	// A full address, or a partial one naming a /24, /16 or /8.
	partial := strings.TrimSuffix(s, ".")
	fields := strings.Split(partial, ".")
	if len(fields) == 4 {
		if partial != s {
			return Rule{}, errors.New("a full address cannot end with a dot")
		}
		ip, err := parseIPv4(s)
		if err != nil {
			return Rule{}, err
		}
		return Rule{kind: ruleIP, lo: ip, hi: ip}, nil
	}
	if len(fields) > 4 {
		return Rule{}, errors.New("more than four octets")
	}
	var b [4]byte
	for i, f := range fields {
		o, err := parseOctet(f)
		if err != nil {
			return Rule{}, err
		}
		b[i] = o
	}
	return prefixRule(netip.PrefixFrom(netip.AddrFrom4(b), 8*len(fields)))
}

// parseIPv4 parses a dotted quad with messages that say which octet is
// wrong; netip's errors are less specific.
func parseIPv4(s string) (netip.Addr, error) {
	fields := strings.Split(s, ".")
	if len(fields) != 4 {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address (four octets)", s)
	}
	var b [4]byte
	for i, f := range fields {
		o, err := parseOctet(f)
		if err != nil {
			return netip.Addr{}, err
		}
		b[i] = o
	}
	return netip.AddrFrom4(b), nil
}

func parseOctet(s string) (byte, error) {
	switch {
	case s == "":
		return 0, errors.New("empty octet")
	case len(s) > 1 && s[0] == '0':
		// inet_aton would read it as octal; refuse the ambiguity.
		return 0, fmt.Errorf("octet %q has a leading zero", s)
	case strings.Trim(s, "0123456789") != "":
		return 0, fmt.Errorf("octet %q is not a number", s)
	case len(s) > 3:
		return 0, fmt.Errorf("octet %s is out of range (0-255)", s)
	}
	n, _ := strconv.Atoi(s)
	if n > 255 {
		return 0, fmt.Errorf("octet %d is out of range (0-255)", n)
	}
	return byte(n), nil
}

func parseIPv6Rule(s string) (Rule, error) {
	if strings.Contains(s, "%") {
		return Rule{}, errors.New("zoned IPv6 addresses cannot be matched")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Rule{}, err
		}
		// ::ffff:10.0.0.0/104 is a way to write 10.0.0.0/8; clients are
		// compared unmapped, so the rule must be unmapped too.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return prefixRule(p)
	}
	if from, to, ok := strings.Cut(s, "-"); ok {
		lo, err := netip.ParseAddr(from)
		if err != nil {
			return Rule{}, fmt.Errorf("range start: %w", err)
		}
		hi, err := netip.ParseAddr(to)
		if err != nil {
			return Rule{}, fmt.Errorf("range end: %w", err)
		}
		lo, hi = lo.Unmap(), hi.Unmap()
		if lo.BitLen() != hi.BitLen() {
			return Rule{}, errors.New("range mixes IPv4 and IPv6")
		}
		if hi.Less(lo) {
			return Rule{}, fmt.Errorf("range end %s is below its start %s", to, from)
		}
		return Rule{kind: ruleIP, lo: lo, hi: hi}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return Rule{}, err
	}
	ip = ip.Unmap()
	return Rule{kind: ruleIP, lo: ip, hi: ip}, nil
}

func prefixRule(p netip.Prefix) (Rule, error) {
	if m := p.Masked(); m != p {
		return Rule{}, fmt.Errorf("host bits are set (the network is %s)", m)
	}
	return Rule{kind: ruleIP, lo: p.Addr(), hi: lastAddr(p)}, nil
}

// lastAddr returns the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// parseHostPattern checks a host name or a partial host name (".example.com")
// and returns it in lower case without the trailing dot.
func parseHostPattern(s string) (string, error) {
	name := strings.TrimPrefix(s, ".")
	partial := len(name) != len(s)
	name = strings.TrimSuffix(name, ".")
	if err := CheckDomain(name); err != nil {
		return "", err
	}
	name = strings.ToLower(name)
	if partial {
		name = "." + name
	}
	return name, nil
}

// CheckDomain reports whether name (without a trailing dot) is usable as a
// host or domain name: labels of letters, digits, hyphens and underscores
// (which real PTR names contain), each 1 to 63 bytes, 253 in all. Names in
// other scripts must be written in their ASCII (xn--) form.
func CheckDomain(name string) error {
	if name == "" {
		return errors.New("empty host name")
	}
	if len(name) > 253 {
		return fmt.Errorf("host name is %d bytes long, more than 253", len(name))
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return errors.New("empty label in host name")
		}
		if len(label) > 63 {
			return fmt.Errorf("label %.20q... is longer than 63 bytes", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			case c == '*':
				return errors.New("wildcards are not supported; .example.com matches any host under example.com")
			case c >= 0x80:
				return errors.New("non-ASCII host name; write it in its xn-- form")
			default:
				return fmt.Errorf("invalid character %q in host name", c)
			}
		}
	}
	return nil
}
