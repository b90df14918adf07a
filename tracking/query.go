package tracking

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxLimit bounds Query.Limit as ParseQuery reads it: a page of results an
// administrator reads, not an export.
const MaxLimit = 10000

// QueryKeys are the keys ParseQuery knows, in the order of Query's fields.
var QueryKeys = []string{"host", "mid", "icid", "dcid", "sender", "recipient", "subject", "message_id",
	"remote_ip", "status", "abort", "spf", "dkim", "dmarc", "dnslist", "since", "until", "limit"}

// ParseQuery reads a Query from the filters of the HTTP API (and of `mailgate
// track`, whose flags become these values): empty values do not filter, so
// that a form can send all its fields. Since and until take a time (RFC 3339,
// "2006-01-02" or "2006-01-02 15:04" in now's location) or a duration back
// from now ("24h", "90m", "7d").
//
// An unknown key is an error rather than ignored: a misspelt filter would
// otherwise return every message, which looks like an answer.
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	var q Query
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if !slices.Contains(QueryKeys, k) {
			errs = append(errs, fmt.Errorf("%s: unknown filter (known: %s)", k, strings.Join(QueryKeys, ", ")))
		}
	}
	for _, k := range QueryKeys {
		s, err := single(v, k)
		if err == nil && s != "" {
			err = q.set(k, s, now)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		errs = append(errs, fmt.Errorf("since: %s is not before until (%s)",
			q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return Query{}, err
	}
	return q, nil
}

func (q *Query) set(key, s string, now time.Time) error {
	var err error
	switch key {
	case "host":
		q.Host = s
	case "mid":
		q.MID, err = parseID(s)
	case "icid":
		q.ICID, err = parseID(s)
	case "dcid":
		q.DCID, err = parseID(s)
	case "sender":
		if q.Sender = trimAngles(s); q.Sender == "" {
			q.Sender = NullSender // "<>": the value, not an empty filter
		}
	case "recipient":
		q.Recipient = trimAngles(s)
	case "subject":
		// Stored subjects are decoded (RFC 2047): a filter copied from
		// a raw log line finds them too.
		q.Subject = subjectText(s)
	case "message_id":
		q.MessageID = s
	case "remote_ip":
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err != nil {
			return fmt.Errorf("%q is not an IP address", s)
		}
		// The store holds the address as the log wrote it, which is the
		// canonical form; "::ffff:192.0.2.1" is logged as 192.0.2.1.
		q.RemoteIP = a.Unmap().String()
	case "status":
		if !slices.Contains(Statuses, Status(s)) {
			return fmt.Errorf("%q is not a status (%s)", s, joinStrings(Statuses))
		}
		q.Status = Status(s)
	case "abort":
		if !slices.Contains(Aborts, Abort(s)) {
			return fmt.Errorf("%q is not an abort kind (%s)", s, joinStrings(Aborts))
		}
		q.Abort = Abort(s)
	case "spf":
		q.SPF, err = oneOf(s, SPFResults, "an SPF result")
	case "dkim":
		q.DKIM, err = oneOf(s, DKIMResults, "a DKIM result")
	case "dmarc":
		q.DMARC, err = oneOf(s, DMARCResults, "a DMARC result")
	case "dnslist":
		// A zone as the HAT rule names it, or the rule pasted from the
		// ICID line.
		zone := strings.ToLower(strings.TrimSuffix(s, "."))
		if z := DNSListZone(s); z != "" {
			zone = z
		}
		if zone == "" || strings.ContainsAny(zone, " []:") {
			return fmt.Errorf("%q is not a DNS list zone (zen.spamhaus.org)", s)
		}
		q.DNSList = zone
	case "since":
		q.Since, err = ParseTime(s, now)
	case "until":
		q.Until, err = ParseTime(s, now)
	case "limit":
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 || n > MaxLimit {
			return fmt.Errorf("%q is not a number from 1 to %d", s, MaxLimit)
		}
		q.Limit = n
	}
	return err
}

// oneOf is s, in lower case, when it is one of values: the results are
// matched as the records hold them, whatever case the log wrote (the
// ESA's SPF line says "Fail").
func oneOf(s string, values []string, what string) (string, error) {
	l := strings.ToLower(s)
	if !slices.Contains(values, l) {
		return "", fmt.Errorf("%q is not %s (%s)", s, what, strings.Join(values, ", "))
	}
	return l, nil
}

// single returns the key's one value, trimmed; a key given twice is an
// error because a Query has room for one value of each.
func single(v url.Values, key string) (string, error) {
	vals := v[key]
	var out string
	n := 0
	for _, s := range vals {
		if s = strings.TrimSpace(s); s != "" {
			out = s
			n++
		}
	}
	if n > 1 {
		return "", fmt.Errorf("given %d times; give it once", n)
	}
	return out, nil
}

// parseID reads a MID, ICID or DCID, also as pasted from a log line
// ("MID 1005").
func parseID(s string) (uint64, error) {
	digits := s
	if word, rest, ok := strings.Cut(s, " "); ok && (strings.EqualFold(word, "MID") ||
		strings.EqualFold(word, "ICID") || strings.EqualFold(word, "DCID")) {
		digits = strings.TrimSpace(rest)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a positive number", s)
	}
	return n, nil
}

// trimAngles lets an address be pasted with the brackets of the log line.
func trimAngles(s string) string {
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05",
	"2006-01-02 15:04", "2006-01-02"}

// ParseTime reads a point in time: RFC 3339; a local date, or date and time,
// in now's location; or a duration before now ("24h", "90m", "7d", "1d12h").
func ParseTime(s string, now time.Time) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	d, err := ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a time (RFC 3339, 2006-01-02, 2006-01-02 15:04) nor a duration back from now (24h, 90m, 7d)", s)
	}
	return now.Add(-d), nil
}

// ParseDuration is time.ParseDuration with days ("7d", "1d12h"), which is
// how far back administrators think; it must be positive.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", orig)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("bad duration %q", orig)
		}
	}
	if d += days; d <= 0 {
		return 0, fmt.Errorf("duration %q is not positive", orig)
	}
	return d, nil
}

func joinStrings[S ~string](list []S) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}
