package maillog

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/mailgate/mailgate/event"
)

// maxLine is the longest line a Reader accepts. ESA lines are short, but a
// logged Subject or reply can be long and a log must not stop an import.
const maxLine = 16 << 20

// A Reader reads a mail log line by line, like bufio.Scanner:
//
//	r := maillog.NewReader(f, time.Local)
//	for r.Scan() {
//		e := r.Entry()
//		...
//	}
//	if err := r.Err(); err != nil { ... }
//
// Times are read in the location given to NewReader until a
// "Time offset from UTC" header line says otherwise; from the "Begin
// Logfile" line that precedes it on, they are read at that offset. Blank
// lines are skipped.
type Reader struct {
	sc    *bufio.Scanner
	loc   *time.Location
	years years
	ahead []string // lines read ahead to find the header's time offset
	entry event.Entry
	text  string
	line  int
	err   error
}

// NewReader returns a Reader of r; loc (nil: time.Local) applies until the
// log says otherwise.
func NewReader(r io.Reader, loc *time.Location) *Reader {
	if loc == nil {
		loc = time.Local
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &Reader{sc: sc, loc: loc, years: years{now: time.Now()}}
}

// SetYear says that the first line whose timestamp has no year (BSD
// syslog: "Jun 26 10:42:23 esa1 mail_logs: Info: ...") is of year y; the
// lines after it follow it, a year on at each December-to-January
// rollover. Call it before Scan.
func (r *Reader) SetYear(y int) { r.years = years{year: y} }

// SetNow says that the log was written no later than t (its file's
// modification time): a line whose timestamp has no year gets the latest
// year that puts it no more than a day after t. Without SetYear or SetNow,
// t is the time of NewReader. Call it before Scan.
func (r *Reader) SetNow(t time.Time) { r.years = years{now: t} }

// Yearless counts the lines read so far whose timestamp had no year.
func (r *Reader) Yearless() int64 { return r.years.n }

// Scan advances to the next entry; it returns false at the end of the input
// or on a read error (see Err).
func (r *Reader) Scan() bool {
	for {
		text, ok := r.next()
		if !ok {
			return false
		}
		e, err := r.parse(text)
		if err != nil { // blank
			continue
		}
		if _, ok := e.Event.(event.BeginLogfile); ok && r.offsetAhead() {
			e, _ = r.parse(text)
		}
		if off, ok := e.Event.(event.TimeOffset); ok {
			r.loc = offsetZone(off.Seconds)
			e, _ = r.parse(text)
		}
		r.entry, r.text = e, text
		return true
	}
}

// Entry returns the entry Scan read.
func (r *Reader) Entry() event.Entry { return r.entry }

// Text returns the line Scan read, as it was.
func (r *Reader) Text() string { return r.text }

// Line returns the number of the line Scan read, from 1.
func (r *Reader) Line() int { return r.line - len(r.ahead) }

// Err returns the first error other than io.EOF.
func (r *Reader) Err() error { return r.err }

func (r *Reader) parse(text string) (event.Entry, error) {
	return parseLine(text, r.loc, &r.years)
}

func (r *Reader) next() (string, bool) {
	if len(r.ahead) > 0 {
		t := r.ahead[0]
		r.ahead = r.ahead[1:]
		return t, true
	}
	return r.read()
}

func (r *Reader) read() (string, bool) {
	if r.err != nil {
		return "", false
	}
	if !r.sc.Scan() {
		if err := r.sc.Err(); err != nil {
			r.err = fmt.Errorf("maillog: read line %d: %w", r.line+1, err)
		}
		return "", false
	}
	r.line++
	return r.sc.Text(), true
}

// offsetAhead reads the (up to two) header lines after "Begin Logfile" and
// switches to the offset one of them gives, so that the header lines before
// it are read in the file's own time too. It reports whether it switched.
func (r *Reader) offsetAhead() bool {
	for len(r.ahead) < 2 {
		t, ok := r.read()
		if !ok {
			break
		}
		r.ahead = append(r.ahead, t)
	}
	for _, t := range r.ahead {
		e, _ := r.parse(t)
		if off, ok := e.Event.(event.TimeOffset); ok {
			r.loc = offsetZone(off.Seconds)
			return true
		}
	}
	return false
}

// offsetZone names a zone by its offset, "UTC-0600".
func offsetZone(sec int) *time.Location {
	sign, s := byte('+'), sec
	if s < 0 {
		sign, s = '-', -s
	}
	return time.FixedZone(fmt.Sprintf("UTC%c%02d%02d", sign, s/3600, s/60%60), sec)
}
