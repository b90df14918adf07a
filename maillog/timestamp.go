package maillog

import (
	"strconv"
	"sync/atomic"
	"time"
)

// Timestamps. The local log file uses C asctime, "%a %b %e %H:%M:%S %Y",
// with the day of month padded with a space ("Wed Sep  6 13:13:16 2023");
// Cisco's web pages collapse the padding ("Mon Mar 5 14:21:04 2018"), which
// is accepted on input. The day name is read but not checked against the
// date: documentation samples with edited dates carry impossible ones, and a
// time.Time cannot keep a wrong day name, so it is derived on output.

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// appendAsctime appends t (already in the wanted location) in asctime form.
func appendAsctime(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hh, mm, ss := t.Clock()
	dst = append(dst, dayNames[t.Weekday()]...)
	dst = append(dst, ' ')
	dst = append(dst, monthNames[month-1]...)
	dst = append(dst, ' ')
	if day < 10 {
		dst = append(dst, ' ', byte('0'+day))
	} else {
		dst = append(dst, byte('0'+day/10), byte('0'+day%10))
	}
	dst = append(dst, ' ', byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10),
		':', byte('0'+ss/10), byte('0'+ss%10), ' ')
	if year >= 0 && year < 1000 { // four digits, as the parser wants
		return append(dst, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10))
	}
	return strconv.AppendInt(dst, int64(year), 10)
}

// stamp is the formatted timestamp of one second in one location.
type stamp struct {
	sec int64
	loc *time.Location
	n   int
	b   [32]byte
}

// lastStamp caches the most recent timestamp: a busy gateway writes
// thousands of lines within the same second, and formatting a date is the
// most expensive part of rendering a short line.
var lastStamp atomic.Pointer[stamp]

// appendStamp appends the asctime form of t in loc, from the cache when the
// second and location are the ones formatted last.
func appendStamp(dst []byte, t time.Time, loc *time.Location) []byte {
	sec := t.Unix()
	if c := lastStamp.Load(); c != nil && c.sec == sec && c.loc == loc {
		return append(dst, c.b[:c.n]...)
	}
	s := &stamp{sec: sec, loc: loc}
	s.n = len(appendAsctime(s.b[:0], t.In(loc)))
	if s.n > len(s.b) { // a year beyond 9999 does not fit; do not cache
		return appendAsctime(dst, t.In(loc))
	}
	lastStamp.Store(s)
	return append(dst, s.b[:s.n]...)
}

func lookupName(s string, names []string) int {
	for i, n := range names {
		if s == n {
			return i
		}
	}
	return -1
}

// cutDigits parses exactly n digits at the start of s.
func cutDigits(s string, n int) (int, string, bool) {
	if len(s) < n {
		return 0, s, false
	}
	v := 0
	for i := 0; i < n; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, s, false
		}
		v = v*10 + int(c-'0')
	}
	return v, s[n:], true
}

// cutMonthDayClock parses "Jan _2 15:04:05" (day padded or collapsed).
func cutMonthDayClock(s string) (month time.Month, day, hh, mm, ss int, rest string, ok bool) {
	if len(s) < 4 || s[3] != ' ' {
		return
	}
	m := lookupName(s[:3], monthNames[:])
	if m < 0 {
		return
	}
	s = s[4:]
	switch {
	case len(s) >= 2 && s[0] == ' ': // padded single digit
		day, s, ok = cutDigits(s[1:], 1)
	case len(s) >= 2 && s[1] == ' ': // collapsed single digit
		day, s, ok = cutDigits(s, 1)
	default:
		day, s, ok = cutDigits(s, 2)
	}
	if !ok || day < 1 || len(s) < 9 || s[0] != ' ' || s[3] != ':' || s[6] != ':' {
		return 0, 0, 0, 0, 0, "", false
	}
	var ok1, ok2, ok3 bool
	hh, _, ok1 = cutDigits(s[1:3], 2)
	mm, _, ok2 = cutDigits(s[4:6], 2)
	ss, _, ok3 = cutDigits(s[7:9], 2)
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 59 {
		return 0, 0, 0, 0, 0, "", false
	}
	return time.Month(m + 1), day, hh, mm, ss, s[9:], true
}

// date builds the time and reports whether the fields named a real date
// (time.Date would silently turn Feb 30 into Mar 2).
func date(year int, month time.Month, day, hh, mm, ss int, loc *time.Location) (time.Time, bool) {
	t := time.Date(year, month, day, hh, mm, ss, 0, loc)
	y, m, d := t.Date()
	return t, y == year && m == month && d == day
}

// cutAsctime parses an asctime timestamp at the start of s.
func cutAsctime(s string, loc *time.Location) (time.Time, string, bool) {
	if len(s) < 4 || s[3] != ' ' || lookupName(s[:3], dayNames[:]) < 0 {
		return time.Time{}, s, false
	}
	month, day, hh, mm, ss, rest, ok := cutMonthDayClock(s[4:])
	if !ok || len(rest) < 5 || rest[0] != ' ' {
		return time.Time{}, s, false
	}
	year, rest, ok := cutDigits(rest[1:], 4)
	if !ok {
		return time.Time{}, s, false
	}
	t, ok := date(year, month, day, hh, mm, ss, loc)
	if !ok {
		return time.Time{}, s, false
	}
	return t, rest, true
}

// stampKind says which timestamp began a line.
type stampKind uint8

const (
	stampNone    stampKind = iota
	stampAsctime           // the local file: the level word follows at once
	stampForeign           // syslog or a collector: a host and tag may come before the level
)

// cutStamp recognises the timestamps mailgate reads at the start of a line:
// asctime (local files); BSD syslog "<PRI>Mmm _d hh:mm:ss" with or without
// the PRI; RFC 5424 syslog "<PRI>1 2006-01-02T15:04:05Z"; the collector
// form "2019 Sep 28 16:13:51"; and a bare RFC 3339 time. The timestamp
// must be followed by a space or end the line.
func cutStamp(s string, loc *time.Location, y *years) (time.Time, string, stampKind) {
	if t, rest, ok := cutAsctime(s, loc); ok && (rest == "" || rest[0] == ' ') {
		return t, rest, stampAsctime
	}
	r := s
	if len(r) > 2 && r[0] == '<' {
		i := 1
		for i < len(r) && i <= 4 && r[i] >= '0' && r[i] <= '9' {
			i++
		}
		if i == 1 || i >= len(r) || r[i] != '>' {
			return time.Time{}, s, stampNone
		}
		r = r[i+1:]
		if len(r) > 2 && r[0] == '1' && r[1] == ' ' { // RFC 5424 VERSION
			r = r[2:]
		}
	}
	if month, day, hh, mm, ss, rest, ok := cutMonthDayClock(r); ok && (rest == "" || rest[0] == ' ') {
		if t, ok := y.date(month, day, hh, mm, ss, loc); ok {
			return t, rest, stampForeign
		}
		return time.Time{}, s, stampNone
	}
	if year, rest, ok := cutDigits(r, 4); ok && len(rest) > 1 && rest[0] == ' ' {
		if month, day, hh, mm, ss, rest, ok := cutMonthDayClock(rest[1:]); ok && (rest == "" || rest[0] == ' ') {
			if t, ok := date(year, month, day, hh, mm, ss, loc); ok {
				return t, rest, stampForeign
			}
		}
		return time.Time{}, s, stampNone
	}
	if len(r) >= 20 && r[4] == '-' && r[10] == 'T' {
		tok, rest := r, ""
		for i := 0; i < len(r); i++ {
			if r[i] == ' ' {
				tok, rest = r[:i], r[i:]
				break
			}
		}
		if t, err := time.Parse(time.RFC3339Nano, tok); err == nil {
			return t, rest, stampForeign
		}
	}
	return time.Time{}, s, stampNone
}

// years supplies the year a BSD syslog timestamp lacks, in one of two
// ways. With year set, from the year of the first such line: the year goes
// on by one when a line's month is more than six before the last one's (a
// December line, then a January one), and a line more than six months
// after the last one (a late December line after the rollover) is put in
// the year before. Otherwise from now, the latest time the log can hold (a
// file's modification time): the latest year that puts the line no more
// than a day after now.
type years struct {
	now   time.Time
	year  int
	month time.Month // of the last yearless line, with year
	n     int64      // yearless lines read
}

func (y *years) date(month time.Month, day, hh, mm, ss int, loc *time.Location) (time.Time, bool) {
	y.n++
	if y.year == 0 {
		return syslogTime(month, day, hh, mm, ss, loc, y.now)
	}
	year := y.year
	switch {
	case y.month == 0:
		y.month = month
	case month+6 < y.month:
		y.year++
		year, y.month = y.year, month
	case month > y.month+6:
		year--
	default:
		y.month = month
	}
	return date(year, month, day, hh, mm, ss, loc)
}

// syslogTime supplies the year a BSD syslog timestamp lacks: the year of
// now (in loc), or an earlier one when that would put the line more than a
// day in the future (a December line read in January), or when the date
// does not exist in that year (Feb 29).
func syslogTime(month time.Month, day, hh, mm, ss int, loc *time.Location, now time.Time) (time.Time, bool) {
	if now.IsZero() {
		now = time.Now()
	}
	year := now.In(loc).Year()
	limit := now.Add(24 * time.Hour)
	for y := year; y > year-8; y-- {
		t, ok := date(y, month, day, hh, mm, ss, loc)
		if ok && !t.After(limit) {
			return t, true
		}
	}
	return time.Time{}, false
}
